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
