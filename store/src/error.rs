//! Errors: each names the object or path involved and says how to fix it.

use std::io;
use std::path::{Path, PathBuf};

use crate::Digest;

/// Everything that can go wrong in the store. Nothing already stored is lost on any of these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store (or a destination) may not be written or read by this user.
    #[error(
        "permission denied to {op} {path}: {source}; make the directory writable by this user \
         (chmod/chown, or remount it read-write) or point prunus at another store directory"
    )]
    PermissionDenied {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The file system holding the store is full. Partial writes were discarded.
    #[error(
        "no space left on the device to {op} {path}: {source}; free space (`prunus store gc` \
         removes what no result needs and what killed runs left, `prunus store du` shows what \
         takes the space) or move the store to a larger file system; nothing already stored \
         was changed"
    )]
    DiskFull {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Any other I/O failure.
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A blob that is not in the store.
    #[error(
        "blob {digest} is not in the store at {root}: it was never stored or `gc` removed it; \
         rerun the stage that produces it (e.g. `prunus run`)"
    )]
    BlobNotFound { digest: Digest, root: PathBuf },
    /// A blob whose bytes do not hash to its name, or that does not decompress.
    #[error(
        "blob {digest} at {path} is corrupt ({reason}); run `prunus store verify` to quarantine it, \
         then rerun the stage that produced it"
    )]
    CorruptBlob {
        digest: Digest,
        path: PathBuf,
        reason: String,
    },
    /// `publish` of a manifest that names a blob the store does not hold.
    #[error(
        "refusing to publish action {key}: {what} refers to blob {digest}, which is not in the store; \
         store the file first (put_file) and publish after it is durable"
    )]
    MissingBlob {
        key: Digest,
        what: String,
        digest: Digest,
    },
    /// An action manifest that does not parse.
    #[error(
        "action manifest {path} (key {key}) is unreadable ({reason}); run `prunus store verify` \
         to quarantine it; the stage will then rerun"
    )]
    BadManifest {
        key: Digest,
        path: PathBuf,
        reason: String,
    },
    /// A result whose output name could leave the folder it is written to.
    #[error(
        "refusing to publish action {key}: {reason}; a stage's outputs must be plain relative \
         names inside its output folder, e.g. `returns.csv` or `checkpoints/final.bin`"
    )]
    BadOutputName { key: Digest, reason: String },
    /// An output that would be written outside the folder it is exported to.
    #[error("not exporting: {reason}")]
    UnsafeExport { reason: String },
    /// The store's signing key cannot be read or made.
    #[error("the signing key {path} is unusable ({reason}); move it aside and a new one is made")]
    BadKey { path: PathBuf, reason: String },
    /// A named ref that is empty or whose file does not hold a digest.
    #[error("ref {name:?} is invalid ({reason}); {fix}")]
    BadRef {
        name: String,
        reason: String,
        fix: &'static str,
    },
    /// A remote failed to answer (network, permissions, a full remote disk).
    #[error("{0}; nothing partial was kept, so running the same command again resumes")]
    Remote(#[from] crate::RemoteError),
    /// An object that a remote should have (an action entry there names it) is not there.
    #[error(
        "remote {remote} has no {object}: it was never pushed there or was deleted; push it \
         again from a store that has it, or run the stage locally"
    )]
    RemoteMissing { remote: String, object: String },
    /// What a remote returned is not what it should be: bytes that do not hash to the blob's
    /// digest, a truncated stream, or an entry that does not parse or names the wrong key.
    #[error(
        "{object} from remote {remote} is invalid ({reason}); nothing of it was kept; delete \
         that object on the remote so that a good copy can be pushed, and report it to whoever \
         maintains the remote"
    )]
    RemoteCorrupt {
        remote: String,
        object: String,
        reason: String,
    },
    /// An action entry that the store's trust policy does not accept (unsigned, or signed
    /// by a key that is not trusted, or with a broken signature). It is not used.
    #[error(
        "the action entry for key {key} on remote {remote} is not trusted ({reason}); it was \
         not used and the stage runs locally; trust its signer's key only if you trust them"
    )]
    UntrustedEntry {
        remote: String,
        key: Digest,
        reason: String,
    },
    /// A checkpoint entry that the store's trust policy does not accept: the stage does not
    /// resume from it.
    #[error(
        "the checkpoint of key {key} on remote {remote} is not trusted ({reason}); the stage \
         does not resume from it"
    )]
    UntrustedCheckpoint {
        remote: String,
        key: Digest,
        reason: String,
    },
    /// A push of an action that this store has not published.
    #[error(
        "action {key} is not published in the store at {root} (or its blobs are missing); \
         run the stage first (e.g. `prunus run`), then push"
    )]
    ActionNotFound { key: Digest, root: PathBuf },
    /// The store's trust policy could not sign an entry it was about to push.
    #[error("cannot sign the action entry for key {key} ({reason}); nothing was pushed for it")]
    CannotSign { key: Digest, reason: String },
}

impl StoreError {
    /// Classifies an I/O error so that permission problems and full disks get their own fix.
    pub(crate) fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> StoreError {
        let path = path.as_ref().to_path_buf();
        match source.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::PermissionDenied { op, path, source }
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StoreError::DiskFull { op, path, source }
            }
            _ => StoreError::Io { op, path, source },
        }
    }
}

/// Attaches an operation and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_full_disk_names_the_path_and_how_to_free_space() {
        // /dev/full fails every write with ENOSPC, as a full file system does.
        let Ok(mut full) = std::fs::File::options().write(true).open("/dev/full") else {
            return;
        };
        let source = full.write_all(&[0; 4096]).and_then(|()| full.flush());
        let source = source.expect_err("/dev/full accepted a write");
        let e = StoreError::io("write temp blob", "/data/store/tmp/blob-x1", source);
        assert!(matches!(e, StoreError::DiskFull { .. }), "{e:?}");
        let msg = e.to_string();
        for part in [
            "/data/store/tmp/blob-x1",
            "no space left",
            "`prunus store gc`",
            "`prunus store du`",
        ] {
            assert!(msg.contains(part), "{part:?} missing in: {msg}");
        }
    }
}
