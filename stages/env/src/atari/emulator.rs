//! A small safe binding to the Arcade Learning Environment (ALE 0.6, built by `ale-sys`).
//!
//! ALE reports bad input by calling `exit(1)` or throwing C++ exceptions, neither of which may
//! cross into Rust; so everything that could trigger them (ROM name and contents, action
//! range) is checked here before the call, and nothing else of ALE's surface is exposed.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::EnvError;

/// Screen size of the Atari 2600 as ALE renders it.
pub const HEIGHT: usize = 210;
pub const WIDTH: usize = 160;
/// ALE's full action set (`PLAYER_A_NOOP` .. `PLAYER_A_DOWNLEFTFIRE`).
pub const FULL_ACTIONS: usize = 18;

/// One emulator with one ROM loaded, one frame per [`act`](Emulator::act), no preprocessing
/// (that is [`super::Atari`]). Owns its ALE instance exclusively.
pub struct Emulator {
    ale: *mut ale_sys::ALEInterface,
    rom: PathBuf,
    sticky: f32,
    seed: i32,
}

// SAFETY: an ALE instance has no thread affinity; `Emulator` owns it exclusively and every
// method takes `&mut self` or reads through `&self` without ALE-side mutation racing.
unsafe impl Send for Emulator {}

impl Emulator {
    /// The raw emulator for `game`, its ROM verified in `rom_dir` (see [`super::roms::dir`]).
    pub fn open(
        game: &str,
        rom_dir: Option<&Path>,
        sticky: f32,
        seed: i32,
    ) -> Result<Emulator, EnvError> {
        let rom = super::roms::locate(game, &super::roms::dir(rom_dir))?;
        if !(0.0..=1.0).contains(&sticky) {
            return Err(EnvError::Other(format!(
                "sticky-action probability must be in [0, 1], got {sticky}"
            )));
        }
        Ok(Emulator::load(&rom, sticky, seed))
    }

    /// Loads `rom` (already verified by the caller: its file name is the game's, so ALE finds
    /// the game's settings) with the given sticky-action probability and seed.
    pub(crate) fn load(rom: &Path, sticky: f32, seed: i32) -> Emulator {
        let rom = rom.to_path_buf();
        static QUIET: Once = Once::new();
        // SAFETY: plain setters on a fresh instance; the ROM was checked to exist and to be a
        // supported game, the only conditions under which `loadROM` would exit the process.
        unsafe {
            QUIET.call_once(|| ale_sys::setLoggerMode(2));
            let ale = ale_sys::ALE_new();
            let key = |k: &str| CString::new(k).expect("no NUL in key");
            ale_sys::setFloat(ale, key("repeat_action_probability").as_ptr(), sticky);
            ale_sys::setInt(ale, key("random_seed").as_ptr(), seed);
            let path = CString::new(rom.as_os_str().as_encoded_bytes()).expect("ROM path has NUL");
            ale_sys::loadROM(ale, path.as_ptr());
            Emulator {
                ale,
                rom,
                sticky,
                seed,
            }
        }
    }

    /// Emulates one frame with `action`, an index into ALE's full set of 18; returns the
    /// frame's reward.
    pub fn act(&mut self, action: usize) -> Result<i32, EnvError> {
        if action >= FULL_ACTIONS {
            return Err(EnvError::ActionOutOfRange {
                action,
                num_actions: FULL_ACTIONS,
            });
        }
        // SAFETY: a valid instance and an action inside ALE's enum.
        Ok(unsafe { ale_sys::act(self.ale, action as i32) })
    }

    /// Reloads the ROM with a new seed of ALE's random stream (sticky actions).
    pub fn reseed(&mut self, seed: i32) {
        *self = Emulator::load(&self.rom, self.sticky, seed);
    }

    pub fn game_over(&self) -> bool {
        // SAFETY: a valid instance with a ROM loaded.
        unsafe { ale_sys::game_over(self.ale) }
    }

    pub fn reset(&mut self) {
        // SAFETY: as above.
        unsafe { ale_sys::reset_game(self.ale) }
    }

    pub fn lives(&self) -> i32 {
        // SAFETY: a ROM is loaded (`lives` throws only without one).
        unsafe { ale_sys::lives(self.ale) }
    }

    /// The game's minimal action set, as indices into the full set.
    pub fn minimal_actions(&self) -> Vec<usize> {
        // SAFETY: the buffer is sized by ALE's own count.
        let raw = unsafe {
            let n = ale_sys::getMinimalActionSize(self.ale) as usize;
            let mut out = vec![0i32; n];
            ale_sys::getMinimalActionSet(self.ale, out.as_mut_ptr());
            out
        };
        raw.into_iter().map(|a| a as usize).collect()
    }

    /// Writes the current screen as 8-bit luminance (ALE's NTSC grayscale), `HEIGHT x WIDTH`,
    /// row-major.
    pub fn grayscale(&self, out: &mut [u8]) {
        assert_eq!(out.len(), HEIGHT * WIDTH);
        // SAFETY: `out` holds exactly one screen.
        unsafe { ale_sys::getScreenGrayscale(self.ale, out.as_mut_ptr()) }
    }

    /// An independent emulator in the same state (RAM, CPU, random stream).
    pub fn duplicate(&self) -> Emulator {
        let copy = Emulator::load(&self.rom, self.sticky, self.seed);
        // SAFETY: both instances run the same ROM; the state is deleted after restoring.
        unsafe {
            let state = ale_sys::cloneSystemState(self.ale);
            ale_sys::restoreSystemState(copy.ale, state);
            ale_sys::deleteState(state);
        }
        copy
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SAFETY: created by `ALE_new`, dropped once.
        unsafe { ale_sys::ALE_del(self.ale) }
    }
}
