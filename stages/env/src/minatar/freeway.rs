//! Freeway (`minatar/environments/freeway.py`): a chicken crosses eight lanes of traffic; +1 per
//! crossing (which also re-draws every car's speed and direction), a car hit sends it back to
//! the bottom; the episode ends after 2,500 steps (terminal, as in the reference).
//! Channels: chicken 0, car 1, then the trail of a car of speed k in channel 1 + k (k = 1..5).
//! No difficulty ramping.

use super::np_random::NpRandom;
use super::{Action, Game, Grid};

const PLAYER_SPEED: i32 = 3;
const TIME_LIMIT: i32 = 2500;
const CHICKEN_X: i32 = 4;

#[derive(Clone, Copy)]
struct Car {
    x: i32,
    /// Steps until the next move.
    timer: i32,
    /// Cells per move are always 1; |speed| is the wait between moves, the sign the direction.
    speed: i32,
}

#[derive(Clone)]
pub struct Freeway {
    /// Car i drives along row i + 1.
    cars: [Car; 8],
    chicken_y: i32,
    move_timer: i32,
    terminate_timer: i32,
}

/// Speeds 1..5 with random signs, drawn as the reference does (`randint(1, 6, 8)`, then
/// `sign(rand(8) - 0.5)`).
fn random_speeds(rng: &mut NpRandom) -> [i32; 8] {
    let mut speeds = [0; 8];
    for s in &mut speeds {
        *s = rng.randint_range(1, 6);
    }
    for s in &mut speeds {
        if rng.rand() < 0.5 {
            *s = -*s;
        }
    }
    speeds
}

impl Freeway {
    fn hit(&self, car: &Car, row: usize) -> bool {
        car.x == CHICKEN_X && row as i32 + 1 == self.chicken_y
    }
}

impl Game for Freeway {
    const CHANNELS: usize = 7;
    const MINIMAL_ACTIONS: &'static [Action] = &[Action::Noop, Action::Up, Action::Down];

    fn start(rng: &mut NpRandom) -> Self {
        let speeds = random_speeds(rng);
        Freeway {
            cars: speeds.map(|speed| Car {
                x: 0,
                timer: speed.abs(),
                speed,
            }),
            chicken_y: 9,
            move_timer: PLAYER_SPEED,
            terminate_timer: TIME_LIMIT,
        }
    }

    fn act(&mut self, action: Action, rng: &mut NpRandom) -> (u32, bool) {
        let mut reward = 0;
        if self.move_timer == 0 {
            match action {
                Action::Up => {
                    self.move_timer = PLAYER_SPEED;
                    self.chicken_y = (self.chicken_y - 1).max(0);
                }
                Action::Down => {
                    self.move_timer = PLAYER_SPEED;
                    self.chicken_y = (self.chicken_y + 1).min(9);
                }
                _ => {}
            }
        }
        if self.chicken_y == 0 {
            reward += 1;
            let speeds = random_speeds(rng);
            for (car, speed) in self.cars.iter_mut().zip(speeds) {
                car.timer = speed.abs();
                car.speed = speed;
            }
            self.chicken_y = 9;
        }
        for row in 0..8 {
            let mut car = self.cars[row];
            if self.hit(&car, row) {
                self.chicken_y = 9;
            }
            if car.timer == 0 {
                car.timer = car.speed.abs();
                car.x = (car.x + car.speed.signum()).rem_euclid(10);
                if self.hit(&car, row) {
                    self.chicken_y = 9;
                }
            } else {
                car.timer -= 1;
            }
            self.cars[row] = car;
        }
        if self.move_timer > 0 {
            self.move_timer -= 1;
        }
        self.terminate_timer -= 1;
        (reward, self.terminate_timer < 0)
    }

    fn render(&self, obs: &mut Grid) {
        obs.set(0, self.chicken_y, CHICKEN_X);
        for (row, car) in self.cars.iter().enumerate() {
            let y = row as i32 + 1;
            obs.set(1, y, car.x);
            let back = (car.x - car.speed.signum()).rem_euclid(10);
            obs.set(1 + car.speed.unsigned_abs() as usize, y, back);
        }
    }
}
