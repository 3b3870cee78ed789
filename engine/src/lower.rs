//! Lowering: a parsed [`Pipeline`] plus the [`Registry`] of stage kinds becomes a [`Graph`]
//! of stage instances with fully resolved, type-checked parameters and their upstream
//! instances. Every problem found is reported at once, pointing at its span.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use petgraph::graph::DiGraph;
use prunus_stage::{ParamSpec, ParamType, Params, Resources, StageKind, Value};

use crate::diagnostic::{Loc, PipelineError, Problem, Problems, Sources, did_you_mean};
use crate::pipeline::{Cond, ParamSet, Pipeline, StageDecl, Sweep};
use crate::registry::Registry;
use crate::sweep;

/// A pipeline ready to plan and run: stages in dependency order, and their instances.
pub struct Graph {
    pub name: String,
    pub base_dir: PathBuf,
    /// Where `prunus run` exports the outputs of the final stages.
    pub results: PathBuf,
    pub stages: Vec<Stage>,
    /// Grouped by stage, in stage order: every input of an instance has a smaller index.
    pub instances: Vec<Instance>,
}

pub struct Stage {
    pub name: String,
    pub kind: Arc<dyn StageKind>,
    pub loc: Loc,
    pub instances: Range<usize>,
    /// Whether `run` copies its outputs to the results directory.
    pub export: bool,
    /// Parameters whose files' contents go into the key ([`ParamType::Paths`]).
    pub path_params: Vec<String>,
}

pub struct Instance {
    /// `stage/segment/...`, e.g. `train/breakout/width3/seed1`.
    pub name: String,
    pub stage: usize,
    pub axes: BTreeMap<String, Value>,
    pub params: Params,
    pub inputs: Vec<usize>,
    pub resources: Resources,
}

impl Graph {
    pub fn stage_of(&self, instance: usize) -> &Stage {
        &self.stages[self.instances[instance].stage]
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.instances.iter().position(|i| i.name == name)
    }
}

