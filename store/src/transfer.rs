//! Moving blobs and action entries between a store and a [`Remote`], verifying everything
//! that comes in.
//!
//! The rules, and why:
//! - A fetched blob streams into a temp file under `tmp/` while the same bytes are decoded
//!   and hashed (on every core for large blobs, as a local read is); it is renamed into
//!   `blobs/` only once its decoded bytes hash to the digest asked for and have the size the
//!   entry records. A remote therefore cannot make the store hold bytes under a wrong digest,
//!   and an interrupted fetch leaves nothing but a temp file that is removed on the way out.
//! - An action entry is believed only if the [`EntryTrust`] accepts its signatures, and only
//!   then parsed and validated (format, key, plain output names); its blobs are fetched
//!   (verified) before it is published locally, so a local result never names a missing blob.
//! - A push verifies each local blob as it sends it, and holds back its last bytes until the
//!   whole blob is checked, since puts are create-if-absent: a corrupt copy sent once would
//!   stay on the remote. Blobs go before their entry, so a remote
//!   entry never names a blob the remote lacks.
//!
//! Entry envelope (what `Remote::put_action` stores), JSON:
//! `{"format": 1, "key": "<hex>", "manifest": "<the manifest's JSON, as a string>",
//! "signatures": [{"signer": "...", "signature": "..."}]}`. The manifest travels as a string
//! so that the bytes a signature covers are exactly the bytes that are parsed.

use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::action::Manifest;
use crate::blob::{BlobReader, corrupt_err};
use crate::error::IoContext;
use crate::remote::{EntrySignature, EntryTrust, MAX_ENTRY_BYTES, Put, Remote};
use crate::{ActionResult, BlobRef, Digest, Store, StoreError, from_read_err, set_readonly};

pub(crate) const ENTRY_FORMAT: u32 = 1;

/// An action entry as it lies on a remote (see the module's documentation); a checkpoint
/// entry is the same envelope (see `checkpoint`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub(crate) format: u32,
    pub(crate) key: Digest,
    pub(crate) manifest: String,
    pub(crate) signatures: Vec<EntrySignature>,
}

impl Store {
    /// Fetches `blob` from `remote` unless the store has it, verified while it streams in (see
    /// the module's documentation). Returns the bytes received (0 if it was already here).
    pub fn fetch_blob(&self, remote: &dyn Remote, blob: &BlobRef) -> Result<u64, StoreError> {
        self.fetch(remote, &blob.digest, Some(blob.size))
    }

    /// [`Store::fetch_blob`] of a blob known by its digest alone (a saved job that a batch
    /// job fetches): still verified, its size is the one its header gives.
    pub fn fetch_digest(&self, remote: &dyn Remote, digest: &Digest) -> Result<u64, StoreError> {
        self.fetch(remote, digest, None)
    }

