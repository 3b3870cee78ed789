//! Content-addressed artifact store: blake3-addressed zstd blobs, action cache, checkpoint scratch.
//!
//! Layout under the store root:
//!
//! ```text
//! STORE                  marker with the layout version
//! blobs/ab/<digest>.zst  blobs, named by the blake3 of their uncompressed bytes (see `blob`)
//! actions/ab/<key>.json  action cache: stage key -> outputs + run metadata
//! refs/<name>            named refs (e.g. an instance's last key); pinned by `gc`
//! pipelines/<name>       the pipeline file that owns a pipeline name (refs are named by it)
//! scratch/<key>/         checkpoint scratch of a stage, outside its key, for resuming
//! locks/<key>.lock       per-stage locks (`flock`, released when the process dies)
//! work/<key>-<random>/   a running stage's inputs and outputs (made under its stage lock)
//! tmp/                   files being written (each `flock`ed by its writer); renamed into
//!                        place only once durable
//! quarantine/            what `verify` found corrupt, kept for inspection
//! keys/ed25519.pk8       the store's key for signing the action entries it pushes (0600)
//! ```
//!
//! Leftovers: a process killed mid-stage leaves its `work/` directory and temp files behind.
//! Each is tied to a lock that dies with its owner (the stage lock, the temp file's own
//! `flock`), so `gc` tells a dead process's leftovers from a live one's whatever their age.
//!
//! Crash safety: every file is written to `tmp/`, fsynced, renamed into place and its directory
//! fsynced, so a process killed at any instant leaves either the old or the new file, never a
//! partial one. A manifest is published only after every blob it names is in place, and blobs
//! are immutable, so two writers of the same blob or result race harmlessly.
//!
//! Sharing: a [`Remote`] (a directory, [`DirRemote`], or an object store) holds blob files and
//! signed action entries; [`Store::fetch_action`] and [`Store::fetch_blob`] take from it only
//! what verifies (and, for entries, what an [`EntryTrust`] accepts), [`Store::push_action`] and
//! [`Store::push_blob`] give to it; [`Store::push_checkpoint`] and [`Store::fetch_checkpoint`]
//! move an unfinished stage's scratch, signed, for a batch job resumed on another node. The
//! local layout above does not change.
//!
//! How a runner uses it:
//!
//! ```
//! use prunus_store::{ActionResult, Digest, RunMeta, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("store"))?;
//! let key = Digest::of(b"the engine's canonical encoding of a stage instance");
//! if store.lookup(&key)?.is_none() {
//!     let _running = store.lock_stage(&key)?; // no other process runs this key meanwhile
//!     let _resume_from = store.scratch(&key)?; // checkpoints of an earlier, killed run
//!     let returns = store.put_bytes(b"iteration,env_steps\n0,250000\n")?;
//!     let meta = RunMeta {
//!         started_unix_ms: 0, ended_unix_ms: 1000, duration_s: 1.0, host: "node1".into(),
//!         prunus_version: "0.1.0".into(), exit_status: "ok".into(), log: None,
//!     };
//!     let outputs = [("returns.csv".to_string(), returns)].into();
//!     store.publish(&key, &ActionResult { outputs, meta, key_info: serde_json::json!({}) })?;
//!     store.set_ref("train[seed=1]", &key)?;
//! }
//! let result = store.lookup(&key)?.expect("published");
//! let csv = store.get_bytes(&result.outputs["returns.csv"].digest)?; // verified
//! assert!(csv.starts_with(b"iteration"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod action;
mod blob;
mod checkpoint;
mod digest;
mod error;
mod leftovers;
mod maint;
mod outputs;
pub mod remote;
mod sync;
mod transfer;
mod trust;

use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use action::{ActionResult, RunMeta};
pub use blob::BlobReader;
use blob::Sink;
pub use digest::{BlobRef, Digest, ParseDigestError};
pub use error::StoreError;
pub use leftovers::Kept;
pub use maint::{
    Dangling, DuReport, GcOptions, GcReport, Pending, Quarantined, ScratchCheck, VerifyReport,
};
pub use outputs::{check_output_name, output_path};
pub use remote::{
    DirRemote, EntrySignature, EntryTrust, Put, Remote, RemoteError, S3Config, S3Remote,
    TrustWriters,
};
pub use sync::{SyncProgress, SyncReport};
pub use trust::{Signed, SigningKey};

