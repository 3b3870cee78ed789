//! Normalized scores: `(score - random) / (reference - random)`, so 0 is a uniformly random
//! policy and 1 the reference.
//!
//! **Atari** (human-normalized score, reference = human): the 32 games of Dopamine's
//! `dopamine/labs/atari_100k/normalization_utils.py` (google/dopamine at 1093179), the same numbers
//! as rliable's `deep_rl_precipice_colab.ipynb` (`RANDOM_SCORES`, `HUMAN_SCORES`;
//! google-research/rliable at 3ccd9f4), checked entry by entry. The other 25 games of the Atari-57
//! suite come from DeepMind's `dqn_zoo/atari_data.py` (commit 359945d), the same Agent57/MuZero
//! table. Video Pinball's random score is 0.0 as in Dopamine and rliable (dqn_zoo has 16256.9).
//!
//! **MinAtar** (reference = a trained DQN):
//! - random: mean undiscounted return of a uniformly random policy over the 6 actions,
//!   1,000 episodes per game, with the reference implementation (PyPI `minatar` 1.0.15,
//!   `Environment(game)`: sticky actions 0.1, difficulty ramping; environment seed 0, policy
//!   `numpy.random.RandomState(1)`), measured for prunus with `scripts/minatar_random.py`
//!   (standard errors 0.03, 0.02, 0.01, 0.01, 0.07);
//! - reference: measured, since neither the MinAtar paper (Young & Tian 2019, curves only),
//!   Dopamine nor rliable publishes a MinAtar score table. prunus's DQN with Dopamine's MinAtar
//!   configuration as it is (`dopamine/labs/environments/minatar/dqn_<game>.gin`: the one-conv
//!   `MinatarDQNNetwork`, epsilon decayed over 250k steps), dense, 1M agent steps, seeds 0 and
//!   1: the mean training return of the last 2 of 20 iterations (the last 100k steps), averaged
//!   over the two seeds, to 3 significant digits. It is the `reference` stage of
//!   `pipelines/minatar.kdl`; per seed: Asterix 25.07/25.93, Breakout 5.92/6.31, Freeway
//!   56.38/58.90, Seaquest 3.07/3.26, Space Invaders 25.41/25.34. (Until aggregate version 2
//!   the table held round values read by eye off the MinAtar paper's 5M-frame curves:
//!   25, 15, 60, 25, 80.)
//!
//! Game names match loosely: `atari/ms_pacman`, `MsPacman` and `ms-pacman` are one game.

use crate::error::StatsError;

/// Which reference scores to normalize with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// Raw returns.
    None,
    /// Human-normalized Atari scores.
    Atari,
    /// MinAtar scores normalized by random and reference-DQN returns.
    Minatar,
    /// `Atari` for `atari/*` games, `Minatar` for `minatar/*`, `None` otherwise.
    Auto,
}

impl Normalization {
    pub fn parse(name: &str) -> Result<Normalization, StatsError> {
        Ok(match name {
            "none" => Normalization::None,
            "atari" => Normalization::Atari,
            "minatar" => Normalization::Minatar,
            "auto" => Normalization::Auto,
            other => {
                return Err(StatsError::Unknown(format!(
                    "unknown normalization `{other}`; use atari, minatar, none or auto"
                )));
            }
        })
    }

    /// The normalized score of `score` on `game`.
    pub fn normalize(&self, game: &str, score: f64) -> Result<f64, StatsError> {
        let table = match self {
            Normalization::None => return Ok(score),
            Normalization::Atari => ATARI,
            Normalization::Minatar => MINATAR,
            Normalization::Auto => match game.split_once('/') {
                Some(("atari", _)) => ATARI,
                Some(("minatar", _)) => MINATAR,
                _ => return Ok(score),
            },
        };
        let key = canonical(game);
        let (_, random, reference) = table
            .iter()
            .find(|(g, _, _)| canonical(g) == key)
            .ok_or_else(|| {
                let known: Vec<&str> = table.iter().map(|(g, _, _)| *g).collect();
                StatsError::Unknown(format!(
                    "no reference scores for game `{game}` ({self:?} normalization knows: {}); \
                 use `normalize \"none\"` for raw returns",
                    known.join(", ")
                ))
            })?;
        Ok((score - random) / (reference - random))
    }
}

