//! The seam for sharing a store: a [`Remote`] moves blob files and action entries as bytes;
//! everything that decides whether to believe them is in the store (`transfer`).
//!
//! A remote is a dumb object store with namespaces named by digest:
//!
//! - **blobs**: each object is a blob *file* in the store's own format (a `.zst` file with
//!   prunus's header, see `blob`), byte for byte as it lies under `blobs/`. Transfers stay
//!   compressed (a 95%-sparse checkpoint moves at a tenth of its size), the remote never
//!   decodes anything, and the receiving store verifies the digest of the decoded bytes while
//!   the object streams in. A blob needs no trust: its name is its proof.
//! - **action entries**: each object is a small signed envelope around a stage key's manifest
//!   (key -> outputs). A digest cannot vouch for it (anyone who may write to the remote could
//!   put a wrong result under a real key), so the envelope carries signatures and the store
//!   checks them with an [`EntryTrust`] before it uses the entry. The remote only moves the
//!   envelope's bytes; it neither signs nor verifies.
//! - **checkpoint entries**: the same envelope around the list of an unfinished stage's
//!   scratch files (by blob), so that a batch job stopped on one node resumes on another
//!   (see `checkpoint`). The only objects that are replaced, by the stage's next checkpoint.
//!
//! Everything a remote returns is untrusted input: an implementation may be buggy, the objects
//! may have been changed behind its back, or its owner may be hostile. The store therefore
//! never writes a fetched byte where it could be read before it is verified.
//!
//! The trait is blocking and `Send + Sync`, so the store (or the CLI) moves many objects in
//! parallel by calling one remote from several threads; an implementation over an async
//! client (`object_store` for S3) runs its own runtime and blocks on it per call.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::Digest;

mod dir;
mod s3;

pub use dir::DirRemote;
pub use s3::{S3Config, S3Remote};

/// The largest action entry a store accepts from a remote. An entry is a few KiB (the outputs'
/// names and digests, the run's metadata); the limit keeps a hostile remote from making the
/// store buffer gigabytes. Implementations of [`Remote::get_action`] must stop reading past it.
pub const MAX_ENTRY_BYTES: u64 = 16 << 20;

/// What a create-if-absent put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The object was absent and is now complete on the remote.
    Created,
    /// An object of that name was already there; it was left as it was.
    Existed,
}

/// A remote that failed to do something: names the remote, the operation and the object.
#[derive(Debug, thiserror::Error)]
#[error("remote {remote}: cannot {op} {object}: {source}")]
pub struct RemoteError {
    /// The remote's name, as [`Remote::name`] gives it (`file:///mnt/cache`, `s3://b/p`).
    pub remote: String,
    /// What was being done (`get`, `put`, `list`).
    pub op: &'static str,
    /// The object, as a reader would name it (`blob <digest>`, `action entry <key>`).
    pub object: String,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl RemoteError {
    /// An error of `remote` (its [`Remote::name`]) doing `op` to `object`.
    pub fn new(
        remote: &str,
        op: &'static str,
        object: impl fmt::Display,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> RemoteError {
        RemoteError {
            remote: remote.to_string(),
            op,
            object: object.to_string(),
            source: source.into(),
        }
    }
}

/// Where a store's blobs and action entries are shared: a directory ([`DirRemote`]) or an
/// S3-compatible bucket. Every call is one object (or one listing); the store decides what to
/// move and verifies what comes back.
///
/// Contract for implementations:
/// - **Create-if-absent puts.** `put_*` never replaces an existing object: it returns
///   [`Put::Existed`] and leaves it. Blobs are immutable (same name, same bytes), and an
///   action entry's first writer wins, so two stores pushing at once race harmlessly.
///   On S3 this is `PutMode::Create` (`If-None-Match: *`); in a directory, a hard link of a
///   finished temp file.
/// - **Atomic visibility.** An object is visible (to `has_*`, `list_*`, `get_*`) only once it
///   is complete: a put interrupted at any point leaves no object, so a retry puts it again.
///   On S3 a multipart upload becomes visible when it is completed; in a directory, by rename
///   or link of a finished, fsynced temp file.
/// - **Streaming.** Blobs may be many GB: `get_blob` returns a reader and `put_blob` reads
///   from one, so no implementation needs to hold a whole blob in memory.
/// - **Absence is not an error.** A missing object is `Ok(false)` / `Ok(None)`; errors are
///   failures to ask (network, permissions), and name the remote and the object.
pub trait Remote: Send + Sync {
    /// The remote's name for messages and logs (a URL without credentials).
    fn name(&self) -> &str;