use action::Manifest;
use error::IoContext;

const MARKER: &str = "STORE";
const MARKER_TEXT: &str = "prunus-store 1\n";
const SUBDIRS: [&str; 8] = [
    "blobs",
    "actions",
    "refs",
    "scratch",
    "locks",
    "work",
    "tmp",
    "quarantine",
];

/// A store rooted at one directory. Cheap to clone; safe to use from many processes at once.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one stage key, held until dropped or the process dies.
#[derive(Debug)]
pub struct StageLock {
    _file: File,
    key: Digest,
}

impl StageLock {
    /// The stage key this lock is for.
    pub fn key(&self) -> Digest {
        self.key
    }
}

impl Store {
    /// Opens the store at `root`, creating its layout if absent. Refuses a non-empty directory
    /// that is not a store, so a mistyped path never gets littered.
    pub fn open(root: impl AsRef<Path>) -> Result<Store, StoreError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).ctx("create the store directory", &root)?;
        let marker = root.join(MARKER);
        if !marker.exists() {
            let mut entries = fs::read_dir(&root).ctx("list the store directory", &root)?;
            if entries.next().is_some() && !root.join("blobs").is_dir() {
                return Err(StoreError::Io {
                    op: "open as a store",
                    path: root,
                    source: io::Error::other(
                        "the directory is not empty and is not a prunus store; \
                         choose an empty or new directory for the store",
                    ),
                });
            }
        }
        for sub in SUBDIRS {
            let dir = root.join(sub);
            if !dir.is_dir() {
                fs::create_dir_all(&dir).ctx("create the store directory", &dir)?;
            }
        }
        let store = Store { root };
        if !marker.exists() {
            store.write_atomic(&marker, MARKER_TEXT.as_bytes())?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // ----- blobs -----

    /// Stores a file, streaming (it never sits in memory).
    pub fn put_file(&self, path: &Path) -> Result<BlobRef, StoreError> {
        let file = File::open(path).ctx("open the file to store", path)?;
        let mut input = file;
        self.put_stream(&mut input)
    }

    /// Stores everything `r` yields, streaming.
    pub fn put_reader(&self, mut r: impl Read) -> Result<BlobRef, StoreError> {
        self.put_stream(&mut r)
    }

    /// Stores a byte slice.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobRef, StoreError> {
        let mut r = bytes;
        self.put_stream(&mut r)
    }

    fn put_stream(&self, r: &mut dyn Read) -> Result<BlobRef, StoreError> {
        let (file, tmp) = self.temp_file("blob-")?;
        let (digest, size) = blob::write_blob(r, file, &tmp)?;
        let dest = self.blob_path(&digest);
        set_readonly(&tmp)?;
        // Renaming over an existing copy is harmless (same bytes) and repairs a corrupt one.
        self.install(tmp, &dest)?;
        Ok(BlobRef { digest, size })
    }

    /// Whether the blob is in the store (its presence implies it is complete and durable).
    pub fn has(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// A streaming reader over a blob's bytes. The digest is checked at end of stream: a
    /// mismatch is an `io::ErrorKind::InvalidData` error wrapping [`StoreError::CorruptBlob`].
    pub fn read(&self, d: &Digest) -> Result<BlobReader, StoreError> {
        let (path, file) = self.open_blob(d)?;
        BlobReader::open(path.clone(), *d, file, None)
            .map_err(|e| from_read_err(e, "read blob", &path))
    }

    /// The blob file of `d`, open, and its path.
    fn open_blob(&self, d: &Digest) -> Result<(PathBuf, File), StoreError> {
        let path = self.blob_path(d);
        match File::open(&path) {
            Ok(f) => Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::BlobNotFound {
                digest: *d,
                root: self.root.clone(),
            }),
            Err(e) => Err(StoreError::io("open blob", &path, e)),
        }
    }

    /// A blob's bytes, verified.
    pub fn get_bytes(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut r = self.read(d)?;
        let mut out = Vec::with_capacity(r.size().min(1 << 30) as usize);
        r.read_to_end(&mut out)
            .map_err(|e| from_read_err(e, "read blob", &self.blob_path(d)))?;
        Ok(out)
    }

    /// Writes output `name` of a result into `dir`, at [`output_path`]: whatever a manifest
    /// names or `dir` already holds, nothing is written outside `dir`. Returns the file's path.
    pub fn export_output(&self, d: &Digest, dir: &Path, name: &str) -> Result<PathBuf, StoreError> {
        let path = output_path(dir, name).map_err(|reason| StoreError::UnsafeExport { reason })?;
        self.get_to_file(d, &path)?;
        Ok(path)
    }

    /// Writes a blob to `dest` (creating its directory), verified, atomically: `dest` appears
    /// only once its bytes hash to `d`, so a killed process never leaves a partial file there.
    /// Zero blocks become holes (sparse files stay sparse). `dest` is a copy of what the store
    /// keeps durably, so it is not fsynced (that would halve the throughput). Returns the size.
    pub fn get_to_file(&self, d: &Digest, dest: &Path) -> Result<u64, StoreError> {
        let (blob_path, blob) = self.open_blob(d)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).ctx("create the directory", &parent)?;
        let (file, tmp) = tempfile::Builder::new()
            .prefix(".prunus-")
            .tempfile_in(&parent)
            .ctx("create a temp file in", &parent)?
            .into_parts();
        let sink = Sink::new(file);
        // The reader writes every frame into `sink` as it decodes; this only drives it.
        let mut r = BlobReader::open(blob_path.clone(), *d, blob, Some(Arc::clone(&sink)))
            .map_err(|e| from_read_err(e, "read blob", &blob_path))?;
        let mut total = 0u64;
        loop {
            let n = r
                .fill_buf()
                .map_err(|e| from_read_err(e, "read blob", &blob_path))?
                .len();
            if n == 0 {
                break;
            }
            r.consume(n);
            total += n as u64;
        }
        sink.finish(total).ctx("write", &tmp)?;
        drop(sink);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).ctx("chmod", &tmp)?;
        }
        tmp.persist(dest)
            .map_err(|e| StoreError::io("move into place", dest, e.error))?;
        Ok(total)
    }

    // ----- action cache -----

    /// The published result for a stage key. A manifest whose blobs are missing (say
    /// quarantined by `verify`) is a miss, so the stage reruns and republishes over it.
    pub fn lookup(&self, key: &Digest) -> Result<Option<ActionResult>, StoreError> {
        let path = self.action_path(key);
        let Some(result) = self.read_manifest(key, &path)? else {
            return Ok(None);
        };
        if result.blobs().all(|(_, b)| self.has(&b.digest)) {
            Ok(Some(result))
        } else {
            Ok(None)
        }
    }

    /// Publishes `result` under `key`, atomically, after checking that every blob it names is
    /// in the store. Publishing the same key again replaces the result.
    pub fn publish(&self, key: &Digest, result: &ActionResult) -> Result<(), StoreError> {
        // Shared against `gc`, so no blob vanishes between the check and the rename.
        let _gc = self.gc_lock(false)?;
        if let Some(reason) = result
            .outputs
            .keys()
            .find_map(|n| check_output_name(n).err())
        {
            return Err(StoreError::BadOutputName { key: *key, reason });
        }
        for (what, b) in result.blobs() {
            if !self.has(&b.digest) {
                return Err(StoreError::MissingBlob {
                    key: *key,
                    what,
                    digest: b.digest,
                });
            }
        }
        self.write_atomic(&self.action_path(key), &Manifest::to_json(key, result))
    }

    /// Every published result, sorted by key.
    pub fn actions(&self) -> Result<Vec<(Digest, ActionResult)>, StoreError> {
        let mut out = Vec::new();
        for (key, path) in self.list_fanout("actions", "json")? {
            if let Some(r) = self.read_manifest(&key, &path)? {
                out.push((key, r));
            }
        }
        Ok(out)
    }

    fn read_manifest(&self, key: &Digest, path: &Path) -> Result<Option<ActionResult>, StoreError> {
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read action manifest", path, e)),
        };
        Manifest::parse(key, &text)
            .map(Some)
            .map_err(|reason| StoreError::BadManifest {
                key: *key,
                path: path.to_path_buf(),
                reason,
            })
    }

    // ----- locks and scratch -----

    /// Takes the exclusive lock of a stage key, waiting for it. Released on drop or when the
    /// process dies (`flock`), so a killed run never leaves a stale lock.
    pub fn lock_stage(&self, key: &Digest) -> Result<StageLock, StoreError> {
        let (file, path) = self.lock_file(key)?;
        file.lock().ctx("lock", &path)?;
        Ok(StageLock {
            _file: file,
            key: *key,
        })
    }

    /// Like [`Store::lock_stage`], but returns `None` at once if another holder has it.
    pub fn try_lock_stage(&self, key: &Digest) -> Result<Option<StageLock>, StoreError> {
        let (file, path) = self.lock_file(key)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StageLock {
                _file: file,
                key: *key,
            })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::io("lock", &path, e)),
        }
    }

    fn lock_file(&self, key: &Digest) -> Result<(File, PathBuf), StoreError> {
        let path = self.root.join("locks").join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("create lock file", &path)?;
        Ok((file, path))
    }

    /// Store-wide lock: exclusive for `gc`, shared for `publish`.
    fn gc_lock(&self, exclusive: bool) -> Result<File, StoreError> {
        let path = self.root.join("locks").join("gc.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("create lock file", &path)?;
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .ctx("lock", &path)?;
        Ok(file)
    }

    /// The checkpoint scratch directory of a stage key, created on demand. It is not part of
    /// the key: a rerun of the same key finds what the killed run left there.
    pub fn scratch(&self, key: &Digest) -> Result<PathBuf, StoreError> {
        let dir = self.root.join("scratch").join(key.to_string());
        fs::create_dir_all(&dir).ctx("create scratch directory", &dir)?;
        Ok(dir)
    }

    // ----- refs -----

    /// Points the named ref at a key (atomically). Refs pin their key against `gc`.
    pub fn set_ref(&self, name: &str, key: &Digest) -> Result<(), StoreError> {
        let path = self.ref_path(name)?;
        // A ref is a hint (which key an instance had last, for `explain` and as a gc root):
        // replaced atomically but not fsynced, so recording it costs no disk flush. A power
        // cut may lose the newest ref; never a result, which `publish` makes durable.
        let (mut file, tmp) = self.temp_file("ref-")?;
        file.write_all(format!("{key}\n").as_bytes())
            .ctx("write", &tmp)?;
        tmp.persist(&path)
            .map_err(|e| StoreError::io("move into place", &path, e.error))
    }

    /// The key a named ref points at.
    pub fn get_ref(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        let path = self.ref_path(name)?;
        match fs::read_to_string(&path) {
            Ok(text) => parse_ref(name, &text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read ref", &path, e)),
        }
    }

    /// The keys of every published result (names only: nothing is read or verified), so
    /// that planning a large sweep asks the file system once, not once per instance.
    pub fn action_keys(&self) -> Result<std::collections::HashSet<Digest>, StoreError> {
        Ok(self
            .list_fanout("actions", "json")?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    /// The names of every ref (without reading them).
    pub fn ref_names(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let dir = self.root.join("refs");
        let mut out = std::collections::HashSet::new();
        for entry in fs::read_dir(&dir).ctx("list", &dir)? {
            let entry = entry.ctx("list", &dir)?;
            if let Some(name) = entry.file_name().to_str().and_then(decode_ref_name) {
                out.insert(name);
            }
        }
        Ok(out)
    }

    /// Every named ref, sorted by name.
    pub fn refs(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        let dir = self.root.join("refs");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).ctx("list", &dir)? {
            let entry = entry.ctx("list", &dir)?;
            let Some(name) = entry.file_name().to_str().and_then(decode_ref_name) else {
                continue;
            };
            let text = fs::read_to_string(entry.path()).ctx("read ref", entry.path())?;
            out.push((name.clone(), parse_ref(&name, &text)?));
        }
        out.sort();
        Ok(out)
    }

    // ----- pipeline names -----

    /// Records `file` as the pipeline file that owns pipeline name `name` unless some file
    /// already does (create-if-absent, so two first runs cannot both win); returns the owner
    /// it found. Refs and results are named by pipeline name, so one name is one file.
    pub fn claim_pipeline_name(
        &self,
        name: &str,
        file: &Path,
    ) -> Result<Option<PathBuf>, StoreError> {
        if let Some(owner) = self.pipeline_file(name)? {
            return Ok(Some(owner));
        }
        match self.write_pipeline_file(name, file, false) {
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                self.pipeline_file(name)
            }
            other => other.map(|()| None),
        }
    }

    /// The pipeline file recorded as owning pipeline name `name`, if any.
    pub fn pipeline_file(&self, name: &str) -> Result<Option<PathBuf>, StoreError> {
        use std::os::unix::ffi::OsStrExt;
        let path = self.root.join("pipelines").join(encode_ref_name(name));
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(
                bytes.strip_suffix(b"\n").unwrap_or(&bytes),
            )))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read pipeline owner", &path, e)),
        }
    }

    /// Makes `file` the owner of pipeline name `name`, replacing any owner (a moved file).
    pub fn set_pipeline_file(&self, name: &str, file: &Path) -> Result<(), StoreError> {
        self.write_pipeline_file(name, file, true)
    }

    fn write_pipeline_file(
        &self,
        name: &str,
        file: &Path,
        replace: bool,
    ) -> Result<(), StoreError> {
        use std::os::unix::ffi::OsStrExt;
        let dir = self.root.join("pipelines");
        fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        let path = dir.join(encode_ref_name(name));
        let tmp_dir = self.root.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix("pipeline-")
            .tempfile_in(&tmp_dir)
            .ctx("create a temp file in", &tmp_dir)?;
        let mut bytes = file.as_os_str().as_bytes().to_vec();
        bytes.push(b'\n');
        fs::write(tmp.path(), bytes).ctx("write", tmp.path())?;
        let tmp = tmp.into_temp_path();
        let persisted = if replace {
            tmp.persist(&path)
        } else {
            tmp.persist_noclobber(&path)
        };
        persisted.map_err(|e| StoreError::io("move into place", &path, e.error))
    }

    fn ref_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        if name.is_empty() {
            return Err(StoreError::BadRef {
                name: name.into(),
                reason: "the name is empty".into(),
                fix: "give the ref a name",
            });
        }
        Ok(self.root.join("refs").join(encode_ref_name(name)))
    }

    // ----- paths and atomic writes -----

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.to_string();
        self.root
            .join("blobs")
            .join(&hex[..2])
            .join(format!("{hex}.zst"))
    }

    pub(crate) fn action_path(&self, key: &Digest) -> PathBuf {
        let hex = key.to_string();
        self.root
            .join("actions")
            .join(&hex[..2])
            .join(format!("{hex}.json"))
    }

    /// Files `<top>/xx/<digest>.<ext>`, with their digests, sorted. Other names are skipped.
    pub(crate) fn list_fanout(
        &self,
        top: &str,
        ext: &str,
    ) -> Result<Vec<(Digest, PathBuf)>, StoreError> {
        let mut out = Vec::new();
        for (name, path) in self.list_fanout_raw(top)? {
            let digest = name
                .strip_suffix(ext)
                .and_then(|s| s.strip_suffix('.'))
                .and_then(|s| s.parse::<Digest>().ok());
            if let Some(d) = digest {
                out.push((d, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every file `<top>/*/*`, with its file name.
    pub(crate) fn list_fanout_raw(&self, top: &str) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let dir = self.root.join(top);
        let mut out = Vec::new();
        for sub in fs::read_dir(&dir).ctx("list", &dir)? {
            let sub = sub.ctx("list", &dir)?;
            if !sub.file_type().ctx("list", sub.path())?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(sub.path()).ctx("list", sub.path())? {
                let entry = entry.ctx("list", sub.path())?;
                let name = entry.file_name().to_string_lossy().into_owned();
                out.push((name, entry.path()));
            }
        }
        Ok(out)
    }

    /// Writes `bytes` to `dest` so that a crash leaves either the old file or the new one.
    pub(crate) fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let (mut file, tmp) = self.temp_file("file-")?;
        file.write_all(bytes).ctx("write", &tmp)?;
        file.sync_all().ctx("fsync", &tmp)?;
        drop(file);
        set_readonly(&tmp)?;
        self.install(tmp, dest)
    }

    /// A new file in `tmp/`, `flock`ed for as long as it is open, so that `gc` knows it is
    /// being written: an unlocked temp file's writer is dead. (`gc` removes a temp file only
    /// while holding its lock, so a file it got to between our creating and locking it is
    /// unlinked by the time we hold the lock; we then make another.)
    pub(crate) fn temp_file(&self, prefix: &str) -> Result<(File, tempfile::TempPath), StoreError> {
        let tmp_dir = self.root.join("tmp");
        loop {
            let (file, path) = tempfile::Builder::new()
                .prefix(prefix)
                .tempfile_in(&tmp_dir)
                .ctx("create a temp file in", &tmp_dir)?
                .into_parts();
            file.lock().ctx("lock", &path)?;
            if still_linked(&file).ctx("stat", &path)? {
                return Ok((file, path));
            }
        }
    }

    /// A fresh work directory for the stage whose lock is `lock` (`work/<key>-<random>/`,
    /// removed on drop). Made under the stage lock, so `gc` knows it is in use while that
    /// lock is held, and a leftover once it is not.
    pub fn work_dir(&self, lock: &StageLock) -> Result<tempfile::TempDir, StoreError> {
        let work = self.root.join("work");
        fs::create_dir_all(&work).ctx("create the work directory", &work)?;
        tempfile::Builder::new()
            .prefix(&format!("{}-", lock.key))
            .tempdir_in(&work)
            .ctx("create a work directory in", &work)
    }

    /// Renames a durable temp file to `dest`, creating (durably) its fan-out directory.
    fn install(&self, tmp: tempfile::TempPath, dest: &Path) -> Result<(), StoreError> {
        let parent = dest.parent().expect("store paths have a parent");
        if !parent.is_dir() {
            match fs::create_dir(parent) {
                Ok(()) => sync_dir(parent.parent().expect("fan-out dirs have a parent"))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io("create directory", parent, e)),
            }
        }
        tmp.persist(dest)
            .map_err(|e| StoreError::io("move into place", dest, e.error))?;
        sync_dir(parent)
    }
}

/// Blobs and manifests are immutable once written; make that visible in their modes.
fn set_readonly(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o444)).ctx("chmod", path)?;
    }
    Ok(())
}

