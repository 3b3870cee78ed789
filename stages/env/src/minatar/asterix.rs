//! Asterix (`minatar/environments/asterix.py`): the player moves in four directions; enemies
//! and gold cross rows 1-8 from the sides; +1 per gold, terminal on touching an enemy.
//! Channels: player 0, enemy 1, trail 2, gold 3. Ramping: every 100 steps (after the first
//! 102) the spawn interval, and every other time the move interval, shrink by one.

use super::np_random::NpRandom;
use super::{Action, Game, Grid};

const RAMP_INTERVAL: i32 = 100;
const INIT_SPAWN_SPEED: i32 = 10;
const INIT_MOVE_INTERVAL: i32 = 5;

#[derive(Clone, Copy)]
struct Entity {
    x: i32,
    right: bool,
    gold: bool,
}

#[derive(Clone)]
pub struct Asterix {
    player_x: i32,
    player_y: i32,
    /// Slot i travels along row i + 1.
    slots: [Option<Entity>; 8],
    spawn_speed: i32,
    spawn_timer: i32,
    move_speed: i32,
    move_timer: i32,
    ramp_timer: i32,
    ramp_index: u32,
}

impl Asterix {
    /// An enemy or gold entering from a random side into a random free row, if any is free.
    fn spawn(&mut self, rng: &mut NpRandom) {
        let right = rng.rand() < 0.5;
        let gold = rng.rand() < 1.0 / 3.0;
        let (mut free, mut n) = ([0; 8], 0);
        for (i, s) in self.slots.iter().enumerate() {
            if s.is_none() {
                free[n] = i;
                n += 1;
            }
        }
        if n == 0 {
            return;
        }
        let slot = free[rng.randint(n as u32) as usize];
        self.slots[slot] = Some(Entity {
            x: if right { 0 } else { 9 },
            right,
            gold,
        });
    }

    /// Gold under the player is collected (+1); an enemy there ends the episode.
    fn collide(&mut self, slot: usize, reward: &mut u32, terminal: &mut bool) {
        if let Some(e) = self.slots[slot]
            && e.x == self.player_x
            && slot as i32 + 1 == self.player_y
        {
            if e.gold {
                self.slots[slot] = None;
                *reward += 1;
            } else {
                *terminal = true;
            }
        }
    }
}

impl Game for Asterix {
    const CHANNELS: usize = 4;
    const MINIMAL_ACTIONS: &'static [Action] = &[
        Action::Noop,
        Action::Left,
        Action::Up,
        Action::Right,
        Action::Down,
    ];

    fn start(_rng: &mut NpRandom) -> Self {
        Asterix {
            player_x: 5,
            player_y: 5,
            slots: [None; 8],
            spawn_speed: INIT_SPAWN_SPEED,
            spawn_timer: INIT_SPAWN_SPEED,
            move_speed: INIT_MOVE_INTERVAL,
            move_timer: INIT_MOVE_INTERVAL,
            ramp_timer: RAMP_INTERVAL,
            ramp_index: 0,
        }
    }

    fn act(&mut self, action: Action, rng: &mut NpRandom) -> (u32, bool) {
        let (mut reward, mut terminal) = (0, false);
        if self.spawn_timer == 0 {
            self.spawn(rng);
            self.spawn_timer = self.spawn_speed;
        }
        match action {
            Action::Left => self.player_x = (self.player_x - 1).max(0),
            Action::Right => self.player_x = (self.player_x + 1).min(9),
            Action::Up => self.player_y = (self.player_y - 1).max(1),
            Action::Down => self.player_y = (self.player_y + 1).min(8),
            _ => {}
        }
        for slot in 0..8 {
            self.collide(slot, &mut reward, &mut terminal);
        }
        if self.move_timer == 0 {
            self.move_timer = self.move_speed;
            for slot in 0..8 {
                if let Some(e) = &mut self.slots[slot] {
                    e.x += if e.right { 1 } else { -1 };
                    if !(0..=9).contains(&e.x) {
                        self.slots[slot] = None;
                    }
                }
                self.collide(slot, &mut reward, &mut terminal);
            }
        }
        self.spawn_timer -= 1;
        self.move_timer -= 1;
        if self.spawn_speed > 1 || self.move_speed > 1 {
            if self.ramp_timer >= 0 {
                self.ramp_timer -= 1;
            } else {
                if self.move_speed > 1 && self.ramp_index % 2 == 1 {
                    self.move_speed -= 1;
                }
                if self.spawn_speed > 1 {
                    self.spawn_speed -= 1;
                }
                self.ramp_index += 1;
                self.ramp_timer = RAMP_INTERVAL;
            }
        }
        (reward, terminal)
    }

    fn render(&self, obs: &mut Grid) {
        obs.set(0, self.player_y, self.player_x);
        for (slot, e) in self.slots.iter().enumerate() {
            let Some(e) = e else { continue };
            let y = slot as i32 + 1;
            obs.set(if e.gold { 3 } else { 1 }, y, e.x);
            let back = if e.right { e.x - 1 } else { e.x + 1 };
            if (0..=9).contains(&back) {
                obs.set(2, y, back);
            }
        }
    }
}