/// Resolves a parsed pipeline against the stage kinds.
pub fn lower(p: &Pipeline, sources: &Sources, registry: &Registry) -> Result<Graph, PipelineError> {
    let mut problems = Problems::default();
    let decls: Vec<StageDecl> = p
        .stages
        .iter()
        .map(|s| with_template(s, p, &mut problems))
        .collect();

    // Kinds and sweeps of every stage.
    let mut kinds: Vec<Option<Arc<dyn StageKind>>> = Vec::new();
    let mut sweeps: Vec<Option<&Sweep>> = Vec::new();
    for d in &decls {
        kinds.push(match &d.kind {
            None => {
                problems.push(
                    Problem::new(
                        d.loc,
                        format!("stage `{}` has no kind", d.name),
                        "what does it run?",
                    )
                    .help("add a kind, e.g. kind \"train/dqn\" (`prunus kinds` lists them)"),
                );
                None
            }
            Some((k, loc)) => match registry.get(k) {
                Some(kind) => Some(kind),
                None => {
                    problems.push(
                        Problem::new(*loc, format!("unknown stage kind `{k}`"), "no such kind")
                            .help(did_you_mean(k, registry.names()).unwrap_or_else(|| {
                                format!(
                                    "known kinds: {}",
                                    registry.names().collect::<Vec<_>>().join(", ")
                                )
                            })),
                    );
                    None
                }
            },
        });
        sweeps.push(match &d.over {
            None => None,
            Some((name, loc)) => {
                let found = p.sweeps.iter().find(|s| &s.name == name);
                if found.is_none() {
                    let names: Vec<&str> = p.sweeps.iter().map(|s| s.name.as_str()).collect();
                    problems.push(
                        Problem::new(*loc, format!("unknown sweep `{name}`"), "no such sweep")
                            .help(
                                did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                                    format!("define it: sweep {name} {{ seed 0 1 }}")
                                }),
                            ),
                    );
                }
                found
            }
        });
    }
    let axes_of = |i: usize| -> Vec<&str> {
        sweeps[i]
            .map(|s| s.axes.iter().map(|a| a.name.as_str()).collect())
            .unwrap_or_default()
    };

    // The stage graph: unknown upstream stages, filters on missing axes, cycles.
    let index: HashMap<&str, usize> = decls
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    let mut graph = DiGraph::<usize, Loc>::new();
    let nodes: Vec<_> = (0..decls.len()).map(|i| graph.add_node(i)).collect();
    for (i, d) in decls.iter().enumerate() {
        for need in &d.needs {
            let Some(&j) = index.get(need.stage.as_str()) else {
                problems.push(
                    Problem::new(
                        need.loc,
                        format!("stage `{}` needs unknown stage `{}`", d.name, need.stage),
                        "no such stage",
                    )
                    .help(
                        did_you_mean(&need.stage, index.keys().copied()).unwrap_or_else(|| {
                            format!(
                                "stages: {}",
                                decls
                                    .iter()
                                    .map(|d| d.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }),
                    ),
                );
                continue;
            };
            graph.add_edge(nodes[j], nodes[i], need.loc);
            for f in &need.filters {
                if !axes_of(j).contains(&f.axis.as_str()) {
                    problems.push(
                        Problem::new(
                            f.loc,
                            format!(
                                "axis `{}` is not in the sweep of stage `{}`",
                                f.axis, need.stage
                            ),
                            "unknown axis",
                        )
                        .help(match sweeps[j] {
                            Some(s) => did_you_mean(&f.axis, axes_of(j)).unwrap_or_else(|| {
                                format!(
                                    "`{}` runs over sweep `{}` with axes: {}",
                                    need.stage,
                                    s.name,
                                    axes_of(j).join(", ")
                                )
                            }),
                            None => format!(
                                "`{}` has no sweep (`over`), so it has one instance",
                                need.stage
                            ),
                        }),
                    );
                }
            }
        }
    }
    let order: Vec<usize> = match petgraph::algo::toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|n| graph[n]).collect(),
        Err(_) => {
            for scc in petgraph::algo::tarjan_scc(&graph) {
                let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
                if !cyclic {
                    continue;
                }
                let mut names: Vec<&str> = scc
                    .iter()
                    .rev()
                    .map(|&n| decls[graph[n]].name.as_str())
                    .collect();
                names.push(names[0]);
                let first = decls[graph[scc[scc.len() - 1]]].loc;
                problems.push(
                    Problem::new(first, format!("stages form a cycle: {}", names.join(" -> ")), "part of the cycle")
                        .help("a stage cannot depend on itself, directly or through others; remove one `needs`"),
                );
            }
            Vec::new() // never used: the cycle is reported with the parameter problems below
        }
    };

    // Parameters: known keys, types of literal values, "{axis}" references naming real axes.
    let mut specs: Vec<HashMap<&'static str, ParamSpec>> = Vec::new();
    for (i, d) in decls.iter().enumerate() {
        let Some(kind) = &kinds[i] else {
            specs.push(HashMap::new());
            continue;
        };
        let spec: HashMap<&'static str, ParamSpec> =
            kind.params().into_iter().map(|s| (s.key, s)).collect();
        for set in &d.params {
            let Some(ps) = spec.get(set.key.as_str()) else {
                let mut keys: Vec<&str> = spec.keys().copied().collect();
                keys.sort();
                problems.push(
                    Problem::new(
                        set.loc,
                        format!("`{}` is not a parameter of kind `{}`", set.key, kind.name()),
                        "unknown key",
                    )
                    .help(
                        did_you_mean(&set.key, keys.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "`prunus kinds {}` lists its parameters: {}",
                                kind.name(),
                                keys.join(", ")
                            )
                        }),
                    ),
                );
                continue;
            };
            for axis in axis_refs(&set.value) {
                if !axes_of(i).contains(&axis.as_str()) {
                    problems.push(
                        Problem::new(
                            set.loc,
                            format!("`{{{axis}}}` names no axis of stage `{}`", d.name),
                            "axis not in the sweep",
                        )
                        .help(match sweeps[i] {
                            Some(s) => {
                                format!("sweep `{}` has axes: {}", s.name, axes_of(i).join(", "))
                            }
                            None => format!(
                                "add `over <sweep>` to stage `{}` to use axis values",
                                d.name
                            ),
                        }),
                    );
                }
            }
            if axis_refs(&set.value).is_empty()
                && let Err(msg) = coerce(&set.value, ps.ty)
            {
                problems.push(type_problem(set, ps, &msg));
            }
        }
        for ps in spec.values() {
            let set = d.params.iter().any(|s| s.key == ps.key) || axes_of(i).contains(&ps.key);
            if ps.default.is_none() && !set {
                problems.push(
                    Problem::new(
                        d.loc,
                        format!("stage `{}` must set `{}`", d.name, ps.key),
                        "missing parameter",
                    )
                    .help(format!("`{}`: {} ({})", ps.key, ps.doc, ps.ty)),
                );
            }
        }
        specs.push(spec);
    }
    problems_checkpoint(&mut problems, sources)?;

    // Instances, stage by stage in dependency order.
    let mut stages: Vec<Stage> = Vec::new();
    let mut instances: Vec<Instance> = Vec::new();
    let mut stage_pos = vec![usize::MAX; decls.len()];
    for &i in &order {
        let d = &decls[i];
        let kind = kinds[i].clone().expect("checked");
        let spec = &specs[i];
        let start = instances.len();
        let (points, names): (Vec<BTreeMap<String, Value>>, Vec<String>) = match sweeps[i] {
            None => (vec![BTreeMap::new()], vec![d.name.clone()]),
            Some(s) => {
                let segs = sweep::segments(s);
                sweep::expand(s)
                    .into_iter()
                    .map(|point| {
                        let mut name = d.name.clone();
                        let mut axes = BTreeMap::new();
                        for (a, v) in s.axes.iter().zip(point) {
                            let k = a
                                .values
                                .iter()
                                .position(|x| *x == v)
                                .expect("value of its axis");
                            name.push('/');
                            name.push_str(&segs[axes.len()][k]);
                            axes.insert(a.name.clone(), v);
                        }
                        (axes, name)
                    })
                    .unzip()
            }
        };
        if names.is_empty()
            && let Some(s) = sweeps[i]
        {
            problems.push(
                Problem::new(
                    s.loc,
                    format!("sweep `{}` has no points left", s.name),
                    "everything is excluded",
                )
                .help("check its `exclude` lines"),
            );
        }
        // Defaults, then literal settings: shared by every instance of the stage.
        let mut base = Params::default();
        for ps in spec.values() {
            if let Some(v) = &ps.default {
                base.0.insert(ps.key.to_string(), v.clone());
            }
        }
        let mut templated: Vec<&ParamSet> = Vec::new();
        for set in &d.params {
            let Some(ps) = spec.get(set.key.as_str()) else {
                continue;
            };
            if axis_refs(&set.value).is_empty() {
                if let Ok(v) = coerce(&set.value, ps.ty) {
                    base.0.insert(set.key.clone(), v);
                }
            } else {
                templated.push(set);
            }
        }
        let bound: Vec<&str> = axes_of(i)
            .into_iter()
            .filter(|a| spec.contains_key(a) && !d.params.iter().any(|s| s.key == *a))
            .collect();
        for (k, v, loc) in &d.resources {
            if let Err(msg) = set_resource(&mut Resources::default(), k, v) {
                problems.push(
                    Problem::new(*loc, msg, "invalid resource")
                        .help("resources cpus=2 gpus=1 memory=\"8G\""),
                );
            }
        }
        let kind_resources = |params: &Params| {
            let mut r = kind.resources(params);
            for (k, v, _) in &d.resources {
                let _ = set_resource(&mut r, k, v);
            }
            r
        };
        let mut stage_resources = None;
        let mut seen_names = HashMap::new();
        for (axes, name) in points.into_iter().zip(names) {
            let mut params = base.clone();
            for a in &bound {
                let ps = &spec[a];
                match coerce(&axes[*a], ps.ty) {
                    Ok(v) => {
                        params.0.insert(a.to_string(), v);
                    }
                    Err(msg) => problems.push(
                        Problem::new(
                            d.loc,
                            format!("axis `{a}` cannot set parameter `{a}`: {msg}"),
                            "here",
                        )
                        .help(format!(
                            "`{a}` of kind `{}` is {}",
                            kind.name(),
                            ps.ty
                        )),
                    ),
                }
            }
            for set in &templated {
                let ps = &spec[set.key.as_str()];
                let v = substitute(&set.value, &axes);
                match coerce(&v, ps.ty) {
                    Ok(v) => {
                        params.0.insert(set.key.clone(), v);
                    }
                    Err(msg) => problems.push(type_problem(set, ps, &msg)),
                }
            }
            // Kinds rarely size resources by parameters; compute once when they do not.
            let resources = if d.resources.is_empty() && templated.is_empty() && bound.is_empty() {
                *stage_resources.get_or_insert_with(|| kind_resources(&params))
            } else {
                kind_resources(&params)
            };
            if seen_names.insert(name.clone(), ()).is_some() {
                problems.push(
                    Problem::new(d.loc, format!("two instances of stage `{}` are both named `{name}`", d.name), "duplicate instance")
                        .help("axis values that differ only in punctuation map to the same name; rename them"),
                );
            }
            instances.push(Instance {
                name,
                stage: stages.len(),
                axes,
                params,
                inputs: Vec::new(),
                resources,
            });
        }
        // Inputs: the upstream instances that match the filters and agree on shared axes.
        for need in &d.needs {
            let Some(&j) = index.get(need.stage.as_str()) else {
                continue;
            };
            let up = &stages[stage_pos[j]];
            let shared: Vec<String> = axes_of(i)
                .into_iter()
                .filter(|a| axes_of(j).contains(a))
                .map(String::from)
                .collect();
            let mut by_shared: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
            for u in up.instances.clone() {
                let inst = &instances[u];
                if need.filters.iter().all(|f| matches_filter(inst, f)) {
                    by_shared
                        .entry(shared_key(&inst.axes, &shared))
                        .or_default()
                        .push(u);
                }
            }
            for inst in &mut instances[start..] {
                match by_shared.get(&shared_key(&inst.axes, &shared)) {
                    Some(ups) => inst.inputs.extend(ups),
                    None => problems.push(
                        Problem::new(need.loc, format!("`needs {}` selects no instance for some instances of `{}` (e.g. {})", need.stage, d.name, inst.name), "selects nothing")
                            .help("check the filters and that the two sweeps share values on their common axes"),
                    ),
                }
            }
        }
        for inst in &mut instances[start..] {
            inst.inputs.sort_unstable();
            inst.inputs.dedup();
        }
        stage_pos[i] = stages.len();
        let has_consumers = decls
            .iter()
            .any(|o| o.needs.iter().any(|n| n.stage == d.name));
        stages.push(Stage {
            name: d.name.clone(),
            path_params: spec
                .values()
                .filter(|s| s.ty == ParamType::Paths)
                .map(|s| s.key.to_string())
                .collect(),
            kind,
            loc: d.loc,
            instances: start..instances.len(),
            export: d.export.unwrap_or(!has_consumers),
        });
    }
    problems.into_result(sources)?;
    let results = match &p.results {
        Some((dir, _)) => dir.clone(),
        None => PathBuf::from("results").join(&p.name),
    };
    Ok(Graph {
        name: p.name.clone(),
        base_dir: p.base_dir.clone(),
        results,
        stages,
        instances,
    })
}

