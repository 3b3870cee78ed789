//! A run's remote cache (`prunus run --remote R`): before an instance runs, its key is looked
//! up on the remote too; on a hit its outputs are fetched (each blob verified, the entry
//! checked by the trust policy) and it counts as cached. After an instance runs, or when a
//! local result is one the remote lacks, it is pushed, unless the remote is read-only.
//!
//! Transfers run on their own threads ([`Transfers`]), so a 20 GB checkpoint streaming in
//! holds no executor slot and does not stall the scheduler.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use prunus_store::{ActionResult, Digest, EntryTrust, Remote, Store, StoreError};

/// A remote and how a run uses it.
pub struct RemoteCache {
    remote: Arc<dyn Remote>,
    trust: Arc<dyn EntryTrust>,
    read_only: bool,
    /// The remote's entries when the run began: a key it lacks costs no request.
    actions: HashSet<Digest>,
}

impl fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCache")
            .field("remote", &self.remote.name())
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// What the remote has for a key.
pub enum Found {
    Absent,
    /// A checked entry (not yet fetched).
    Result(ActionResult),
    /// An entry the run does not use, and why (untrusted, invalid, unreadable): the instance
    /// runs here instead.
    Refused(String),
}

impl RemoteCache {
    /// Lists the remote's entries once. An unreachable remote or refused credentials are an
    /// error here, before anything runs.
    pub fn connect(
        remote: Arc<dyn Remote>,
        trust: Arc<dyn EntryTrust>,
        read_only: bool,
    ) -> Result<RemoteCache, StoreError> {
        let actions = remote.list_actions()?.into_iter().collect();
        Ok(RemoteCache {
            remote,
            trust,
            read_only,
            actions,
        })
    }

    pub fn name(&self) -> &str {
        self.remote.name()
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The remote itself, for an executor whose jobs move results through it.
    pub fn remote(&self) -> &Arc<dyn Remote> {
        &self.remote
    }

    /// Whom the run believes, for results fetched outside the run's own transfers.
    pub fn trust(&self) -> &Arc<dyn EntryTrust> {
        &self.trust
    }

    /// Whether the remote had an entry for `key` when the run began.
    pub fn has(&self, key: &Digest) -> bool {
        self.actions.contains(key)
    }

    /// The remote's entry for `key`, checked by the trust policy and validated.
    pub fn find(&self, store: &Store, key: &Digest) -> Found {
        if !self.has(key) {
            return Found::Absent;
        }
        match store.remote_entry(self.remote.as_ref(), key, self.trust.as_ref()) {
            Ok(Some(result)) => Found::Result(result),
            Ok(None) => Found::Absent,
            Err(e) => Found::Refused(e.to_string()),
        }
    }
}

/// A transfer for [`Transfers`]: fetch a checked remote result, or push a local one.
pub(crate) enum Work {
    Fetch(usize, Digest, ActionResult),
    Push(usize, Digest),
}

/// A transfer that ended: the instance, whether it was a fetch, and the bytes moved.
pub(crate) struct Moved {
    pub index: usize,
    pub fetch: bool,
    pub outcome: Result<u64, StoreError>,
}

/// A few threads moving results between the store and the remote, in the order given.
pub(crate) struct Transfers {
    work: Option<mpsc::Sender<Work>>,
    moved: mpsc::Receiver<Moved>,
    threads: Vec<JoinHandle<()>>,
    /// Fetches and pushes handed out and not yet ended.
    pub fetching: usize,
    pub pushing: usize,
}

impl Transfers {
    pub fn new(cache: &Arc<RemoteCache>, store: &Store, jobs: usize) -> Transfers {
        let (work, queue) = mpsc::channel::<Work>();
        let (done, moved) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let threads = (0..jobs.max(1))
            .map(|_| {
                let (queue, done) = (Arc::clone(&queue), done.clone());
                let (cache, store) = (Arc::clone(cache), store.clone());
                std::thread::spawn(move || {
                    loop {
                        let next = queue.lock().unwrap().recv();
                        let Ok(work) = next else { break };
                        let _ = done.send(cache.transfer(&store, work));
                    }
                })
            })
            .collect();
        Transfers {
            work: Some(work),
            moved,
            threads,
            fetching: 0,
            pushing: 0,
        }
    }

    pub fn send(&mut self, work: Work) {
        match work {
            Work::Fetch(..) => self.fetching += 1,
            Work::Push(..) => self.pushing += 1,
        }
        let _ = self.work.as_ref().expect("open").send(work);
    }

    /// The next transfer to end, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: std::time::Duration) -> Option<Moved> {
        let moved = self.moved.recv_timeout(timeout).ok()?;
        if moved.fetch {
            self.fetching -= 1;
        } else {
            self.pushing -= 1;
        }
        Some(moved)
    }
}

impl Drop for Transfers {
    fn drop(&mut self) {
        self.work = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl RemoteCache {
    fn transfer(&self, store: &Store, work: Work) -> Moved {
        let remote = self.remote.as_ref();
        match work {
            Work::Fetch(index, key, result) => Moved {
                index,
                fetch: true,
                outcome: store.fetch_result(remote, &key, &result),
            },
            Work::Push(index, key) => Moved {
                index,
                fetch: false,
                outcome: store
                    .push_action(remote, &key, self.trust.as_ref())
                    .map(|_| result_bytes(store, &key)),
            },
        }
    }
}

/// The bytes of a local result's blobs (for the run's summary).
fn result_bytes(store: &Store, key: &Digest) -> u64 {
    store
        .lookup(key)
        .ok()
        .flatten()
        .map_or(0, |r| r.blobs().map(|(_, b)| b.size).sum())
}
