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

/// MinAtar Breakout with sticky actions: the action an episode's first sticky step repeats is
/// the previous episode's last, so a restored trainer must carry it (it once did not, and
/// 200k-step runs resumed onto another trajectory). Stopped at eight points, mid-episode.
#[test]
fn a_minatar_run_resumes_bit_identically_wherever_it_stops() {
    let steps = 3_000;
    let parts = || {
        let (mut agent, mut replay, mut config) = common::cartpole_parts(3, 1, steps);
        agent.network.architecture =
            prunus_agents::networks::Architecture::MinAtarCnn { hidden: Vec::new() };
        agent.network.input = vec![4, 10, 10];
        agent.network.outputs = 6;
        agent.num_actions = 6;
        replay.frame_len = 400;
        replay.kind = prunus_env::ObsKind::Binary.into();
        replay.capacity = 10_000;
        config.eval_episodes = 0;
        config.min_replay_history = 500;
        config.batch_size = 32;
        config.epsilon_decay_period = 1_000;
        (agent, replay, config)
    };
    let env = || prunus_env::make("minatar/breakout", &prunus_env::EnvOptions::default()).unwrap();
    let trainer = || {
        let (agent, replay, config) = parts();
        let agent = Agent::new(
            agent,
            &mut <rand_pcg::Pcg64 as rand::SeedableRng>::seed_from_u64(3),
            &common::cpu(),
        );
        Trainer::new(
            config,
            agent,
            prunus_agents::replay::Replay::new(replay),
            env(),
        )
    };
    let mut uninterrupted = trainer();
    uninterrupted.train_steps(steps).unwrap();
    let want = uninterrupted.agent.network().kernel_values();
    for stop in [611, 977, 1_303, 1_499, 1_811, 2_203, 2_417, 2_789] {
        let mut first = trainer();
        first.train_steps(stop).unwrap();
        let (agent_config, _, loop_config) = parts();
        let agent = Agent::load(agent_config, &first.agent.save().unwrap(), &common::cpu());
        let mut resumed = Trainer::restore(
            loop_config,
            agent.unwrap(),
            first.replay.clone(),
            env(),
            first.state.clone(),
        )
        .unwrap();
        resumed.train_steps(steps - stop).unwrap();
        assert_eq!(resumed.state.grad_steps, uninterrupted.state.grad_steps);
        assert!(
            resumed.agent.network().kernel_values() == want,
            "stopped at step {stop}: the resumed run left the uninterrupted one"
        );
    }
}
