//! A remote in a plain directory: another disk, or a path on a file system that several
//! machines mount (NFS-style), shared by everyone who may write to it.
//!
//! Layout under the remote's root:
//!
//! ```text
//! PRUNUS-REMOTE             marker with the layout version
//! blobs/ab/<digest>.zst     blob files, as the store keeps them (see `blob`)
//! actions/ab/<key>.entry    action entries: signed envelopes (see `transfer`)
//! checkpoints/ab/<key>.entry  checkpoint entries of unfinished stages (see `checkpoint`)
//! tmp/                      objects being written; linked into place only once durable
//! ```
//!
//! Create-if-absent is a hard link of a finished, fsynced temp file: `link(2)` fails if the
//! name exists, atomically, also over NFS (where `rename` would replace and
//! `RENAME_NOREPLACE` is unsupported), so of two machines putting one object, one creates it
//! whole and the other finds it there. Nothing partial is ever visible under a final name.
//! A checkpoint entry, the one object that is replaced, is renamed over the old one instead.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{MAX_ENTRY_BYTES, Put, Remote, RemoteError};
use crate::Digest;

const MARKER: &str = "PRUNUS-REMOTE";
const MARKER_TEXT: &str = "prunus-remote 1\n";
const SUBDIRS: [&str; 4] = ["blobs", "actions", "checkpoints", "tmp"];

/// A [`Remote`] in a directory (see the module's documentation for its layout).
#[derive(Debug, Clone)]
pub struct DirRemote {
    root: PathBuf,
    name: String,
}

impl DirRemote {
    /// Opens the remote at `root`, creating its layout if the directory is new or empty (its
    /// parent must exist).
    /// Refuses a non-empty directory that is not a remote (a local store included: its
    /// action manifests are not signed entries), so a mistyped path never gets littered.
    pub fn open(root: impl AsRef<Path>) -> Result<DirRemote, RemoteError> {
        let root = std::path::absolute(root.as_ref()).unwrap_or_else(|_| root.as_ref().into());
        let name = format!("file://{}", root.display());
        let err = |op, e: io::Error| RemoteError::new(&name, op, root.display(), e);
        // Only the remote's own folder is made: a missing parent is more likely an unmounted
        // shared disk than a place to fill.
        match fs::create_dir(&root) {
            Ok(()) => {}
            // Made before, or just now by another machine.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && root.is_dir() => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(err(
                    "create",
                    io::Error::other(format!(
                        "its parent folder does not exist (is the shared disk mounted?); create {} first",
                        root.parent().unwrap_or(&root).display()
                    )),
                ));
            }
            Err(e) => return Err(err("create", e)),
        }
        let marker = root.join(MARKER);
        if !marker.exists() {
            // Only the layout's own folders: another machine is making the remote.
            let foreign = fs::read_dir(&root)
                .map_err(|e| err("list", e))?
                .flatten()
                .any(|e| !SUBDIRS.iter().any(|s| e.file_name() == *s));
            if foreign {
                let e = io::Error::other(
                    "the directory is not empty and is not a prunus remote; \
                     choose an empty or new directory for the remote",
                );
                return Err(err("open as a remote", e));
            }
        }
        for sub in SUBDIRS {
            fs::create_dir_all(root.join(sub)).map_err(|e| err("create", e))?;
        }
        let remote = DirRemote { root, name };
        if !marker.exists() {
            remote.create(&marker, "its marker", |f| {
                f.write_all(MARKER_TEXT.as_bytes())
            })?;
        }
        Ok(remote)
    }

    /// The remote's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.to_string();
        self.root
            .join("blobs")
            .join(&hex[..2])
            .join(format!("{hex}.zst"))
    }

    fn action_path(&self, key: &Digest) -> PathBuf {
        self.entry_path("actions", key)
    }

    fn entry_path(&self, top: &str, key: &Digest) -> PathBuf {
        let hex = key.to_string();
        self.root
            .join(top)
            .join(&hex[..2])
            .join(format!("{hex}.entry"))
    }

    /// A small object's bytes, or `None`; more than [`MAX_ENTRY_BYTES`] is an error.
    fn read_entry(&self, path: &Path, object: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err("get", object, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.err("get", object, e))?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it is larger than {MAX_ENTRY_BYTES} bytes"),
            );
            return Err(self.err("get", object, e));
        }
        Ok(Some(bytes))
    }

    fn err(&self, op: &'static str, object: impl std::fmt::Display, e: io::Error) -> RemoteError {
        RemoteError::new(&self.name, op, object, e)
    }

    /// The digests named by files `<top>/xx/<digest>.<ext>`.
    fn list(&self, top: &str, ext: &str) -> Result<Vec<Digest>, RemoteError> {
        let dir = self.root.join(top);
        let what = format!("the {top} in {}", dir.display());
        let mut out = Vec::new();
        for sub in fs::read_dir(&dir).map_err(|e| self.err("list", &what, e))? {
            let sub = sub.map_err(|e| self.err("list", &what, e))?;
            if !sub.file_type().is_ok_and(|t| t.is_dir()) {
                continue; // not a fan-out directory
            }
            for entry in fs::read_dir(sub.path()).map_err(|e| self.err("list", &what, e))? {
                let entry = entry.map_err(|e| self.err("list", &what, e))?;
                let name = entry.file_name();
                let digest = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(ext))
                    .and_then(|n| n.strip_suffix('.'))
                    .and_then(|n| n.parse::<Digest>().ok());
                out.extend(digest);
            }
        }
        Ok(out)
    }

    /// Whether `path` is there; a failure to look (permissions, a stale NFS handle) is an
    /// error, not an absence, so it is never taken for a cache miss.
    fn exists(&self, path: &Path, object: impl std::fmt::Display) -> Result<bool, RemoteError> {
        match fs::metadata(path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err("look up", object, e)),
        }
    }

    /// Creates `dest` with what `write` writes, unless it exists: written to `tmp/`, fsynced,
    /// then hard-linked into place (which fails, atomically, if `dest` appeared meanwhile).
    fn create(
        &self,
        dest: &Path,
        object: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<Put, RemoteError> {
        if self.exists(dest, object)? {
            return Ok(Put::Existed); // spares the transfer; the link below decides races
        }
        let err = |op, e| self.err(op, object, e);
        let tmp_dir = self.root.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(&tmp_dir)
            .map_err(|e| err("create a temp file for", e))?;
        let mut file = tmp.as_file().try_clone().map_err(|e| err("put", e))?;
        write(&mut file).map_err(|e| err("put", e))?;
        file.sync_all().map_err(|e| err("fsync", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o444))
                .map_err(|e| err("chmod", e))?;
        }
        let parent = dest.parent().expect("remote paths have a parent");
        fs::create_dir_all(parent).map_err(|e| err("create the directory of", e))?;
        let put = match fs::hard_link(tmp.path(), dest) {
            Ok(()) => Put::Created,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Put::Existed,
            Err(e) => return Err(err("link into place", e)),
        };
        // The temp name is removed when `tmp` drops; make the new name durable first.
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| err("fsync the directory of", e))?;
        Ok(put)
    }
}

