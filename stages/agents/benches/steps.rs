//! Agent steps per second, learning included (replay ratio 0.25, batch 32), on one CPU core
//! (burn's NdArray backend is single-threaded here) or on a GPU with `--features cuda` and
//! `PRUNUS_BENCH_DEVICE=cuda`.
//!
//! `cargo bench -p prunus-agents --bench steps [-- FILTER]`
//!
//! Measured on the shared 2-core CI machine (Flex backend, one core, other builds running),
//! `PRUNUS_BENCH_QUICK=1`: MinAtar DQN 1,050-1,410 steps/s, MinAtar Rainbow 325-400,
//! Atari DQN Nature CNN 12.9, Impala ResNet x1 2.9 (Atari needs the `cuda` build).
//!
//! The environment is replaced by a frame generator with the real observation spec (MinAtar:
//! 4×10×10 bits, 6 actions; Atari: 84×84 bytes stacked 4, 18 actions), so the figures measure
//! the agent (acting, replay, gradient steps) and not the emulator.

use std::time::Instant;

use prunus_agents::agent::{Agent, AgentConfig};
use prunus_agents::networks::{Architecture, NetworkConfig};
use prunus_agents::objectives::Categorical;
use prunus_agents::objectives::Objective;
use prunus_agents::objectives::TdLoss;
use prunus_agents::replay::{Replay, ReplayConfig};
use prunus_agents::train::{LoopConfig, Trainer};
use prunus_env::{Action, ActionSpace, Env, EnvError, ObsKind, Observation, Spec, Step};
use rand::SeedableRng;
use rand_pcg::Pcg64;

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

struct Case {
    name: &'static str,
    spec: Spec,
    architecture: Architecture,
    width: f64,
    rainbow: bool,
    steps: u64,
}

fn run(case: &Case, device: &burn::tensor::Device) -> f64 {
    let frame_len: usize = case.spec.shape.iter().product();
    let input = if case.spec.shape.len() == 3 {
        vec![
            case.spec.shape[0] * case.spec.frame_stack,
            case.spec.shape[1],
            case.spec.shape[2],
        ]
    } else {
        vec![frame_len]
    };
    let objective = if case.rainbow {
        Objective::C51(Categorical {
            atoms: 51,
            vmin: -10.0,
            vmax: 10.0,
        })
    } else {
        Objective::Dqn(TdLoss::Mse)
    };
    let num_actions = case.spec.action_space.discrete().expect("discrete actions");
    let agent = AgentConfig {
        network: NetworkConfig {
            architecture: case.architecture.clone(),
            width: case.width,
            input,
            outputs: num_actions,
            input_scale: if case.spec.kind == ObsKind::Byte {
                1.0 / 255.0
            } else {
                1.0
            },
            normalize_features: false,
        },
        num_actions,
        objective,
        learning_rate: 6.25e-5,
        adam_epsilon: 1.5e-4,
        weight_decay: 0.0,
    };
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
        training_steps: warmup + 200 + case.steps,
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
    };
    let agent = Agent::new(agent, &mut Pcg64::seed_from_u64(0), device);
    let mut trainer = Trainer::new(
        config,
        agent,
        Replay::new(replay),
        Box::new(Frames::new(case.spec.clone())),
    );
    trainer.train_steps(warmup + 200).unwrap(); // fill replay, warm the learner up
    let start = Instant::now();
    trainer.train_steps(case.steps).unwrap();
    case.steps as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let device_name = std::env::var("PRUNUS_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = prunus_agents::device(&device_name).expect("device");
    let quick = std::env::var("PRUNUS_BENCH_QUICK").is_ok();
    let scale = |n: u64| if quick { (n / 10).max(20) } else { n };
    let minatar = Spec {
        shape: vec![4, 10, 10],
        kind: ObsKind::Binary,
        action_space: ActionSpace::Discrete(6),
        frame_stack: 1,
    };
    let atari = Spec {
        shape: vec![1, 84, 84],
        kind: ObsKind::Byte,
        action_space: ActionSpace::Discrete(18),
        frame_stack: 4,
    };
    let cases = [
        Case {
            name: "minatar/dqn/minatar-cnn",
            spec: minatar.clone(),
            architecture: Architecture::MinAtarCnn { hidden: vec![] },
            width: 1.0,
            rainbow: false,
            steps: scale(20_000),
        },
        Case {
            name: "minatar/rainbow/minatar-cnn",
            spec: minatar,
            architecture: Architecture::MinAtarCnn { hidden: vec![] },
            width: 1.0,
            rainbow: true,
            steps: scale(10_000),
        },
        Case {
            name: "atari/dqn/nature-cnn",
            spec: atari.clone(),
            architecture: Architecture::NatureCnn,
            width: 1.0,
            rainbow: false,
            steps: scale(2_000),
        },
        Case {
            name: "atari/dqn/impala-x1",
            spec: atari.clone(),
            architecture: Architecture::ImpalaResNet,
            width: 1.0,
            rainbow: false,
            steps: scale(1_000),
        },
        Case {
            name: "atari/dqn/impala-x3",
            spec: atari,
            architecture: Architecture::ImpalaResNet,
            width: 3.0,
            rainbow: false,
            steps: scale(400),
        },
    ];
    println!("agent steps/s with updates (replay ratio 0.25, batch 32), device {device_name}");
    for case in cases.iter().filter(|c| c.name.contains(filter.as_str())) {
        let rate = run(case, &device);
        println!(
            "{:32} {:>10.1} steps/s  ({} timed steps)",
            case.name, rate, case.steps
        );
    }
}
