//! The S3-compatible server of the tests (moto's server mode, which `bash tests/run` installs
//! and starts): the shared one, or a private one a test may kill or make check credentials.
//! Buckets are made and inspected with plain HTTP requests, which moto accepts with a
//! made-up signature when it does not check credentials, so the tests look at the bucket
//! without prunus.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared server's endpoint, or `None` (with a note) when the tests run without one.
pub fn shared_endpoint() -> Option<String> {
    let endpoint = std::env::var("PRUNUS_TEST_S3_ENDPOINT").ok();
    if endpoint.is_none() {
        eprintln!("PRUNUS_TEST_S3_ENDPOINT is not set (bash tests/run starts a server): skipped");
    }
    endpoint
}

/// A private moto server on a free port, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    port: u16,
    checks_credentials: bool,
    child: Option<Child>,
}

impl Moto {
    /// Starts one, or `None` (with a note) when the tests run without moto.
    pub fn start(checks_credentials: bool) -> Option<Moto> {
        if std::env::var_os("PRUNUS_TEST_MOTO").is_none() {
            eprintln!("PRUNUS_TEST_MOTO is not set (bash tests/run sets it): skipped");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            checks_credentials,
            child: None,
        };
        moto.restart();
        Some(moto)
    }

    /// Starts the server (again, empty: moto keeps objects in memory) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new(std::env::var_os("PRUNUS_TEST_MOTO").expect("checked"));
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.checks_credentials {
            // Every request must be signed by an IAM user's key; the server has none.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        self.child = Some(cmd.spawn().expect("starting moto_server"));
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(30), "moto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's resident memory in KiB (moto keeps uploads in memory: it grows as a
    /// transfer comes in).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .unwrap_or(0)
    }

    /// Kills the server at once (as a crash or a dropped connection would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// moto, not checking credentials, treats a request with any AWS signature as the account
/// owner's (an unsigned one is anonymous, and may not read objects prunus put).
const ANY_SIGNATURE: &str = "Authorization: AWS4-HMAC-SHA256 \
    Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n";

/// One HTTP/1.0 request (so the reply is not chunked); the status and body.
fn request(endpoint: &str, method: &str, path: &str, body: &[u8]) -> (u32, Vec<u8>) {
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).expect("connecting to the S3 server");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{ANY_SIGNATURE}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP reply");
    let head = String::from_utf8_lossy(&reply[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, reply[split + 4..].to_vec())
}

/// Makes a bucket.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let (status, body) = request(endpoint, "PUT", &format!("/{bucket}"), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// Every object's name in the bucket, with its size, sorted.
pub fn objects(endpoint: &str, bucket: &str) -> Vec<(String, u64)> {
    let (status, body) = request(endpoint, "GET", &format!("/{bucket}?list-type=2"), b"");
    let xml = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{xml}");
    assert!(!xml.contains("<IsTruncated>true"), "more than one page");
    let mut out: Vec<(String, u64)> = xml
        .split("<Contents>")
        .skip(1)
        .map(|c| {
            let tag = |t: &str| {
                let start = c.find(&format!("<{t}>")).unwrap() + t.len() + 2;
                c[start..start + c[start..].find('<').unwrap()].to_string()
            };
            (tag("Key"), tag("Size").parse().unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The object's bytes.
pub fn get(endpoint: &str, bucket: &str, key: &str) -> Vec<u8> {
    let (status, body) = request(endpoint, "GET", &format!("/{bucket}/{key}"), b"");
    assert_eq!(status, 200, "{key}");
    body
}

/// Replaces an object behind prunus's back.
pub fn put(endpoint: &str, bucket: &str, key: &str, bytes: &[u8]) {
    let (status, body) = request(endpoint, "PUT", &format!("/{bucket}/{key}"), bytes);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}
