//! Signed action entries, as Nix signs its binary caches: a digest proves a blob, but nothing
//! proves that a key's outputs are what its stage made, so whoever pushes an entry signs it
//! with the store's ed25519 key and a store believes only entries that a key it trusts signed.
//!
//! A signer is named `<name>:<base64 public key>` (e.g. `alice-laptop:q1w2...`); that string is
//! what a user puts in their list of trusted keys and what errors show. The signature covers
//! a domain tag, the stage key and the manifest's exact bytes, so it cannot be moved to another
//! key or to a changed manifest.

use std::fs;
use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::IoContext;
use crate::remote::{EntrySignature, EntryTrust};
use crate::{Digest, Store, StoreError};

/// What every signature covers before the key and the manifest.
const DOMAIN: &[u8] = b"prunus action entry v1\0";

/// A store's signing key.
pub struct SigningKey {
    signer: String,
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.signer)
    }
}

impl SigningKey {
    /// `<name>:<base64 public key>`: what others add to their trusted keys.
    pub fn public(&self) -> &str {
        &self.signer
    }

    /// The private key (PKCS#8, base64): what a coordinator hands to the batch jobs that sign
    /// for it ([`Store::jobs_key`]), in their environment, never on a command line or in a log.
    pub fn secret(&self) -> String {
        BASE64.encode(&self.pkcs8)
    }

    /// The key [`SigningKey::secret`] handed over, named `name`.
    pub fn from_secret(name: &str, secret: &str) -> Result<SigningKey, String> {
        let pkcs8 = BASE64
            .decode(secret.trim())
            .map_err(|_| "the signing key handed to this job is not base64".to_string())?;
        from_pkcs8(name, pkcs8).map_err(|e| format!("the signing key handed to this job: {e}"))
    }

    fn sign(&self, key: &Digest, manifest: &[u8]) -> EntrySignature {
        EntrySignature {
            signer: self.signer.clone(),
            signature: BASE64.encode(self.pair.sign(&message(key, manifest)).as_ref()),
        }
    }
}

fn message(key: &Digest, manifest: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 65 + manifest.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(key.to_string().as_bytes());
    m.push(0);
    m.extend_from_slice(manifest);
    m
}

impl Store {
    /// The store's signing key, made on first use (`keys/ed25519.pk8`, readable by its owner
    /// only) and named `name` (e.g. the user and host) from then on.
    pub fn signing_key(&self, name: &str) -> Result<SigningKey, StoreError> {
        self.key_file("ed25519.pk8", name)
    }

    /// The key this store's batch jobs sign their results with when they run on nodes that do
    /// not see the store and send results through a remote (`keys/jobs-ed25519.pk8`, made on
    /// first use). It is not the store's own key, so a job's environment never holds that;
    /// the coordinator believes it.
    pub fn jobs_key(&self, name: &str) -> Result<SigningKey, StoreError> {
        self.key_file("jobs-ed25519.pk8", name)
    }

    /// Whether [`Store::jobs_key`] has been made (only then is it believed).
    pub fn has_jobs_key(&self) -> bool {
        self.root().join("keys/jobs-ed25519.pk8").exists()
    }

    fn key_file(&self, file: &str, name: &str) -> Result<SigningKey, StoreError> {
        let dir = self.root().join("keys");
        let path = dir.join(file);
        let bad = |reason: String| StoreError::BadKey {
            path: path.clone(),
            reason,
        };
        check_name(name).map_err(bad)?;
        let pkcs8 = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(&dir, &path)?,
            Err(e) => return Err(StoreError::io("read the signing key", &path, e)),
        };
        from_pkcs8(name, pkcs8).map_err(bad)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains([':', ' ', '\n']) {
        return Err(format!(
            "{name:?} cannot name a key (no `:`, spaces or newlines)"
        ));
    }
    Ok(())
}

fn from_pkcs8(name: &str, pkcs8: Vec<u8>) -> Result<SigningKey, String> {
    check_name(name)?;
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    let signer = format!("{name}:{}", BASE64.encode(pair.public_key().as_ref()));
    Ok(SigningKey {
        signer,
        pair,
        pkcs8,
    })
}

/// A new key pair in `path`, created atomically and private (mode 0600).
fn create_key(dir: &Path, path: &Path) -> Result<Vec<u8>, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).ctx("create directory", dir)?;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| {
        StoreError::io(
            "generate a signing key in",
            dir,
            io::Error::other("no randomness"),
        )
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(".key-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .ctx("create a temp file in", dir)?;
    fs::write(tmp.path(), pkcs8.as_ref()).ctx("write", tmp.path())?;
    match tmp.into_temp_path().persist_noclobber(path) {
        Ok(()) => Ok(pkcs8.as_ref().to_vec()),
        // Another process made it first: use theirs.
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            fs::read(path).ctx("read the signing key", path)
        }
        Err(e) => Err(StoreError::io("move into place", path, e.error)),
    }
}

