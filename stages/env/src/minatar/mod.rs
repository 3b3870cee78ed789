//! MinAtar (Young & Tian 2019): five Atari-like games on a 10x10 grid of boolean channels,
//! written natively in Rust after the reference Python package `minatar` 1.0.15
//! (kenjyoung/MinAtar, `minatar/environment.py` and `minatar/environments/*.py`).
//!
//! The port is rule for rule, down to the order of the random draws: the games draw from
//! numpy's `RandomState` stream ([`np_random`]), so for the same seed and actions prunus and the
//! Python package produce the same observations, rewards and terminals (the `minatar_equivalence`
//! test checks this, and compares random-policy statistics).
//!
//! Wrapper semantics (`minatar.Environment`): every step draws one uniform number and, when it
//! is below the sticky probability (default 0.1), repeats the previously *executed* action; the
//! previous action starts as no-op and survives episode resets; difficulty ramping is on.
//!
//! Action set: by default all six actions (`n l u r d f`), as Dopamine's MinAtar wrapper
//! (`dopamine/labs/environments/minatar/minatar_env.py`: `num_actions()` = 6) and MinAtar's own
//! DQN example use, which is what the paper's MinAtar runs follow. `full_action_set: Some(false)`
//! selects the game's minimal set (MinAtar's `minimal_action_set()`, Gymnasium `MinAtar/*-v1`).

mod asterix;
mod breakout;
mod freeway;
pub mod np_random;
mod seaquest;
mod space_invaders;

use np_random::NpRandom;

use crate::{Env, EnvError, EnvOptions, ObsKind, Observation, Spec, Step};

/// The game names, as `minatar/<name>`.
pub const GAMES: [&str; 5] = [
    "asterix",
    "breakout",
    "freeway",
    "seaquest",
    "space_invaders",
];

/// MinAtar's six actions in the reference's order (`['n','l','u','r','d','f']`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Noop,
    Left,
    Up,
    Right,
    Down,
    Fire,
}

const ALL_ACTIONS: [Action; 6] = [
    Action::Noop,
    Action::Left,
    Action::Up,
    Action::Right,
    Action::Down,
    Action::Fire,
];

/// One game's rules; the wrapper [`MinAtar`] adds sticky actions, action sets and time limits.
trait Game: Clone + Send + 'static {
    /// Number of observation channels, in the reference's channel order.
    const CHANNELS: usize;
    /// The reference's `minimal_action_set()`.
    const MINIMAL_ACTIONS: &'static [Action];
    /// The start of an episode (the reference's `reset()`).
    fn start(rng: &mut NpRandom) -> Self;
    /// One step while the episode runs (the reference's `act`): (reward, terminal).
    fn act(&mut self, action: Action, rng: &mut NpRandom) -> (u32, bool);
    /// Draws the state into `obs` (zeroed, channel-major `[c][y][x]`).
    fn render(&self, obs: &mut Grid);
}

/// A channel-major 10x10xC boolean frame being drawn.
struct Grid<'a>(&'a mut [u8]);

impl Grid<'_> {
    /// Sets channel `c` at row `y`, column `x` (row 0 is the top).
    fn set(&mut self, c: usize, y: i32, x: i32) {
        debug_assert!((0..10).contains(&y) && (0..10).contains(&x));
        self.0[c * 100 + y as usize * 10 + x as usize] = 1;
    }

    /// Copies a whole 10x10 map into channel `c` (the layout is the same, row-major).
    fn copy_map(&mut self, c: usize, map: &[[bool; 10]; 10]) {
        let dst = &mut self.0[c * 100..(c + 1) * 100];
        for (d, &b) in dst.iter_mut().zip(map.as_flattened()) {
            *d = b as u8;
        }
    }
}

/// A MinAtar game behind the [`Env`] interface.
#[derive(Clone)]
struct MinAtar<G: Game> {
    spec: Spec,
    game: G,
    rng: NpRandom,
    actions: &'static [Action],
    sticky: f64,
    last_action: Action,
    terminal: bool,
    steps: u64,
    max_steps: Option<u64>,
    obs: Vec<u8>,
}

impl<G: Game> MinAtar<G> {
    fn new(opts: &EnvOptions, sticky: f64) -> Self {
        let actions: &'static [Action] = if opts.full_action_set == Some(false) {
            G::MINIMAL_ACTIONS
        } else {
            &ALL_ACTIONS
        };
        let mut rng = NpRandom::new(0);
        let game = G::start(&mut rng);
        let mut env = MinAtar {
            spec: Spec {
                shape: vec![G::CHANNELS, 10, 10],
                kind: ObsKind::Binary,
                action_space: crate::ActionSpace::Discrete(actions.len()),
                frame_stack: 1,
            },
            game,
            rng,
            actions,
            sticky,
            last_action: Action::Noop,
            terminal: false,
            steps: 0,
            max_steps: opts.max_episode_steps,
            obs: vec![0; G::CHANNELS * 100],
        };
        env.redraw();
        env
    }

    fn redraw(&mut self) {
        self.obs.fill(0);
        self.game.render(&mut Grid(&mut self.obs));
    }
}