/// `atari/MsPacman` -> `mspacman`.
fn canonical(game: &str) -> String {
    let name = game.rsplit('/').next().unwrap_or(game);
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// (game, random, human).
const ATARI: &[(&str, f64, f64)] = &[
    // Dopamine's `normalization_utils.py` / rliable's colab (see the module docs).
    ("Alien", 227.8, 7127.7),
    ("Amidar", 5.8, 1719.5),
    ("Assault", 222.4, 742.0),
    ("Asterix", 210.0, 8503.3),
    ("BankHeist", 14.2, 753.1),
    ("BattleZone", 2360.0, 37187.5),
    ("BeamRider", 363.9, 16926.5),
    ("Boxing", 0.1, 12.1),
    ("Breakout", 1.7, 30.5),
    ("ChopperCommand", 811.0, 7387.8),
    ("CrazyClimber", 10780.5, 35829.4),
    ("DemonAttack", 152.1, 1971.0),
    ("Enduro", 0.0, 860.5),
    ("FishingDerby", -91.7, -38.7),
    ("Freeway", 0.0, 29.6),
    ("Frostbite", 65.2, 4334.7),
    ("Gopher", 257.6, 2412.5),
    ("Hero", 1027.0, 30826.4),
    ("Jamesbond", 29.0, 302.8),
    ("Kangaroo", 52.0, 3035.0),
    ("Krull", 1598.0, 2665.5),
    ("KungFuMaster", 258.5, 22736.3),
    ("MsPacman", 307.3, 6951.6),
    ("Pong", -20.7, 14.6),
    ("PrivateEye", 24.9, 69571.3),
    ("Qbert", 163.9, 13455.0),
    ("RoadRunner", 11.5, 7845.0),
    ("Seaquest", 68.4, 42054.7),
    ("SpaceInvaders", 148.0, 1668.7),
    ("Tutankham", 11.4, 167.6),
    ("UpNDown", 533.4, 11693.2),
    ("VideoPinball", 0.0, 17667.9),
    // dqn_zoo atari_data.py (the rest of Atari-57).
    ("Asteroids", 719.1, 47388.7),
    ("Atlantis", 12850.0, 29028.1),
    ("Berzerk", 123.7, 2630.4),
    ("Bowling", 23.1, 160.7),
    ("Centipede", 2090.9, 12017.0),
    ("Defender", 2874.5, 18688.9),
    ("DoubleDunk", -18.6, -16.4),
    ("Gravitar", 173.0, 3351.4),
    ("IceHockey", -11.2, 0.9),
    ("MontezumaRevenge", 0.0, 4753.3),
    ("NameThisGame", 2292.3, 8049.0),
    ("Phoenix", 761.4, 7242.6),
    ("Pitfall", -229.4, 6463.7),
    ("Riverraid", 1338.5, 17118.0),
    ("Robotank", 2.2, 11.9),
    ("Skiing", -17098.1, -4336.9),
    ("Solaris", 1236.3, 12326.7),
    ("StarGunner", 664.0, 10250.0),
    ("Surround", -10.0, 6.5),
    ("Tennis", -23.8, -8.3),
    ("TimePilot", 3568.0, 5229.2),
    ("Venture", 0.0, 1187.5),
    ("WizardOfWor", 563.5, 4756.5),
    ("YarsRevenge", 3092.9, 54576.9),
    ("Zaxxon", 32.5, 9173.3),
];

/// (game, random, reference DQN); see the module docs for how both were measured.
const MINATAR: &[(&str, f64, f64)] = &[
    ("asterix", 0.507, 25.5),
    ("breakout", 0.532, 6.12),
    ("freeway", 0.128, 57.6),
    ("seaquest", 0.115, 3.16),
    ("space_invaders", 2.89, 25.4),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atari_is_human_normalized() {
        let n = Normalization::Atari;
        assert_eq!(n.normalize("atari/breakout", 1.7).unwrap(), 0.0);
        assert!((n.normalize("Breakout", 30.5).unwrap() - 1.0).abs() < 1e-12);
        assert!((n.normalize("atari/ms_pacman", 6951.6).unwrap() - 1.0).abs() < 1e-12);
        assert!((n.normalize("atari/up_n_down", 533.4).unwrap()).abs() < 1e-12);
        // Fishing Derby: random -91.7, human -38.7.
        assert!((n.normalize("atari/fishing_derby", -65.2).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(ATARI.len(), 57);
        let mut names: Vec<String> = ATARI.iter().map(|(g, _, _)| canonical(g)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 57, "duplicate Atari game");
    }

    #[test]
    fn auto_and_errors() {
        let auto = Normalization::Auto;
        assert_eq!(auto.normalize("cartpole", 200.0).unwrap(), 200.0);
        assert_eq!(auto.normalize("minatar/breakout", 0.532).unwrap(), 0.0);
        assert_eq!(auto.normalize("minatar/space_invaders", 25.4).unwrap(), 1.0);
        let err = Normalization::Atari
            .normalize("atari/not_a_game", 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not_a_game") && err.contains("MsPacman"),
            "{err}"
        );
        assert!(Normalization::parse("human").is_err());
    }
}
