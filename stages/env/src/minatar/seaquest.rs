//! Seaquest (`minatar/environments/seaquest.py`): a submarine shoots fish and enemy subs (+1
//! each), rescues divers, and must surface before its oxygen runs out; surfacing with six divers
//! pays up to 10 for the oxygen left, surfacing with none is terminal.
//! Channels: sub_front 0, sub_back 1, friendly_bullet 2, trail 3, enemy_bullet 4, enemy_fish 5,
//! enemy_sub 6, oxygen_gauge 7, diver_gauge 8, diver 9. Ramping: each surfacing makes enemies
//! spawn (and, every other time, move) faster.
//!
//! The reference keeps entities in Python lists, walks them backwards and removes them while
//! walking; the vectors here keep the same order and removal points, so collisions resolve in
//! the same order (including its quirk that an enemy sub destroyed while moving still fires).

use super::np_random::NpRandom;
use super::{Action, Game, Grid};

const MAX_OXYGEN: i32 = 200;
const INIT_SPAWN_SPEED: i32 = 20;
const DIVER_SPAWN_SPEED: i32 = 30;
const INIT_MOVE_INTERVAL: i32 = 5;
const SHOT_COOL_DOWN: i32 = 5;
const ENEMY_SHOT_INTERVAL: i32 = 10;
const DIVER_MOVE_INTERVAL: i32 = 5;

/// Anything that travels along a row: bullets, fish, enemy subs, divers.
#[derive(Clone, Copy, Debug)]
struct Mover {
    x: i32,
    y: i32,
    right: bool,
    /// Steps until the next move (not used by bullets, which move every step).
    move_timer: i32,
    /// Steps until the next shot (enemy subs only).
    shot_timer: i32,
}

impl Mover {
    fn advance(&mut self) {
        self.x += if self.right { 1 } else { -1 };
    }
    fn off_grid(&self) -> bool {
        !(0..=9).contains(&self.x)
    }
    fn at(&self, x: i32, y: i32) -> bool {
        self.x == x && self.y == y
    }
    fn back(&self) -> i32 {
        if self.right { self.x - 1 } else { self.x + 1 }
    }
}

#[derive(Clone)]
pub struct Seaquest {
    oxygen: i32,
    /// Rescued divers; -1 after a six-diver surfacing, as in the reference.
    diver_count: i32,
    sub_x: i32,
    sub_y: i32,
    facing_right: bool,
    f_bullets: Vec<Mover>,
    e_bullets: Vec<Mover>,
    e_fish: Vec<Mover>,
    e_subs: Vec<Mover>,
    divers: Vec<Mover>,
    e_spawn_speed: i32,
    e_spawn_timer: i32,
    d_spawn_timer: i32,
    move_speed: i32,
    ramp_index: u32,
    shot_timer: i32,
    surface: bool,
}

fn mover(x: i32, y: i32, right: bool, move_timer: i32) -> Mover {
    Mover {
        x,
        y,
        right,
        move_timer,
        shot_timer: ENEMY_SHOT_INTERVAL,
    }
}

impl Seaquest {
    /// A fish (2/3) or sub (1/3) from a random side into a random row 1-8, unless an enemy in
    /// that row travels the other way.
    fn spawn_enemy(&mut self, rng: &mut NpRandom) {
        let right = rng.rand() < 0.5;
        let is_sub = rng.rand() < 1.0 / 3.0;
        let y = rng.randint_range(1, 9);
        let x = if right { 0 } else { 9 };
        let blocked = self
            .e_subs
            .iter()
            .chain(&self.e_fish)
            .any(|z| z.y == y && z.right != right);
        if blocked {
            return;
        }
        let enemy = mover(x, y, right, self.move_speed);
        if is_sub {
            self.e_subs.push(enemy);
        } else {
            self.e_fish.push(enemy);
        }
    }

    fn spawn_diver(&mut self, rng: &mut NpRandom) {
        let right = rng.rand() < 0.5;
        let y = rng.randint_range(1, 9);
        self.divers.push(mover(
            if right { 0 } else { 9 },
            y,
            right,
            DIVER_MOVE_INTERVAL,
        ));
    }

    /// Arriving at the surface with divers: refill oxygen, drop a diver, pay for a full crew,
    /// and ramp the difficulty.
    fn surface(&mut self) -> u32 {
        self.surface = true;
        let reward = if self.diver_count == 6 {
            self.diver_count = 0;
            (self.oxygen * 10 / MAX_OXYGEN) as u32
        } else {
            0
        };
        self.oxygen = MAX_OXYGEN;
        self.diver_count -= 1;
        if self.e_spawn_speed > 1 || self.move_speed > 2 {
            if self.move_speed > 2 && self.ramp_index % 2 == 1 {
                self.move_speed -= 1;
            }
            if self.e_spawn_speed > 1 {
                self.e_spawn_speed -= 1;
            }
            self.ramp_index += 1;
        }
        reward
    }

