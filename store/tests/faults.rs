//! Bad input and hostile conditions: each gives a clear error and loses nothing stored.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use prunus_store::{ActionResult, BlobRef, Digest, RunMeta, Store, StoreError};

mod common;
use common::noise;

fn meta() -> RunMeta {
    RunMeta {
        started_unix_ms: 0,
        ended_unix_ms: 0,
        duration_s: 0.0,
        host: "h".into(),
        prunus_version: "0".into(),
        exit_status: "ok".into(),
        log: None,
    }
}

fn result(outputs: &[(&str, BlobRef)]) -> ActionResult {
    ActionResult {
        outputs: outputs
            .iter()
            .map(|(n, b)| (n.to_string(), *b))
            .collect::<BTreeMap<_, _>>(),
        meta: meta(),
        key_info: serde_json::json!({}),
    }
}

fn blob_file(store: &Store, d: &Digest) -> PathBuf {
    let hex = d.to_string();
    store
        .root()
        .join("blobs")
        .join(&hex[..2])
        .join(format!("{hex}.zst"))
}

/// Overwrites a stored blob file (they are read-only on purpose).
fn tamper(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_and_truncated_blobs_are_detected_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let good = store.put_bytes(b"an untouched neighbour").unwrap();
    let flipped = store.put_bytes(&data).unwrap();
    let truncated = store.put_bytes(&data[..150_000]).unwrap();
    let swapped = store.put_bytes(b"hello").unwrap();
    // Large enough to be read on several threads.
    let big: Vec<u8> = (0..10_000_000u32)
        .map(|i| (i % 241) as u8 ^ (i >> 11) as u8)
        .collect();
    let big_cut = store.put_bytes(&big).unwrap();
    let key = Digest::of(b"stage");
    store
        .publish(&key, &result(&[("a", flipped), ("b", good)]))
        .unwrap();

    // Flip a byte inside the compressed data, cut another short, and give a third
    // the (valid) content of a different blob.
    tamper(&blob_file(&store, &flipped.digest), |b| {
        let i = b.len() / 2;
        b[i] ^= 0x40;
    });
    tamper(&blob_file(&store, &truncated.digest), |b| {
        b.truncate(b.len() - 10)
    });
    tamper(&blob_file(&store, &big_cut.digest), |b| {
        b.truncate(b.len() / 2)
    });
    let other = std::fs::read(blob_file(&store, &good.digest)).unwrap();
    tamper(&blob_file(&store, &swapped.digest), |b| *b = other);

    for d in [
        flipped.digest,
        truncated.digest,
        swapped.digest,
        big_cut.digest,
    ] {
        let err = store
            .get_bytes(&d)
            .map(|v| v.len())
            .expect_err(&d.to_string());
        assert!(
            matches!(err, StoreError::CorruptBlob { digest, .. } if digest == d),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&d.to_string()) && msg.contains("prunus store verify"),
            "{msg}"
        );
        // The streaming reader fails with InvalidData too, never a silent short read.
        let mut sink = Vec::new();
        let e = store.read(&d).and_then(|mut r| {
            r.read_to_end(&mut sink).map_err(|e| {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                StoreError::Io {
                    op: "read",
                    path: "x".into(),
                    source: e,
                }
            })
        });
        assert!(e.is_err());
        let dest = dir.path().join("out").join(d.to_string());
        assert!(store.get_to_file(&d, &dest).is_err());
        assert!(
            !dest.exists(),
            "no unverified file appears at the destination"
        );
    }

    let report = store.verify().unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.blobs, 5);
    let names: Vec<_> = report
        .corrupt_blobs
        .iter()
        .map(|q| q.name.clone())
        .collect();
    for d in [
        flipped.digest,
        truncated.digest,
        swapped.digest,
        big_cut.digest,
    ] {
        assert!(names.contains(&d.to_string()), "{report}");
        assert!(!store.has(&d));
    }
    for q in &report.corrupt_blobs {
        assert!(q.moved_to.exists(), "kept for inspection in quarantine");
    }
    assert_eq!(report.dangling.len(), 1, "{report}");
    assert_eq!(report.dangling[0].key, key);
    // A dangling manifest is a cache miss, so the stage reruns ...
    assert!(store.lookup(&key).unwrap().is_none());
    // ... and the neighbour is intact.
    assert_eq!(
        store.get_bytes(&good.digest).unwrap(),
        b"an untouched neighbour"
    );
    // Putting the bytes again repairs the store.
    store.put_bytes(&data).unwrap();
    assert!(store.lookup(&key).unwrap().is_some());
    let again = store.verify().unwrap();
    assert!(again.is_clean(), "{again}");
}

