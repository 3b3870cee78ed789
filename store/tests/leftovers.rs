//! What a killed run leaves behind: `gc` removes a dead stage's work directory and a dead
//! writer's temp file whatever their age, keeps a running one's (saying why), and `du` counts
//! every byte under the store. The killed run is this test binary re-run as a child process
//! and killed with SIGKILL in the middle of storing a blob (see `child`).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use prunus_store::{Digest, Store};
use rand::{RngCore, SeedableRng};

const MIB: usize = 1 << 20;

/// Yields `left` random bytes, then waits for `release` (forever without one) and ends.
struct Stalling {
    left: usize,
    rng: rand::rngs::StdRng,
    release: Option<Receiver<()>>,
    ended: bool,
}

impl Stalling {
    fn new(left: usize, release: Option<Receiver<()>>) -> Self {
        let rng = rand::rngs::StdRng::seed_from_u64(left as u64);
        Stalling {
            left,
            rng,
            release,
            ended: false,
        }
    }
}

impl Read for Stalling {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        if self.left == 0 {
            self.ended = true;
            match &self.release {
                Some(rx) => rx.recv().map_err(io::Error::other)?,
                None => loop {
                    std::thread::sleep(Duration::from_secs(60));
                },
            }
            return Ok(0);
        }
        let n = buf.len().min(self.left);
        self.rng.fill_bytes(&mut buf[..n]); // incompressible: the temp blob grows as it reads
        self.left -= n;
        Ok(n)
    }
}

fn dead_key() -> Digest {
    Digest::of(b"the stage that is killed")
}

/// Entry point of the child process; does nothing in a normal test run. It runs a stage as
/// `prunus` does (lock, work directory, inputs) and stores an output that never ends.
#[test]
#[ignore = "run as a child process by the test below"]
fn child() {
    let Ok(root) = std::env::var("PRUNUS_LEFTOVERS_CHILD") else {
        return;
    };
    let store = Store::open(root).unwrap();
    let lock = store.lock_stage(&dead_key()).unwrap();
    let work = store.work_dir(&lock).unwrap();
    std::fs::create_dir(work.path().join("in")).unwrap();
    std::fs::write(work.path().join("in/input.bin"), vec![7u8; MIB]).unwrap();
    store.put_reader(Stalling::new(9 * MIB, None)).unwrap();
    unreachable!("the output never ends");
}

/// Waits until `ready` holds, for at most a minute.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries of `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The total length of the files under `path`, counted independently of the store.
fn walk(path: &Path) -> u64 {
    let m = std::fs::symlink_metadata(path).unwrap();
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .map(|e| walk(&e.path()))
        .sum()
}

#[test]
fn gc_removes_a_killed_runs_leftovers_at_once_and_keeps_a_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (work, tmp) = (dir.path().join("work"), dir.path().join("tmp"));

    // Killed while its 9 MiB output is being stored: two 4 MiB frames are on disk.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--nocapture"])
        .env("PRUNUS_LEFTOVERS_CHILD", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dead = dead_key().to_string();
    wait_until("the child's work directory and temp blob", || {
        named(&work, &dead)
            .iter()
            .any(|w| len(&w.join("in/input.bin")) == MIB as u64)
            && named(&tmp, "blob-")
                .iter()
                .any(|t| len(t) >= 8 * MIB as u64)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let dead_work = named(&work, &dead);
    let dead_tmp = named(&tmp, "blob-");
    assert_eq!((dead_work.len(), dead_tmp.len()), (1, 1));

    // A running stage in this process: its lock, work directory and a blob being stored.
    let running = Digest::of(b"the stage that runs");
    let lock = store.lock_stage(&running).unwrap();
    let live_work = store.work_dir(&lock).unwrap();
    std::fs::write(live_work.path().join("partial-output"), [1u8; 1000]).unwrap();
    let (release, rx) = channel();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.put_reader(Stalling::new(9 * MIB, Some(rx))))
    };
    wait_until("the running writer's first two frames", || {
        named(&tmp, "blob-")
            .iter()
            .any(|t| !dead_tmp.contains(t) && len(t) >= 8 * MIB as u64)
    });
    let live_tmp: Vec<PathBuf> = named(&tmp, "blob-")
        .into_iter()
        .filter(|t| !dead_tmp.contains(t))
        .collect();
    // An older prunus named work directories by a 16-digit key prefix; and a stranger's.
    let legacy = work.join(format!("{}-abc123", &Digest::of(b"old").to_string()[..16]));
    std::fs::create_dir(&legacy).unwrap();
    std::fs::write(legacy.join("out"), [2u8; 3000]).unwrap();
    std::fs::create_dir(work.join("notes")).unwrap();
    std::fs::write(dir.path().join("README"), "not the store's").unwrap();

    // `du` counts every byte, the leftovers included, and its items add up.
    let du = store.du().unwrap();
    assert_eq!(du.total_bytes, walk(dir.path()), "{du}");
    assert_eq!((du.work_dirs, du.temp_files), (4, 2), "{du}");
    assert!(du.work_bytes >= (MIB + 4000) as u64, "{du}");
    assert!(du.temp_bytes >= 16 * MIB as u64, "{du}");
    let items = du.stored_bytes
        + du.action_bytes
        + du.scratch_bytes
        + du.work_bytes
        + du.temp_bytes
        + du.quarantine_bytes
        + du.other_bytes;
    assert_eq!(items, du.total_bytes, "{du}");
    assert!(du.to_string().contains("prunus store gc"), "{du}");

    // Default options: an hour's grace, which every file here is within.
    let gc = store.gc(&[], 1).unwrap();
    let text = gc.to_string();
    assert_eq!((gc.work_removed, gc.temp_removed), (2, 1), "{text}");
    assert!(
        gc.leftover_bytes_freed >= (MIB + 3000 + 8 * MIB) as u64,
        "{text}"
    );
    assert!(!dead_work[0].exists() && !dead_tmp[0].exists() && !legacy.exists());
    assert!(live_work.path().is_dir() && live_tmp[0].exists());
    let live_name = live_work.path().file_name().unwrap().to_string_lossy();
    for said in [
        format!(
            "kept work/{live_name}: stage {} is running",
            &running.to_string()[..16]
        ),
        format!(
            "kept tmp/{}: being written by a running process",
            live_tmp[0].file_name().unwrap().to_string_lossy()
        ),
        "kept work/notes: not named after a stage key".to_string(),
    ] {
        assert!(text.contains(&said), "{said:?} not in:\n{text}");
    }

    // The running writer was not disturbed.
    release.send(()).unwrap();
    let blob = writer.join().unwrap().unwrap();
    assert_eq!(store.get_bytes(&blob.digest).unwrap().len(), 9 * MIB);
    drop(live_work);
    drop(lock);
    assert!(store.verify().unwrap().is_clean());
    let du = store.du().unwrap();
    assert_eq!((du.work_dirs, du.temp_files), (1, 0), "{du}");
    assert_eq!(du.total_bytes, walk(dir.path()), "{du}");
}