impl<G: Game> Env for MinAtar<G> {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) {
        if let Some(seed) = seed {
            self.rng = NpRandom::new(seed);
        }
        self.game = G::start(&mut self.rng);
        self.terminal = false;
        self.steps = 0;
        self.redraw();
    }

    fn carry(&self) -> u64 {
        ALL_ACTIONS
            .iter()
            .position(|&a| a == self.last_action)
            .unwrap_or(0) as u64
    }

    fn set_carry(&mut self, carry: u64) {
        self.last_action = ALL_ACTIONS
            .get(carry as usize)
            .copied()
            .unwrap_or(Action::Noop);
    }

    fn step(&mut self, action: crate::Action<'_>) -> Result<Step, EnvError> {
        let chosen = self.actions[action.index(self.actions.len())?];
        // The reference draws the stickiness coin on every step, even after the episode ended.
        let executed = if self.rng.rand() < self.sticky {
            self.last_action
        } else {
            chosen
        };
        self.last_action = executed;
        self.steps += 1;
        if self.terminal {
            return Ok(Step {
                reward: 0.0,
                terminal: true,
                truncated: false,
            });
        }
        let (reward, terminal) = self.game.act(executed, &mut self.rng);
        self.terminal = terminal;
        self.redraw();
        Ok(Step {
            reward: reward as f32,
            terminal,
            truncated: !terminal && self.max_steps.is_some_and(|m| self.steps >= m),
        })
    }

    fn observation(&self) -> Observation<'_> {
        Observation::Binary(&self.obs)
    }

    fn boxed_clone(&self) -> Box<dyn Env> {
        Box::new(self.clone())
    }
}