#[test]
fn publishing_a_manifest_with_a_missing_blob_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let present = store.put_bytes(b"present").unwrap();
    let missing = BlobRef {
        digest: Digest::of(b"never stored"),
        size: 12,
    };
    let key = Digest::of(b"k");
    let err = store
        .publish(&key, &result(&[("ok.csv", present), ("lost.csv", missing)]))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::MissingBlob { .. }));
    assert!(
        msg.contains("lost.csv") && msg.contains(&missing.digest.to_string()),
        "{msg}"
    );
    assert!(store.lookup(&key).unwrap().is_none());
    assert!(store.actions().unwrap().is_empty(), "nothing was published");

    let err = store.get_bytes(&missing.digest).unwrap_err();
    assert!(matches!(err, StoreError::BlobNotFound { .. }), "{err}");
}

#[test]
fn unreadable_manifest_is_a_clear_error_and_verify_quarantines_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = Digest::of(b"k");
    let b = store.put_bytes(b"x").unwrap();
    store.publish(&key, &result(&[("x", b)])).unwrap();
    let hex = key.to_string();
    let path = store
        .root()
        .join("actions")
        .join(&hex[..2])
        .join(format!("{hex}.json"));
    tamper(&path, |b| b.truncate(b.len() / 2));
    let msg = store.lookup(&key).unwrap_err().to_string();
    assert!(
        msg.contains(&hex) && msg.contains("prunus store verify"),
        "{msg}"
    );
    let report = store.verify().unwrap();
    assert_eq!(report.bad_manifests.len(), 1, "{report}");
    assert!(store.lookup(&key).unwrap().is_none());
    assert!(store.verify().unwrap().is_clean());
}

/// A tmpfs mounted for the test; unmounted on drop. `None` where mounting is not permitted.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)");
            return None;
        }
        Some(Tmpfs { path, _dir: dir })
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn getting_a_missing_blob_is_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let dest = dir.path().join("results").join("run").join("final.ckpt");
    let e = store
        .get_to_file(&Digest::of(b"never stored"), &dest)
        .unwrap_err();
    assert!(matches!(e, StoreError::BlobNotFound { .. }), "{e:?}");
    assert!(!dir.path().join("results").exists());
}

#[test]
fn getting_onto_a_full_disk_is_a_clear_error_and_leaves_no_file() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Several frames, so the decoder pool writes them (one frame is written inline).
    let big = store.put_bytes(&noise(16 << 20)).unwrap();
    let out = fs.path.join("results");
    let err = store
        .get_to_file(&big.digest, &out.join("checkpoint"))
        .unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "temp file left"
    );
    // The blob is intact, and a small one still goes where the big one did not fit.
    assert!(store.verify().unwrap().is_clean());
    let small = store.put_bytes(b"fits").unwrap();
    store
        .get_to_file(&small.digest, &out.join("small"))
        .unwrap();
    assert_eq!(std::fs::read(out.join("small")).unwrap(), b"fits");
}

#[test]
fn full_disk_is_a_clear_error_and_loses_nothing() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let store = Store::open(fs.path.join("store")).unwrap();
    let small = store
        .put_bytes(b"stored before the disk filled up")
        .unwrap();
    let key = Digest::of(b"k");
    store.publish(&key, &result(&[("small", small)])).unwrap();

    // 16 MiB of incompressible bytes cannot fit in 8 MiB.
    let noise = noise(16 << 20);
    let err = store.put_bytes(&noise).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("no space left") && msg.contains("gc"), "{msg}");
    assert!(!store.has(&Digest::of(&noise)));

    // The temp file was removed, what was stored is intact, and the store still works.
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(
        store.get_bytes(&small.digest).unwrap(),
        b"stored before the disk filled up"
    );
    assert!(store.lookup(&key).unwrap().is_some());
    assert!(store.verify().unwrap().is_clean());
    store.put_bytes(b"small things still fit").unwrap();
}

#[test]
fn read_only_store_is_a_clear_error_and_still_readable() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let store = Store::open(fs.path.join("store")).unwrap();
    let b = store.put_bytes(b"stored while writable").unwrap();
    fs.remount("ro");

    let err = store.put_bytes(b"more").unwrap_err();
    assert!(
        matches!(err, StoreError::PermissionDenied { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&fs.path.display().to_string()) && msg.contains("writable"),
        "{msg}"
    );
    let err = store
        .publish(&Digest::of(b"k"), &result(&[("b", b)]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PermissionDenied { .. }),
        "{err:?}"
    );
    // A fresh store cannot be created there either, and says why.
    let err = Store::open(fs.path.join("other")).unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    // Reading still works.
    let again = Store::open(fs.path.join("store")).unwrap();
    assert_eq!(
        again.get_bytes(&b.digest).unwrap(),
        b"stored while writable"
    );
    assert!(again.lookup(&Digest::of(b"k")).unwrap().is_none());
    fs.remount("rw");
}
