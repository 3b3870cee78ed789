//! Sweep expansion: the cartesian product of a sweep's axes minus its excludes, and the
//! readable instance names built from axis values (`train/breakout/width3/seed1`).

use prunus_stage::Value;

use crate::pipeline::Sweep;

/// One point of a sweep: a value per axis, in the sweep's axis order.
pub type Point = Vec<Value>;

/// Every point of the sweep, in row-major order of its axes (the first axis varies slowest).
pub fn expand(sweep: &Sweep) -> Vec<Point> {
    // Sizes are checked when the sweep is parsed; the capacity is only a hint.
    let total = sweep
        .axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .unwrap_or(usize::MAX);
    let mut points = Vec::with_capacity(total.min(1 << 20));
    let mut index = vec![0usize; sweep.axes.len()];
    if sweep.axes.is_empty() {
        return points;
    }
    'outer: loop {
        let point: Point = index
            .iter()
            .zip(&sweep.axes)
            .map(|(&i, a)| a.values[i].clone())
            .collect();
        if !excluded(sweep, &point) {
            points.push(point);
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

fn excluded(sweep: &Sweep, point: &Point) -> bool {
    sweep.excludes.iter().any(|conds| {
        !conds.is_empty()
            && conds.iter().all(|c| {
                sweep
                    .axes
                    .iter()
                    .position(|a| a.name == c.axis)
                    .is_some_and(|i| same(&point[i], &c.value))
            })
    })
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
            let unique = short
                .iter()
                .enumerate()
                .all(|(i, s)| !short[..i].contains(s));
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
