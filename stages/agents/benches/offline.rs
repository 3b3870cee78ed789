//! Offline datasets and training, on one CPU core:
//! - dataset write and read throughput (transitions/s), stored bytes per transition, the
//!   compression ratio against the uncompressed records, and the raw size of the same data as
//!   the f32 stacked states a naive replay dump would hold; for MinAtar-shaped shards (real
//!   MinAtar Breakout frames under a uniform-random policy: sparse bits) and Atari-shaped ones
//!   (random 84x84 bytes: incompressible, the worst case; real frames compress far better);
//! - gradient steps/s of `train/cql`'s objective on MinAtar (the MinAtar CNN, batch 32,
//!   sampling from the loaded dataset) beside the online DQN learner's updates/s on the same
//!   network and batch, measured in the same run.
//!
//! `cargo bench -p prunus-agents --bench offline` (`PRUNUS_BENCH_QUICK=1`: a tenth the work).

use std::time::Instant;

use prunus_agents::agent::{Agent, AgentConfig};
use prunus_agents::dataset::{self, Collector, FrameFormat, Manifest, Selection};
use prunus_agents::networks::{Architecture, NetworkConfig};
use prunus_agents::objectives::{Objective, TdLoss};
use prunus_agents::replay::Replay;
use prunus_env::{Action, EnvOptions, ObsKind, Observation};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Writes `n` transitions from `next` into shards of `shard` in `dir`; (manifest, seconds).
fn write(
    dir: &std::path::Path,
    format: FrameFormat,
    shape: Vec<usize>,
    stack: usize,
    n: u64,
    shard: u64,
    mut next: impl FnMut() -> (Vec<u8>, u8, f32, bool, bool),
) -> (Manifest, f64) {
    let start = Instant::now();
    let mut c = Collector::new(dir, format, shard);
    for _ in 0..n {
        let (frame, action, reward, terminal, end) = next();
        let obs = match format.kind {
            prunus_agents::replay::ObsKindSer::Binary => Observation::Binary(&frame),
            _ => Observation::Byte(&frame),
        };
        c.push_step(obs, action, reward, terminal).unwrap();
        if end {
            c.end_episode(obs).unwrap();
        }
        c.close_if_full().unwrap();
    }
    let state = c.finish().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let m = Manifest {
        format: dataset::FORMAT,
        env: "bench".into(),
        env_options: Default::default(),
        shape,
        frame_stack: stack,
        frame: format,
        num_actions: 6,
        source: dataset::Source {
            recipe: "bench".into(),
            agent: serde_json::Value::Null,
            epsilon: None,
            seed: 0,
        },
        transitions: state.transitions,
        shard_size: shard,
        shards: state.shards,
    };
    (m, secs)
}

fn report(name: &str, dir: &std::path::Path, m: &Manifest, write_secs: f64, state_len: usize) {
    let paths: Vec<_> = m.shards.iter().map(|s| dir.join(&s.file)).collect();
    let start = Instant::now();
    let mut records = 0u64;
    dataset::read_records(m, &paths, Selection::all(), |_| {
        records += 1;
        Ok(())
    })
    .unwrap();
    let read_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (replay, loaded) =
        dataset::load_replay(m, &paths, Selection::all(), 1, 0.99, true).unwrap();
    let load_secs = start.elapsed().as_secs_f64();
    let n = m.transitions as f64;
    let stored = m.bytes() as f64 / n;
    let raw = m.raw_bytes() as f64 / n;
    // A naive dump: state and next state as f32 stacks, action, reward, terminal.
    let naive = (2 * state_len * 4 + 4 + 4 + 1) as f64;
    println!(
        "{name}: {} transitions in {} shards",
        m.transitions,
        m.shards.len()
    );
    println!(
        "  write {:>10.0} transitions/s   read {:>10.0} transitions/s   load into replay {:>10.0} transitions/s",
        n / write_secs,
        n / read_secs,
        loaded.transitions as f64 / load_secs
    );
    println!(
        "  stored {stored:>9.1} B/transition   uncompressed records {raw:>9.1} B   ratio {:>6.2}x   naive f32 (s, s') dump {naive:>9.0} B ({:.0}x the stored size)",
        raw / stored,
        naive / stored
    );
    println!(
        "  total: {:.2} MB stored, {:.2} MB uncompressed; {records} records read; replay holds {} frames",
        m.bytes() as f64 / 1e6,
        m.raw_bytes() as f64 / 1e6,
        replay.len()
    );
}

fn minatar_agent(objective: Objective) -> AgentConfig {
    AgentConfig {
        network: NetworkConfig {
            architecture: Architecture::parse("minatar", &[256, 256]).unwrap(),
            width: 1.0,
            input: vec![4, 10, 10],
            outputs: 6,
            input_scale: 1.0,
            normalize_features: false,
        },
        num_actions: 6,
        objective,
        learning_rate: 5e-5,
        adam_epsilon: 3.125e-4,
        weight_decay: 0.0,
    }
}

