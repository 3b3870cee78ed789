//! Blobs come back byte for byte, whatever their size and however they are chunked.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use proptest::prelude::*;
use prunus_store::{ActionResult, BlobRef, Digest, GcOptions, RunMeta, Store};

mod common;

/// A reader that hands out its bytes in the given chunk sizes (cycled), like a pipe would.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Bytes with runs of zeros and repeats, so that compression has something to do.
fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4096),
        (0usize..300_000, any::<u8>(), 1usize..64).prop_map(|(n, seed, period)| {
            (0..n)
                .map(|i| {
                    if i % 7 == 0 {
                        seed.wrapping_add((i % period) as u8)
                    } else {
                        0
                    }
                })
                .collect()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn round_trip_under_any_chunking(
        data in data_strategy(),
        put_sizes in proptest::collection::vec(1usize..70_000, 1..6),
        get_size in 1usize..100_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let b = store.put_reader(Chunked { data: &data, sizes: put_sizes, i: 0 }).unwrap();
        prop_assert_eq!(b.digest, Digest::of(&data));
        prop_assert_eq!(b.size, data.len() as u64);
        prop_assert!(store.has(&b.digest));

        let mut r = store.read(&b.digest).unwrap();
        let mut back = Vec::new();
        let mut buf = vec![0u8; get_size];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 { break; }
            back.extend_from_slice(&buf[..n]);
        }
        prop_assert_eq!(&back, &data);
        prop_assert_eq!(store.get_bytes(&b.digest).unwrap(), data.clone());

        let out = dir.path().join("out/file.bin");
        prop_assert_eq!(store.get_to_file(&b.digest, &out).unwrap(), data.len() as u64);
        prop_assert_eq!(std::fs::read(&out).unwrap(), data);
    }
}

/// Sizes around the 4 MiB frame boundary, fed in odd chunks, read back in odd chunks.
#[test]
fn frame_boundaries() {
    const FRAME: usize = 4 << 20;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..9 * FRAME + 5)
        .map(|i| (i % 253) as u8 ^ (i >> 13) as u8)
        .collect();
    for len in [
        1,
        FRAME - 1,
        FRAME,
        FRAME + 1,
        2 * FRAME,
        3 * FRAME + 5,
        4 * FRAME,
        5 * FRAME - 3,
        9 * FRAME + 5,
    ] {
        let part = &data[..len];
        let b = store
            .put_reader(Chunked {
                data: part,
                sizes: vec![777_777, 3, 65_536],
                i: 0,
            })
            .unwrap();
        assert_eq!(
            b,
            BlobRef {
                digest: Digest::of(part),
                size: len as u64
            }
        );
        let mut back = Vec::new();
        let mut r = store.read(&b.digest).unwrap();
        let mut buf = vec![0u8; 100_003];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        assert!(back == part, "round trip of {len} bytes");
    }
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn empty_blob_and_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let e = store.put_bytes(b"").unwrap();
    assert_eq!(
        e,
        BlobRef {
            digest: Digest::of(b""),
            size: 0
        }
    );
    assert_eq!(store.get_bytes(&e.digest).unwrap(), b"");
    let a = store.put_bytes(b"same bytes").unwrap();
    let b = store.put_reader(&b"same bytes"[..]).unwrap();
    assert_eq!(a, b);
    let du = store.du().unwrap();
    assert_eq!(du.blobs, 2, "{du}");
    assert_eq!(du.logical_bytes, 10);
    let files = walk(&dir.path().join("blobs"));
    assert_eq!(files.len(), 2);
}

#[test]
fn large_input_uses_the_multithreaded_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut data: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 29) as u8)
        .collect();
    // Then 6 MB of noise: frames that do not compress are stored raw, and read back the same.
    data.extend(common::noise(6_000_000));
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &data).unwrap();
    let b = store.put_file(&path).unwrap();
    assert_eq!(b.digest, Digest::of(&data));
    let du = store.du().unwrap();
    assert!(du.compression_ratio > 1.5, "{du}");
    assert!(store.get_bytes(&b.digest).unwrap() == data);
    // A blob file is a plain .zst file (skippable frames + independent frames).
    let hex = b.digest.to_string();
    let file = dir
        .path()
        .join("blobs")
        .join(&hex[..2])
        .join(format!("{hex}.zst"));
    match std::process::Command::new("zstd")
        .arg("-dc")
        .arg(&file)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == data, "zstd -d gives the stored bytes");
        }
        Err(_) => eprintln!("SKIPPED the zstd CLI check: zstd is not installed"),
    }
}

