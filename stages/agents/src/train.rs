//! Dopamine's iteration loop (`dopamine/discrete_domains/run_experiment.py` at
//! google/dopamine@1093179):
//! each iteration runs `training_steps` agent steps with ε-greedy exploration, learning from
//! replay at a given replay ratio, then (optionally) evaluation episodes with ε_eval.
//!
//! Deviations, on purpose: an iteration is exactly `training_steps` agent steps and an episode
//! in progress carries over to the next iteration (Dopamine finishes the episode, overshooting
//! slightly), so that env steps, checkpoints and learning curves line up exactly; the replay
//! ratio (gradient updates per agent step) generalises Dopamine's `update_period` (ratio 1/4 =
//! one update every 4 steps).
//!
//! The whole state is restorable bit for bit: every episode starts with `reset(Some(seed))`
//! from the trainer's own random stream, with the environment's carry (MinAtar's sticky
//! action) and its actions recorded, so an environment
//! in the middle of an episode is rebuilt by replaying them; evaluation draws from streams
//! derived from (seed, iteration), so it is a pure function of the network.

use prunus_env::{Action, Env, Observation, Spec, Step};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::agent::Agent;
use crate::hooks::UpdateHook;
use crate::replay::Replay;
use crate::schedule::linearly_decaying_epsilon;

/// The loop's hyperparameters (agent and replay settings live in their own configs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopConfig {
    pub iterations: u64,
    /// Agent steps per iteration.
    pub training_steps: u64,
    /// Evaluation episodes after each iteration (0: none, as Dopamine's `continuous_train`).
    pub eval_episodes: u64,
    /// Gradient updates per agent step.
    pub replay_ratio: f64,
    /// Learning starts once replay holds more than this many frames; ε stays 1 until then.
    pub min_replay_history: u64,
    /// In agent steps.
    pub target_update_period: u64,
    pub epsilon_train: f64,
    pub epsilon_eval: f64,
    /// In agent steps, after the warm-up.
    pub epsilon_decay_period: u64,
    pub batch_size: usize,
    /// Clip rewards to [-1, 1] for learning (returns are always reported unclipped).
    pub clip_rewards: bool,
    pub seed: u64,
    /// A lost life ends the agent's episode (a terminal transition, a fresh frame stack) while
    /// the game goes on (Dopamine's `terminal_on_life_loss`, with `Runner._run_one_episode`
    /// continuing to game over; on in the Atari-100k configs). Returns are per game.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub life_loss_terminal: bool,
}

/// One row of `returns.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationStats {
    pub iteration: u64,
    pub env_steps: u64,
    pub grad_steps: u64,
    /// Mean undiscounted return of the training episodes that ended in this iteration.
    pub train_return: Option<f64>,
    pub train_episodes: u64,
    pub eval_return: Option<f64>,
    pub eval_episodes: u64,
}

/// The episode in progress, enough to rebuild the environment by replaying it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Episode {
    seed: u64,
    /// The environment's [`Env::carry`] when the episode began (MinAtar's sticky action).
    carry: u64,
    actions: Vec<u8>,
    ret: f64,
}

/// Counters and random state of the loop (everything but the agent, replay and environment).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoopState {
    pub iteration: u64,
    pub env_steps: u64,
    pub grad_steps: u64,
    steps_in_iteration: u64,
    update_credit: f64,
    episode: Option<Episode>,
    iteration_return_sum: f64,
    iteration_episodes: u64,
    rng: Pcg64,
}

/// A frame copied out of the environment (its borrow ends at the next step).
#[derive(Clone, Debug)]
pub enum Frame {
    U8 { binary: bool, data: Vec<u8> },
    F32(Vec<f32>),
}

impl Frame {
    fn copy(obs: Observation<'_>) -> Self {
        match obs {
            Observation::Binary(v) => Frame::U8 {
                binary: true,
                data: v.to_vec(),
            },
            Observation::Byte(v) => Frame::U8 {
                binary: false,
                data: v.to_vec(),
            },
            Observation::Float(v) => Frame::F32(v.to_vec()),
        }
    }