    fn bullet_at(&self, e: &Mover) -> Option<usize> {
        self.f_bullets.iter().position(|b| b.at(e.x, e.y))
    }

    /// Enemies and divers due this step appear.
    fn spawn(&mut self, rng: &mut NpRandom) {
        if self.e_spawn_timer == 0 {
            self.spawn_enemy(rng);
            self.e_spawn_timer = self.e_spawn_speed;
        }
        if self.d_spawn_timer == 0 {
            self.spawn_diver(rng);
            self.d_spawn_timer = DIVER_SPAWN_SPEED;
        }
    }

    /// The player's action: fire (when the gun has cooled down) or move.
    fn control(&mut self, action: Action) {
        if action == Action::Fire && self.shot_timer == 0 {
            let bullet = mover(self.sub_x, self.sub_y, self.facing_right, 0);
            self.f_bullets.push(bullet);
            self.shot_timer = SHOT_COOL_DOWN;
        } else {
            match action {
                Action::Left => {
                    self.sub_x = (self.sub_x - 1).max(0);
                    self.facing_right = false;
                }
                Action::Right => {
                    self.sub_x = (self.sub_x + 1).min(9);
                    self.facing_right = true;
                }
                Action::Up => self.sub_y = (self.sub_y - 1).max(0),
                Action::Down => self.sub_y = (self.sub_y + 1).min(8),
                _ => {}
            }
        }
    }

    /// Friendly bullets: fly, leave the grid, or destroy a fish (checked first) or a sub.
    fn fly_friendly_bullets(&mut self) -> u32 {
        let mut reward = 0;
        for i in (0..self.f_bullets.len()).rev() {
            self.f_bullets[i].advance();
            let b = self.f_bullets[i];
            if b.off_grid() {
                self.f_bullets.remove(i);
            } else if let Some(j) = self.e_fish.iter().position(|f| f.at(b.x, b.y)) {
                self.e_fish.remove(j);
                self.f_bullets.remove(i);
                reward += 1;
            } else if let Some(j) = self.e_subs.iter().position(|s| s.at(b.x, b.y)) {
                self.e_subs.remove(j);
                self.f_bullets.remove(i);
                reward += 1;
            }
        }
        reward
    }

    /// Divers: picked up where the sub is (room for six), otherwise drift every 5 steps.
    fn move_divers(&mut self, sx: i32, sy: i32) {
        for i in (0..self.divers.len()).rev() {
            let mut d = self.divers[i];
            if d.at(sx, sy) && self.diver_count < 6 {
                self.divers.remove(i);
                self.diver_count += 1;
            } else if d.move_timer == 0 {
                d.move_timer = DIVER_MOVE_INTERVAL;
                d.advance();
                if d.off_grid() {
                    self.divers.remove(i);
                } else if d.at(sx, sy) && self.diver_count < 6 {
                    self.divers.remove(i);
                    self.diver_count += 1;
                } else {
                    self.divers[i] = d;
                }
            } else {
                d.move_timer -= 1;
                self.divers[i] = d;
            }
        }
    }

    /// Enemy subs: ram the player, move, meet bullets, and fire every 10 steps.
    fn move_enemy_subs(&mut self, sx: i32, sy: i32) -> (u32, bool) {
        let (mut reward, mut terminal) = (0, false);
        for i in (0..self.e_subs.len()).rev() {
            let mut s = self.e_subs[i];
            let mut removed = false;
            if s.at(sx, sy) {
                terminal = true;
            }
            if s.move_timer == 0 {
                s.move_timer = self.move_speed;
                s.advance();
                if s.off_grid() {
                    removed = true;
                } else if s.at(sx, sy) {
                    terminal = true;
                } else if let Some(j) = self.bullet_at(&s) {
                    removed = true;
                    self.f_bullets.remove(j);
                    reward += 1;
                }
            } else {
                s.move_timer -= 1;
            }
            // The reference lets a sub that just left or was destroyed fire once more.
            if s.shot_timer == 0 {
                s.shot_timer = ENEMY_SHOT_INTERVAL;
                self.e_bullets.push(mover(s.x, s.y, s.right, 0));
            } else {
                s.shot_timer -= 1;
            }
            if removed {
                self.e_subs.remove(i);
            } else {
                self.e_subs[i] = s;
            }
        }
        (reward, terminal)
    }

