//! Checking a compute device before trusting it with days of training: does each network
//! compute on it what it computes on the CPU, and how fast does an agent learn on it?
//! `prunus device` and `benches/steps.rs` print these figures; `scripts/gpu-check` runs
//! them on a GPU machine.
//!
//! Throughput replaces the environment by a frame generator with the real observation spec
//! (MinAtar: 4×10×10 bits, 6 actions; Atari: 84×84 bytes stacked 4, 18 actions), so it
//! measures the agent (acting, replay, gradient steps) and not the emulator.

use std::time::Instant;

pub use burn::tensor::Device;
use prunus_env::{Action, ActionSpace, Env, EnvError, ObsKind, Observation, Spec, Step};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::agent::{Agent, AgentConfig};
use crate::networks::{Architecture, NetworkConfig};
use crate::objectives::{Categorical, Objective, TdLoss};
use crate::prune::{GmpHook, PruneSettings};
use crate::replay::{Batch, Replay, ReplayConfig};
use crate::train::{LoopConfig, Trainer};

/// One agent to check: an observation spec, a network and its objective.
#[derive(Clone)]
pub struct Case {
    pub name: &'static str,
    pub spec: Spec,
    pub architecture: Architecture,
    pub width: f64,
    /// C51 with prioritized 3-step replay (Rainbow); else DQN.
    pub rainbow: bool,
    /// Above 0: GMP (ERK) to this sparsity by the first mask update, then masks applied after
    /// every gradient step, as a pruned run pays for them.
    pub sparsity: f64,
}

/// MinAtar's observations: 4×10×10 bits (Breakout's channels), 6 actions.
pub fn minatar() -> Spec {
    Spec {
        shape: vec![4, 10, 10],
        kind: ObsKind::Binary,
        action_space: ActionSpace::Discrete(6),
        frame_stack: 1,
    }
}

fn atari() -> Spec {
    Spec {
        shape: vec![1, 84, 84],
        kind: ObsKind::Byte,
        action_space: ActionSpace::Discrete(18),
        frame_stack: 4,
    }
}

/// The paper's value networks (Nature CNN, Impala ResNet at widths 1 and 3, §4) and MinAtar's.
pub fn cases() -> Vec<Case> {
    let case = |name, spec, architecture, width, rainbow| Case {
        name,
        spec,
        architecture,
        width,
        rainbow,
        sparsity: 0.0,
    };
    let minatar_cnn = || Architecture::MinAtarCnn { hidden: vec![] };
    vec![
        case(
            "minatar/dqn/minatar-cnn",
            minatar(),
            minatar_cnn(),
            1.0,
            false,
        ),
        case(
            "minatar/rainbow/minatar-cnn",
            minatar(),
            minatar_cnn(),
            1.0,
            true,
        ),
        case(
            "atari/dqn/nature-cnn",
            atari(),
            Architecture::NatureCnn,
            1.0,
            false,
        ),
        case(
            "atari/dqn/impala-x1",
            atari(),
            Architecture::ImpalaResNet,
            1.0,
            false,
        ),
        case(
            "atari/dqn/impala-x3",
            atari(),
            Architecture::ImpalaResNet,
            3.0,
            false,
        ),
    ]
}

impl Case {
    fn state_len(&self) -> usize {
        self.spec.shape.iter().product::<usize>() * self.spec.frame_stack
    }

    fn actions(&self) -> usize {
        self.spec.action_space.discrete().expect("discrete actions")
    }

    /// Dopamine's Atari DQN/Rainbow optimizer settings (dqn_nature.gin, c51.gin).
    fn agent(&self) -> AgentConfig {
        let s = &self.spec.shape;
        let input = if s.len() == 3 {
            vec![s[0] * self.spec.frame_stack, s[1], s[2]]
        } else {
            vec![self.state_len()]
        };
        AgentConfig {
            network: NetworkConfig {
                architecture: self.architecture.clone(),
                width: self.width,
                input,
                outputs: self.actions(),
                input_scale: if self.spec.kind == ObsKind::Byte {
                    1.0 / 255.0
                } else {
                    1.0
                },
                normalize_features: false,
            },
            num_actions: self.actions(),
            objective: if self.rainbow {
                Objective::C51(Categorical {
                    atoms: 51,
                    vmin: -10.0,
                    vmax: 10.0,
                })
            } else {
                Objective::Dqn(TdLoss::Mse)
            },
            learning_rate: 6.25e-5,
            adam_epsilon: 1.5e-4,
            weight_decay: 0.0,
        }
    }

