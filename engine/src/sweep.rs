//! Sweep expansion: the cartesian product of a sweep's axes minus its excludes, and the
//! readable instance names built from axis values (`train/breakout/width3/seed1`).

use prunus_stage::Value;

use crate::pipeline::Sweep;

/// One point of a sweep: a value per axis, in the sweep's axis order.
pub type Point = Vec<Value>;

/// Every point of the sweep, in row-major order of its axes (the first axis varies slowest).
pub fn expand(sweep: &Sweep) -> Vec<Point> {
    expand_indices(sweep)
        .into_iter()
        .map(|ix| {
            ix.iter()
                .zip(&sweep.axes)
                .map(|(&k, a)| a.values[k].clone())
                .collect()
        })
        .collect()
}

/// [`expand`] as indices into each axis's values: no value is cloned or searched for.
pub fn expand_indices(sweep: &Sweep) -> Vec<Vec<usize>> {
    // Sizes are checked when the sweep is parsed; the capacity is only a hint.
    let total = sweep
        .axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .unwrap_or(usize::MAX);
    let mut points = Vec::with_capacity(total.min(1 << 20));
    if sweep.axes.is_empty() {
        return points;
    }
    let excludes = Excludes::new(sweep);
    let mut index = vec![0usize; sweep.axes.len()];
    'outer: loop {
        if !excludes.matches(&index) {
            points.push(index.clone());
        }
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < sweep.axes[d].values.len() {
                continue 'outer;
            }
            index[d] = 0;
        }
        break;
    }
    points
}

/// Each `exclude` as, per condition, its axis and which of that axis's values it matches,
/// so testing a point costs one lookup per condition.
struct Excludes(Vec<Vec<(usize, Vec<bool>)>>);

impl Excludes {
    fn new(sweep: &Sweep) -> Self {
        let resolve = |conds: &Vec<crate::pipeline::Cond>| {
            conds
                .iter()
                .map(|c| {
                    let axis = sweep.axes.iter().position(|a| a.name == c.axis);
                    let hits = axis.map_or_else(Vec::new, |i| {
                        sweep.axes[i]
                            .values
                            .iter()
                            .map(|v| same(v, &c.value))
                            .collect()
                    });
                    (axis.unwrap_or(usize::MAX), hits)
                })
                .collect()
        };
        Excludes(
            sweep
                .excludes
                .iter()
                .filter(|conds| !conds.is_empty())
                .map(resolve)
                .collect(),
        )
    }

    /// Whether some exclude matches the point at `index` on all of its conditions.
    fn matches(&self, index: &[usize]) -> bool {
        self.0.iter().any(|conds| {
            conds
                .iter()
                .all(|(axis, hits)| index.get(*axis).is_some_and(|&k| hits[k]))
        })
    }
}

/// Axis-value equality that treats `1` and `1.0` as the same number.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => *x as f64 == *y,
        _ => a == b,
    }
}

/// The name segment of every value of every axis: strings by their last `/` component
/// (`minatar/breakout` -> `breakout`) unless that is ambiguous within the axis, numbers and
/// booleans prefixed by the axis name (`seed1`, `width3`, `sparsity0.95`).
pub fn segments(sweep: &Sweep) -> Vec<Vec<String>> {
    sweep
        .axes
        .iter()
        .map(|axis| {
            let short: Vec<String> = axis
                .values
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.rsplit('/').next().unwrap_or(s).to_string(),
                    other => format!("{}{other}", axis.name),
                })
                .collect();
            let mut seen = std::collections::HashSet::with_capacity(short.len());
            let unique = short.iter().all(|s| seen.insert(s.as_str()));
            if unique {
                short.into_iter().map(|s| sanitize(&s)).collect()
            } else {
                axis.values
                    .iter()
                    .map(|v| sanitize(&v.to_string().replace('/', "-")))
                    .collect()
            }
        })
        .collect()
}

/// Keeps names printable and path-safe: instance names become folders under `results/`, so
/// a segment is never empty, `.` or `..`.
fn sanitize(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "_".repeat(s.len().max(1))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse_str;

    #[test]
    fn segments_never_leave_their_folder() {
        for (value, segment) in [
            ("..", "__"),
            (".", "_"),
            ("", "_"),
            ("a/..", "__"),
            ("../x", "x"),
        ] {
            assert_eq!(
                sanitize(value.rsplit('/').next().unwrap()),
                segment,
                "{value:?}"
            );
        }
    }

    #[test]
    fn product_minus_excludes_in_axis_order() {
        let (p, _) = parse_str(
            "t",
            "sweep s { game \"a/x\" \"b/y\"\n seed 0 1 2\n exclude game=\"b/y\" seed=1 }",
        )
        .unwrap();
        let points = expand(&p.sweeps[0]);
        assert_eq!(points.len(), 5);
        assert_eq!(points[0], vec![Value::Str("a/x".into()), Value::Int(0)]);
        assert!(!points.contains(&vec![Value::Str("b/y".into()), Value::Int(1)]));
        assert_eq!(segments(&p.sweeps[0])[0], ["x", "y"]);
        assert_eq!(segments(&p.sweeps[0])[1], ["seed0", "seed1", "seed2"]);
    }

    #[test]
    fn ambiguous_short_names_keep_their_prefix() {
        let (p, _) = parse_str(
            "t",
            "sweep s { game \"atari/breakout\" \"minatar/breakout\" }",
        )
        .unwrap();
        assert_eq!(
            segments(&p.sweeps[0])[0],
            ["atari-breakout", "minatar-breakout"]
        );
    }
}
