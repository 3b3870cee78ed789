//! Shared test setup: CartPole and a DQN configuration that solves it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use prunus_agents::agent::{Agent, AgentConfig};
use prunus_agents::networks::{Architecture, NetworkConfig};
use prunus_agents::objectives::Objective;
use prunus_agents::objectives::TdLoss;
use prunus_agents::replay::{Replay, ReplayConfig};
use prunus_agents::train::{LoopConfig, Trainer};
use prunus_env::Env;
use prunus_stage::{Params, Reporter, StageKind, Value};
use rand::SeedableRng;
use rand_pcg::Pcg64;

pub fn cpu() -> Device {
    prunus_agents::device("cpu").unwrap()
}

pub fn cartpole() -> Box<dyn Env> {
    prunus_env::make("cartpole", &prunus_env::EnvOptions::default()).unwrap()
}

/// Dopamine's CartPole DQN (`dqn_cartpole.gin`): 2×512 MLP, MSE, Adam 1e-3 (eps 3.125e-4),
/// one update every 4 steps (replay ratio 0.25), target sync every 100 steps, batch 128.
pub fn cartpole_parts(
    seed: u64,
    iterations: u64,
    training_steps: u64,
) -> (AgentConfig, ReplayConfig, LoopConfig) {
    let agent = AgentConfig {
        network: NetworkConfig {
            architecture: Architecture::Mlp {
                hidden: vec![512, 512],
            },
            width: 1.0,
            input: vec![4],
            outputs: 2,
            input_scale: 1.0,
            normalize_features: false,
        },
        num_actions: 2,
        objective: Objective::Dqn(TdLoss::Mse),
        learning_rate: 1e-3,
        adam_epsilon: 3.125e-4,
        weight_decay: 0.0,
    };
    let replay = ReplayConfig {
        capacity: 50_000,
        frame_len: 4,
        kind: prunus_env::ObsKind::Float.into(),
        stack: 1,
        n_step: 1,
        gamma: 0.99,
        prioritized: false,
    };
    let config = LoopConfig {
        iterations,
        training_steps,
        eval_episodes: 10,
        replay_ratio: 0.25,
        min_replay_history: 1_000,
        target_update_period: 100,
        epsilon_train: 0.01,
        epsilon_eval: 0.0,
        epsilon_decay_period: 10_000,
        batch_size: 128,
        clip_rewards: false,
        seed,
        life_loss_terminal: false,
    };
    (agent, replay, config)
}

pub fn cartpole_trainer(seed: u64, iterations: u64, training_steps: u64) -> Trainer {
    let (agent, replay, config) = cartpole_parts(seed, iterations, training_steps);
    let agent = Agent::new(agent, &mut Pcg64::seed_from_u64(seed), &cpu());
    Trainer::new(config, agent, Replay::new(replay), cartpole())
}

/// A kind's parameter defaults with `overrides` applied (each must be a declared key), as the
/// engine resolves them.
pub fn kind_params(kind: &dyn StageKind, overrides: &[(&str, Value)]) -> Params {
    let specs = kind.params();
    let mut map: BTreeMap<String, Value> = specs
        .iter()
        .filter_map(|p| p.default.clone().map(|d| (p.key.to_string(), d)))
        .collect();
    for (k, v) in overrides {
        assert!(specs.iter().any(|s| s.key == *k), "unknown key {k}");
        map.insert(k.to_string(), v.clone());
    }
    Params(map)
}

/// Sets the cancel flag once the run passes `at` steps (what Ctrl-C does mid-run).
pub struct CancelAt {
    pub at: u64,
    pub flag: Arc<AtomicBool>,
}

impl Reporter for CancelAt {
    fn progress(&self, done: u64, _: u64, _: &str) {
        if done >= self.at {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
    fn log(&self, _: &str) {}
}
