//! Sharing through a remote: blobs and action entries round-trip through a directory remote,
//! and whatever a remote gets wrong (missing, corrupt, swapped, truncated or failing objects,
//! untrusted or malformed entries) is refused with nothing of it kept in the local store;
//! unfinished stages' checkpoints move between stores, believed only from trusted signers.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use prunus_store::remote::{DirRemote, EntrySignature, EntryTrust, Put, Remote, RemoteError};
use prunus_store::{ActionResult, BlobRef, Digest, RunMeta, Store, StoreError, TrustWriters};

mod common;
use common::noise;

fn result(outputs: &[(&str, BlobRef)], log: Option<BlobRef>) -> ActionResult {
    ActionResult {
        outputs: outputs
            .iter()
            .map(|(n, b)| (n.to_string(), *b))
            .collect::<BTreeMap<_, _>>(),
        meta: RunMeta {
            started_unix_ms: 1,
            ended_unix_ms: 2,
            duration_s: 0.001,
            host: "node1".into(),
            prunus_version: "0".into(),
            exit_status: "ok".into(),
            log,
        },
        key_info: serde_json::json!({"kind": "train/dqn"}),
    }
}

/// Two stores and a remote, in one temp directory.
struct World {
    _dir: tempfile::TempDir,
    a: Store,
    b: Store,
    remote: DirRemote,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    World {
        a: Store::open(dir.path().join("a")).unwrap(),
        b: Store::open(dir.path().join("b")).unwrap(),
        remote: DirRemote::open(dir.path().join("remote")).unwrap(),
        _dir: dir,
    }
}

