//! Whole-store transfers (`prunus store push` / `pull`): each side is listed once, only what
//! the other side lacks moves, many objects at a time. Blobs go before the entry that names
//! them, and every object is complete or absent (see [`Remote`]), so an interrupted transfer
//! leaves nothing partial and running it again finishes it.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::remote::{EntryTrust, Put, Remote};
use crate::{Digest, Store, StoreError};

/// How far a transfer is: objects and bytes done of those it found missing (for a pull the
/// total bytes are unknown until each entry is read, and bytes count the blobs' contents).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncProgress {
    pub objects: u64,
    pub total_objects: u64,
    pub bytes: u64,
    pub total_bytes: u64,
}

/// What a transfer moved, and the results it could not (each with why; the others moved).
#[derive(Debug, Default)]
pub struct SyncReport {
    pub actions: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub failed: Vec<(Digest, StoreError)>,
}

/// Shared counters of a running transfer, reported after every object.
struct Counter<'a> {
    done: AtomicU64,
    bytes: AtomicU64,
    totals: (u64, u64),
    report: &'a (dyn Fn(SyncProgress) + Sync),
}

impl Counter<'_> {
    fn add(&self, bytes: u64) {
        let progress = SyncProgress {
            objects: self.done.fetch_add(1, Ordering::Relaxed) + 1,
            total_objects: self.totals.0,
            bytes: self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes,
            total_bytes: self.totals.1,
        };
        (self.report)(progress);
    }
}

impl Store {
    /// Pushes every result the remote lacks: its blobs the remote lacks, then its entry,
    /// signed by `trust`; `jobs` objects at a time.
    pub fn push_all(
        &self,
        remote: &dyn Remote,
        trust: &dyn EntryTrust,
        jobs: usize,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, StoreError> {
        self.push(remote, trust, None, jobs, progress)
    }

    /// Pulls every result of the remote this store lacks and `trust` accepts.
    pub fn pull_all(
        &self,
        remote: &dyn Remote,
        trust: &dyn EntryTrust,
        jobs: usize,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, StoreError> {
        self.pull(remote, trust, None, jobs, progress)
    }

    /// Pushes the results the remote lacks (of those keyed in `only`, if given): their blobs
    /// the remote lacks, then their entries, signed by `trust`; `jobs` objects at a time.
    pub fn push(
        &self,
        remote: &dyn Remote,
        trust: &dyn EntryTrust,
        only: Option<&HashSet<Digest>>,
        jobs: usize,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, StoreError> {
        let there: HashSet<Digest> = remote.list_actions()?.into_iter().collect();
        let actions: Vec<_> = self
            .actions()?
            .into_iter()
            .filter(|(k, _)| !there.contains(k) && only.is_none_or(|o| o.contains(k)))
            .collect();
        // Nothing to push is the common case (a store pushed before): one listing, not two.
        let blobs_there: HashSet<Digest> = if actions.is_empty() {
            HashSet::new()
        } else {
            remote.list_blobs()?.into_iter().collect()
        };
        let mut seen = HashSet::new();
        let blobs: Vec<(Digest, u64)> = actions
            .iter()
            .flat_map(|(_, r)| r.blobs().map(|(_, b)| b))
            .filter(|b| !blobs_there.contains(&b.digest) && seen.insert(b.digest))
            .map(|b| (b.digest, self.blob_file_len(&b.digest)))
            .collect();
        let counter = Counter {
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            totals: (
                (blobs.len() + actions.len()) as u64,
                blobs.iter().map(|(_, n)| n).sum(),
            ),
            report: progress,
        };
        let report = Mutex::new(SyncReport::default());
        let failed_blobs: Mutex<HashSet<Digest>> = Mutex::default();
        parallel(&blobs, jobs, |(d, len)| {
            let put = self.send_blob(remote, d);
            let mut r = report.lock().unwrap();
            match put {
                Ok(Put::Created) => {
                    r.blobs += 1;
                    r.bytes += len;
                }
                Ok(Put::Existed) => {}
                Err(e) => {
                    failed_blobs.lock().unwrap().insert(*d);
                    r.failed.push((*d, e));
                }
            }
            drop(r);
            counter.add(*len);
        });
        let failed_blobs = failed_blobs.into_inner().unwrap();
        parallel(&actions, jobs, |(key, result)| {
            // An entry goes up only after all its blobs are there.
            if result
                .blobs()
                .all(|(_, b)| !failed_blobs.contains(&b.digest))
            {
                let put = self.push_entry(remote, key, result, trust);
                let mut r = report.lock().unwrap();
                match put {
                    Ok(Put::Created) => r.actions += 1,
                    Ok(Put::Existed) => {}
                    Err(e) => r.failed.push((*key, e)),
                }
            }
            counter.add(0);
        });
        Ok(report.into_inner().unwrap())
    }

    /// Pulls the results of the remote this store lacks (of those keyed in `only`, if given)
    /// and `trust` accepts: each entry, checked, then its blobs, verified as they stream in;
    /// `jobs` results at a time.
    pub fn pull(
        &self,
        remote: &dyn Remote,
        trust: &dyn EntryTrust,
        only: Option<&HashSet<Digest>>,
        jobs: usize,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, StoreError> {
        let here = self.action_keys()?;
        let missing: Vec<Digest> = remote
            .list_actions()?
            .into_iter()
            .filter(|k| !here.contains(k) && only.is_none_or(|o| o.contains(k)))
            .collect();
        let counter = Counter {
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            totals: (missing.len() as u64, 0),
            report: progress,
        };
        let report = Mutex::new(SyncReport::default());
        parallel(&missing, jobs, |key| {
            let fetched = self.fetch_action(remote, key, trust);
            let mut r = report.lock().unwrap();
            let mut bytes = 0;
            match fetched {
                Ok(Some(result)) => {
                    r.actions += 1;
                    r.blobs += result.blobs().count() as u64;
                    bytes = result.blobs().map(|(_, b)| b.size).sum();
                }
                Ok(None) => {}
                Err(e) => r.failed.push((*key, e)),
            }
            drop(r);
            counter.add(bytes);
        });
        let mut report = report.into_inner().unwrap();
        report.bytes = counter.bytes.load(Ordering::Relaxed);
        Ok(report)
    }

    /// The size of a blob's file (what moves over the wire), 0 if it cannot be read.
    fn blob_file_len(&self, d: &Digest) -> u64 {
        std::fs::metadata(self.blob_path(d)).map_or(0, |m| m.len())
    }
}

/// Runs `f` on every item, `jobs` threads pulling from one queue.
fn parallel<T: Sync>(items: &[T], jobs: usize, f: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(item);
                }
            });
        }
    });
}