    /// A batch of 32 random transitions (states scaled as the replay gives them).
    fn batch(&self, rng: &mut impl Rng) -> Batch {
        let (b, n) = (32, self.state_len());
        let state = |rng: &mut Pcg64| -> Vec<f32> {
            (0..b * n)
                .map(|_| match self.spec.kind {
                    ObsKind::Binary => rng.random_bool(0.1) as u8 as f32,
                    _ => rng.random_range(0..=255u8) as f32,
                })
                .collect()
        };
        let mut r = Pcg64::seed_from_u64(rng.random());
        Batch {
            states: state(&mut r),
            actions: (0..b).map(|_| r.random_range(0..self.actions())).collect(),
            action_values: Vec::new(),
            returns: (0..b).map(|_| r.random_range(-1..=1) as f32).collect(),
            next_states: state(&mut r),
            discounts: (0..b)
                .map(|_| if r.random_bool(0.05) { 0.0 } else { 0.99 })
                .collect(),
            indices: (0..b).collect(),
            priorities: vec![1.0; b],
        }
    }
}

/// How far `device` is from the reference device on one network: the largest difference,
/// relative to the largest magnitude, of the Q-values (forward), of the loss of one gradient
/// step (forward and backward), and of the Q-values after that step (the Adam update).
#[derive(Debug, Clone, Copy)]
pub struct Agreement {
    pub forward: f64,
    pub loss: f64,
    pub after_update: f64,
}

impl Agreement {
    /// The tolerance this check states: float sums in another order (GPU kernels, other
    /// matmul tilings) move f32 results by ~1e-6 relative per layer; 1e-3 leaves room for deep
    /// networks while a wrong kernel (a transposed or missing term) is off by far more.
    pub const TOLERANCE: f64 = 1e-3;

    pub fn holds(&self) -> bool {
        [self.forward, self.loss, self.after_update]
            .iter()
            .all(|&d| d <= Self::TOLERANCE)
    }
}

fn relative(a: &[f32], b: &[f32]) -> f64 {
    let scale = a.iter().fold(1e-12f64, |m, &x| m.max(x.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()));
    diff / scale
}

/// Runs one forward and one gradient step of `case` on `device` and on `reference` from the
/// same weights and batch, and compares.
pub fn compare(case: &Case, device: &Device, reference: &Device) -> Agreement {
    let batch = case.batch(&mut Pcg64::seed_from_u64(1));
    let mut agents =
        [device, reference].map(|d| Agent::new(case.agent(), &mut Pcg64::seed_from_u64(0), d));
    let q0 = agents.each_ref().map(|a| a.q_values(&batch.states, 32));
    let loss = agents
        .each_mut()
        .map(|a| a.learn(&batch, case.rainbow).loss);
    let q1 = agents.each_ref().map(|a| a.q_values(&batch.states, 32));
    Agreement {
        forward: relative(&q0[1], &q0[0]),
        loss: relative(&[loss[1]], &[loss[0]]),
        after_update: relative(&q1[1], &q1[0]),
    }
}

/// Learner gradient steps per second on `device` (batch 32, target network included).
pub fn updates_per_sec(case: &Case, device: &Device, updates: u32) -> f64 {
    let mut rng = Pcg64::seed_from_u64(0);
    let batches: Vec<Batch> = (0..4).map(|_| case.batch(&mut rng)).collect();
    let mut agent = Agent::new(case.agent(), &mut rng, device);
    for b in &batches {
        agent.learn(b, case.rainbow); // warm up: kernels compiled, memory pooled
    }
    let start = Instant::now();
    for k in 0..updates {
        // `learn` returns the loss as a host value, so each step has finished when it returns.
        agent.learn(&batches[k as usize % batches.len()], case.rainbow);
    }
    updates as f64 / start.elapsed().as_secs_f64()
}

