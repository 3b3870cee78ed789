//! Environments: MinAtar (native Rust), ALE Atari with Dopamine's preprocessing, classic control.
//!
//! Every environment implements [`Env`]. Agents see one frame at a time; frame stacking (4 for
//! Atari, 1 elsewhere, [`Spec::frame_stack`]) is done by the replay buffer, which stores each
//! frame once in the compact dtype given by [`ObsKind`]. An environment takes either discrete
//! actions or real vectors in a box ([`ActionSpace`], [`Action`]); every environment here is
//! discrete, continuous control (for SAC) would be a box.

use std::fmt;

/// The element type of an observation, which is also how replay stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObsKind {
    /// 0/1 values (MinAtar's boolean channels); replay may pack them as bits.
    Binary,
    /// 0..=255 (Atari grayscale); the network scales by 1/255.
    Byte,
    /// Real-valued features (classic control).
    Float,
}

/// Static description of an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Observation shape of one frame: `[channels, height, width]` for images, `[n]` for vectors.
    pub shape: Vec<usize>,
    pub kind: ObsKind,
    pub action_space: ActionSpace,
    /// How many consecutive frames the agent stacks (Dopamine: 4 for Atari, 1 for MinAtar).
    pub frame_stack: usize,
}

/// The actions an environment accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionSpace {
    /// `n` actions, numbered `0..n`.
    Discrete(usize),
    /// Real vectors with per-dimension bounds `low[i] <= a[i] <= high[i]` (continuous control).
    Box { low: Vec<f32>, high: Vec<f32> },
}

impl ActionSpace {
    /// The number of actions of a discrete space; `None` for a box.
    pub fn discrete(&self) -> Option<usize> {
        match self {
            ActionSpace::Discrete(n) => Some(*n),
            ActionSpace::Box { .. } => None,
        }
    }

    /// Whether `action` belongs to this space (right kind, in range or bounds).
    pub fn check(&self, action: Action<'_>) -> Result<(), EnvError> {
        match (self, action) {
            (ActionSpace::Discrete(n), action) => action.index(*n).map(|_| ()),
            (ActionSpace::Box { low, high }, Action::Continuous(a)) => {
                let inside = a.len() == low.len()
                    && a.iter()
                        .zip(low.iter().zip(high))
                        .all(|(x, (l, h))| l <= x && x <= h);
                if inside {
                    Ok(())
                } else {
                    Err(EnvError::ActionOutOfBounds {
                        action: a.to_vec(),
                        low: low.clone(),
                        high: high.clone(),
                    })
                }
            }
            (ActionSpace::Box { low, .. }, Action::Discrete(_)) => Err(EnvError::ActionKind {
                expected: format!("a continuous action of {} dimensions", low.len()),
            }),
        }
    }
}

/// One action: an index into a discrete space, or a point of a box (borrowed from the agent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action<'a> {
    Discrete(usize),
    Continuous(&'a [f32]),
}

impl Action<'_> {
    /// This action as an index among `n` discrete actions, or why it is not one.
    pub fn index(self, n: usize) -> Result<usize, EnvError> {
        match self {
            Action::Discrete(a) if a < n => Ok(a),
            Action::Discrete(action) => Err(EnvError::ActionOutOfRange {
                action,
                num_actions: n,
            }),
            Action::Continuous(_) => Err(EnvError::ActionKind {
                expected: format!("a discrete action in 0..{n}"),
            }),
        }
    }
}

