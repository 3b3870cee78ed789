//! CartPole-v1 as Gymnasium defines it (`gymnasium/envs/classic_control/cartpole.py`): Euler
//! steps of 0.02 s, +1 reward per step, terminal when |x| > 2.4 or |theta| > 12 degrees,
//! truncated at 500 steps, initial state uniform in [-0.05, 0.05].

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::{Action, ActionSpace, Env, EnvError, ObsKind, Observation, Spec, Step};

const GRAVITY: f32 = 9.8;
const MASS_CART: f32 = 1.0;
const MASS_POLE: f32 = 0.1;
const TOTAL_MASS: f32 = MASS_CART + MASS_POLE;
const HALF_LENGTH: f32 = 0.5;
const POLE_MASS_LENGTH: f32 = MASS_POLE * HALF_LENGTH;
const FORCE: f32 = 10.0;
const TAU: f32 = 0.02;
const X_LIMIT: f32 = 2.4;
const THETA_LIMIT: f32 = 12.0 * 2.0 * std::f32::consts::PI / 360.0;

#[derive(Clone)]
pub struct CartPole {
    spec: Spec,
    state: [f32; 4],
    steps: u64,
    max_steps: u64,
    rng: Pcg64,
}

impl CartPole {
    /// `max_steps`: the time limit (Gymnasium: 500).
    pub fn new(max_steps: u64) -> Self {
        let mut env = CartPole {
            spec: Spec {
                shape: vec![4],
                kind: ObsKind::Float,
                action_space: ActionSpace::Discrete(2),
                frame_stack: 1,
            },
            state: [0.0; 4],
            steps: 0,
            max_steps,
            rng: Pcg64::seed_from_u64(0),
        };
        env.reset(Some(0));
        env
    }
}

impl Env for CartPole {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) {
        if let Some(s) = seed {
            self.rng = Pcg64::seed_from_u64(s);
        }
        for v in &mut self.state {
            *v = self.rng.random_range(-0.05..0.05);
        }
        self.steps = 0;
    }

    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError> {
        let action = action.index(2)?;
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if action == 1 { FORCE } else { -FORCE };
        let (cos, sin) = (theta.cos(), theta.sin());
        let temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp)
            / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
        self.state = [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ];
        self.steps += 1;
        let terminal = self.state[0].abs() > X_LIMIT || self.state[2].abs() > THETA_LIMIT;
        Ok(Step {
            reward: 1.0,
            terminal,
            truncated: !terminal && self.steps >= self.max_steps,
        })
    }

    fn observation(&self) -> Observation<'_> {
        Observation::Float(&self.state)
    }

    fn boxed_clone(&self) -> Box<dyn Env> {
        Box::new(self.clone())
    }
}