    /// The frame as the environment gave it.
    pub fn view(&self) -> Observation<'_> {
        match self {
            Frame::U8 { binary: true, data } => Observation::Binary(data),
            Frame::U8 {
                binary: false,
                data,
            } => Observation::Byte(data),
            Frame::F32(v) => Observation::Float(v),
        }
    }
}

/// Writes `obs` as f32 into `out`.
fn decode(obs: Observation<'_>, out: &mut [f32]) {
    match obs {
        Observation::Binary(v) | Observation::Byte(v) => {
            out.iter_mut().zip(v).for_each(|(o, &b)| *o = b as f32)
        }
        Observation::Float(v) => out.copy_from_slice(v),
    }
}

/// The last `stack` frames as the agent sees them (oldest first, zeros before the episode).
#[derive(Clone, Debug)]
pub(crate) struct FrameStack {
    frame_len: usize,
    pub(crate) data: Vec<f32>,
}

impl FrameStack {
    pub(crate) fn new(spec: &Spec) -> Self {
        let frame_len = spec.shape.iter().product();
        FrameStack {
            frame_len,
            data: vec![0.0; frame_len * spec.frame_stack],
        }
    }

    pub(crate) fn reset(&mut self, obs: Observation<'_>) {
        self.data.fill(0.0);
        self.push(obs);
    }

    pub(crate) fn push(&mut self, obs: Observation<'_>) {
        let n = self.frame_len;
        self.data.copy_within(n.., 0);
        let len = self.data.len();
        decode(obs, &mut self.data[len - n..]);
    }
}

/// What one agent step added to the experience stream, in the order replay receives it: the
/// frame the step started from with its action, (unclipped) reward and MDP termination, then,
/// when the step ended the episode, the episode's final frame. The `collect` kind records these
/// as a dataset ([`crate::dataset`]).
#[derive(Clone, Debug)]
pub enum Recorded {
    Step {
        frame: Frame,
        action: u8,
        reward: f32,
        terminal: bool,
    },
    EpisodeEnd {
        frame: Frame,
    },
}

/// Whether `step` lost a life without ending the game (`before`: the lives before it), as
/// Dopamine's `AtariPreprocessing` compares `ale.lives()` (a game over is a terminal anyway).
fn lost_life(before: Option<u32>, env: &dyn Env, step: &Step) -> bool {
    !step.terminal && matches!((before, env.lives()), (Some(b), Some(a)) if a < b)
}

/// The training loop over one environment.
pub struct Trainer {
    pub config: LoopConfig,
    pub agent: Agent,
    pub replay: Replay,
    env: Box<dyn Env>,
    stack: FrameStack,
    current: Frame,
    pub state: LoopState,
    pub hooks: Vec<Box<dyn UpdateHook>>,
    /// When `Some`, every agent step appends what it added to the experience stream (see
    /// [`Recorded`]); the owner drains it. `None` (the default) records nothing.
    pub record: Option<Vec<Recorded>>,
}

impl Trainer {
    pub fn new(config: LoopConfig, agent: Agent, replay: Replay, env: Box<dyn Env>) -> Self {
        let stack = FrameStack::new(env.spec());
        let current = Frame::copy(env.observation());
        let state = LoopState {
            iteration: 0,
            env_steps: 0,
            grad_steps: 0,
            steps_in_iteration: 0,
            update_credit: 0.0,
            episode: None,
            iteration_return_sum: 0.0,
            iteration_episodes: 0,
            rng: Pcg64::seed_from_u64(config.seed ^ 0x7472_6169_6e5f_6c6f),
        };
        Trainer {
            config,
            agent,
            replay,
            env,
            stack,
            current,
            state,
            hooks: Vec::new(),
            record: None,
        }
    }