    fn fetch(
        &self,
        remote: &dyn Remote,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<u64, StoreError> {
        if self.has(digest) {
            return Ok(0);
        }
        let object = format!("blob {digest}");
        let Some(stream) = remote.get_blob(digest)? else {
            return Err(StoreError::RemoteMissing {
                remote: remote.name().into(),
                object,
            });
        };
        let (file, tmp) = self.temp_file("fetch-")?;
        let state = Arc::new(Mutex::new(TeeState::default()));
        let tee = Tee {
            stream,
            copy: file.try_clone().ctx("open", &tmp)?,
            state: Arc::clone(&state),
        };
        // Every failure below is sorted out by what the tee saw: a local write error, the
        // remote's stream failing, or bytes that are not the blob (the reader's verdict).
        let fail = |e: io::Error| -> StoreError {
            let mut state = state.lock().unwrap();
            if let Some(e) = state.write_err.take() {
                StoreError::io("write", &tmp, e)
            } else if let Some(e) = state.read_err.take() {
                crate::RemoteError::new(remote.name(), "get", &object, e).into()
            } else {
                match from_read_err(e, "verify", &tmp) {
                    StoreError::CorruptBlob { reason, .. } => StoreError::RemoteCorrupt {
                        remote: remote.name().into(),
                        object: object.clone(),
                        reason,
                    },
                    other => other,
                }
            }
        };
        let mut reader = BlobReader::open(tmp.to_path_buf(), *digest, tee, None).map_err(fail)?;
        if let Some(size) = size.filter(|&size| size != reader.size()) {
            return Err(StoreError::RemoteCorrupt {
                remote: remote.name().into(),
                object: object.clone(),
                reason: format!(
                    "its header says {} bytes, the entry naming it {size}",
                    reader.size(),
                ),
            });
        }
        loop {
            let n = reader.fill_buf().map_err(fail)?.len();
            if n == 0 {
                break;
            }
            reader.consume(n);
        }
        drop(reader);
        let received = state.lock().unwrap().copied;
        file.sync_all().ctx("fsync", &tmp)?;
        drop(file);
        set_readonly(&tmp)?;
        self.install(tmp, &self.blob_path(digest))?;
        Ok(received)
    }

    /// Pushes a blob unless the remote has it, verifying the local copy as it goes (see the
    /// module's documentation).
    pub fn push_blob(&self, remote: &dyn Remote, digest: &Digest) -> Result<Put, StoreError> {
        if remote.has_blob(digest)? {
            return Ok(Put::Existed);
        }
        self.send_blob(remote, digest)
    }

    /// Puts a blob a listing found missing on the remote (the put itself is still
    /// create-if-absent), verifying the local copy as it goes.
    pub(crate) fn send_blob(
        &self,
        remote: &dyn Remote,
        digest: &Digest,
    ) -> Result<Put, StoreError> {
        let (path, file) = self.open_blob(digest)?;
        let len = file.metadata().ctx("read the size of", &path)?.len();
        let mut data = Verified::new(path.clone(), *digest, file, len);
        let put = remote.put_blob(digest, len, &mut data);
        // A put that failed because the local blob is bad is the local blob's error.
        match data.failure.take() {
            Some(e) => Err(from_read_err(e, "read blob", &path)),
            None => Ok(put?),
        }
    }

    /// The result for `key`: the local one if the store has it, else the remote's, which is
    /// used only if `trust` accepts it and it is valid, and is published locally after its
    /// blobs are fetched and verified. `None` if neither has it.
    pub fn fetch_action(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        trust: &dyn EntryTrust,
    ) -> Result<Option<ActionResult>, StoreError> {
        if let Some(result) = self.lookup(key)? {
            return Ok(Some(result));
        }
        let Some(result) = self.remote_entry(remote, key, trust)? else {
            return Ok(None);
        };
        self.fetch_result(remote, key, &result)?;
        Ok(Some(result))
    }

    /// The remote's entry for `key`, checked (size, envelope, `trust`, manifest) but not yet
    /// used: nothing is fetched or published. `None` if the remote has none.
    pub fn remote_entry(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        trust: &dyn EntryTrust,
    ) -> Result<Option<ActionResult>, StoreError> {
        match remote.get_action(key)? {
            Some(bytes) => open_entry(remote.name(), key, &bytes, trust).map(Some),
            None => Ok(None),
        }
    }

    /// Makes a checked remote entry (from [`Store::remote_entry`]) a local result: fetches its
    /// blobs, each verified, then publishes it. Returns the bytes received.
    pub fn fetch_result(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        result: &ActionResult,
    ) -> Result<u64, StoreError> {
        let mut received = 0;
        for (_, blob) in result.blobs() {
            received += self.fetch_blob(remote, &blob)?;
        }
        self.publish(key, result)?;
        Ok(received)
    }

    /// Pushes the local result for `key`: its blobs (verified, those the remote lacks), then
    /// its entry signed by `trust`, unless the remote has an entry for `key` already.
    pub fn push_action(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        trust: &dyn EntryTrust,
    ) -> Result<Put, StoreError> {
        let result = self
            .lookup(key)?
            .ok_or_else(|| StoreError::ActionNotFound {
                key: *key,
                root: self.root.clone(),
            })?;
        if remote.has_action(key)? {
            return Ok(Put::Existed);
        }
        for (_, blob) in result.blobs() {
            self.push_blob(remote, &blob.digest)?;
        }
        self.push_entry(remote, key, &result, trust)
    }

    /// Puts the signed entry of `result` (whose blobs are on the remote) unless one exists.
    pub(crate) fn push_entry(
        &self,
        remote: &dyn Remote,
        key: &Digest,
        result: &ActionResult,
        trust: &dyn EntryTrust,
    ) -> Result<Put, StoreError> {
        let entry = seal_entry(key, result, trust)?;
        Ok(remote.put_action(key, &entry)?)
    }
}

/// The envelope of `result`'s manifest, signed by `trust`.
fn seal_entry(
    key: &Digest,
    result: &ActionResult,
    trust: &dyn EntryTrust,
) -> Result<Vec<u8>, StoreError> {
    let manifest = String::from_utf8(Manifest::to_json(key, result)).expect("JSON is UTF-8");
    seal(key, key, manifest, trust)
}

/// The envelope of `manifest` for `key`, with `trust`'s signatures over `signed` (the key
/// itself for an action entry; see `checkpoint::signed_key` for a checkpoint entry).
pub(crate) fn seal(
    key: &Digest,
    signed: &Digest,
    manifest: String,
    trust: &dyn EntryTrust,
) -> Result<Vec<u8>, StoreError> {
    let signatures = trust
        .sign(signed, manifest.as_bytes())
        .map_err(|reason| StoreError::CannotSign { key: *key, reason })?;
    let entry = Entry {
        format: ENTRY_FORMAT,
        key: *key,
        manifest,
        signatures,
    };
    Ok(serde_json::to_vec(&entry).expect("entries serialize"))
}

/// Checks an entry from `remote` in the order that exposes least to an untrusted one: its
/// size and envelope, then its signatures, then what its manifest says.
fn open_entry(
    remote: &str,
    key: &Digest,
    bytes: &[u8],
    trust: &dyn EntryTrust,
) -> Result<ActionResult, StoreError> {
    let corrupt = |reason: String| StoreError::RemoteCorrupt {
        remote: remote.into(),
        object: format!("the action entry for key {key}"),
        reason,
    };
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        return Err(corrupt(format!(
            "it is larger than {MAX_ENTRY_BYTES} bytes"
        )));
    }
    let entry: Entry = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if entry.format != ENTRY_FORMAT {
        return Err(corrupt(format!(
            "entry format {} is not supported (this prunus knows {ENTRY_FORMAT}); upgrade prunus",
            entry.format
        )));
    }
    if entry.key != *key {
        return Err(corrupt(format!("it is the entry of key {}", entry.key)));
    }
    trust
        .verify(key, entry.manifest.as_bytes(), &entry.signatures)
        .map_err(|reason| StoreError::UntrustedEntry {
            remote: remote.into(),
            key: *key,
            reason,
        })?;
    // Parsing also refuses output names that are not plain relative paths.
    Manifest::parse(key, entry.manifest.as_bytes()).map_err(corrupt)
}