/// Agent steps per second on `device`, learning included: replay ratio 0.25 and batch 32
/// (Dopamine's update_period 4), after a 1,000-step warm-up that fills the replay.
pub fn steps_per_sec(case: &Case, device: &Device, steps: u64) -> f64 {
    let frame_len: usize = case.spec.shape.iter().product();
    let replay = ReplayConfig {
        capacity: 100_000,
        frame_len,
        kind: case.spec.kind.into(),
        stack: case.spec.frame_stack,
        n_step: if case.rainbow { 3 } else { 1 },
        gamma: 0.99,
        prioritized: case.rainbow,
    };
    let warmup = 1_000;
    let config = LoopConfig {
        iterations: 1,
        training_steps: warmup + 200 + steps,
        eval_episodes: 0,
        replay_ratio: 0.25,
        min_replay_history: warmup,
        target_update_period: 1_000,
        epsilon_train: 0.01,
        epsilon_eval: 0.001,
        epsilon_decay_period: 1,
        batch_size: 32,
        clip_rewards: true,
        seed: 0,
        life_loss_terminal: false,
    };
    let agent = Agent::new(case.agent(), &mut Pcg64::seed_from_u64(0), device);
    let env = Box::new(Frames::new(case.spec.clone()));
    let mut trainer = Trainer::new(config, agent, Replay::new(replay), env);
    if case.sparsity > 0.0 {
        let settings = PruneSettings {
            sparsity: case.sparsity,
            start: 0.0,
            end: 0.0,
            frequency: 1_000,
            distribution: "erk".into(),
        };
        let kernels = trainer.agent.network().kernels();
        let hook = GmpHook::new(&settings, config_grad_steps(&trainer.config), &kernels)
            .expect("valid GMP settings");
        trainer.hooks.push(Box::new(hook));
    }
    trainer
        .train_steps(warmup + 200)
        .expect("frames never fail"); // fill replay, warm up
    let start = Instant::now();
    trainer.train_steps(steps).expect("frames never fail");
    steps as f64 / start.elapsed().as_secs_f64()
}

/// The gradient steps a loop of this config takes.
fn config_grad_steps(config: &LoopConfig) -> u64 {
    ((config.training_steps - config.min_replay_history) as f64 * config.replay_ratio) as u64 + 1
}

/// Pseudo-random frames with a given spec; episodes of 1,000 steps.
#[derive(Clone)]
struct Frames {
    spec: Spec,
    frame: Vec<u8>,
    state: u64,
    t: u64,
}

impl Frames {
    fn new(spec: Spec) -> Self {
        let n = spec.shape.iter().product();
        Frames {
            spec,
            frame: vec![0; n],
            state: 1,
            t: 0,
        }
    }

    fn fill(&mut self) {
        let binary = self.spec.kind == ObsKind::Binary;
        for b in &mut self.frame {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = if binary {
                self.state.is_multiple_of(7) as u8
            } else {
                self.state as u8
            };
        }
    }
}

impl Env for Frames {
    fn spec(&self) -> &Spec {
        &self.spec
    }
    fn reset(&mut self, seed: Option<u64>) {
        if let Some(s) = seed {
            self.state = s | 1;
        }
        self.t = 0;
        self.fill();
    }
    fn step(&mut self, _action: Action<'_>) -> Result<Step, EnvError> {
        self.t += 1;
        self.fill();
        Ok(Step {
            reward: self.state.is_multiple_of(5) as u8 as f32,
            terminal: self.t >= 1_000,
            truncated: false,
        })
    }
    fn observation(&self) -> Observation<'_> {
        if self.spec.kind == ObsKind::Binary {
            Observation::Binary(&self.frame)
        } else {
            Observation::Byte(&self.frame)
        }
    }
    fn boxed_clone(&self) -> Box<dyn Env> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check finds two CPU backends in agreement, and finds a changed network out.
    #[test]
    fn cpu_backends_agree_and_a_different_network_does_not() {
        let case = &cases()[0];
        let (flex, ndarray) = (
            crate::device("cpu").unwrap(),
            crate::device("ndarray").unwrap(),
        );
        let a = compare(case, &flex, &ndarray);
        assert!(a.holds(), "{a:?}");
        let mut wider = case.clone();
        wider.width = 2.0;
        let q = |c: &Case| {
            Agent::new(c.agent(), &mut Pcg64::seed_from_u64(0), &flex)
                .q_values(&case.batch(&mut Pcg64::seed_from_u64(1)).states, 32)
        };
        assert!(relative(&q(case), &q(&wider)) > Agreement::TOLERANCE);
    }

    #[test]
    fn throughput_is_measured() {
        let case = &cases()[0];
        let cpu = crate::device("cpu").unwrap();
        assert!(updates_per_sec(case, &cpu, 5) > 0.0);
        assert!(steps_per_sec(case, &cpu, 40) > 0.0);
    }
}
