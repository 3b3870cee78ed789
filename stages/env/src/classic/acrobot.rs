//! Acrobot-v1 as Gymnasium defines it (`gymnasium/envs/classic_control/acrobot.py`, the "book"
//! dynamics): torques -1/0/+1, one RK4 step of 0.2 s per action, -1 reward per step, terminal
//! when the tip rises above the bar (-cos t1 - cos(t1 + t2) > 1), truncated at 500 steps.
//! Observation: cos t1, sin t1, cos t2, sin t2, dt1, dt2.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::{Action, ActionSpace, Env, EnvError, ObsKind, Observation, Spec, Step};

const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS: f64 = 1.0;
const LINK_COM: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const GRAVITY: f64 = 9.8;

#[derive(Clone)]
pub struct Acrobot {
    spec: Spec,
    /// theta1, theta2, dtheta1, dtheta2 (f64 like Gymnasium's numpy state).
    state: [f64; 4],
    obs: [f32; 6],
    steps: u64,
    max_steps: u64,
    rng: Pcg64,
}

impl Acrobot {
    pub fn new(max_steps: u64) -> Self {
        let mut env = Acrobot {
            spec: Spec {
                shape: vec![6],
                kind: ObsKind::Float,
                action_space: ActionSpace::Discrete(3),
                frame_stack: 1,
            },
            state: [0.0; 4],
            obs: [0.0; 6],
            steps: 0,
            max_steps,
            rng: Pcg64::seed_from_u64(0),
        };
        env.reset(Some(0));
        env
    }

    fn observe(&mut self) {
        let [t1, t2, d1, d2] = self.state;
        self.obs = [t1.cos(), t1.sin(), t2.cos(), t2.sin(), d1, d2].map(|v| v as f32);
    }
}

/// Time derivative of (theta1, theta2, dtheta1, dtheta2) under `torque` on the second joint.
fn derivatives(s: [f64; 4], torque: f64) -> [f64; 4] {
    let (m, l1, lc, i) = (LINK_MASS, LINK_LENGTH_1, LINK_COM, LINK_MOI);
    let [t1, t2, d1, d2] = s;
    let d_1 = m * lc * lc + m * (l1 * l1 + lc * lc + 2.0 * l1 * lc * t2.cos()) + 2.0 * i;
    let d_2 = m * (lc * lc + l1 * lc * t2.cos()) + i;
    let phi2 = m * lc * GRAVITY * (t1 + t2 - PI / 2.0).cos();
    let phi1 = -m * l1 * lc * d2 * d2 * t2.sin() - 2.0 * m * l1 * lc * d2 * d1 * t2.sin()
        + (m * lc + m * l1) * GRAVITY * (t1 - PI / 2.0).cos()
        + phi2;
    let dd2 = (torque + d_2 / d_1 * phi1 - m * l1 * lc * d1 * d1 * t2.sin() - phi2)
        / (m * lc * lc + i - d_2 * d_2 / d_1);
    let dd1 = -(d_2 * dd2 + phi1) / d_1;
    [d1, d2, dd1, dd2]
}

fn add(a: [f64; 4], b: [f64; 4], h: f64) -> [f64; 4] {
    [
        a[0] + h * b[0],
        a[1] + h * b[1],
        a[2] + h * b[2],
        a[3] + h * b[3],
    ]
}

/// Wraps an angle into [-pi, pi).
fn wrap(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Env for Acrobot {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) {
        if let Some(s) = seed {
            self.rng = Pcg64::seed_from_u64(s);
        }
        for v in &mut self.state {
            *v = self.rng.random_range(-0.1..0.1);
        }
        self.steps = 0;
        self.observe();
    }

    fn step(&mut self, action: Action<'_>) -> Result<Step, EnvError> {
        let action = action.index(3)?;
        let torque = action as f64 - 1.0;
        // One classic RK4 step over DT, as Gymnasium's `rk4` with t = [0, dt].
        let s = self.state;
        let k1 = derivatives(s, torque);
        let k2 = derivatives(add(s, k1, DT / 2.0), torque);
        let k3 = derivatives(add(s, k2, DT / 2.0), torque);
        let k4 = derivatives(add(s, k3, DT), torque);
        let mut n = [0.0; 4];
        for j in 0..4 {
            n[j] = s[j] + DT / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
        }
        self.state = [
            wrap(n[0]),
            wrap(n[1]),
            n[2].clamp(-MAX_VEL_1, MAX_VEL_1),
            n[3].clamp(-MAX_VEL_2, MAX_VEL_2),
        ];
        self.steps += 1;
        self.observe();
        let [t1, t2, _, _] = self.state;
        let terminal = -t1.cos() - (t2 + t1).cos() > 1.0;
        Ok(Step {
            reward: if terminal { 0.0 } else { -1.0 },
            terminal,
            truncated: !terminal && self.steps >= self.max_steps,
        })
    }

    fn observation(&self) -> Observation<'_> {
        Observation::Float(&self.obs)
    }

    fn boxed_clone(&self) -> Box<dyn Env> {
        Box::new(self.clone())
    }
}