/// Whether an open file still has a name (`gc` may have removed it before we locked it).
fn still_linked(file: &File) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(file.metadata()?.nlink() > 0)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(true)
    }
}

/// Makes a rename or creation in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

/// Unwraps the `StoreError` a `BlobReader` puts in its `io::Error`s.
pub(crate) fn from_read_err(e: io::Error, op: &'static str, path: &Path) -> StoreError {
    if e.get_ref().is_some_and(|inner| inner.is::<StoreError>()) {
        *e.into_inner()
            .expect("checked above")
            .downcast::<StoreError>()
            .expect("checked above")
    } else {
        StoreError::io(op, path, e)
    }
}

fn parse_ref(name: &str, text: &str) -> Result<Digest, StoreError> {
    text.trim()
        .parse()
        .map_err(|e: ParseDigestError| StoreError::BadRef {
            name: name.into(),
            reason: e.to_string(),
            fix: "set it again (rerun the pipeline) or delete its file under refs/",
        })
}

/// Ref names may hold anything (`train[game=minatar/breakout]`); file names get
/// `[A-Za-z0-9_.-]` and `%XX` for other bytes (and a leading dot).
fn encode_ref_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_ref_name(file: &str) -> Option<String> {
    let bytes = file.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = file.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_round_trip() {
        for name in [
            "a",
            "train[game=minatar/breakout,seed=1]",
            ".hidden",
            "x%y",
            "ünï",
        ] {
            let enc = encode_ref_name(name);
            assert!(!enc.contains('/') && !enc.starts_with('.'), "{enc}");
            assert_eq!(decode_ref_name(&enc).as_deref(), Some(name));
        }
    }
}