/// Stops before expanding instances when the stage-level checks failed (expansion would only
/// repeat the same problems per instance).
fn problems_checkpoint(problems: &mut Problems, sources: &Sources) -> Result<(), PipelineError> {
    if problems.is_empty() {
        Ok(())
    } else {
        std::mem::take(problems).into_result(sources)
    }
}

/// The stage with its template's kind and parameters underneath its own.
fn with_template(d: &StageDecl, p: &Pipeline, problems: &mut Problems) -> StageDecl {
    let Some((name, loc)) = &d.from else {
        return d.clone();
    };
    let Some(t) = p.templates.iter().find(|t| &t.name == name) else {
        let names: Vec<&str> = p.templates.iter().map(|t| t.name.as_str()).collect();
        problems.push(
            Problem::new(
                *loc,
                format!("unknown template `{name}`"),
                "no such template",
            )
            .help(
                did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    format!("define it: template {name} {{ kind \"train/dqn\" ... }}")
                }),
            ),
        );
        return d.clone();
    };
    for (what, set) in [
        ("from", t.from.is_some()),
        ("over", t.over.is_some()),
        ("needs", !t.needs.is_empty()),
    ] {
        if set {
            problems.push(
                Problem::new(
                    t.loc,
                    format!("template `{}` uses `{what}`", t.name),
                    "templates hold a kind and parameters",
                )
                .help(format!("move `{what}` to the stages that use the template")),
            );
        }
    }
    let mut merged = d.clone();
    if merged.kind.is_none() {
        merged.kind = t.kind.clone();
    }
    merged.params = t.params.iter().chain(&d.params).cloned().collect();
    if merged.resources.is_empty() {
        merged.resources = t.resources.clone();
    }
    merged.export = merged.export.or(t.export);
    merged
}

