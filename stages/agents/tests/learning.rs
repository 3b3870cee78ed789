//! Evidence that the agents learn, with small CPU budgets (release mode).

mod common;

#[test]
fn dqn_solves_cartpole() {
    // Budget: at most 60k agent steps (15k gradient steps of batch 128), under a minute of one
    // CPU core in release; seeds 0 and 1 reach a mean evaluation return of 500 by 30k steps.
    let mut trainer = common::cartpole_trainer(0, 24, 2_500);
    let mut evals = Vec::new();
    while !trainer.done() {
        trainer.train_steps(u64::MAX).unwrap();
        let stats = trainer.finish_iteration();
        evals.push(stats.eval_return.expect("evaluation ran"));
        if evals.last() >= Some(&475.0) {
            break;
        }
    }
    assert!(
        evals.last() >= Some(&475.0),
        "mean evaluation return (10 episodes) never reached 475 within 60k steps: {evals:?}"
    );
}

/// Mean evaluation return of the last two of 5 iterations of DQN on MinAtar Breakout (50k
/// agent steps, 12.5k gradient steps, epsilon decayed over 12.5k steps), with `extra`
/// parameters, and every iteration's.
fn breakout_evals(extra: &[(&str, prunus_stage::Value)]) -> (f64, Vec<f64>) {
    use prunus_agents::kinds::{Algorithm, TrainKind};
    use prunus_stage::{Context, StageKind, Value};

    let kind = TrainKind::new(Algorithm::Dqn);
    let mut overrides = vec![
        ("env", Value::Str("minatar/breakout".into())),
        ("steps", Value::Int(50_000)),
        ("iterations", Value::Int(5)),
        ("eval-episodes", Value::Int(20)),
        ("epsilon.decay", Value::Int(12_500)),
        ("checkpoints", Value::List(vec![])),
    ];
    overrides.extend_from_slice(extra);
    let params = common::kind_params(&kind, &overrides);
    let dir = tempfile::tempdir().unwrap();
    let (out, scratch) = (dir.path().join("out"), dir.path().join("scratch"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    kind.run(&Context::for_test(params, Vec::new(), out.clone(), scratch))
        .unwrap();
    let returns = std::fs::read_to_string(out.join("returns.csv")).unwrap();
    let header: Vec<&str> = returns.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "eval_return").unwrap();
    let evals: Vec<f64> = returns
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    let last = evals[evals.len() - 2..].iter().sum::<f64>() / 2.0;
    (last, evals)
}

#[test]
fn dqn_learns_minatar_breakout() {
    // About 20-25 s of one CPU core in release. A uniformly random policy scores 0.53 per
    // episode (stages/stats/src/normalize.rs); DQN reaches 3-5 by then (the quickstart's curves).
    let (last, evals) = breakout_evals(&[]);
    assert!(
        last >= 2.0,
        "mean evaluation return of the last two iterations {last} is not well above random (0.53): {evals:?}"
    );
}

#[test]
fn a_network_pruned_to_95_percent_still_learns_minatar_breakout() {
    // MinAtar's own network (Conv(16) + Dense(128), 206k weights) gradually pruned to 95%
    // between 20% and 60% of training, so the last 40% (20k agent steps) trains the sparse
    // network: it keeps ~10k weights and stays well above random (0.53). About 40 s of a core.
    use prunus_stage::Value;
    let (last, evals) = breakout_evals(&[
        ("network", Value::Str("minatar128".into())),
        ("prune", Value::Str("gmp".into())),
        ("prune.sparsity", Value::Float(0.95)),
        ("prune.end", Value::Float(0.6)),
    ]);
    assert!(
        last >= 2.0,
        "95% pruned: mean evaluation return of the last two iterations {last} is not well above random (0.53): {evals:?}"
    );
}
