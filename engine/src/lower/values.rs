//! Parameter values: `{axis}` references and their substitution, type checks and the
//! canonical form that goes into keys, resources.

use std::collections::BTreeMap;

use prunus_stage::{ParamType, Resources, Value};

/// `{axis}` names inside string values.
pub(super) fn axis_refs(v: &Value) -> Vec<String> {
    match v {
        Value::Str(s) => {
            let mut out = Vec::new();
            let mut rest = s.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                out.push(rest[open + 1..open + close].to_string());
                rest = &rest[open + close + 1..];
            }
            out
        }
        Value::List(items) => items.iter().flat_map(axis_refs).collect(),
        _ => Vec::new(),
    }
}

/// Replaces "{axis}" references; a string that is exactly `"{axis}"` takes the axis value's type.
pub(super) fn substitute(v: &Value, axes: &BTreeMap<String, Value>) -> Value {
    match v {
        Value::Str(s) => {
            if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                && let Some(v) = axes.get(name)
            {
                return v.clone();
            }
            let mut out = s.clone();
            for (k, v) in axes {
                out = out.replace(&format!("{{{k}}}"), &v.to_string());
            }
            Value::Str(out)
        }
        Value::List(items) => Value::List(items.iter().map(|i| substitute(i, axes)).collect()),
        other => other.clone(),
    }
}

/// Checks a value against a declared type and converts it to the canonical form that goes
/// into the key (so `1` and `1.0` for a float parameter are one key).
pub fn coerce(v: &Value, ty: ParamType) -> Result<Value, String> {
    let num = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    };
    let got = |v: &Value| format!("is {}, got `{v}`", ty);
    match (ty, v) {
        (ParamType::Bool, Value::Bool(_))
        | (ParamType::Int, Value::Int(_))
        | (ParamType::Str, Value::Str(_)) => Ok(v.clone()),
        (ParamType::Int, Value::Float(x)) if x.fract() == 0.0 && x.abs() < 9.0e15 => {
            Ok(Value::Int(*x as i64))
        }
        (ParamType::Float, _) if num(v).is_some() => Ok(Value::Float(num(v).expect("number"))),
        (ParamType::StrList | ParamType::Paths, Value::Str(_)) => Ok(Value::List(vec![v.clone()])),
        (ParamType::StrList | ParamType::Paths, Value::List(items))
            if items.iter().all(|i| matches!(i, Value::Str(_))) =>
        {
            Ok(v.clone())
        }
        (ParamType::FloatList, _) if num(v).is_some() => {
            Ok(Value::List(vec![Value::Float(num(v).expect("number"))]))
        }
        (ParamType::FloatList, Value::List(items)) if items.iter().all(|i| num(i).is_some()) => {
            Ok(Value::List(
                items
                    .iter()
                    .map(|i| Value::Float(num(i).expect("number")))
                    .collect(),
            ))
        }
        (ParamType::Bool, Value::Str(s)) if s == "true" || s == "false" => {
            Err(format!("{}; booleans are written #{s} in KDL 2.0", got(v)))
        }
        _ => Err(got(v)),
    }
}

pub(super) fn set_resource(r: &mut Resources, key: &str, v: &Value) -> Result<(), String> {
    match (key, v) {
        ("cpus", Value::Int(n)) if *n >= 1 => r.cpus = *n as u32,
        ("gpus", Value::Int(n)) if *n >= 0 => r.gpus = *n as u32,
        ("memory", Value::Int(mb)) if *mb >= 0 => r.memory_mb = *mb as u64,
        ("memory", Value::Str(s)) => {
            r.memory_mb = parse_memory(s).ok_or(format!("cannot read memory size `{s}`"))?
        }
        ("time", Value::Str(s)) => r.time_s = Some(parse_duration(s).ok_or(format!(
            "cannot read time limit `{s}`; write e.g. \"90m\", \"12h\", \"2d\" or \"1-12:00:00\""
        ))?),
        ("cpus" | "gpus" | "memory" | "time", v) => {
            return Err(format!("invalid `{key}`: `{v}`"));
        }
        _ => {
            return Err(format!(
                "unknown resource `{key}` (cpus, gpus, memory, time)"
            ));
        }
    }
    Ok(())
}

/// A wall-clock limit in seconds: `"90s"`, `"90m"`, `"12h"`, `"2d"`, or Slurm's own
/// `[D-]HH:MM:SS` / `MM:SS` (pipeline `resources time=`, a batch system's `--time`).
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let unit = |suffix: char, secs: f64| {
        let x: f64 = s.strip_suffix(suffix)?.trim().parse().ok()?;
        (x > 0.0 && x.is_finite()).then(|| (x * secs).round() as u64)
    };
    if let Some(t) = [('s', 1.0), ('m', 60.0), ('h', 3600.0), ('d', 86400.0)]
        .iter()
        .find_map(|&(c, secs)| unit(c, secs))
    {
        return Some(t);
    }
    let (days, clock) = match s.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, s),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [h, m, sec] if days > 0 || parts.len() == 3 => h * 3600 + m * 60 + sec,
        [m, sec] => m * 60 + sec,
        _ => return None,
    };
    Some(days * 86400 + secs).filter(|&t| t > 0)
}

/// "8G", "512M", "1.5G" -> megabytes (pipeline `resources` and `prunus run --memory`).
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches(['B', 'b']);
    let (num, mult) = match s.chars().last()? {
        'G' | 'g' => (&s[..s.len() - 1], 1024.0),
        'M' | 'm' => (&s[..s.len() - 1], 1.0),
        'T' | 't' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        _ => (s, 1.0),
    };
    let x: f64 = num.trim().parse().ok()?;
    (x >= 0.0).then(|| (x * mult).round() as u64)
}