    /// Rebuilds a trainer from saved parts; replays the episode in progress on `env`.
    pub fn restore(
        config: LoopConfig,
        agent: Agent,
        replay: Replay,
        mut env: Box<dyn Env>,
        state: LoopState,
    ) -> Result<Self, String> {
        let mut stack = FrameStack::new(env.spec());
        if let Some(ep) = &state.episode {
            env.reset(Some(ep.seed));
            env.set_carry(ep.carry);
            stack.reset(env.observation());
            for &a in &ep.actions {
                let lives = config.life_loss_terminal.then(|| env.lives()).flatten();
                let step = env
                    .step(Action::Discrete(a as usize))
                    .map_err(|e| e.to_string())?;
                if config.life_loss_terminal && lost_life(lives, &*env, &step) {
                    stack.reset(env.observation());
                } else {
                    stack.push(env.observation());
                }
            }
        }
        let current = Frame::copy(env.observation());
        Ok(Trainer {
            config,
            agent,
            replay,
            env,
            stack,
            current,
            state,
            hooks: Vec::new(),
            record: None,
        })
    }

    pub fn env_spec(&self) -> &Spec {
        self.env.spec()
    }

    /// Whether every iteration has run.
    pub fn done(&self) -> bool {
        self.state.iteration >= self.config.iterations
    }

    /// Whether the current iteration's training phase is complete (evaluation pending).
    pub fn training_phase_done(&self) -> bool {
        self.state.steps_in_iteration >= self.config.training_steps
    }

    /// Runs up to `max_steps` training steps of the current iteration.
    pub fn train_steps(&mut self, max_steps: u64) -> Result<(), String> {
        for _ in 0..max_steps {
            if self.training_phase_done() {
                break;
            }
            self.step()?;
        }
        Ok(())
    }

    fn begin_episode(&mut self) {
        let seed = self.state.rng.random::<u64>();
        self.env.reset(Some(seed));
        self.stack.reset(self.env.observation());
        self.current = Frame::copy(self.env.observation());
        self.state.episode = Some(Episode {
            seed,
            carry: self.env.carry(),
            actions: Vec::new(),
            ret: 0.0,
        });
    }

    fn step(&mut self) -> Result<(), String> {
        if self.state.episode.is_none() {
            self.begin_episode();
        }
        let c = &self.config;
        let epsilon = if self.agent.is_noisy() {
            0.0 // Dopamine's `zero_epsilon`: noisy networks explore by their noise
        } else {
            linearly_decaying_epsilon(
                c.epsilon_decay_period,
                self.state.env_steps,
                c.min_replay_history,
                c.epsilon_train,
            )
        };
        let action = self
            .agent
            .act(&self.stack.data, epsilon, &mut self.state.rng);
        let lives = self
            .config
            .life_loss_terminal
            .then(|| self.env.lives())
            .flatten();
        let step = self
            .env
            .step(Action::Discrete(action))
            .map_err(|e| e.to_string())?;
        let life_lost = self.config.life_loss_terminal && lost_life(lives, &*self.env, &step);
        let Step {
            reward,
            terminal,
            truncated,
        } = step;
        let learn_reward = if self.config.clip_rewards {
            reward.clamp(-1.0, 1.0)
        } else {
            reward
        };
        self.replay.push(
            self.current.view(),
            Action::Discrete(action),
            learn_reward,
            terminal || life_lost,
        );
        let ep = self.state.episode.as_mut().expect("episode in progress");
        ep.actions
            .push(u8::try_from(action).expect("action fits in u8"));
        ep.ret += reward as f64;
        self.state.env_steps += 1;
        self.state.steps_in_iteration += 1;
        let next = Frame::copy(self.env.observation());
        if let Some(record) = &mut self.record {
            record.push(Recorded::Step {
                frame: std::mem::replace(&mut self.current, next),
                action: u8::try_from(action).expect("action fits in u8"),
                reward,
                terminal,
            });
        } else {
            self.current = next;
        }
        self.stack.push(self.env.observation());
        if terminal || truncated {
            self.replay.end_episode(self.current.view());
            if let Some(record) = &mut self.record {
                record.push(Recorded::EpisodeEnd {
                    frame: self.current.clone(),
                });
            }
            self.state.iteration_return_sum += ep.ret;
            self.state.iteration_episodes += 1;
            self.state.episode = None;
        } else if life_lost {
            // The agent's episode ends here; the game's goes on from this frame.
            self.replay.end_episode(self.current.view());
            self.stack.reset(self.current.view());
        }
        if self.replay.add_count() > self.config.min_replay_history {
            self.state.update_credit += self.config.replay_ratio;
            while self.state.update_credit >= 1.0 {
                self.state.update_credit -= 1.0;
                self.update();
            }
            if self
                .state
                .env_steps
                .is_multiple_of(self.config.target_update_period.max(1))
            {
                self.agent.sync_target();
            }
        }
        Ok(())
    }