/// 10 MB that compress (several frames: decoded on a pool) and 9 MB that do not (raw frames).
fn big_blobs() -> (Vec<u8>, Vec<u8>) {
    let compressible = (0..10_000_000u32)
        .map(|i| if i % 5 == 0 { (i >> 9) as u8 } else { 0 })
        .collect();
    (compressible, noise(9_000_000))
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Nothing fetched stayed: no blob, no manifest, no temp file.
fn assert_nothing_kept(store: &Store) {
    for sub in ["blobs", "actions", "tmp"] {
        let left = files(&store.root().join(sub));
        assert!(left.is_empty(), "{sub}/ holds {left:?}");
    }
}

#[test]
fn blobs_round_trip_through_a_directory_remote() {
    let w = world();
    let (compressible, incompressible) = big_blobs();
    let blobs: Vec<(BlobRef, Vec<u8>)> =
        [b"small".to_vec(), Vec::new(), compressible, incompressible]
            .into_iter()
            .map(|data| (w.a.put_bytes(&data).unwrap(), data))
            .collect();
    for (b, _) in &blobs {
        assert_eq!(w.a.push_blob(&w.remote, &b.digest).unwrap(), Put::Created);
        assert_eq!(w.a.push_blob(&w.remote, &b.digest).unwrap(), Put::Existed);
    }
    let mut listed = w.remote.list_blobs().unwrap();
    listed.sort();
    let mut want: Vec<Digest> = blobs.iter().map(|(b, _)| b.digest).collect();
    want.sort();
    assert_eq!(listed, want);
    for (b, data) in &blobs {
        assert!(w.b.fetch_blob(&w.remote, b).unwrap() > 0);
        assert_eq!(&w.b.get_bytes(&b.digest).unwrap(), data);
        assert_eq!(w.b.fetch_blob(&w.remote, b).unwrap(), 0, "already here");
    }
    // The compressible blob travelled compressed.
    let (c, _) = &blobs[2];
    let mut on_remote = w.remote.get_blob(&c.digest).unwrap().unwrap();
    assert!(io::copy(&mut on_remote, &mut io::sink()).unwrap() < c.size / 4);
    assert!(files(&w.b.root().join("tmp")).is_empty());
}

#[test]
fn actions_round_trip_with_their_blobs() {
    let w = world();
    let (big, _) = big_blobs();
    let out = w.a.put_bytes(&big).unwrap();
    let csv = w.a.put_bytes(b"iteration,return\n0,1.5\n").unwrap();
    let log = w.a.put_bytes(b"the run's log\n").unwrap();
    let key = Digest::of(b"train[seed=0]");
    let r = result(
        &[("checkpoints/final.bin", out), ("returns.csv", csv)],
        Some(log),
    );
    w.a.publish(&key, &r).unwrap();

    assert_eq!(
        w.a.push_action(&w.remote, &key, &TrustWriters).unwrap(),
        Put::Created
    );
    assert_eq!(
        w.a.push_action(&w.remote, &key, &TrustWriters).unwrap(),
        Put::Existed
    );
    assert_eq!(w.remote.list_actions().unwrap(), vec![key]);
    assert!(w.remote.has_action(&key).unwrap());
    assert_eq!(w.remote.list_blobs().unwrap().len(), 3, "outputs and log");

    let fetched = w.b.fetch_action(&w.remote, &key, &TrustWriters).unwrap();
    assert_eq!(fetched.as_ref(), Some(&r));
    assert_eq!(w.b.lookup(&key).unwrap().as_ref(), Some(&r));
    assert_eq!(w.b.get_bytes(&out.digest).unwrap(), big);
    assert_eq!(w.b.get_bytes(&log.digest).unwrap(), b"the run's log\n");
    // Pushing from the second store finds it there; a key nobody ran is a plain miss.
    assert_eq!(
        w.b.push_action(&w.remote, &key, &TrustWriters).unwrap(),
        Put::Existed
    );
    let other = Digest::of(b"never ran");
    assert_eq!(
        w.b.fetch_action(&w.remote, &other, &TrustWriters).unwrap(),
        None
    );
    assert!(matches!(
        w.b.push_action(&w.remote, &other, &TrustWriters),
        Err(StoreError::ActionNotFound { .. })
    ));
}

#[test]
fn a_missing_blob_is_an_error_naming_the_remote() {
    let w = world();
    let absent = BlobRef {
        digest: Digest::of(b"never stored"),
        size: 12,
    };
    let err = w.b.fetch_blob(&w.remote, &absent).unwrap_err();
    assert!(matches!(&err, StoreError::RemoteMissing { remote, .. } if remote == w.remote.name()));
    assert!(
        err.to_string().contains(&absent.digest.to_string()),
        "{err}"
    );

    // An entry whose blob was deleted from the remote: refused, nothing published.
    let kept = w.a.put_bytes(b"kept").unwrap();
    let gone = w.a.put_bytes(b"deleted from the remote").unwrap();
    let key = Digest::of(b"stage");
    w.a.publish(&key, &result(&[("a", kept), ("b", gone)], None))
        .unwrap();
    w.a.push_action(&w.remote, &key, &TrustWriters).unwrap();
    let hex = gone.digest.to_string();
    std::fs::remove_file(
        w.remote
            .root()
            .join(format!("blobs/{}/{hex}.zst", &hex[..2])),
    )
    .unwrap();
    let err =
        w.b.fetch_action(&w.remote, &key, &TrustWriters)
            .unwrap_err();
    assert!(matches!(err, StoreError::RemoteMissing { .. }), "{err}");
    assert_eq!(w.b.lookup(&key).unwrap(), None);
    assert!(w.b.action_keys().unwrap().is_empty());
}

/// What a lying remote does to the blob objects it serves.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Flips one bit at this fraction of the object.
    Flip(f64),
    /// Drops the last bytes.
    Truncate,
    /// Serves this other blob's (valid) object instead.
    Swap(Digest),
    /// Fails with a network-style error half-way.
    FailMidway,
}

/// A real directory remote behind a wrapper that lies about blobs: it models a remote whose
/// objects were changed behind its back, or a hostile one.
struct Lying {
    inner: DirRemote,
    lie: Lie,
}

/// Yields `data`, then fails as a dropped connection does.
struct Failing(io::Cursor<Vec<u8>>);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            )),
            n => Ok(n),
        }
    }
}

impl Remote for Lying {
    fn name(&self) -> &str {
        "file:///lying"
    }
    fn list_blobs(&self) -> Result<Vec<Digest>, RemoteError> {
        self.inner.list_blobs()
    }
    fn has_blob(&self, d: &Digest) -> Result<bool, RemoteError> {
        self.inner.has_blob(d)
    }
    fn get_blob(&self, d: &Digest) -> Result<Option<Box<dyn Read + Send>>, RemoteError> {
        let served = match self.lie {
            Lie::Swap(other) => other,
            _ => *d,
        };
        let Some(mut r) = self.inner.get_blob(&served)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        match self.lie {
            Lie::Flip(at) => {
                let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                bytes[i] ^= 0x10;
            }
            Lie::Truncate => bytes.truncate(bytes.len().saturating_sub(100)),
            Lie::FailMidway => {
                bytes.truncate(bytes.len() / 2);
                return Ok(Some(Box::new(Failing(io::Cursor::new(bytes)))));
            }
            Lie::Swap(_) => {}
        }
        Ok(Some(Box::new(io::Cursor::new(bytes))))
    }
    fn put_blob(
        &self,
        d: &Digest,
        len: u64,
        r: &mut (dyn Read + Send),
    ) -> Result<Put, RemoteError> {
        self.inner.put_blob(d, len, r)
    }
    fn list_actions(&self) -> Result<Vec<Digest>, RemoteError> {
        self.inner.list_actions()
    }
    fn has_action(&self, key: &Digest) -> Result<bool, RemoteError> {
        self.inner.has_action(key)
    }
    fn get_action(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        self.inner.get_action(key)
    }
    fn put_action(&self, key: &Digest, entry: &[u8]) -> Result<Put, RemoteError> {
        self.inner.put_action(key, entry)
    }
    fn get_checkpoint(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        self.inner.get_checkpoint(key)
    }
    fn put_checkpoint(&self, key: &Digest, entry: &[u8]) -> Result<(), RemoteError> {
        self.inner.put_checkpoint(key, entry)
    }
}

