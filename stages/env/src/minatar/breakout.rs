//! Breakout (`minatar/environments/breakout.py`): bounce a ball off a paddle to break three
//! rows of bricks; +1 per brick, a fresh wall once cleared, terminal when the ball passes the
//! paddle. Channels: paddle 0, ball 1, trail 2, brick 3. No difficulty ramping.

use super::np_random::NpRandom;
use super::{Action, Game, Grid};

/// Ball directions as (dx, dy), y growing downwards: up-left, up-right, down-right, down-left.
const DIRS: [(i32, i32); 4] = [(-1, -1), (1, -1), (1, 1), (-1, 1)];
/// Direction after bouncing off a side wall, off the ceiling or a brick, or back off the paddle.
const MIRROR_X: [u8; 4] = [1, 0, 3, 2];
const MIRROR_Y: [u8; 4] = [3, 2, 1, 0];
const REVERSE: [u8; 4] = [2, 3, 0, 1];

#[derive(Clone)]
pub struct Breakout {
    ball_x: i32,
    ball_y: i32,
    ball_dir: u8,
    paddle: i32,
    bricks: [[bool; 10]; 10],
    /// A brick was hit on the previous step (the reference's `strike` quirk: the ball then
    /// passes through a brick it meets right away).
    strike: bool,
    last_x: i32,
    last_y: i32,
}

fn wall() -> [[bool; 10]; 10] {
    let mut bricks = [[false; 10]; 10];
    for row in &mut bricks[1..4] {
        *row = [true; 10];
    }
    bricks
}

impl Game for Breakout {
    const CHANNELS: usize = 4;
    const MINIMAL_ACTIONS: &'static [Action] = &[Action::Noop, Action::Left, Action::Right];

    fn start(rng: &mut NpRandom) -> Self {
        let (ball_x, ball_dir) = if rng.randint(2) == 0 { (0, 2) } else { (9, 3) };
        Breakout {
            ball_x,
            ball_y: 3,
            ball_dir,
            paddle: 4,
            bricks: wall(),
            strike: false,
            last_x: ball_x,
            last_y: 3,
        }
    }

    fn act(&mut self, action: Action, _rng: &mut NpRandom) -> (u32, bool) {
        let mut reward = 0;
        let mut terminal = false;
        match action {
            Action::Left => self.paddle = (self.paddle - 1).max(0),
            Action::Right => self.paddle = (self.paddle + 1).min(9),
            _ => {}
        }
        self.last_x = self.ball_x;
        self.last_y = self.ball_y;
        let (dx, dy) = DIRS[self.ball_dir as usize];
        let (mut x, mut y) = (self.ball_x + dx, self.ball_y + dy);
        let mut strike_toggle = false;
        if !(0..=9).contains(&x) {
            x = x.clamp(0, 9);
            self.ball_dir = MIRROR_X[self.ball_dir as usize];
        }
        if y < 0 {
            y = 0;
            self.ball_dir = MIRROR_Y[self.ball_dir as usize];
        } else if self.bricks[y as usize][x as usize] {
            strike_toggle = true;
            if !self.strike {
                reward += 1;
                self.strike = true;
                self.bricks[y as usize][x as usize] = false;
                y = self.last_y;
                self.ball_dir = MIRROR_Y[self.ball_dir as usize];
            }
        } else if y == 9 {
            if !self.bricks.iter().flatten().any(|&b| b) {
                self.bricks = wall();
            }
            if self.ball_x == self.paddle {
                self.ball_dir = MIRROR_Y[self.ball_dir as usize];
                y = self.last_y;
            } else if x == self.paddle {
                self.ball_dir = REVERSE[self.ball_dir as usize];
                y = self.last_y;
            } else {
                terminal = true;
            }
        }
        if !strike_toggle {
            self.strike = false;
        }
        self.ball_x = x;
        self.ball_y = y;
        (reward, terminal)
    }

    fn render(&self, obs: &mut Grid) {
        obs.set(1, self.ball_y, self.ball_x);
        obs.set(0, 9, self.paddle);
        obs.set(2, self.last_y, self.last_x);
        obs.copy_map(3, &self.bricks);
    }
}