/// Signs pushed entries with the store's key and believes an entry only if a trusted key
/// (the store's own, and those listed) signed it.
#[derive(Debug)]
pub struct Signed {
    key: SigningKey,
    trusted: Vec<(String, Vec<u8>)>,
}

impl Signed {
    /// Trusts `key` and every `<name>:<base64 public key>` in `trusted`.
    pub fn new(key: SigningKey, trusted: &[String]) -> Result<Signed, String> {
        let mut keys = vec![parse_public(&key.signer)?];
        for t in trusted {
            keys.push(parse_public(t)?);
        }
        Ok(Signed { key, trusted: keys })
    }
}

/// The public key of `<name>:<base64 public key>`.
fn parse_public(signer: &str) -> Result<(String, Vec<u8>), String> {
    let bad =
        || format!("{signer:?} is not a public key (NAME:BASE64, as `prunus store key` prints it)");
    let (name, b64) = signer.rsplit_once(':').ok_or_else(bad)?;
    let public = BASE64.decode(b64.trim()).map_err(|_| bad())?;
    if name.is_empty() || public.len() != 32 {
        return Err(bad());
    }
    Ok((signer.trim().to_string(), public))
}

impl EntryTrust for Signed {
    fn sign(&self, key: &Digest, manifest: &[u8]) -> Result<Vec<EntrySignature>, String> {
        Ok(vec![self.key.sign(key, manifest)])
    }

    fn verify(&self, key: &Digest, manifest: &[u8], sigs: &[EntrySignature]) -> Result<(), String> {
        if sigs.is_empty() {
            return Err("it is not signed".into());
        }
        let msg = message(key, manifest);
        let mut broken = Vec::new();
        for sig in sigs {
            let Some((_, public)) = self.trusted.iter().find(|(s, _)| *s == sig.signer) else {
                continue;
            };
            let ok = BASE64.decode(&sig.signature).is_ok_and(|bytes| {
                UnparsedPublicKey::new(&ED25519, public)
                    .verify(&msg, &bytes)
                    .is_ok()
            });
            if ok {
                return Ok(());
            }
            broken.push(sig.signer.as_str());
        }
        let signers: Vec<&str> = sigs.iter().map(|s| s.signer.as_str()).collect();
        Err(if broken.is_empty() {
            format!(
                "it is signed by {}, which this store does not trust (add the key to the \
                 trusted keys if you trust whoever holds it)",
                signers.join(", ")
            )
        } else {
            format!(
                "the signature of {} does not match the entry (it was changed after it was signed)",
                broken.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_verify_only_with_a_trusted_intact_signature() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path().join("a")).unwrap();
        let b = Store::open(dir.path().join("b")).unwrap();
        let ka = a.signing_key("alice").unwrap();
        assert_eq!(
            a.signing_key("alice").unwrap().public(),
            ka.public(),
            "made once"
        );
        let alice = Signed::new(ka, &[]).unwrap();
        let key = Digest::of(b"k");
        let sigs = alice.sign(&key, b"manifest").unwrap();
        assert_eq!(alice.verify(&key, b"manifest", &sigs), Ok(()));
        let bob = Signed::new(b.signing_key("bob").unwrap(), &[]).unwrap();
        assert!(
            bob.verify(&key, b"manifest", &sigs)
                .unwrap_err()
                .contains("does not trust")
        );
        let bob_trusting = Signed::new(
            b.signing_key("bob").unwrap(),
            &[alice.key.public().to_string()],
        )
        .unwrap();
        assert_eq!(bob_trusting.verify(&key, b"manifest", &sigs), Ok(()));
        let changed = bob_trusting.verify(&key, b"manifesT", &sigs).unwrap_err();
        assert!(changed.contains("does not match"), "{changed}");
        let moved = bob_trusting.verify(&Digest::of(b"other"), b"manifest", &sigs);
        assert!(moved.is_err());
        // A jobs key is its own, and survives being handed over.
        let jobs = a.jobs_key("alice-jobs").unwrap();
        assert_ne!(jobs.public(), alice.key.public());
        let handed = SigningKey::from_secret("alice-jobs", &jobs.secret()).unwrap();
        assert_eq!(handed.public(), jobs.public());
        assert!(SigningKey::from_secret("x", "not base64!").is_err());
        assert!(a.signing_key("has space").is_err());
        assert!(
            bob.verify(&key, b"manifest", &[])
                .unwrap_err()
                .contains("not signed")
        );
        assert!(Signed::new(b.signing_key("bob").unwrap(), &["nonsense".into()]).is_err());
    }
}