/// A sparse file over 4 GiB: streams through (never in memory) and comes back sparse.
#[test]
fn sparse_file_over_4_gib() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let src = dir.path().join("sparse.bin");
    let len = (4u64 << 30) + 12_345;
    let marks = [0u64, 1 << 20, (4u64 << 30) - 1, 4u64 << 30, len - 1];
    {
        let mut f = std::fs::File::create(&src).unwrap();
        f.set_len(len).unwrap();
        for (i, &at) in marks.iter().enumerate() {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&[i as u8 + 1]).unwrap();
        }
    }
    let b = store.put_file(&src).unwrap();
    assert_eq!(b.size, len);
    let du = store.du().unwrap();
    assert!(du.stored_bytes < 10 << 20, "zeros compress: {du}");
    let out = dir.path().join("back.bin");
    assert_eq!(store.get_to_file(&b.digest, &out).unwrap(), len);
    let mut f = std::fs::File::open(&out).unwrap();
    assert_eq!(f.metadata().unwrap().len(), len);
    for (i, &at) in marks.iter().enumerate() {
        let mut byte = [0u8];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], i as u8 + 1, "byte at {at}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let on_disk = f.metadata().unwrap().blocks() * 512;
        assert!(
            on_disk < 64 << 20,
            "the copy is sparse ({on_disk} bytes on disk)"
        );
    }
    assert_eq!(blake3_file(&out), b.digest);
}

fn blake3_file(path: &std::path::Path) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path).unwrap()).unwrap();
    Digest(*h.finalize().as_bytes())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn meta(log: Option<BlobRef>) -> RunMeta {
    RunMeta {
        started_unix_ms: 1,
        ended_unix_ms: 2001,
        duration_s: 2.0,
        host: "test".into(),
        prunus_version: "0.1.0".into(),
        exit_status: "ok".into(),
        log,
    }
}

