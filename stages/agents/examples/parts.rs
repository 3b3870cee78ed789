//! Times the pieces of a MinAtar DQN step (act, learn) separately, for profiling.
use std::time::Instant;

use prunus_agents::agent::{Agent, AgentConfig};
use prunus_agents::networks::{Architecture, NetworkConfig};
use prunus_agents::objectives::Objective;
use prunus_agents::objectives::TdLoss;
use prunus_agents::replay::Batch;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

fn main() {
    let device = prunus_agents::device("cpu").unwrap();
    let config = AgentConfig {
        network: NetworkConfig {
            architecture: Architecture::MinAtarCnn { hidden: vec![] },
            width: 1.0,
            input: vec![4, 10, 10],
            outputs: 6,
            input_scale: 1.0,
            normalize_features: false,
        },
        num_actions: 6,
        objective: Objective::Dqn(TdLoss::Mse),
        learning_rate: 2.5e-4,
        adam_epsilon: 3.125e-4,
        weight_decay: 0.0,
    };
    let mut rng = Pcg64::seed_from_u64(0);
    let mut agent = Agent::new(config, &mut rng, &device);
    let state: Vec<f32> = (0..400)
        .map(|_| (rng.random::<u8>() % 7 == 0) as u8 as f32)
        .collect();
    let n = 20_000;
    let t = Instant::now();
    let mut s = 0;
    for _ in 0..n {
        s += agent.act(&state, 0.0, &mut rng);
    }
    let act = t.elapsed().as_secs_f64() / n as f64;
    let b = 32;
    let batch = Batch {
        states: (0..b * 400)
            .map(|_| (rng.random::<u8>() % 7 == 0) as u8 as f32)
            .collect(),
        actions: (0..b).map(|i| i % 6).collect(),
        returns: vec![0.5; b],
        next_states: (0..b * 400)
            .map(|_| (rng.random::<u8>() % 7 == 0) as u8 as f32)
            .collect(),
        discounts: vec![0.99; b],
        indices: (0..b).collect(),
        priorities: vec![1.0; b],
        action_values: Vec::new(),
    };
    let m = 3_000;
    let t = Instant::now();
    for _ in 0..m {
        agent.learn(&batch, false);
    }
    let learn = t.elapsed().as_secs_f64() / m as f64;
    println!(
        "act {:.1} us, learn {:.1} us, step at ratio 0.25: {:.1} us -> {:.0} steps/s ({s})",
        act * 1e6,
        learn * 1e6,
        (act + learn / 4.0) * 1e6,
        1.0 / (act + learn / 4.0)
    );
}
