//! The S3 remote against a real S3-compatible server on 127.0.0.1 (moto's server, which the
//! test command starts and names in `PRUNUS_TEST_S3_ENDPOINT`): blobs small and multipart,
//! create-if-absent under concurrency, an object corrupted behind prunus's back, a server
//! that is not there. Without the variable (a bare `cargo test`) the tests say so and pass.

use std::io::{Read, Write};
use std::net::TcpStream;

use prunus_store::remote::{Put, Remote};
use prunus_store::{ActionResult, Digest, RunMeta, S3Config, S3Remote, Signed, Store, StoreError};

mod common;
use common::noise;

/// The server's endpoint, or `None` (with a note) when the test command did not start one.
fn endpoint() -> Option<String> {
    let e = std::env::var("PRUNUS_TEST_S3_ENDPOINT").ok();
    if e.is_none() {
        eprintln!("PRUNUS_TEST_S3_ENDPOINT is not set (bash tests/run starts a server): skipped");
    }
    e
}

/// A new bucket on the server (moto accepts unsigned requests), and a remote in it. Names
/// are unique per run: the server may outlive a run.
fn bucket(endpoint: &str, name: &str) -> S3Remote {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let name = &format!("{name}-{}-{}", std::process::id(), nanos.subsec_nanos());
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "PUT /{name} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "creating bucket {name}: {reply}"
    );
    remote(endpoint, &format!("s3://{name}/cache"))
}

fn remote(endpoint: &str, url: &str) -> S3Remote {
    // SAFETY: the same values in every test; set before any request is made.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    }
    S3Remote::open(&S3Config {
        url: url.into(),
        endpoint: Some(endpoint.into()),
        ..S3Config::default()
    })
    .unwrap()
}

fn stores() -> (tempfile::TempDir, Store, Store) {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    (dir, a, b)
}

#[test]
fn blobs_round_trip_small_and_multipart() {
    let Some(ep) = endpoint() else { return };
    let remote = bucket(&ep, "round-trip");
    let (_dir, a, b) = stores();
    // 40 MB of noise: a blob file of several upload parts.
    let (small, big) = (b"a small blob".to_vec(), noise(40_000_000));
    let refs = [a.put_bytes(&small).unwrap(), a.put_bytes(&big).unwrap()];
    for r in &refs {
        assert_eq!(a.push_blob(&remote, &r.digest).unwrap(), Put::Created);
        assert_eq!(a.push_blob(&remote, &r.digest).unwrap(), Put::Existed);
        assert!(remote.has_blob(&r.digest).unwrap());
    }
    let mut listed = remote.list_blobs().unwrap();
    listed.sort();
    let mut want: Vec<Digest> = refs.iter().map(|r| r.digest).collect();
    want.sort();
    assert_eq!(listed, want);
    for (r, bytes) in refs.iter().zip([&small, &big]) {
        b.fetch_blob(&remote, r).unwrap();
        assert_eq!(&b.get_bytes(&r.digest).unwrap(), bytes);
    }
    assert!(!remote.has_blob(&Digest::of(b"absent")).unwrap());
    assert!(remote.get_blob(&Digest::of(b"absent")).unwrap().is_none());
}