    /// Enemy bullets fly every step and end the episode on the player.
    fn fly_enemy_bullets(&mut self, sx: i32, sy: i32) -> bool {
        let mut terminal = false;
        for i in (0..self.e_bullets.len()).rev() {
            if self.e_bullets[i].at(sx, sy) {
                terminal = true;
            }
            self.e_bullets[i].advance();
            let b = self.e_bullets[i];
            if b.off_grid() {
                self.e_bullets.remove(i);
            } else if b.at(sx, sy) {
                terminal = true;
            }
        }
        terminal
    }

    /// Fish: as enemy subs, without shooting.
    fn move_fish(&mut self, sx: i32, sy: i32) -> (u32, bool) {
        let (mut reward, mut terminal) = (0, false);
        for i in (0..self.e_fish.len()).rev() {
            let mut f = self.e_fish[i];
            if f.at(sx, sy) {
                terminal = true;
            }
            if f.move_timer == 0 {
                f.move_timer = self.move_speed;
                f.advance();
                if f.off_grid() {
                    self.e_fish.remove(i);
                    continue;
                } else if f.at(sx, sy) {
                    terminal = true;
                } else if let Some(j) = self.bullet_at(&f) {
                    self.e_fish.remove(i);
                    self.f_bullets.remove(j);
                    reward += 1;
                    continue;
                }
            } else {
                f.move_timer -= 1;
            }
            self.e_fish[i] = f;
        }
        (reward, terminal)
    }

    /// Timers count down; oxygen runs out below the surface, and surfacing pays for divers
    /// (or ends the episode without any).
    fn tick(&mut self) -> (u32, bool) {
        let (mut reward, mut terminal) = (0, false);
        if self.e_spawn_timer > 0 {
            self.e_spawn_timer -= 1;
        }
        if self.d_spawn_timer > 0 {
            self.d_spawn_timer -= 1;
        }
        if self.shot_timer > 0 {
            self.shot_timer -= 1;
        }
        if self.oxygen <= 0 {
            terminal = true;
        }
        if self.sub_y > 0 {
            self.oxygen -= 1;
            self.surface = false;
        } else if !self.surface {
            if self.diver_count == 0 {
                terminal = true;
            } else {
                reward += self.surface();
            }
        }
        (reward, terminal)
    }
}

impl Game for Seaquest {
    const CHANNELS: usize = 10;
    const MINIMAL_ACTIONS: &'static [Action] = &[
        Action::Noop,
        Action::Left,
        Action::Up,
        Action::Right,
        Action::Down,
        Action::Fire,
    ];

    fn start(_rng: &mut NpRandom) -> Self {
        Seaquest {
            oxygen: MAX_OXYGEN,
            diver_count: 0,
            sub_x: 5,
            sub_y: 0,
            facing_right: false,
            f_bullets: Vec::new(),
            e_bullets: Vec::new(),
            e_fish: Vec::new(),
            e_subs: Vec::new(),
            divers: Vec::new(),
            e_spawn_speed: INIT_SPAWN_SPEED,
            e_spawn_timer: INIT_SPAWN_SPEED,
            d_spawn_timer: DIVER_SPAWN_SPEED,
            move_speed: INIT_MOVE_INTERVAL,
            ramp_index: 0,
            shot_timer: 0,
            surface: true,
        }
    }

    fn act(&mut self, action: Action, rng: &mut NpRandom) -> (u32, bool) {
        self.spawn(rng);
        self.control(action);
        let (sx, sy) = (self.sub_x, self.sub_y);
        let mut reward = self.fly_friendly_bullets();
        self.move_divers(sx, sy);
        let (r, mut terminal) = self.move_enemy_subs(sx, sy);
        reward += r;
        terminal |= self.fly_enemy_bullets(sx, sy);
        let (r, t) = self.move_fish(sx, sy);
        reward += r;
        terminal |= t;
        let (r, t) = self.tick();
        (reward + r, terminal || t)
    }

    fn render(&self, obs: &mut Grid) {
        obs.set(0, self.sub_y, self.sub_x);
        let back = if self.facing_right {
            self.sub_x - 1
        } else {
            self.sub_x + 1
        };
        if (0..=9).contains(&back) {
            obs.set(1, self.sub_y, back);
        }
        for x in 0..self.oxygen.max(0) * 10 / MAX_OXYGEN {
            obs.set(7, 9, x);
        }
        for x in 9 - self.diver_count..9 {
            obs.set(8, 9, x);
        }
        for b in &self.f_bullets {
            obs.set(2, b.y, b.x);
        }
        for b in &self.e_bullets {
            obs.set(4, b.y, b.x);
        }
        for (list, c) in [(&self.e_fish, 5), (&self.e_subs, 6), (&self.divers, 9)] {
            for e in list {
                obs.set(c, e.y, e.x);
                let back = e.back();
                if (0..=9).contains(&back) {
                    obs.set(3, e.y, back);
                }
            }
        }
    }
}
