//! Defaults by environment family: the paper's Atari settings and Dopamine's MinAtar and
//! classic-control settings differ, so a training kind's numeric parameter left at `0` takes
//! its family's value from here.
//!
//! Sources (google/dopamine@1093179 unless noted): Atari is Dopamine's JAX DQN and compact
//! Rainbow (`dopamine/jax/agents/dqn/configs/dqn.gin`, `dopamine/jax/agents/rainbow/configs/
//! rainbow.gin`) with the 40 iterations of JaxPruner's Dopamine baseline
//! (`jaxpruner/baselines/dopamine/configs/dqn.gin` at google-research/jaxpruner@f133ee5) and the
//! Impala ResNet backbone of the paper's Atari results; MinAtar is Dopamine's MinAtar gins
//! (`dopamine/labs/environments/minatar/{dqn,rainbow}_<game>.gin`); classic control is
//! `dopamine/jax/agents/dqn/configs/dqn_cartpole.gin`.

/// Environment families with their own defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Atari,
    MinAtar,
    Classic,
}

impl Family {
    /// The family of the environment named `env` (`atari/...`, `minatar/...`, else classic).
    pub fn of(env: &str) -> Self {
        if env.starts_with("atari/") {
            Family::Atari
        } else if env.starts_with("minatar/") {
            Family::MinAtar
        } else {
            Family::Classic
        }
    }
}

/// Family defaults, used where a numeric parameter is left at 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    pub steps: u64,
    pub iterations: u64,
    pub learning_rate: f64,
    pub adam_epsilon: f64,
    pub replay_capacity: u64,
    pub min_replay: u64,
    pub target_period: u64,
    pub epsilon_decay: u64,
    pub vmax: f64,
    pub network: &'static str,
}

impl Preset {
    /// The defaults of `family`.
    pub fn of(family: Family) -> Self {
        match family {
            // Dopamine JAX DQN/Rainbow gins, JaxPruner's 40 iterations.
            Family::Atari => Preset {
                steps: 10_000_000,
                iterations: 40,
                learning_rate: 6.25e-5,
                adam_epsilon: 1.5e-4,
                replay_capacity: 1_000_000,
                min_replay: 20_000,
                target_period: 8_000,
                epsilon_decay: 250_000,
                vmax: 10.0,
                network: "impala",
            },
            // Dopamine's MinAtar gins.
            Family::MinAtar => Preset {
                steps: 10_000_000,
                iterations: 10,
                learning_rate: 2.5e-4,
                adam_epsilon: 3.125e-4,
                replay_capacity: 100_000,
                min_replay: 1_000,
                target_period: 1_000,
                epsilon_decay: 250_000,
                vmax: 100.0,
                network: "minatar",
            },
            // Dopamine's classic-control gins (`dqn_cartpole.gin`): Adam 1e-3, small replay.
            Family::Classic => Preset {
                steps: 100_000,
                iterations: 20,
                learning_rate: 1e-3,
                adam_epsilon: 3.125e-4,
                replay_capacity: 50_000,
                min_replay: 500,
                target_period: 100,
                epsilon_decay: 5_000,
                vmax: 100.0,
                network: "mlp",
            },
        }
    }
}
