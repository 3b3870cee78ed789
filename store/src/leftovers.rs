//! Leftovers of dead processes: the `work/` directories and `tmp/` files that a killed run
//! leaves behind. Each is tied to a lock that dies with its owner, so whether its owner is
//! alive is a question to the lock, not to the file's age: a work directory is in use while
//! its stage's lock is held, a temp file while its writer holds its `flock`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{IoContext, StoreError};
use crate::{Digest, StageLock, Store};

/// Something `gc` kept, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    /// Relative to the store root, e.g. `work/<key>-a1b2c3`.
    pub path: PathBuf,
    pub why: String,
}

/// What was removed: how many work directories and temp files, and their bytes.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    pub work: u64,
    pub temp: u64,
    pub bytes: u64,
    pub kept: Vec<Kept>,
}

impl Store {
    /// Removes the work directories and temp files whose owners are dead; reports the rest.
    pub(crate) fn sweep_leftovers(&self) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        self.sweep_work(&mut swept)?;
        self.sweep_tmp(&mut swept)?;
        Ok(swept)
    }

    fn sweep_work(&self, swept: &mut Swept) -> Result<(), StoreError> {
        let work = self.root.join("work");
        let locks = self.lock_keys()?;
        for (name, path) in list(&work)? {
            let rel = Path::new("work").join(&name);
            // `<key>-<random>`; older prunus versions named them by a 16-digit key prefix.
            let prefix = name.split('-').next().unwrap_or_default();
            if !(16..=64).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
            {
                swept.kept.push(Kept {
                    path: rel,
                    why: "not named after a stage key, so prunus did not make it; remove it by \
                          hand if nothing else uses it"
                        .into(),
                });
                continue;
            }
            let owners = locks.iter().filter(|k| k.to_string().starts_with(prefix));
            match self.lock_all(owners)? {
                Err(running) => swept.kept.push(Kept {
                    path: rel,
                    why: format!("stage {} is running (its lock is held)", short(&running)),
                }),
                Ok(_held) => {
                    swept.bytes += remove_dir(&path)?;
                    swept.work += 1;
                }
            }
        }
        Ok(())
    }

    fn sweep_tmp(&self, swept: &mut Swept) -> Result<(), StoreError> {
        let tmp = self.root.join("tmp");
        for (name, path) in list(&tmp)? {
            let rel = Path::new("tmp").join(&name);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                swept.bytes += remove_dir(&path)?; // prunus makes only files here
                swept.temp += 1;
                continue;
            }
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // renamed into place
                Err(e) => return Err(StoreError::io("open temp file", &path, e)),
            };
            match file.try_lock() {
                Ok(()) => {
                    // Removed while locked: see `Store::temp_file`.
                    let len = file.metadata().map_or(0, |m| m.len());
                    match fs::remove_file(&path) {
                        Ok(()) => {
                            swept.bytes += len;
                            swept.temp += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io("remove temp file", &path, e)),
                    }
                }
                Err(fs::TryLockError::WouldBlock) => swept.kept.push(Kept {
                    path: rel,
                    why: "being written by a running process (its lock is held)".into(),
                }),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(StoreError::io("lock temp file", &path, e));
                }
            }
        }
        Ok(())
    }

    /// The keys of every stage lock file (held or not).
    fn lock_keys(&self) -> Result<Vec<Digest>, StoreError> {
        let mut keys: Vec<Digest> = list(&self.root.join("locks"))?
            .into_iter()
            .filter_map(|(name, _)| name.strip_suffix(".lock")?.parse().ok())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Takes every one of these stage locks, or names one that another process holds.
    fn lock_all<'a>(
        &self,
        keys: impl Iterator<Item = &'a Digest>,
    ) -> Result<Result<Vec<StageLock>, Digest>, StoreError> {
        let mut held = Vec::new();
        for key in keys {
            match self.try_lock_stage(key)? {
                Some(lock) => held.push(lock),
                None => return Ok(Err(*key)),
            }
        }
        Ok(Ok(held))
    }
}

/// The entries of `dir` (none if it does not exist), sorted by name.
fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.ctx("list", dir)?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

fn remove_dir(path: &Path) -> Result<u64, StoreError> {
    let size = crate::maint::tree_size(path);
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io("remove", path, e)),
    }
}

fn short(key: &Digest) -> String {
    key.to_string()[..16].to_string()
}
