//! Several processes on one store: writers killed with SIGKILL at random instants, and
//! concurrent writers of the same blobs and results. Children are this test binary re-run
//! with `PRUNUS_STORE_CHILD` set (see `child`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use prunus_store::{ActionResult, BlobRef, Digest, RunMeta, Store};
use rand::{Rng, RngCore, SeedableRng};

fn spawn(role: &str, root: &Path, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PRUNUS_STORE_CHILD", role)
        .env("PRUNUS_STORE_ROOT", root)
        .env("PRUNUS_STORE_SEED", seed.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn result(outputs: BTreeMap<String, BlobRef>, log: Option<BlobRef>) -> ActionResult {
    ActionResult {
        outputs,
        meta: RunMeta {
            started_unix_ms: 0,
            ended_unix_ms: 1,
            duration_s: 0.001,
            host: "child".into(),
            prunus_version: "test".into(),
            exit_status: "ok".into(),
            log,
        },
        key_info: serde_json::json!({"test": true}),
    }
}

/// The deterministic blobs every concurrent writer stores.
fn shared_blobs() -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut big = vec![0u8; 6 << 20];
    for (i, chunk) in big.chunks_mut(64).enumerate() {
        if i % 3 == 0 {
            rng.fill_bytes(chunk);
        }
    }
    vec![b"".to_vec(), b"small shared output".to_vec(), big]
}

/// Entry point of the child processes; does nothing in a normal test run.
#[test]
#[ignore = "run as a child process by the tests below"]
fn child() {
    let Ok(role) = std::env::var("PRUNUS_STORE_CHILD") else {
        return;
    };
    let store = Store::open(std::env::var("PRUNUS_STORE_ROOT").unwrap()).unwrap();
    let seed: u64 = std::env::var("PRUNUS_STORE_SEED").unwrap().parse().unwrap();
    match role.as_str() {
        "crash" => crash_writer(&store, seed),
        "same" => same_writer(&store),
        "lock" => lock_holder(&store),
        other => panic!("unknown child role {other}"),
    }
}

/// Writes blobs, results and refs as fast as it can until killed.
fn crash_writer(store: &Store, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0u64.. {
        let mut outputs = BTreeMap::new();
        for name in ["returns.csv", "final.ckpt"] {
            let len = match rng.random_range(0..10) {
                0 => 0,
                1..=6 => rng.random_range(1..200_000),
                _ => rng.random_range(1..(12 << 20)),
            };
            let mut data = vec![0u8; len];
            // Checkpoint-like: mostly zeros.
            for chunk in data.chunks_mut(4096) {
                if rng.random_bool(0.2) {
                    rng.fill_bytes(chunk);
                }
            }
            let b = if rng.random_bool(0.5) {
                store.put_bytes(&data).unwrap()
            } else {
                store.put_reader(&data[..]).unwrap()
            };
            outputs.insert(name.to_string(), b);
        }
        let log = store
            .put_bytes(format!("log {seed} {i}").as_bytes())
            .unwrap();
        let key = Digest::of(format!("{seed}/{i}").as_bytes());
        store.publish(&key, &result(outputs, Some(log))).unwrap();
        store.set_ref(&format!("instance {}", i % 3), &key).unwrap();
        std::fs::write(store.scratch(&key).unwrap().join("resume.ckpt"), b"ckpt").unwrap();
    }
}

/// Stores the shared blobs and publishes the shared key, then takes the stage lock and logs.
fn same_writer(store: &Store) {
    let key = Digest::of(b"the shared stage");
    for _ in 0..3 {
        let outputs = shared_blobs()
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("out{i}"), store.put_bytes(b).unwrap()))
            .collect();
        store.publish(&key, &result(outputs, None)).unwrap();
        store.set_ref("shared", &key).unwrap();
        let _lock = store.lock_stage(&key).unwrap();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(store.root().join("critical.log"))
            .unwrap();
        writeln!(log, "enter {}", std::process::id()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        writeln!(log, "exit {}", std::process::id()).unwrap();
    }
}

/// Reports whether it could take a stage lock the parent holds.
fn lock_holder(store: &Store) {
    let key = Digest::of(b"held by the parent");
    let got = store.try_lock_stage(&key).unwrap().is_some();
    std::fs::write(
        store.root().join("lock-result"),
        if got { "got" } else { "busy" },
    )
    .unwrap();
}

#[test]
fn writers_killed_at_random_instants_leave_a_clean_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let kills = 30;
    for k in 0..kills {
        let mut c = spawn("crash", dir.path(), k);
        std::thread::sleep(Duration::from_millis(rng.random_range(5..150)));
        c.kill().unwrap(); // SIGKILL
        let status = c.wait().unwrap();
        assert!(!status.success(), "the writer was killed, not finished");
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{report}");
    assert!(
        report.actions > 0,
        "the writers got some work done: {report}"
    );
    for (key, r) in store.actions().unwrap() {
        assert_eq!(store.lookup(&key).unwrap().as_ref(), Some(&r));
        for (_, b) in r.blobs() {
            assert_eq!(store.get_bytes(&b.digest).unwrap().len() as u64, b.size);
        }
    }
    for (name, key) in store.refs().unwrap() {
        assert!(
            store.lookup(&key).unwrap().is_some(),
            "ref {name} points at a published key"
        );
    }
    // Everything visible is complete: no partial files outside tmp/.
    let gc = store
        .gc_with(&prunus_store::GcOptions {
            roots: vec![],
            keep_checkpoints: 100,
            grace: Duration::ZERO,
            pending: Vec::new(),
        })
        .unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "{gc}"
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn concurrent_writers_of_the_same_blobs_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let children: Vec<_> = (0..4).map(|i| spawn("same", dir.path(), i)).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.blobs, 3, "deduplicated: {report}");
    let key = Digest::of(b"the shared stage");
    let r = store.lookup(&key).unwrap().expect("published");
    for (i, data) in shared_blobs().iter().enumerate() {
        assert_eq!(
            &store
                .get_bytes(&r.outputs[&format!("out{i}")].digest)
                .unwrap(),
            data
        );
    }
    assert_eq!(store.get_ref("shared").unwrap(), Some(key));

    // The stage lock never had two holders: enter/exit lines alternate, same pid.
    let log = std::fs::read_to_string(dir.path().join("critical.log")).unwrap();
    let lines: Vec<_> = log.lines().collect();
    assert_eq!(lines.len(), 4 * 3 * 2);
    for pair in lines.chunks(2) {
        let pid = pair[0].strip_prefix("enter ").expect("enter first");
        assert_eq!(pair[1], format!("exit {pid}"), "interleaved: {log}");
    }

    // A lock held here is seen as busy from another process, and free once released.
    let held = store
        .lock_stage(&Digest::of(b"held by the parent"))
        .unwrap();
    assert!(spawn("lock", dir.path(), 0).wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lock-result")).unwrap(),
        "busy"
    );
    drop(held);
    assert!(spawn("lock", dir.path(), 0).wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lock-result")).unwrap(),
        "got"
    );
}
