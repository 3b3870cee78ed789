//! The S3 remote against a real S3-compatible server on 127.0.0.1 (moto's server, which the
//! test command starts and names in `PRUNUS_TEST_S3_ENDPOINT`): blobs small and multipart,
//! create-if-absent under concurrency, an object corrupted behind prunus's back, a server
//! that is not there. Without the variable (a bare `cargo test`) the tests say so and pass.

use std::io::{Read, Write};
use std::net::TcpStream;

use prunus_store::remote::{Put, Remote};
use prunus_store::{Digest, S3Config, S3Remote, Store, StoreError, TrustWriters};

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

/// A new bucket on the server (moto accepts unsigned requests), and a remote in it.
fn bucket(endpoint: &str, name: &str) -> S3Remote {
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
    let other = a.put_bytes(&noise(100_001)).unwrap();
    // Behind prunus's back: the object of `good` gets another blob's file.
    let mut file = Vec::new();
    std::fs::File::open(blob_file(&a, &other.digest))
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    assert_eq!(
        remote
            .put_blob(&good.digest, file.len() as u64, &mut file.as_slice())
            .unwrap(),
        Put::Created
    );
    let err = b.fetch_blob(&remote, &good).unwrap_err();
    assert!(matches!(err, StoreError::RemoteCorrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("s3://corrupt/cache") && msg.contains(&good.digest.to_string()),
        "{msg}"
    );
    assert!(!b.has(&good.digest));
    let _ = TrustWriters;
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
