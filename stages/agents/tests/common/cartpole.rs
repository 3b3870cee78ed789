//! A CartPole-v1 used by the tests until `prunus_env::make("cartpole")` lands (Gym's dynamics:
//! Euler steps of 0.02 s, terminal at |x| > 2.4 or |θ| > 12°, 500-step limit).

use prunus_env::{Env, EnvError, ObsKind, Observation, Spec, Step};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

#[derive(Clone)]
pub struct CartPole {
    spec: Spec,
    state: [f32; 4],
    steps: u64,
    rng: Pcg64,
}

impl CartPole {
    pub fn new() -> Self {
        CartPole {
            spec: Spec {
                shape: vec![4],
                kind: ObsKind::Float,
                num_actions: 2,
                frame_stack: 1,
            },
            state: [0.0; 4],
            steps: 0,
            rng: Pcg64::seed_from_u64(0),
        }
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

    fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        if action > 1 {
            return Err(EnvError::ActionOutOfRange {
                action,
                num_actions: 2,
            });
        }
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if action == 1 { 10.0 } else { -10.0 };
        let (cos, sin) = (theta.cos(), theta.sin());
        let temp = (force + 0.05 * theta_dot * theta_dot * sin) / 1.1;
        let theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos * cos / 1.1));
        let x_acc = temp - 0.05 * theta_acc * cos / 1.1;
        self.state = [
            x + 0.02 * x_dot,
            x_dot + 0.02 * x_acc,
            theta + 0.02 * theta_dot,
            theta_dot + 0.02 * theta_acc,
        ];
        self.steps += 1;
        let terminal = self.state[0].abs() > 2.4
            || self.state[2].abs() > 12.0 * 2.0 * std::f32::consts::PI / 360.0;
        Ok(Step {
            reward: 1.0,
            terminal,
            truncated: !terminal && self.steps >= 500,
        })
    }

    fn observation(&self) -> Observation<'_> {
        Observation::Float(&self.state)
    }

    fn boxed_clone(&self) -> Box<dyn Env> {
        Box::new(self.clone())
    }
}