    /// Every blob on the remote (unsorted; names that are not digests are skipped). One call
    /// instead of one `has_blob` per blob, so a push or pull with nothing to do is fast.
    fn list_blobs(&self) -> Result<Vec<Digest>, RemoteError>;

    /// Whether the blob is on the remote (and so, by the contract, complete).
    fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteError>;

    /// The blob file's bytes as a stream, or `None` if the remote does not have it. Errors
    /// while reading come out of the reader as `io::Error`s.
    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>, RemoteError>;

    /// Creates the blob from `data`, which yields exactly `len` bytes (the blob file's length,
    /// for a content length or the parts of a multipart upload), unless it exists.
    fn put_blob(
        &self,
        digest: &Digest,
        len: u64,
        data: &mut (dyn Read + Send),
    ) -> Result<Put, RemoteError>;

    /// Every action entry's stage key (unsorted; names that are not digests are skipped).
    fn list_actions(&self) -> Result<Vec<Digest>, RemoteError>;

    /// Whether an action entry for `key` is on the remote.
    fn has_action(&self, key: &Digest) -> Result<bool, RemoteError>;

    /// The action entry's bytes, or `None` if there is none. An entry larger than
    /// [`MAX_ENTRY_BYTES`] is an error, found without reading more than that.
    fn get_action(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError>;

    /// Creates the action entry for `key`, unless one exists.
    fn put_action(&self, key: &Digest, entry: &[u8]) -> Result<Put, RemoteError>;

    /// The checkpoint entry of the unfinished stage `key` (see `checkpoint`), or `None`;
    /// bounded by [`MAX_ENTRY_BYTES`] as [`Remote::get_action`] is.
    fn get_checkpoint(&self, key: &Digest) -> Result<Option<Vec<u8>>, RemoteError>;

    /// Writes the checkpoint entry of `key`, replacing any: the one object that is not
    /// create-if-absent, since a stage's newer checkpoint supersedes its older one. Still
    /// atomic: a reader sees the old entry or the new one, whole.
    fn put_checkpoint(&self, key: &Digest, entry: &[u8]) -> Result<(), RemoteError>;
}

/// One signature on an action entry. Both fields are opaque to the store; an [`EntryTrust`]
/// makes and checks them (for ed25519, as Nix's binary caches: `signer` names the key, e.g.
/// `alice-1:<base64 public key>`, and `signature` is the base64 signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySignature {
    pub signer: String,
    pub signature: String,
}

/// Decides which action entries a store believes, and signs the ones it pushes.
///
/// Both methods see the exact bytes of the manifest as it travels (it records the stage key,
/// so a signature binds the key to its outputs) and the key the store asked for. The store
/// calls `verify` before it looks at anything the manifest says, and uses an entry only when
/// it returns `Ok`.
pub trait EntryTrust: Send + Sync {
    /// The signatures to attach to the manifest of `key` this store pushes.
    fn sign(&self, key: &Digest, manifest: &[u8]) -> Result<Vec<EntrySignature>, String>;

    /// `Ok` if a trusted signer signed `manifest`; otherwise why not, naming the signers seen
    /// (the store reports it with the key and the remote).
    fn verify(
        &self,
        key: &Digest,
        manifest: &[u8],
        signatures: &[EntrySignature],
    ) -> Result<(), String>;
}

/// Believes every entry and signs none: trust in whoever can write to the remote. Right for a
/// remote only you (or people you would let write to your store) can write, such as your own
/// directory on a shared disk; wrong for any remote that others can write, where an entry
/// must be signed by a trusted key (the next step adds ed25519 signing and a trusted list).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustWriters;

impl EntryTrust for TrustWriters {
    fn sign(&self, _key: &Digest, _manifest: &[u8]) -> Result<Vec<EntrySignature>, String> {
        Ok(Vec::new())
    }

    fn verify(&self, _: &Digest, _: &[u8], _: &[EntrySignature]) -> Result<(), String> {
        Ok(())
    }
}
