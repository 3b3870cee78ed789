//! Space Invaders (`minatar/environments/space_invaders.py`): a cannon on the bottom row shoots a
//! descending block of aliens; +1 per alien, terminal when an alien or an alien's bullet reaches
//! the cannon or the block reaches the bottom. Channels: cannon 0, alien 1, alien_left 2,
//! alien_right 3, friendly_bullet 4, enemy_bullet 5. Ramping: each cleared wave moves the next
//! one faster (move interval 12 down to 6).

use super::np_random::NpRandom;
use super::{Action, Game, Grid};

const SHOT_COOL_DOWN: i32 = 5;
const ENEMY_MOVE_INTERVAL: i32 = 12;
const ENEMY_SHOT_INTERVAL: i32 = 10;

type Map = [[bool; 10]; 10];

#[derive(Clone)]
pub struct SpaceInvaders {
    cannon: i32,
    friendly_bullets: Map,
    enemy_bullets: Map,
    aliens: Map,
    /// -1 left, +1 right.
    alien_dir: i32,
    enemy_move_interval: i32,
    alien_move_timer: i32,
    alien_shot_timer: i32,
    shot_timer: i32,
}

fn wave() -> Map {
    let mut aliens = [[false; 10]; 10];
    for row in &mut aliens[0..4] {
        row[2..8].fill(true);
    }
    aliens
}

fn count(map: &Map) -> i32 {
    map.iter().flatten().filter(|&&b| b).count() as i32
}

fn column_occupied(map: &Map, x: usize) -> bool {
    map.iter().any(|row| row[x])
}

impl SpaceInvaders {
    /// The bottom-most alien of the occupied column nearest the cannon (ties: the left one).
    fn nearest_alien(&self) -> Option<(usize, usize)> {
        let pos = self.cannon;
        (0..10)
            .flat_map(|d| [pos - d, pos + d])
            .filter(|x| (0..10).contains(x))
            .map(|x| x as usize)
            .find(|&x| column_occupied(&self.aliens, x))
            .map(|x| ((0..10).rev().find(|&y| self.aliens[y][x]).unwrap(), x))
    }
}

impl Game for SpaceInvaders {
    const CHANNELS: usize = 6;
    const MINIMAL_ACTIONS: &'static [Action] =
        &[Action::Noop, Action::Left, Action::Right, Action::Fire];

    fn start(_rng: &mut NpRandom) -> Self {
        SpaceInvaders {
            cannon: 5,
            friendly_bullets: [[false; 10]; 10],
            enemy_bullets: [[false; 10]; 10],
            aliens: wave(),
            alien_dir: -1,
            enemy_move_interval: ENEMY_MOVE_INTERVAL,
            alien_move_timer: ENEMY_MOVE_INTERVAL,
            alien_shot_timer: ENEMY_SHOT_INTERVAL,
            shot_timer: 0,
        }
    }

    fn act(&mut self, action: Action, _rng: &mut NpRandom) -> (u32, bool) {
        let mut terminal = false;
        let pos = self.cannon as usize;
        if action == Action::Fire && self.shot_timer == 0 {
            self.friendly_bullets[9][pos] = true;
            self.shot_timer = SHOT_COOL_DOWN;
        } else if action == Action::Left {
            self.cannon = (self.cannon - 1).max(0);
        } else if action == Action::Right {
            self.cannon = (self.cannon + 1).min(9);
        }
        let pos = self.cannon as usize;
        // Friendly bullets rise a row and leave at the top; enemy bullets fall and leave at the
        // bottom (the reference rolls the maps and clears the wrapped row).
        self.friendly_bullets.rotate_left(1);
        self.friendly_bullets[9] = [false; 10];
        self.enemy_bullets.rotate_right(1);
        self.enemy_bullets[0] = [false; 10];
        if self.enemy_bullets[9][pos] || self.aliens[9][pos] {
            terminal = true;
        }
        if self.alien_move_timer == 0 {
            self.alien_move_timer = count(&self.aliens).min(self.enemy_move_interval);
            let at_edge = (self.alien_dir < 0 && column_occupied(&self.aliens, 0))
                || (self.alien_dir > 0 && column_occupied(&self.aliens, 9));
            if at_edge {
                self.alien_dir = -self.alien_dir;
                if self.aliens[9].contains(&true) {
                    terminal = true;
                }
                // A roll, as in the reference: the bottom row wraps to the top (the episode has
                // ended if it was occupied).
                self.aliens.rotate_right(1);
            } else {
                for row in &mut self.aliens {
                    if self.alien_dir > 0 {
                        row.rotate_right(1);
                    } else {
                        row.rotate_left(1);
                    }
                }
            }
            if self.aliens[9][pos] {
                terminal = true;
            }
        }
        if self.alien_shot_timer == 0 {
            self.alien_shot_timer = ENEMY_SHOT_INTERVAL;
            if let Some((y, x)) = self.nearest_alien() {
                self.enemy_bullets[y][x] = true;
            }
        }
        let mut reward = 0;
        for (aliens, bullets) in self.aliens.iter_mut().zip(&mut self.friendly_bullets) {
            for (alien, bullet) in aliens.iter_mut().zip(bullets.iter_mut()) {
                if *alien && *bullet {
                    reward += 1;
                    *alien = false;
                    *bullet = false;
                }
            }
        }
        if self.shot_timer > 0 {
            self.shot_timer -= 1;
        }
        self.alien_move_timer -= 1;
        self.alien_shot_timer -= 1;
        if count(&self.aliens) == 0 {
            if self.enemy_move_interval > 6 {
                self.enemy_move_interval -= 1;
            }
            self.aliens = wave();
        }
        (reward, terminal)
    }

    fn render(&self, obs: &mut Grid) {
        obs.set(0, 9, self.cannon);
        let dir_channel = if self.alien_dir < 0 { 2 } else { 3 };
        let maps = [
            (&self.aliens, 1),
            (&self.aliens, dir_channel),
            (&self.friendly_bullets, 4),
            (&self.enemy_bullets, 5),
        ];
        for (map, c) in maps {
            obs.copy_map(c, map);
        }
    }
}