fn matches_filter(inst: &Instance, f: &Cond) -> bool {
    inst.axes
        .get(&f.axis)
        .is_some_and(|v| sweep::same(v, &f.value))
}

fn shared_key(axes: &BTreeMap<String, Value>, shared: &[String]) -> Vec<String> {
    shared
        .iter()
        .map(|a| match &axes[a] {
            Value::Int(i) => (*i as f64).to_string(),
            v => v.to_string(),
        })
        .collect()
}

fn type_problem(set: &ParamSet, ps: &ParamSpec, msg: &str) -> Problem {
    Problem::new(
        set.loc,
        format!("`{}` {msg}", set.key),
        format!("expected {}", ps.ty),
    )
    .help(format!("`{}`: {}", ps.key, ps.doc))
}

/// `{axis}` names inside string values.
fn axis_refs(v: &Value) -> Vec<String> {
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
fn substitute(v: &Value, axes: &BTreeMap<String, Value>) -> Value {
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

fn set_resource(r: &mut Resources, key: &str, v: &Value) -> Result<(), String> {
    match (key, v) {
        ("cpus", Value::Int(n)) if *n >= 1 => r.cpus = *n as u32,
        ("gpus", Value::Int(n)) if *n >= 0 => r.gpus = *n as u32,
        ("memory", Value::Int(mb)) if *mb >= 0 => r.memory_mb = *mb as u64,
        ("memory", Value::Str(s)) => {
            r.memory_mb = parse_memory(s).ok_or(format!("cannot read memory size `{s}`"))?
        }
        ("cpus" | "gpus" | "memory", v) => return Err(format!("invalid `{key}`: `{v}`")),
        _ => return Err(format!("unknown resource `{key}` (cpus, gpus, memory)")),
    }
    Ok(())
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