#[test]
fn a_lying_remote_is_rejected_and_nothing_is_kept() {
    let w = world();
    let (compressible, incompressible) = big_blobs();
    let decoy =
        w.a.put_bytes(b"a valid blob, but not the one asked for")
            .unwrap();
    w.a.push_blob(&w.remote, &decoy.digest).unwrap();
    let mut cases = Vec::new();
    for data in [
        b"a small blob in one frame".to_vec(),
        compressible,
        incompressible,
    ] {
        let b = w.a.put_bytes(&data).unwrap();
        w.a.push_blob(&w.remote, &b.digest).unwrap();
        // 0.01 lands in the header (the size) for small blobs, in the first frame for big.
        for lie in [
            Lie::Flip(0.01),
            Lie::Flip(0.5),
            Lie::Flip(0.999),
            Lie::Truncate,
        ] {
            cases.push((b, lie, "corrupt"));
        }
        cases.push((b, Lie::Swap(decoy.digest), "corrupt"));
        cases.push((b, Lie::FailMidway, "failed"));
    }
    for (b, lie, expect) in cases {
        let lying = Lying {
            inner: w.remote.clone(),
            lie,
        };
        let err = w.b.fetch_blob(&lying, &b).unwrap_err();
        let named = err.to_string().contains("file:///lying");
        match (&err, expect) {
            (StoreError::RemoteCorrupt { object, .. }, "corrupt") => {
                assert!(object.contains(&b.digest.to_string()), "{err}")
            }
            (StoreError::Remote(e), "failed") => assert_eq!(e.op, "get"),
            _ => panic!("{lie:?} on a {}-byte blob: unexpected {err}", b.size),
        }
        assert!(named, "{err}");
        assert!(!w.b.has(&b.digest), "{lie:?}");
        assert_nothing_kept(&w.b);
    }

    // Through an entry: the result is not published, and a wrong size claim is refused.
    let b = w.a.put_bytes(b"an output").unwrap();
    let key = Digest::of(b"stage");
    w.a.publish(&key, &result(&[("out", b)], None)).unwrap();
    w.a.push_action(&w.remote, &key, &TrustWriters).unwrap();
    let lying = Lying {
        inner: w.remote.clone(),
        lie: Lie::Flip(0.9),
    };
    let err = w.b.fetch_action(&lying, &key, &TrustWriters).unwrap_err();
    assert!(matches!(err, StoreError::RemoteCorrupt { .. }), "{err}");
    let wrong_size = BlobRef {
        size: b.size + 1,
        ..b
    };
    let err = w.b.fetch_blob(&w.remote, &wrong_size).unwrap_err();
    assert!(err.to_string().contains("header says"), "{err}");
    assert_nothing_kept(&w.b);
}

/// A store whose trusted list is empty: it believes no entry (as a store must, for entries
/// nobody it trusts has signed).
struct TrustNobody;

impl EntryTrust for TrustNobody {
    fn sign(&self, _: &Digest, _: &[u8]) -> Result<Vec<EntrySignature>, String> {
        Ok(Vec::new())
    }
    fn verify(&self, _: &Digest, _: &[u8], sigs: &[EntrySignature]) -> Result<(), String> {
        Err(format!("{} signatures, none by a trusted key", sigs.len()))
    }
}