    fn update(&mut self) {
        let prioritized = self.replay.config().prioritized;
        let Some(batch) = self
            .replay
            .sample(self.config.batch_size, &mut self.state.rng)
        else {
            return;
        };
        let step = self.state.grad_steps;
        for hook in &mut self.hooks {
            hook.before_update(step, &self.agent);
        }
        let out = self
            .agent
            .learn_with(&batch, prioritized, &mut self.state.rng);
        if prioritized {
            self.replay
                .update_priorities(&batch.indices, &out.priorities);
        }
        for hook in &mut self.hooks {
            hook.after_update(step, &mut self.agent, &self.replay);
        }
        self.state.grad_steps += 1;
    }

    /// Ends the iteration: evaluates, reports, resets the per-iteration accumulators.
    pub fn finish_iteration(&mut self) -> IterationStats {
        let eval = self.evaluate(self.state.iteration);
        let s = &mut self.state;
        let stats = IterationStats {
            iteration: s.iteration,
            env_steps: s.env_steps,
            grad_steps: s.grad_steps,
            train_return: (s.iteration_episodes > 0)
                .then(|| s.iteration_return_sum / s.iteration_episodes as f64),
            train_episodes: s.iteration_episodes,
            eval_return: eval,
            eval_episodes: self.config.eval_episodes,
        };
        s.iteration += 1;
        s.steps_in_iteration = 0;
        s.iteration_return_sum = 0.0;
        s.iteration_episodes = 0;
        stats
    }

    /// Mean return of `eval_episodes` ε_eval-greedy episodes on a copy of the environment;
    /// deterministic given the network, the seed and `iteration`.
    pub fn evaluate(&self, iteration: u64) -> Option<f64> {
        let n = self.config.eval_episodes;
        if n == 0 {
            return None;
        }
        let mut env = self.env.boxed_clone();
        let mut stack = FrameStack::new(env.spec());
        let base = self.config.seed
            ^ 0x6576_616c_0000_0000
            ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = Pcg64::seed_from_u64(base);
        let mut total = 0.0;
        for _ in 0..n {
            env.reset(Some(rng.random()));
            stack.reset(env.observation());
            loop {
                let a = self
                    .agent
                    .act_eval(&stack.data, self.config.epsilon_eval, &mut rng);
                let lives = self
                    .config
                    .life_loss_terminal
                    .then(|| env.lives())
                    .flatten();
                let step = env
                    .step(Action::Discrete(a))
                    .expect("agent actions are in range");
                total += step.reward as f64;
                if step.terminal || step.truncated {
                    break;
                }
                if self.config.life_loss_terminal && lost_life(lives, &*env, &step) {
                    stack.reset(env.observation());
                } else {
                    stack.push(env.observation());
                }
            }
        }
        Some(total / n as f64)
    }
}