/// A local blob file as a remote reads it for a put, verified on the way: each chunk it
/// yields is also sent to a [`BlobReader`] on another thread, and the last bytes are held back
/// until that reader has checked the whole blob. A corrupt blob thus fails its put before the
/// put can complete (a multipart upload is aborted), and the file is read once, not twice.
struct Verified {
    file: std::fs::File,
    path: PathBuf,
    digest: Digest,
    left: u64,
    chunks: Option<SyncSender<Vec<u8>>>,
    verifier: Option<JoinHandle<io::Result<()>>>,
    /// Why the blob is not its digest's, once that is known.
    failure: Option<io::Error>,
}

/// The most a [`Verified`] yields per read, so that the chunks in flight stay small.
const CHUNK: usize = 1 << 20;

impl Verified {
    fn new(path: PathBuf, digest: Digest, file: std::fs::File, len: u64) -> Verified {
        let (send, chunks) = sync_channel::<Vec<u8>>(8);
        let named = path.clone();
        let verifier = std::thread::spawn(move || {
            let source = Chunks {
                chunks,
                current: Vec::new(),
                pos: 0,
            };
            io::copy(
                &mut BlobReader::open(named, digest, source, None)?,
                &mut io::sink(),
            )?;
            Ok(())
        });
        Verified {
            file,
            path,
            digest,
            left: len,
            chunks: Some(send),
            verifier: Some(verifier),
            failure: None,
        }
    }

    /// Waits for the verifier's verdict on the bytes sent to it; `unread` says why the file
    /// ended other than where it should have, should the verifier have accepted it anyway.
    fn verdict(&mut self, unread: Option<&str>) -> io::Result<()> {
        self.chunks = None;
        if let Some(verifier) = self.verifier.take() {
            let checked = verifier.join().expect("the blob verifier panicked");
            let failure = checked
                .err()
                .or_else(|| unread.map(|why| corrupt_err(self.digest, &self.path, why.into())));
            self.failure = failure;
        }
        match &self.failure {
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
            None => Ok(()),
        }
    }
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.left).unwrap_or(usize::MAX);
        let want = buf.len().min(CHUNK).min(left);
        if want == 0 {
            return if buf.is_empty() {
                Ok(0)
            } else {
                self.verdict(None).map(|()| 0)
            };
        }
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            self.verdict(Some("the file is shorter than it was"))?;
        }
        let sent = self.chunks.as_ref().map(|c| c.send(buf[..n].to_vec()));
        if sent.is_some_and(|s| s.is_err()) {
            // The verifier reads to the end of what it is sent; stopping before it means a bad blob.
            self.verdict(Some("its verifier stopped before the end of the file"))?;
        }
        self.left -= n as u64;
        if self.left == 0 {
            self.verdict(None)?;
        }
        Ok(n)
    }
}

/// The receiving end of a [`Verified`]'s chunks, as the verifier's source.
struct Chunks {
    chunks: Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => (self.current, self.pos) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What a [`Tee`] saw, for telling a remote's failure from a local one.
#[derive(Default)]
struct TeeState {
    copied: u64,
    read_err: Option<io::Error>,
    write_err: Option<io::Error>,
}

/// A reader over a remote's stream that also writes every byte it yields to a temp file, so
/// the bytes that are verified are exactly the bytes that are kept.
struct Tee {
    stream: Box<dyn Read + Send>,
    copy: std::fs::File,
    state: Arc<Mutex<TeeState>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.stream.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let failed = io::Error::new(e.kind(), e.to_string());
                self.state.lock().unwrap().read_err.get_or_insert(e);
                return Err(failed);
            }
        };
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            let failed = io::Error::new(e.kind(), e.to_string());
            self.state.lock().unwrap().write_err.get_or_insert(e);
            return Err(failed);
        }
        self.state.lock().unwrap().copied += n as u64;
        Ok(n)
    }
}