/// One frame, borrowed from the environment's own buffer, channel-major (`[c][h][w]`).
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    Binary(&'a [u8]),
    Byte(&'a [u8]),
    Float(&'a [f32]),
}

/// The outcome of one agent step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Step {
    /// Raw (unclipped) reward summed over the step's frames; agents clip for learning.
    pub reward: f32,
    /// The episode ended in the MDP (game over).
    pub terminal: bool,
    /// The episode was cut by a time limit (bootstrapping should continue).
    pub truncated: bool,
}

/// An environment: deterministic given its seed.
pub trait Env: Send {
    fn spec(&self) -> &Spec;
    /// Starts a new episode; `Some(seed)` reseeds the environment's random stream first.
    fn reset(&mut self, seed: Option<u64>);
    /// The actions it accepts.
    fn action_space(&self) -> &ActionSpace {
        &self.spec().action_space
    }
    /// Advances one agent step. Errors only on an invalid action.
    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError>;
    /// The current frame.
    fn observation(&self) -> Observation<'_>;
    /// Remaining lives, where the game has them.
    fn lives(&self) -> Option<u32> {
        None
    }
    /// What carries from one episode into the next besides the random stream (MinAtar's last
    /// executed action, which its sticky actions repeat: the reference keeps it across
    /// `reset`), so that an episode can be replayed exactly on a fresh environment.
    fn carry(&self) -> u64 {
        0
    }
    /// Puts back what [`carry`](Self::carry) returned.
    fn set_carry(&mut self, _carry: u64) {}
    /// An independent copy (same state and random stream), for vectorising or evaluation.
    fn boxed_clone(&self) -> Box<dyn Env>;
}

/// Errors from creating or stepping an environment.
#[derive(Debug)]
pub enum EnvError {
    UnknownGame {
        name: String,
        known: Vec<String>,
    },
    ActionOutOfRange {
        action: usize,
        num_actions: usize,
    },
    /// A continuous action outside the box (or of the wrong dimension).
    ActionOutOfBounds {
        action: Vec<f32>,
        low: Vec<f32>,
        high: Vec<f32>,
    },
    /// An action of the other kind (discrete for a box, continuous for a discrete space).
    ActionKind {
        expected: String,
    },
    /// An Atari ROM is not installed.
    MissingRom {
        game: String,
        path: std::path::PathBuf,
    },
    /// An Atari ROM file is not the one ALE expects (truncated, another revision...).
    RomChecksum {
        game: String,
        path: std::path::PathBuf,
        found: String,
        expected: String,
    },
    Other(String),
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::UnknownGame { name, known } => {
                write!(
                    f,
                    "unknown game `{name}`; known games: {}",
                    known.join(", ")
                )
            }
            EnvError::ActionOutOfRange {
                action,
                num_actions,
            } => write!(
                f,
                "action {action} is out of range: this environment has {num_actions} actions (0..{num_actions})"
            ),
            EnvError::ActionOutOfBounds { action, low, high } => write!(
                f,
                "action {action:?} is outside the action space (low {low:?}, high {high:?})"
            ),
            EnvError::ActionKind { expected } => {
                write!(f, "this environment takes {expected}")
            }
            EnvError::MissingRom { game, path } => write!(
                f,
                "the Atari ROM for `{game}` is not installed (looked for {}); run `prunus roms \
                 install` to copy the ROMs from the ale-py wheel on PyPI, or set PRUNUS_ROMS to \
                 a directory holding {game}.bin",
                path.display()
            ),
            EnvError::RomChecksum {
                game,
                path,
                found,
                expected,
            } => write!(
                f,
                "{} is not the `{game}` ROM ALE supports (MD5 {found}, expected {expected}); \
                 reinstall the ROMs with `prunus roms install`",
                path.display()
            ),
            EnvError::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for EnvError {}

mod ale_games;
#[cfg(feature = "atari")]
pub mod atari;
pub mod classic;
pub mod minatar;

/// How to build an environment; `Default` gives each environment's paper/reference defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvOptions {
    /// Probability that the previous action repeats; `None`: the environment's default
    /// (MinAtar 0.1, Atari 0.25, classic control 0).
    pub sticky_action_prob: Option<f32>,
    /// Episode time limit in agent steps (the step that reaches it is `truncated`); `None`: the
    /// environment's default (classic control 500, MinAtar none: Dopamine caps at 1e8 steps).
    pub max_episode_steps: Option<u64>,
    /// `Some(true)`: every action of the platform (Atari 18, MinAtar 6); `Some(false)`: the
    /// game's minimal set; `None`: the paper default, which differs by platform: Dopamine uses
    /// the minimal set on Atari but all 6 actions on MinAtar (see [`minatar`]). Classic control
    /// has one action set and ignores this.
    pub full_action_set: Option<bool>,
    /// Atari: where ROMs are looked up (`None`: `$PRUNUS_ROMS` or the user's data directory).
    pub rom_dir: Option<std::path::PathBuf>,
    /// Atari: end an agent step at the frame where a life is lost, as Dopamine's
    /// `AtariPreprocessing(terminal_on_life_loss=True)` breaks its frame-skip loop there (the
    /// Atari-100k configs). The game goes on; agents see the loss through [`Env::lives`].
    /// Off (the default): every step emulates all its frames until game over.
    pub terminal_on_life_loss: bool,
    /// Atari: at each reset, emulate `n` raw NOOP frames with `n` uniform in `0..noop_max`
    /// (Dopamine's Atari-100k `MaxEpisodeEvalRunner._run_no_ops`, `max_noops = 30`). 0: none.
    pub noop_max: u32,
}

/// The environments this build can create, by the names pipelines use.
pub fn games() -> Vec<String> {
    let mut names = vec!["cartpole".to_string(), "acrobot".to_string()];
    names.extend(minatar::GAMES.iter().map(|g| format!("minatar/{g}")));
    #[cfg(feature = "atari")]
    names.extend(atari::roms::games().map(|g| format!("atari/{g}")));
    names
}

/// Whether [`make`] could be asked for `name` with `opts`, without building it: the name is a
/// known game (Atari games count in every build; whether this build has Atari support, and
/// the ROM, are for `make` to say), and the options apply to it.
pub fn check(name: &str, opts: &EnvOptions) -> Result<(), EnvError> {
    let (known, names): (bool, Vec<String>) = match name.split_once('/') {
        Some(("atari", game)) => (
            ale_games::games().any(|g| g == game),
            ale_games::games().map(|g| format!("atari/{g}")).collect(),
        ),
        Some(("minatar", game)) => (minatar::GAMES.contains(&game), games()),
        _ => (CLASSIC.contains(&name), games()),
    };
    if !known {
        return Err(EnvError::UnknownGame {
            name: name.to_string(),
            known: names,
        });
    }
    if CLASSIC.contains(&name) {
        classic_options(name, opts)?;
    }
    if !name.starts_with("atari/") && (opts.terminal_on_life_loss || opts.noop_max > 0) {
        return Err(EnvError::Other(format!(
            "`{name}` is not an Atari game: life-loss terminals and no-op starts are Atari options"
        )));
    }
    Ok(())
}

/// The classic-control environments.
const CLASSIC: [&str; 2] = ["cartpole", "acrobot"];

/// Classic control has no sticky actions.
fn classic_options(name: &str, opts: &EnvOptions) -> Result<(), EnvError> {
    if opts.sticky_action_prob.is_some_and(|p| p != 0.0) {
        return Err(EnvError::Other(format!(
            "`{name}` has no sticky actions; leave sticky_action_prob unset for classic control"
        )));
    }
    Ok(())
}

/// Creates the environment `name` (see [`games`]).
pub fn make(name: &str, opts: &EnvOptions) -> Result<Box<dyn Env>, EnvError> {
    if let Some(game) = name.strip_prefix("minatar/")
        && let Some(env) = minatar::make(game, opts)
    {
        return env;
    }
    if let Some(game) = name.strip_prefix("atari/") {
        #[cfg(feature = "atari")]
        return atari::make(game, opts);
        #[cfg(not(feature = "atari"))]
        return Err(EnvError::Other(format!(
            "`atari/{game}`: this prunus was built without Atari support; rebuild it with \
             `--features atari` (needs cmake and a C++ compiler), or use a `minatar/*` game ({})",
            minatar::GAMES.join(", ")
        )));
    }
    let classic: fn(u64) -> Box<dyn Env> = match name {
        "cartpole" => |cap| Box::new(classic::CartPole::new(cap)),
        "acrobot" => |cap| Box::new(classic::Acrobot::new(cap)),
        _ => {
            return Err(EnvError::UnknownGame {
                name: name.to_string(),
                known: games(),
            });
        }
    };
    classic_options(name, opts)?;
    Ok(classic(opts.max_episode_steps.unwrap_or(500)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_returns(name: &str, episodes: usize) -> Vec<(f32, u64)> {
        let mut env = make(name, &EnvOptions::default()).unwrap();
        let n = env.spec().action_space.discrete().unwrap();
        let mut out = Vec::new();
        for ep in 0..episodes {
            env.reset(Some(ep as u64));
            let (mut ret, mut len) = (0.0, 0);
            loop {
                let s = env
                    .step(Action::Discrete((len as usize * 7 + ep) % n))
                    .unwrap();
                ret += s.reward;
                len += 1;
                if s.terminal || s.truncated {
                    break;
                }
            }
            out.push((ret, len));
        }
        out
    }

    #[test]
    fn cartpole_falls_quickly_under_a_poor_policy_and_is_capped() {
        for (ret, len) in random_returns("cartpole", 20) {
            assert_eq!(ret, len as f32);
            assert!((5..=500).contains(&len), "episode length {len}");
        }
        // Always pushing right topples the pole within a few dozen steps.
        let mut env = make("cartpole", &EnvOptions::default()).unwrap();
        env.reset(Some(1));
        let steps = (0..500)
            .take_while(|_| !env.step(Action::Discrete(1)).unwrap().terminal)
            .count();
        assert!(steps < 40, "pole survived {steps} steps of constant force");
    }

    #[test]
    fn acrobot_is_truncated_at_500_without_swinging_up() {
        // Zero torque never swings the tip above the bar: every episode is cut at 500 steps.
        let mut env = make("acrobot", &EnvOptions::default()).unwrap();
        env.reset(Some(3));
        let mut last = Step::default();
        let mut ret = 0.0;
        for _ in 0..500 {
            last = env.step(Action::Discrete(1)).unwrap();
            ret += last.reward;
        }
        assert!(last.truncated && !last.terminal);
        assert_eq!(ret, -500.0);
    }

    #[test]
    fn acrobot_swings_up_with_energy_pumping() {
        // Torque along the second joint's velocity does positive work (pumps energy in): the tip
        // must clear the bar well before the time limit, so the dynamics are not inert.
        let mut env = make("acrobot", &EnvOptions::default()).unwrap();
        env.reset(Some(0));
        let mut done_at = None;
        for t in 0..500 {
            let Observation::Float(o) = env.observation() else {
                unreachable!()
            };
            let action = if o[5] > 0.0 { 2 } else { 0 };
            if env.step(Action::Discrete(action)).unwrap().terminal {
                done_at = Some(t);
                break;
            }
        }
        assert!(
            done_at.is_some(),
            "energy pumping never swung the acrobot up"
        );
    }

    #[test]
    fn same_seed_same_episode() {
        assert_eq!(random_returns("acrobot", 3), random_returns("acrobot", 3));
        let mut a = make("cartpole", &EnvOptions::default()).unwrap();
        a.reset(Some(9));
        let mut b = a.boxed_clone();
        for t in 0..30 {
            assert_eq!(
                a.step(Action::Discrete(t % 2)).unwrap(),
                b.step(Action::Discrete(t % 2)).unwrap()
            );
        }
    }

    #[test]
    fn bad_input_is_explained() {
        let err = make("pong", &EnvOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unknown game `pong`") && err.contains("cartpole"),
            "{err}"
        );
        let mut env = make("cartpole", &EnvOptions::default()).unwrap();
        let err = env.step(Action::Discrete(2)).unwrap_err().to_string();
        assert!(
            err.contains("out of range") && err.contains("2 actions"),
            "{err}"
        );
    }

    #[test]
    fn action_spaces_check_kind_range_and_bounds() {
        let discrete = ActionSpace::Discrete(3);
        assert!(discrete.check(Action::Discrete(2)).is_ok());
        assert!(discrete.check(Action::Discrete(3)).is_err());
        let err = discrete.check(Action::Continuous(&[0.0])).unwrap_err();
        assert!(err.to_string().contains("discrete action in 0..3"), "{err}");
        let boxed = ActionSpace::Box {
            low: vec![-1.0, 0.0],
            high: vec![1.0, 2.0],
        };
        assert_eq!(boxed.discrete(), None);
        assert!(boxed.check(Action::Continuous(&[0.5, 2.0])).is_ok());
        assert!(boxed.check(Action::Continuous(&[0.5, 2.5])).is_err());
        assert!(boxed.check(Action::Continuous(&[0.5])).is_err());
        assert!(boxed.check(Action::Discrete(0)).is_err());
        let env = make("cartpole", &EnvOptions::default()).unwrap();
        assert_eq!(env.action_space(), &ActionSpace::Discrete(2));
    }
}
