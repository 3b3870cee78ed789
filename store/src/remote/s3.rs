//! A remote in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...), through the
//! `object_store` crate, which signs requests, retries with backoff and uploads in parts.
//!
//! Layout under `s3://<bucket>/<prefix>/`:
//!
//! ```text
//! blobs/<digest>.zst     blob files, as the store keeps them (see `blob`)
//! actions/<key>.entry    action entries: signed envelopes (see `transfer`)
//! checkpoints/<key>.entry  checkpoint entries of unfinished stages (see `checkpoint`)
//! ```
//!
//! Create-if-absent: small objects (action entries, blobs up to one part) are put with
//! `If-None-Match: *` (`PutMode::Create`), which the server applies atomically. A large blob
//! goes up as a multipart upload after a `HEAD` finds it absent; it becomes visible only when
//! the upload completes, and two stores racing to upload one blob both write a valid file
//! of the same blob (blobs are immutable and verified on the way in), so the race is harmless.
//!
//! Streaming: a download is read as the server sends it; uploads hold at most
//! [`PARTS_IN_FLIGHT`] parts of [`PART_BYTES`] in memory between them.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, Checksum, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use super::{MAX_ENTRY_BYTES, Put, Remote, RemoteError};
use crate::Digest;
use crate::blob::read_full;

/// Size of one part of a multipart upload (S3's minimum is 5 MiB), and the largest object
/// put in one request.
pub const PART_BYTES: usize = 16 << 20;
/// Parts (and single-request puts) in flight at once over all of a remote's uploads, each
/// holding at most [`PART_BYTES`] in memory: a push's memory stays under
/// `PARTS_IN_FLIGHT · PART_BYTES` (256 MiB) whatever its `-j`, and a push's last, largest
/// blob goes up with every permit, as `aws s3 sync` shares its 10 requests among all files.
pub const PARTS_IN_FLIGHT: usize = 16;

/// Where and how to reach a bucket. Credentials are not here: they come from the usual AWS
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`/`AWS_DEFAULT_REGION`, ...), so they never reach a log or the store.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// `s3://bucket/prefix` (the prefix may be empty).
    pub url: String,
    /// A custom endpoint for S3-compatible servers (`http://127.0.0.1:9000`); `http://`
    /// endpoints are allowed only when given here (or by `AWS_ALLOW_HTTP`).
    pub endpoint: Option<String>,
    /// The region; defaults to the environment's, then `us-east-1`.
    pub region: Option<String>,
    /// Retries of a failed request, with exponential backoff (default 5).
    pub retries: Option<usize>,
}

/// A [`Remote`] in an S3-compatible bucket (see the module's documentation for its layout).
#[derive(Debug)]
pub struct S3Remote {
    name: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    runtime: tokio::runtime::Runtime,
    /// Upload parts and single puts in flight at once, over all uploads (see [`PARTS_IN_FLIGHT`]).
    parts: Arc<tokio::sync::Semaphore>,
}