#[test]
fn untrusted_and_malformed_entries_are_refused() {
    let w = world();
    let b = w.a.put_bytes(b"an output").unwrap();
    let key = Digest::of(b"stage");
    w.a.publish(&key, &result(&[("returns.csv", b)], None))
        .unwrap();
    w.a.push_action(&w.remote, &key, &TrustWriters).unwrap();

    // Untrusted: refused before any of its blobs is fetched.
    let err = w.b.fetch_action(&w.remote, &key, &TrustNobody).unwrap_err();
    assert!(
        matches!(&err, StoreError::UntrustedEntry { key: k, .. } if *k == key),
        "{err}"
    );
    assert_nothing_kept(&w.b);

    // Malformed entries, each put under a key of its own on a second remote.
    let good = w.remote.get_action(&key).unwrap().unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| -> Vec<u8> {
        let mut entry: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let mut manifest: serde_json::Value =
            serde_json::from_str(entry["manifest"].as_str().unwrap()).unwrap();
        f(&mut manifest);
        entry["manifest"] = manifest.to_string().into();
        serde_json::to_vec(&entry).unwrap()
    };
    let escape = edit(&|m| {
        let out = m["outputs"]["returns.csv"].clone();
        m["outputs"] = serde_json::json!({ "../../etc/x": out });
    });
    let other_key = edit(&|m| m["key"] = Digest::of(b"another").to_string().into());
    let bad_digest = edit(&|m| m["outputs"]["returns.csv"]["digest"] = "zz".into());
    let mut wrong_format: serde_json::Value = serde_json::from_slice(&good).unwrap();
    wrong_format["format"] = 7.into();
    // (what, the entry, the key it is put under, what the error says)
    let cases: [(&str, Vec<u8>, Digest, &str); 6] = [
        (
            "escaping output name",
            escape,
            key,
            "could leave its folder",
        ),
        ("manifest of another key", other_key, key, "records key"),
        ("bad digest", bad_digest, key, "blake3 digest"),
        (
            "entry format",
            serde_json::to_vec(&wrong_format).unwrap(),
            key,
            "format 7",
        ),
        ("not JSON", b"\x00\x01garbage".to_vec(), key, "expected"),
        (
            "envelope of another key",
            good.clone(),
            Digest::of(b"k"),
            "entry of key",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, bytes, k, says) in cases {
        let bad = DirRemote::open(dir.path().join(what)).unwrap();
        assert_eq!(bad.put_action(&k, &bytes).unwrap(), Put::Created);
        let err = w.b.fetch_action(&bad, &k, &TrustWriters).unwrap_err();
        assert!(
            matches!(err, StoreError::RemoteCorrupt { .. }) && err.to_string().contains(says),
            "{what}: {err}"
        );
        assert_nothing_kept(&w.b);
    }
}

#[test]
fn concurrent_puts_create_an_object_once_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    let remote = DirRemote::open(dir.path()).unwrap();
    let key = Digest::of(b"raced");
    let entries: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 100_000]).collect();
    let puts: Vec<Put> = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .iter()
            .map(|e| s.spawn(|| remote.put_action(&key, e).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        puts.iter().filter(|p| **p == Put::Created).count(),
        1,
        "{puts:?}"
    );
    let got = remote.get_action(&key).unwrap().unwrap();
    assert!(entries.contains(&got), "the object is one writer's, whole");
    assert!(files(&dir.path().join("tmp")).is_empty());
}

#[test]
fn push_verifies_local_blobs_first() {
    // A push verifies as it sends and holds back the last bytes until the blob checks out:
    // damage anywhere, even in the last byte or past the end, fails the put before it lands.
    type Damage = fn(&mut Vec<u8>);
    let cases: [(&str, Damage); 4] = [
        ("a flipped bit mid-file", |b| {
            let i = b.len() / 2;
            b[i] ^= 1;
        }),
        ("a flipped last byte", |b| *b.last_mut().unwrap() ^= 1),
        ("bytes past the end", |b| b.extend_from_slice(b"tail")),
        ("a truncated file", |b| b.truncate(b.len() - 10)),
    ];
    for (what, damage) in cases {
        let w = world();
        let b = w.a.put_bytes(&noise(3_000_000)).unwrap();
        let hex = b.digest.to_string();
        let path = w.a.root().join(format!("blobs/{}/{hex}.zst", &hex[..2]));
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let err = w.a.push_blob(&w.remote, &b.digest).unwrap_err();
        assert!(
            matches!(err, StoreError::CorruptBlob { .. }),
            "{what}: {err}"
        );
        assert!(!w.remote.has_blob(&b.digest).unwrap(), "{what}");
        assert!(w.remote.list_blobs().unwrap().is_empty(), "{what}");
    }
}

#[test]
fn a_directory_remote_refuses_a_directory_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path().join("store")).unwrap();
    let err = DirRemote::open(dir.path().join("store")).unwrap_err();
    assert!(err.to_string().contains("not a prunus remote"), "{err}");
    DirRemote::open(dir.path().join("new")).unwrap();
    DirRemote::open(dir.path().join("new")).unwrap(); // reopening is fine
}