/// A MinAtar agent for `objective`, warmed up by 20 steps on batches of 32 from `replay`.
fn learner(objective: Objective, replay: &Replay, rng: &mut Pcg64) -> Agent {
    let device = prunus_agents::device("cpu").unwrap();
    let mut agent = Agent::new(minatar_agent(objective), rng, &device);
    for _ in 0..20 {
        agent.learn(&replay.sample(32, rng).unwrap(), false);
    }
    agent
}

/// Seconds for `steps` gradient steps of `agent` on batches of 32 sampled from `replay`.
fn time_steps(agent: &mut Agent, replay: &Replay, rng: &mut Pcg64, steps: u64) -> f64 {
    let start = Instant::now();
    for k in 0..steps {
        let batch = replay.sample(32, rng).unwrap();
        agent.learn(&batch, false);
        if k % 2_000 == 0 {
            agent.sync_target();
        }
    }
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var("PRUNUS_BENCH_QUICK").is_ok();
    let scale = |n: u64| if quick { n / 10 } else { n };
    let tmp = tempfile::tempdir().unwrap();

    // MinAtar Breakout frames under a uniform-random policy.
    let mut env = prunus_env::make("minatar/breakout", &EnvOptions::default()).unwrap();
    let spec = env.spec().clone();
    let frame_len: usize = spec.shape.iter().product();
    let mut rng = Pcg64::seed_from_u64(1);
    env.reset(Some(0));
    let mut next = || {
        let frame = match env.observation() {
            Observation::Binary(v) => v.to_vec(),
            _ => unreachable!("MinAtar frames are binary"),
        };
        let a = rng.random_range(0..6usize);
        let step = env.step(Action::Discrete(a)).unwrap();
        let end = step.terminal || step.truncated;
        if end {
            env.reset(Some(rng.random()));
        }
        (frame, a as u8, step.reward, step.terminal, end)
    };
    let dir = tmp.path().join("minatar");
    std::fs::create_dir_all(&dir).unwrap();
    let n = scale(500_000);
    let format = FrameFormat::new(ObsKind::Binary, frame_len);
    let (m, secs) = write(&dir, format, spec.shape.clone(), 1, n, n / 5, &mut next);
    report("MinAtar Breakout (10x10x4 bits)", &dir, &m, secs, frame_len);

    // Atari-shaped: random 84x84 grayscale frames, stacks of 4.
    let dir = tmp.path().join("atari");
    std::fs::create_dir_all(&dir).unwrap();
    let mut frames = Pcg64::seed_from_u64(2);
    let mut t = 0u64;
    let n_atari = scale(20_000);
    let format = FrameFormat::new(ObsKind::Byte, 84 * 84);
    let (ma, secs) = write(
        &dir,
        format,
        vec![1, 84, 84],
        4,
        n_atari,
        n_atari / 2,
        || {
            t += 1;
            let frame: Vec<u8> = (0..84 * 84).map(|_| frames.random()).collect();
            let end = t.is_multiple_of(1_000);
            (frame, (t % 18) as u8, 0.0, end, end)
        },
    );
    report(
        "Atari-shaped (84x84 random bytes, stack 4)",
        &dir,
        &ma,
        secs,
        4 * 84 * 84,
    );

    // Gradient steps on the MinAtar dataset: CQL vs the online DQN learner's update.
    let paths: Vec<_> = m
        .shards
        .iter()
        .map(|s| tmp.path().join("minatar").join(&s.file))
        .collect();
    let (replay, _) = dataset::load_replay(&m, &paths, Selection::all(), 1, 0.99, true).unwrap();
    // Interleaved rounds, so that this machine's drift hits both learners alike.
    let (rounds, steps) = (10, scale(1_000));
    let mut rng = Pcg64::seed_from_u64(0);
    let mut dqn = learner(Objective::Dqn(TdLoss::Mse), &replay, &mut rng);
    let cql_objective = Objective::Cql {
        td: TdLoss::Huber,
        alpha: 0.1,
    };
    let mut cql = learner(cql_objective, &replay, &mut rng);
    let (mut dqn_rates, mut cql_rates, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let d = steps as f64 / time_steps(&mut dqn, &replay, &mut rng, steps);
        let c = steps as f64 / time_steps(&mut cql, &replay, &mut rng, steps);
        dqn_rates.push(d);
        cql_rates.push(c);
        ratios.push(c / d);
    }
    println!(
        "gradient steps/s, MinAtar CNN x1, batch 32, one core (median of {rounds} interleaved rounds of {steps} steps):"
    );
    println!(
        "  online DQN learner (MSE)       {:>10.1} updates/s",
        median(dqn_rates)
    );
    println!(
        "  train/cql (Huber + alpha CQL)  {:>10.1} gradient steps/s   ({:.2}x DQN, median of the rounds' ratios)",
        median(cql_rates),
        median(ratios)
    );
}