#[test]
fn action_cache_refs_scratch_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k1 = Digest::of(b"key 1");
    let k2 = Digest::of(b"key 2");
    assert!(store.lookup(&k1).unwrap().is_none());

    let out1 = store.put_bytes(b"returns of run 1").unwrap();
    let log1 = store.put_bytes(b"log of run 1").unwrap();
    let r1 = ActionResult {
        outputs: BTreeMap::from([("returns.csv".to_string(), out1)]),
        meta: meta(Some(log1)),
        key_info: serde_json::json!({"kind": "train/dqn", "params": {"seed": 1}}),
    };
    store.publish(&k1, &r1).unwrap();
    assert_eq!(store.lookup(&k1).unwrap(), Some(r1.clone()));

    let out2 = store.put_bytes(b"returns of run 2").unwrap();
    let r2 = ActionResult {
        outputs: BTreeMap::from([("returns.csv".to_string(), out2)]),
        meta: meta(None),
        key_info: serde_json::Value::Null,
    };
    store.publish(&k2, &r2).unwrap();
    assert_eq!(store.actions().unwrap().len(), 2);

    store
        .set_ref("train[game=minatar/breakout,seed=1]", &k1)
        .unwrap();
    assert_eq!(
        store
            .get_ref("train[game=minatar/breakout,seed=1]")
            .unwrap(),
        Some(k1)
    );
    assert_eq!(store.get_ref("nope").unwrap(), None);
    assert_eq!(
        store.refs().unwrap(),
        vec![("train[game=minatar/breakout,seed=1]".to_string(), k1)]
    );
    assert!(store.set_ref("", &k1).is_err());

    // Scratch: one for an unfinished stage, one for a finished one, one being written now.
    let unfinished = Digest::of(b"unfinished");
    let running = Digest::of(b"running");
    std::fs::write(
        store.scratch(&unfinished).unwrap().join("resume.ckpt"),
        b"x",
    )
    .unwrap();
    std::fs::write(store.scratch(&k2).unwrap().join("resume.ckpt"), b"y").unwrap();
    std::fs::write(store.scratch(&running).unwrap().join("resume.ckpt"), b"z").unwrap();
    let held = store.lock_stage(&running).unwrap();
    let orphan = store.put_bytes(b"nobody refers to me").unwrap();

    // Default grace keeps everything young.
    let report = store.gc(&[], 0).unwrap();
    assert_eq!(
        (report.actions_removed, report.blobs_removed),
        (0, 0),
        "{report}"
    );

    let report = store
        .gc_with(&GcOptions {
            roots: vec![k2],
            keep_checkpoints: 0,
            grace: Duration::ZERO,
            pending: Vec::new(),
        })
        .unwrap();
    // k1 is pinned by its ref, k2 by the roots; only the orphan blob goes.
    assert_eq!(report.actions_kept, 2, "{report}");
    assert_eq!(report.blobs_removed, 1, "{report}");
    assert!(!store.has(&orphan.digest));
    assert!(store.lookup(&k1).unwrap().is_some() && store.lookup(&k2).unwrap().is_some());
    assert!(store.get_bytes(&log1.digest).is_ok());
    // Finished stage's scratch goes, the unfinished one goes (keep 0), the running one stays.
    assert!(!store.root().join("scratch").join(k2.to_string()).exists());
    assert!(
        !store
            .root()
            .join("scratch")
            .join(unfinished.to_string())
            .exists()
    );
    assert!(
        store
            .root()
            .join("scratch")
            .join(running.to_string())
            .exists()
    );
    drop(held);

    // Without roots, k2 goes (k1 still pinned by its ref) and so does its blob.
    let report = store
        .gc_with(&GcOptions {
            roots: vec![],
            keep_checkpoints: 5,
            grace: Duration::ZERO,
            pending: Vec::new(),
        })
        .unwrap();
    assert_eq!(
        (report.actions_removed, report.blobs_removed),
        (1, 1),
        "{report}"
    );
    assert!(store.lookup(&k2).unwrap().is_none());
    assert!(store.lookup(&k1).unwrap().is_some());
    let du = store.du().unwrap();
    assert_eq!(
        (du.blobs, du.actions, du.refs, du.scratch_dirs),
        (2, 1, 1, 1),
        "{du}"
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn gc_keeps_what_a_submitted_job_will_read() {
    // A batch job queued for longer than the grace period: no published action names its
    // saved job or inputs yet, and its scratch is what it resumes from after a requeue.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let saved = store.put_bytes(b"a saved job").unwrap().digest;
    let input = store.put_bytes(b"its input").unwrap().digest;
    let orphan = store.put_bytes(b"nobody's").unwrap().digest;
    let (queued, other) = (Digest::of(b"queued"), Digest::of(b"other"));
    for key in [queued, other] {
        std::fs::write(store.scratch(&key).unwrap().join("resume.ckpt"), b"x").unwrap();
    }
    let pending = vec![prunus_store::Pending {
        key: queued,
        blobs: vec![saved, input],
        job: "Slurm job 7_0 (train/seed0)".into(),
    }];
    let gc = |pending: Vec<prunus_store::Pending>| {
        store
            .gc_with(&GcOptions {
                roots: vec![],
                keep_checkpoints: 0,
                grace: Duration::ZERO,
                pending,
            })
            .unwrap()
    };
    let report = gc(pending);
    assert!(store.has(&saved) && store.has(&input) && !store.has(&orphan));
    assert_eq!(
        (report.blobs_pending, report.blobs_removed),
        (2, 1),
        "{report}"
    );
    assert!(store.root().join(format!("scratch/{queued}")).exists());
    assert!(!store.root().join(format!("scratch/{other}")).exists());
    assert!(
        report
            .to_string()
            .contains("Slurm job 7_0 (train/seed0) is submitted"),
        "{report}"
    );
    // Once the job is no longer pending, they go like anything else nothing needs.
    let report = gc(Vec::new());
    assert!(!store.has(&saved) && !store.has(&input), "{report}");
    assert!(!store.root().join(format!("scratch/{queued}")).exists());
}

#[test]
fn stage_locks_exclude_within_a_process_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let k = Digest::of(b"k");
    let held = store.lock_stage(&k).unwrap();
    assert!(store.try_lock_stage(&k).unwrap().is_none());
    assert!(
        store
            .try_lock_stage(&Digest::of(b"other"))
            .unwrap()
            .is_some()
    );
    drop(held);
    assert!(store.try_lock_stage(&k).unwrap().is_some());
}

#[test]
fn refuses_a_non_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), b"precious").unwrap();
    let err = Store::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a prunus store"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing was created"
    );
}