#[test]
fn a_corrupt_local_blob_is_never_uploaded() {
    // The damage is in the last part of a multipart upload, the parts before it already
    // sent: the upload must be aborted, not completed.
    let Some(ep) = endpoint() else { return };
    let remote = bucket(&ep, "corrupt-local");
    let (_dir, a, _b) = stores();
    let r = a.put_bytes(&noise(40_000_000)).unwrap();
    let path = blob_file(&a, &r.digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let i = bytes.len() - 100;
    bytes[i] ^= 1;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let err = a.push_blob(&remote, &r.digest).unwrap_err();
    assert!(matches!(err, StoreError::CorruptBlob { .. }), "{err}");
    assert!(!remote.has_blob(&r.digest).unwrap());
    assert!(remote.list_blobs().unwrap().is_empty());
}

#[test]
fn action_entries_are_created_once_under_concurrency() {
    let Some(ep) = endpoint() else { return };
    let remote = bucket(&ep, "entries");
    let key = Digest::of(b"raced");
    let puts: Vec<Put> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let remote = &remote;
                s.spawn(move || remote.put_action(&key, &vec![i; 1000]).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        puts.iter().filter(|p| **p == Put::Created).count(),
        1,
        "{puts:?}"
    );
    let got = remote.get_action(&key).unwrap().unwrap();
    assert_eq!(got.len(), 1000);
    assert!(got.iter().all(|b| *b == got[0]), "a mixed entry");
    assert_eq!(remote.list_actions().unwrap(), [key]);
    assert!(remote.has_action(&key).unwrap());
}

#[test]
fn a_corrupted_object_is_rejected_and_nothing_is_kept() {
    let Some(ep) = endpoint() else { return };
    let remote = bucket(&ep, "corrupt");
    let (_dir, a, b) = stores();
    let good = a.put_bytes(&noise(100_000)).unwrap();
    // Behind prunus's back: one bit of the object flips.
    let mut file = std::fs::read(blob_file(&a, &good.digest)).unwrap();
    let mid = file.len() / 2;
    file[mid] ^= 1;
    assert_eq!(
        remote
            .put_blob(&good.digest, file.len() as u64, &mut file.as_slice())
            .unwrap(),
        Put::Created
    );
    let err = b.fetch_blob(&remote, &good).unwrap_err();
    assert!(matches!(err, StoreError::RemoteCorrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(remote.name()) && msg.contains(&good.digest.to_string()),
        "{msg}"
    );
    assert!(!b.has(&good.digest));
}

#[test]
fn an_unreachable_endpoint_is_an_error_naming_the_remote() {
    let Some(_) = endpoint() else { return };
    let remote = S3Remote::open(&S3Config {
        url: "s3://nowhere/p".into(),
        endpoint: Some("http://127.0.0.1:9".into()),
        retries: Some(0),
        ..S3Config::default()
    })
    .unwrap();
    let err = remote.has_blob(&Digest::of(b"x")).unwrap_err().to_string();
    assert!(
        err.contains("s3://nowhere/p") && err.contains("blob"),
        "{err}"
    );
}

/// The blob's file in a local store (its layout: blobs/ab/<digest>.zst).
fn blob_file(store: &Store, d: &Digest) -> std::path::PathBuf {
    let hex = d.to_string();
    store
        .root()
        .join("blobs")
        .join(&hex[..2])
        .join(format!("{hex}.zst"))
}

fn published(store: &Store, key: &Digest) {
    let blob = store.put_bytes(b"returns").unwrap();
    let result = ActionResult {
        outputs: [("returns.csv".to_string(), blob)].into(),
        meta: RunMeta {
            started_unix_ms: 1,
            ended_unix_ms: 2,
            duration_s: 0.001,
            host: "node1".into(),
            prunus_version: "0".into(),
            exit_status: "ok".into(),
            log: None,
        },
        key_info: serde_json::json!({"kind": "train/dqn"}),
    };
    store.publish(key, &result).unwrap();
}

#[test]
fn signed_entries_are_believed_only_from_trusted_intact_signers() {
    let Some(ep) = endpoint() else { return };
    let remote = bucket(&ep, "signed");
    let (_dir, a, b) = stores();
    let alice = Signed::new(a.signing_key("alice").unwrap(), &[]).unwrap();
    let alice_public = a.signing_key("alice").unwrap().public().to_string();
    let (key, tampered) = (Digest::of(b"stage"), Digest::of(b"tampered"));
    published(&a, &key);
    published(&a, &tampered);
    for k in [&key, &tampered] {
        for (_, blob) in a.lookup(k).unwrap().unwrap().outputs {
            a.push_blob(&remote, &blob.digest).unwrap();
        }
        assert_eq!(a.push_action(&remote, k, &alice).unwrap(), Put::Created);
    }
    // Bob does not trust Alice yet: refused, nothing kept.
    let bob = Signed::new(b.signing_key("bob").unwrap(), &[]).unwrap();
    let err = b.fetch_action(&remote, &key, &bob).unwrap_err().to_string();
    assert!(
        err.contains("alice:") && err.contains("does not trust"),
        "{err}"
    );
    assert!(b.lookup(&key).unwrap().is_none());
    // Trusting her key, he gets the result.
    let bob = Signed::new(b.signing_key("bob").unwrap(), &[alice_public]).unwrap();
    assert!(b.fetch_action(&remote, &key, &bob).unwrap().is_some());
    // An entry whose manifest was changed after signing is refused. Replace the object the
    // way someone with write access to the bucket could: through an unconditional put.
    let entry = remote.get_action(&tampered).unwrap().unwrap();
    let text = String::from_utf8(entry).unwrap().replace("node1", "node2");
    let raw = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&ep)
        .with_allow_http(true)
        .with_bucket_name(
            remote
                .name()
                .trim_start_matches("s3://")
                .split('/')
                .next()
                .unwrap(),
        )
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let path = object_store::path::Path::from(format!("cache/actions/{tampered}.entry"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    use object_store::ObjectStoreExt;
    rt.block_on(raw.put(&path, text.into_bytes().into()))
        .unwrap();
    let err = b
        .fetch_action(&remote, &tampered, &bob)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    assert!(b.lookup(&tampered).unwrap().is_none());
}

#[test]
fn a_whole_store_pushes_and_pulls_and_a_second_push_moves_nothing() {
    let Some(ep) = endpoint() else { return };
    let remote = bucket(&ep, "sync");
    let (_dir, a, b) = stores();
    let keys: Vec<Digest> = (0..20u32).map(|i| Digest::of(&i.to_le_bytes())).collect();
    for k in &keys {
        published(&a, k);
    }
    let big = a.put_bytes(&noise(20_000_000)).unwrap();
    let alice = Signed::new(a.signing_key("alice").unwrap(), &[]).unwrap();
    let pushed = a.push_all(&remote, &alice, 8, &|_| {}).unwrap();
    assert!(pushed.failed.is_empty(), "{:?}", pushed.failed);
    assert_eq!(pushed.actions, 20);
    assert_eq!(
        pushed.blobs, 1,
        "the 20 results share one blob; unreferenced blobs stay"
    );
    let again = a.push_all(&remote, &alice, 8, &|_| {}).unwrap();
    assert_eq!((again.actions, again.blobs), (0, 0));
    let bob = Signed::new(
        b.signing_key("bob").unwrap(),
        &[a.signing_key("alice").unwrap().public().to_string()],
    )
    .unwrap();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let pulled = b
        .pull_all(&remote, &bob, 8, &|p| {
            seen.fetch_max(p.objects, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    assert!(pulled.failed.is_empty(), "{:?}", pulled.failed);
    assert_eq!(pulled.actions, 20);
    assert_eq!(seen.into_inner(), 20);
    for k in &keys {
        assert_eq!(b.lookup(k).unwrap(), a.lookup(k).unwrap());
    }
    assert!(!b.has(&big.digest));
    // An untrusting store takes nothing and says why, per result.
    let (_dir2, c, _) = stores();
    let carol = Signed::new(c.signing_key("carol").unwrap(), &[]).unwrap();
    let refused = c.pull_all(&remote, &carol, 4, &|_| {}).unwrap();
    assert_eq!((refused.actions, refused.failed.len()), (0, 20));
    assert!(refused.failed[0].1.to_string().contains("does not trust"));
}