impl Remote for DirRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn list_blobs(&self) -> Result<Vec<Digest>, RemoteError> {
        self.list("blobs", "zst")
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError> {
        self.exists(&self.blob_path(digest), format_args!("blob {digest}"))
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>, RemoteError> {
        match File::open(self.blob_path(digest)) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("get", format!("blob {digest}"), e)),
        }
    }

    fn put_blob(
        &self,
        digest: &Digest,
        len: u64,
        data: &mut (dyn Read + Send),
    ) -> Result<Put, RemoteError> {
        let object = format!("blob {digest}");
        self.create(&self.blob_path(digest), &object, |file| {
            let copied = io::copy(&mut data.take(len + 1), file)?;
            if copied != len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("its reader yielded {copied} bytes, not the {len} announced"),
                ));
            }
            Ok(())
        })
    }

    fn list_actions(&self) -> Result<Vec<Digest>, RemoteError> {
        self.list("actions", "entry")
    }

    fn has_action(&self, key: &Digest) -> Result<bool, RemoteError> {
        self.exists(&self.action_path(key), format_args!("action entry {key}"))
    }

    fn get_action(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        self.read_entry(&self.action_path(key), &format!("action entry {key}"))
    }

    fn put_action(&self, key: &Digest, entry: &[u8]) -> Result<Put, RemoteError> {
        let object = format!("action entry {key}");
        self.create(&self.action_path(key), &object, |file| {
            file.write_all(entry)
        })
    }

    fn get_checkpoint(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        let path = self.entry_path("checkpoints", key);
        self.read_entry(&path, &format!("checkpoint entry {key}"))
    }

    fn put_checkpoint(&self, key: &Digest, entry: &[u8]) -> Result<(), RemoteError> {
        let object = format!("checkpoint entry {key}");
        let err = |op, e| self.err(op, &object, e);
        let dest = self.entry_path("checkpoints", key);
        let mut tmp = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(self.root.join("tmp"))
            .map_err(|e| err("create a temp file for", e))?;
        tmp.write_all(entry).map_err(|e| err("put", e))?;
        tmp.as_file().sync_all().map_err(|e| err("fsync", e))?;
        let parent = dest.parent().expect("remote paths have a parent");
        fs::create_dir_all(parent).map_err(|e| err("create the directory of", e))?;
        tmp.persist(&dest)
            .map_err(|e| err("rename into place", e.error))?;
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| err("fsync the directory of", e))
    }
}