impl S3Remote {
    /// Connects to the bucket of `config.url` (nothing is sent until the first call).
    pub fn open(config: &S3Config) -> Result<S3Remote, RemoteError> {
        let name = config.url.trim_end_matches('/').to_string();
        let err = |e: String| RemoteError::new(&name, "open", "the bucket", e);
        let (bucket, prefix) = parse_url(&config.url).map_err(err)?;
        // reqwest's rustls needs a process-wide crypto provider; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: config.retries.unwrap_or(5),
                retry_timeout: Duration::from_secs(120),
            })
            .with_client_options(
                ClientOptions::new().with_connect_timeout(Duration::from_secs(10)),
            );
        let plain_http = config
            .endpoint
            .as_ref()
            .is_some_and(|e| e.starts_with("http://"));
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(plain_http);
        }
        // Over TLS the body cannot change in transit, so hashing it into the signature (a
        // third of a push's CPU) buys nothing; over plain HTTP the signed hash is what keeps
        // a changed body from being stored for good (puts are create-if-absent). That same
        // SHA-256 also goes as each part's `x-amz-checksum-sha256` (object_store hashes once
        // for both), so the server checks every part itself and keeps per-part checksums
        // instead of a whole-object one it would compute at completion (as `aws s3 sync`
        // sends its CRC32s; on moto this took a push from 0.94x to 1.06x the speed of aws).
        builder = builder.with_unsigned_payload(!plain_http);
        if plain_http {
            builder = builder.with_checksum_algorithm(Checksum::SHA256);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        } else if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let store = builder.build().map_err(|e| err(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("prunus-s3")
            .enable_all()
            .build()
            .map_err(|e| err(e.to_string()))?;
        Ok(S3Remote {
            name,
            store: Arc::new(store),
            prefix: Path::from(prefix),
            runtime,
            parts: Arc::new(tokio::sync::Semaphore::new(PARTS_IN_FLIGHT)),
        })
    }

    fn blob_path(&self, d: &Digest) -> Path {
        self.prefix.clone().join("blobs").join(format!("{d}.zst"))
    }

    fn action_path(&self, key: &Digest) -> Path {
        self.entry_path("actions", key)
    }

    fn entry_path(&self, top: &str, key: &Digest) -> Path {
        self.prefix.clone().join(top).join(format!("{key}.entry"))
    }

    /// A small object's bytes, or `None`; more than [`MAX_ENTRY_BYTES`] is an error, found
    /// without reading more than that.
    fn read_entry(&self, path: &Path, object: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let Some(reader) = self.get(path, object)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RemoteError::new(&self.name, "get", object, e))?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            let e = format!("it is larger than {MAX_ENTRY_BYTES} bytes, which no entry is");
            return Err(RemoteError::new(&self.name, "get", object, e));
        }
        Ok(Some(bytes))
    }

    fn err(
        &self,
        op: &'static str,
        object: impl std::fmt::Display,
        e: object_store::Error,
    ) -> RemoteError {
        RemoteError::new(&self.name, op, object, e)
    }

    /// The digests named by objects `<prefix>/<top>/<digest>.<ext>`.
    fn list(&self, top: &str, ext: &str) -> Result<Vec<Digest>, RemoteError> {
        let dir = self.prefix.clone().join(top);
        let objects: Vec<_> = self
            .runtime
            .block_on(self.store.list(Some(&dir)).try_collect())
            .map_err(|e| self.err("list", format!("the {top}"), e))?;
        Ok(objects
            .iter()
            .filter_map(|o| o.location.filename()?.strip_suffix(ext)?.parse().ok())
            .collect())
    }

    /// Whether the object is there; a failure to ask is an error, never an absence.
    fn exists(&self, path: &Path, object: impl std::fmt::Display) -> Result<bool, RemoteError> {
        match self.runtime.block_on(self.store.head(path)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("look up", object, e)),
        }
    }

    /// Puts `bytes` unless an object of that name exists (atomically, on the server).
    fn create(
        &self,
        path: &Path,
        bytes: Bytes,
        object: impl std::fmt::Display,
    ) -> Result<Put, RemoteError> {
        let opts = PutOptions::from(PutMode::Create);
        match self
            .runtime
            .block_on(self.store.put_opts(path, PutPayload::from(bytes), opts))
        {
            Ok(_) => Ok(Put::Created),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Put::Existed),
            Err(e) => Err(self.err("put", object, e)),
        }
    }

    /// A multipart upload of what `data` yields, aborted (nothing visible) if reading or any
    /// part fails. Each part holds one of the remote's [`PARTS_IN_FLIGHT`] permits from
    /// before it is read until it is sent, so a lone large blob (the last of a push) gets
    /// every permit the others have released.
    fn upload(
        &self,
        path: &Path,
        data: &mut (dyn Read + Send),
        object: &str,
    ) -> Result<(), RemoteError> {
        let mut upload = self
            .runtime
            .block_on(self.store.put_multipart(path))
            .map_err(|e| self.err("start uploading", object, e))?;
        let mut parts = tokio::task::JoinSet::new();
        let failed = loop {
            let permit = self.permit();
            let mut part = vec![0u8; PART_BYTES];
            let n = match read_full(data, &mut part) {
                Ok(0) => break None,
                Ok(n) => n,
                Err(e) => {
                    break Some(RemoteError::new(
                        &self.name,
                        "read what to upload as",
                        object,
                        e,
                    ));
                }
            };
            part.truncate(n);
            let sent = upload.put_part(PutPayload::from(part));
            parts.spawn_on(
                async move {
                    let _permit = permit;
                    sent.await
                },
                self.runtime.handle(),
            );
            if let Some(e) = first_failure(&mut parts) {
                break Some(self.err("upload a part of", object, e));
            }
        };
        let failed = failed.or_else(|| {
            self.runtime.block_on(async {
                while let Some(done) = parts.join_next().await {
                    if let Err(e) = done.map_err(join_error).and_then(|r| r) {
                        return Some(self.err("upload a part of", object, e));
                    }
                }
                None
            })
        });
        match failed {
            None => self
                .runtime
                .block_on(upload.complete())
                .map(|_| ())
                .map_err(|e| self.err("finish uploading", object, e)),
            Some(e) => {
                parts.abort_all();
                let _ = self.runtime.block_on(upload.abort());
                Err(e)
            }
        }
    }

    /// One of the [`PARTS_IN_FLIGHT`] permits, waited for.
    fn permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        let parts = Arc::clone(&self.parts);
        self.runtime
            .block_on(parts.acquire_owned())
            .expect("the semaphore is never closed")
    }

    /// The object as a blocking reader, or `None` if it is absent.
    fn get(
        &self,
        path: &Path,
        object: impl std::fmt::Display,
    ) -> Result<Option<StreamReader>, RemoteError> {
        match self.runtime.block_on(self.store.get(path)) {
            Ok(got) => Ok(Some(StreamReader {
                runtime: self.runtime.handle().clone(),
                stream: got.into_stream(),
                chunk: Bytes::new(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("get", object, e)),
        }
    }
}

impl Remote for S3Remote {
    fn name(&self) -> &str {
        &self.name
    }

    fn list_blobs(&self) -> Result<Vec<Digest>, RemoteError> {
        self.list("blobs", ".zst")
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError> {
        self.exists(&self.blob_path(digest), format!("blob {digest}"))
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>, RemoteError> {
        let reader = self.get(&self.blob_path(digest), format!("blob {digest}"))?;
        Ok(reader.map(|r| Box::new(r) as Box<dyn Read + Send>))
    }

    fn put_blob(
        &self,
        digest: &Digest,
        len: u64,
        data: &mut (dyn Read + Send),
    ) -> Result<Put, RemoteError> {
        let (path, object) = (self.blob_path(digest), format!("blob {digest}"));
        if len <= PART_BYTES as u64 {
            let _permit = self.permit();
            let mut bytes = Vec::with_capacity(len as usize);
            data.take(len)
                .read_to_end(&mut bytes)
                .map_err(|e| RemoteError::new(&self.name, "read what to upload as", &object, e))?;
            return self.create(&path, bytes.into(), object);
        }
        if self.exists(&path, &object)? {
            return Ok(Put::Existed);
        }
        self.upload(&path, &mut data.take(len), &object)?;
        Ok(Put::Created)
    }

    fn list_actions(&self) -> Result<Vec<Digest>, RemoteError> {
        self.list("actions", ".entry")
    }

    fn has_action(&self, key: &Digest) -> Result<bool, RemoteError> {
        self.exists(&self.action_path(key), format!("action entry {key}"))
    }

    fn get_action(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        self.read_entry(&self.action_path(key), &format!("action entry {key}"))
    }

    fn put_action(&self, key: &Digest, entry: &[u8]) -> Result<Put, RemoteError> {
        let object = format!("action entry {key}");
        self.create(
            &self.action_path(key),
            Bytes::copy_from_slice(entry),
            object,
        )
    }

    fn get_checkpoint(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        let path = self.entry_path("checkpoints", key);
        self.read_entry(&path, &format!("checkpoint entry {key}"))
    }

    fn put_checkpoint(&self, key: &Digest, entry: &[u8]) -> Result<(), RemoteError> {
        let path = self.entry_path("checkpoints", key);
        let payload = PutPayload::from(Bytes::copy_from_slice(entry));
        self.runtime
            .block_on(self.store.put(&path, payload))
            .map(drop)
            .map_err(|e| self.err("put", format!("checkpoint entry {key}"), e))
    }
}

/// The first failure among the parts already sent, if any (without waiting).
fn first_failure(
    parts: &mut tokio::task::JoinSet<object_store::Result<()>>,
) -> Option<object_store::Error> {
    while let Some(done) = parts.try_join_next() {
        if let Err(e) = done.map_err(join_error).and_then(|r| r) {
            return Some(e);
        }
    }
    None
}

/// A part's task that panicked or was cancelled, as an upload error.
fn join_error(e: tokio::task::JoinError) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(e),
    }
}

/// Bucket and prefix of `s3://bucket/prefix`.
fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3:// URL (s3://bucket/prefix)"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url:?} names no bucket (s3://bucket/prefix)"));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// A download as a blocking [`Read`]: each chunk is awaited on the remote's runtime as the
/// reader asks for it, so nothing is buffered beyond the chunk in hand.
struct StreamReader {
    runtime: tokio::runtime::Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://b/p/q/").unwrap(),
            ("b".into(), "p/q".into())
        );
        assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), String::new()));
        assert!(parse_url("s3:///p").is_err());
        assert!(parse_url("file:///x").is_err());
    }
}