/// Builds `minatar/<game>`; `None` when `game` is not a MinAtar game.
pub(crate) fn make(game: &str, opts: &EnvOptions) -> Option<Result<Box<dyn Env>, EnvError>> {
    let sticky = match opts.sticky_action_prob {
        None => 0.1,
        Some(p) if (0.0..=1.0).contains(&p) => {
            // The f64 nearest the f32's shortest decimal form, so 0.1f32 compares as Python's 0.1.
            p.to_string().parse().expect("a formatted f32 parses")
        }
        Some(p) => {
            return Some(Err(EnvError::Other(format!(
                "sticky_action_prob must be in [0, 1], got {p}"
            ))));
        }
    };
    let env: Box<dyn Env> = match game {
        "asterix" => Box::new(MinAtar::<asterix::Asterix>::new(opts, sticky)),
        "breakout" => Box::new(MinAtar::<breakout::Breakout>::new(opts, sticky)),
        "freeway" => Box::new(MinAtar::<freeway::Freeway>::new(opts, sticky)),
        "seaquest" => Box::new(MinAtar::<seaquest::Seaquest>::new(opts, sticky)),
        "space_invaders" => Box::new(MinAtar::<space_invaders::SpaceInvaders>::new(opts, sticky)),
        _ => return None,
    };
    Some(Ok(env))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make as make_env;

    fn env(game: &str, opts: EnvOptions) -> Box<dyn Env> {
        make_env(&format!("minatar/{game}"), &opts).unwrap()
    }

    fn frame(env: &dyn Env) -> Vec<u8> {
        let Observation::Binary(b) = env.observation() else {
            panic!("binary frames")
        };
        b.to_vec()
    }

    /// A resumed run rebuilds the episode in progress on a fresh environment from its seed, its
    /// carry and its actions; sticky actions repeat the previous episode's last action, so
    /// without the carry the replay leaves the original trajectory (found on 200k-step runs).
    #[test]
    fn an_episode_replays_exactly_on_a_fresh_environment() {
        let mut diverged_without_carry = 0;
        for episode_seed in 0..40u64 {
            let mut a = env("breakout", EnvOptions::default());
            // Earlier episodes leave a last action behind (always Right, so it is not Noop).
            a.reset(Some(1_000 + episode_seed));
            for _ in 0..30 {
                a.step(crate::Action::Discrete(3)).unwrap();
            }
            a.reset(Some(episode_seed));
            let carry = a.carry();
            let actions: Vec<usize> = (0..20)
                .map(|i| (i * 7 + episode_seed as usize) % 6)
                .collect();
            let replay = |b: &mut Box<dyn Env>, with_carry: bool| {
                b.reset(Some(episode_seed));
                if with_carry {
                    b.set_carry(carry);
                }
                actions
                    .iter()
                    .map(|&x| {
                        b.step(crate::Action::Discrete(x)).unwrap();
                        frame(&**b)
                    })
                    .collect::<Vec<_>>()
            };
            let original: Vec<Vec<u8>> = actions
                .iter()
                .map(|&x| {
                    a.step(crate::Action::Discrete(x)).unwrap();
                    frame(&*a)
                })
                .collect();
            let mut fresh = env("breakout", EnvOptions::default());
            assert_eq!(
                replay(&mut fresh, true),
                original,
                "episode seed {episode_seed}"
            );
            let mut fresh = env("breakout", EnvOptions::default());
            diverged_without_carry += usize::from(replay(&mut fresh, false) != original);
        }
        assert!(
            diverged_without_carry > 0,
            "the carry matters for some episodes"
        );
    }

    #[test]
    fn specs_follow_the_reference() {
        for (game, channels, minimal) in [
            ("asterix", 4, 5),
            ("breakout", 4, 3),
            ("freeway", 7, 3),
            ("seaquest", 10, 6),
            ("space_invaders", 6, 4),
        ] {
            let full = env(game, EnvOptions::default());
            assert_eq!(full.spec().shape, [channels, 10, 10]);
            assert_eq!(
                (
                    full.spec().action_space.discrete().unwrap(),
                    full.spec().kind
                ),
                (6, ObsKind::Binary)
            );
            let opts = EnvOptions {
                full_action_set: Some(false),
                ..EnvOptions::default()
            };
            assert_eq!(
                env(game, opts).spec().action_space.discrete().unwrap(),
                minimal
            );
        }
    }

    #[test]
    fn minimal_actions_map_to_the_games_actions() {
        // Breakout's minimal set is [n, l, r]: index 2 moves the paddle right (x 4 -> 5).
        let opts = EnvOptions {
            full_action_set: Some(false),
            sticky_action_prob: Some(0.0),
            ..EnvOptions::default()
        };
        let mut e = env("breakout", opts);
        e.reset(Some(0));
        e.step(crate::Action::Discrete(2)).unwrap();
        let paddle = &frame(e.as_ref())[..100];
        assert_eq!(paddle.iter().position(|&b| b == 1), Some(95));
        let err = e.step(crate::Action::Discrete(3)).unwrap_err().to_string();
        assert!(err.contains("3 actions"), "{err}");
    }

    #[test]
    fn seeded_episodes_repeat_and_clones_continue_identically() {
        for game in GAMES {
            let mut a = env(game, EnvOptions::default());
            let run = |e: &mut Box<dyn Env>| {
                e.reset(Some(5));
                (0..300)
                    .map(|t| {
                        let s = e.step(crate::Action::Discrete(t * 7 % 6)).unwrap();
                        if s.terminal {
                            e.reset(None);
                        }
                        (s, frame(e.as_ref()))
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(&mut a), run(&mut a), "{game}");
            let mut b = a.boxed_clone();
            for t in 0..200 {
                let (sa, sb) = (
                    a.step(crate::Action::Discrete(t % 6)).unwrap(),
                    b.step(crate::Action::Discrete(t % 6)).unwrap(),
                );
                assert_eq!((sa, frame(a.as_ref())), (sb, frame(b.as_ref())), "{game}");
                if sa.terminal {
                    a.reset(None);
                    b.reset(None);
                }
            }
        }
    }

    #[test]
    fn time_limit_truncates() {
        let opts = EnvOptions {
            max_episode_steps: Some(50),
            ..EnvOptions::default()
        };
        let mut e = env("freeway", opts);
        e.reset(Some(1));
        let steps: Vec<Step> = (0..50)
            .map(|_| e.step(crate::Action::Discrete(0)).unwrap())
            .collect();
        assert!(steps[..49].iter().all(|s| !s.truncated && !s.terminal));
        assert!(steps[49].truncated && !steps[49].terminal);
    }

    #[test]
    fn bad_options_are_explained() {
        let err = make_env("minatar/pong", &EnvOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("minatar/seaquest") && err.contains("cartpole"),
            "{err}"
        );
        let opts = EnvOptions {
            sticky_action_prob: Some(1.5),
            ..EnvOptions::default()
        };
        let err = make_env("minatar/breakout", &opts)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("[0, 1]"), "{err}");
        let err = make_env("atari/pong", &EnvOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("Atari"), "{err}");
    }
}