#[test]
fn a_directory_remote_under_a_missing_folder_is_not_made() {
    // An unmounted shared disk: its mount point's subfolder is missing, and filling a local
    // folder in its place would hide that.
    let dir = tempfile::tempdir().unwrap();
    let err = DirRemote::open(dir.path().join("mnt/shared/prunus")).unwrap_err();
    assert!(
        err.to_string().contains("is the shared disk mounted"),
        "{err}"
    );
    assert!(!dir.path().join("mnt").exists());
}

#[test]
fn checkpoints_move_between_stores_signed_and_replaced_by_newer_ones() {
    use prunus_store::Signed;
    let w = world();
    let key = Digest::of(b"an unfinished stage");
    let scratch = |s: &Store| s.root().join("scratch").join(key.to_string());
    let write = |s: &Store, name: &str, bytes: &[u8]| {
        let path = scratch(s).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let empty = |dir: &Path| !dir.exists() || files(dir).is_empty();
    let (ckpt, replay) = (noise(300_000), b"replay".to_vec());
    write(&w.a, "resume.ckpt", &ckpt);
    write(&w.a, "replay/part0", &replay);
    let alice = Signed::new(w.a.signing_key("alice").unwrap(), &[]).unwrap();
    let alice_public = w.a.signing_key("alice").unwrap().public().to_string();
    assert_eq!(w.a.push_checkpoint(&w.remote, &key, &alice).unwrap(), 2);

    // Believed only from a trusted signer; nothing lands otherwise.
    let stranger = Signed::new(w.b.signing_key("bob").unwrap(), &[]).unwrap();
    let err =
        w.b.fetch_checkpoint(&w.remote, &key, &stranger)
            .unwrap_err();
    assert!(
        matches!(err, StoreError::UntrustedCheckpoint { .. }),
        "{err}"
    );
    assert!(empty(&scratch(&w.b)));
    let bob = Signed::new(
        w.b.signing_key("bob").unwrap(),
        std::slice::from_ref(&alice_public),
    )
    .unwrap();
    assert_eq!(w.b.fetch_checkpoint(&w.remote, &key, &bob).unwrap(), 2);
    assert_eq!(
        std::fs::read(scratch(&w.b).join("resume.ckpt")).unwrap(),
        ckpt
    );
    assert_eq!(
        std::fs::read(scratch(&w.b).join("replay/part0")).unwrap(),
        replay
    );
    // A local checkpoint is this store's own and at least as new: left as it is.
    write(&w.b, "resume.ckpt", b"bob's own");
    assert_eq!(w.b.fetch_checkpoint(&w.remote, &key, &bob).unwrap(), 0);
    assert_eq!(
        std::fs::read(scratch(&w.b).join("resume.ckpt")).unwrap(),
        b"bob's own"
    );

    // A newer checkpoint replaces the remote's.
    write(&w.a, "resume.ckpt", b"later");
    w.a.push_checkpoint(&w.remote, &key, &alice).unwrap();
    let c = Store::open(w._dir.path().join("c")).unwrap();
    let carol = Signed::new(
        c.signing_key("carol").unwrap(),
        std::slice::from_ref(&alice_public),
    )
    .unwrap();
    c.fetch_checkpoint(&w.remote, &key, &carol).unwrap();
    assert_eq!(
        std::fs::read(scratch(&c).join("resume.ckpt")).unwrap(),
        b"later"
    );

    // A signed checkpoint does not pass for a signed result under the same key.
    let entry = w.remote.get_checkpoint(&key).unwrap().unwrap();
    w.remote.put_action(&key, &entry).unwrap();
    let d = Store::open(w._dir.path().join("d")).unwrap();
    let dave = Signed::new(d.signing_key("dave").unwrap(), &[alice_public]).unwrap();
    assert!(d.fetch_action(&w.remote, &key, &dave).is_err());
    assert!(d.lookup(&key).unwrap().is_none());
    // Nor does a checkpoint entry changed after it was signed.
    let text = String::from_utf8(entry)
        .unwrap()
        .replace("replay/part0", "replay/part1");
    w.remote.put_checkpoint(&key, text.as_bytes()).unwrap();
    let err = d.fetch_checkpoint(&w.remote, &key, &dave).unwrap_err();
    assert!(
        matches!(err, StoreError::UntrustedCheckpoint { .. }),
        "{err}"
    );
    assert!(empty(&scratch(&d)));
}
