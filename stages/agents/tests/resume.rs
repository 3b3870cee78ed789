//! A run that is stopped, saved and restored continues bit for bit like one never interrupted.

mod common;

use prunus_agents::agent::Agent;
use prunus_agents::checkpoint::{Progress, Resume};
use prunus_agents::train::Trainer;

#[test]
fn restored_trainer_continues_bit_identically() {
    let (steps_before, steps_after) = (1_737, 1_263); // stops mid-episode, after learning began
    let mut uninterrupted = common::cartpole_trainer(7, 1, 3_000);
    uninterrupted.train_steps(3_000).unwrap();

    let mut first = common::cartpole_trainer(7, 1, 3_000);
    first.train_steps(steps_before).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume.ckpt");
    Resume {
        fingerprint: "test".into(),
        agent: first.agent.save().unwrap(),
        replay: first.replay.clone(),
        state: first.state.clone(),
        hooks: Vec::new(),
        progress: Progress::default(),
    }
    .write(&path)
    .unwrap();
    drop(first);

    let saved = Resume::read(&path)
        .unwrap()
        .expect("the checkpoint was written");
    let (agent_config, _, loop_config) = common::cartpole_parts(7, 1, 3_000);
    let agent = Agent::load(agent_config, &saved.agent, &common::cpu()).unwrap();
    let mut resumed = Trainer::restore(
        loop_config,
        agent,
        saved.replay,
        common::cartpole(),
        saved.state,
    )
    .unwrap();
    resumed.train_steps(steps_after).unwrap();

    assert_eq!(resumed.state.env_steps, uninterrupted.state.env_steps);
    assert_eq!(resumed.state.grad_steps, uninterrupted.state.grad_steps);
    assert!(
        uninterrupted.state.grad_steps > 400,
        "learning must have run on both sides of the stop"
    );
    let (a, b) = (
        resumed.agent.network().kernel_values(),
        uninterrupted.agent.network().kernel_values(),
    );
    assert!(
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "weights differ"
    );
    assert_eq!(resumed.finish_iteration(), uninterrupted.finish_iteration());
}
