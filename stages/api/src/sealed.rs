//! Sealed files: what a stage keeps in [`crate::Context::scratch`] between runs, with a
//! digest checked before its bytes are trusted. A resumed run that read a flipped bit would
//! publish wrong results under a correct key; a sealed file that does not match its digest is
//! refused instead. Both the stages that write scratch and `prunus store verify` read this
//! one definition of the format.
//!
//! A sealed file is a [`HEADER_LEN`]-byte header, then the payload. The header holds
//! [`MAGIC`], the payload's length (u64, little endian) and its blake3 digest (32 bytes). It
//! is written to `<name>.partial` beside the destination with a zeroed header, the header is
//! filled in last, and only after an fsync is the file renamed over the destination (and the
//! directory fsynced): a killed writer leaves the previous file, never a torn one, and a torn
//! `.partial` never looks sealed.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first bytes of every sealed file (a readable line, for `head -c 16`).
pub const MAGIC: &[u8; 16] = b"prunus-sealed 1\n";
/// Magic, payload length, payload digest.
pub const HEADER_LEN: usize = 16 + 8 + 32;
/// Suffix of a sealed file being written.
const PARTIAL: &str = ".partial";
/// Infix of a file set aside by [`set_aside`]: `resume.ckpt.corrupt-<unix seconds>`.
const SET_ASIDE: &str = ".corrupt-";

/// Why a sealed file cannot be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    /// No sealed header: written by an older prunus (or by something else), or its first
    /// bytes are damaged.
    #[error(
        "{} is not a sealed file (it does not start with the `prunus-sealed` header): an older \
         prunus wrote it, or its header is damaged",
        path.display()
    )]
    NotSealed { path: PathBuf },
    /// The bytes are not those that were sealed: a flipped bit, a truncation.
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot {op} {}: {source}{}", path.display(), disk_full_hint(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// The fix for a full disk, which otherwise reads as a bare "os error 28".
fn disk_full_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; the disk is full: free space on it (`prunus store gc` removes what no result \
             needs, `prunus store du` shows what takes the space) and rerun, which resumes \
             from the last checkpoint"
        }
        _ => "",
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SealError + 'a {
    move |source| SealError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `path` atomically as a sealed file whose payload is what `fill` writes (streamed,
/// hashed as it goes).
pub fn write(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), SealError> {
    let partial = partial_path(path);
    let file = File::create(&partial).map_err(io_err("create", &partial))?;
    let mut out = Hashing {
        inner: BufWriter::new(file),
        hasher: blake3::Hasher::new(),
        len: 0,
    };
    out.inner
        .write_all(&[0; HEADER_LEN])
        .and_then(|()| fill(&mut out))
        .map_err(io_err("write", &partial))?;
    let header = header(out.len, &out.hasher.finalize());
    let mut file = out
        .inner
        .into_inner()
        .map_err(|e| io_err("write", &partial)(e.into_error()))?;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&header))
        .and_then(|()| file.sync_all())
        .map_err(io_err("write", &partial))?;
    drop(file);
    std::fs::rename(&partial, path).map_err(io_err("move into place", path))?;
    sync_parent(path)
}

/// The payload of the sealed file at `path`, after checking its length and digest.
/// (A resume checkpoint holds a replay buffer, gigabytes on Atari: it is read once, into a
/// buffer of its size.)
pub fn read(path: &Path) -> Result<Vec<u8>, SealError> {
    let (mut file, len, digest) = open(path)?;
    let on_disk = file.metadata().map_err(io_err("stat", path))?.len();
    check_len(path, len, on_disk.saturating_sub(HEADER_LEN as u64))?;
    let mut payload = Vec::with_capacity(len as usize);
    file.read_to_end(&mut payload)
        .map_err(io_err("read", path))?;
    check_len(path, len, payload.len() as u64)?;
    check_digest(path, &digest, &blake3::hash(&payload))?;
    Ok(payload)
}

/// Checks the sealed file at `path` without holding it in memory; returns its payload length.
pub fn check(path: &Path) -> Result<u64, SealError> {
    let (mut file, len, digest) = open(path)?;
    let mut hasher = blake3::Hasher::new();
    let got = io::copy(&mut file, &mut hasher).map_err(io_err("read", path))?;
    check_len(path, len, got)?;
    check_digest(path, &digest, &hasher.finalize())?;
    Ok(len)
}

/// Renames a file that cannot be used to `<name>.corrupt-<unix seconds>` beside it, so that
/// it is kept for inspection but never read again; returns the new path.
pub fn set_aside(path: &Path) -> Result<PathBuf, SealError> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{SET_ASIDE}{stamp}"));
    let dest = path.with_file_name(name);
    std::fs::rename(path, &dest).map_err(io_err("set aside", path))?;
    sync_parent(&dest)?;
    Ok(dest)
}

/// Whether `path` is a sealed file's temporary (`.partial`) or one set aside as unusable:
/// files that nothing reads, so there is nothing to check.
pub fn is_leftover(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.ends_with(PARTIAL) || name.contains(SET_ASIDE)
}

/// The file, positioned after its header, with the payload length and digest it records.
fn open(path: &Path) -> Result<(File, u64, blake3::Hash), SealError> {
    let mut file = File::open(path).map_err(|e| missing_or(path, "open", e))?;
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io_err("read", path))?;
    let (len, digest) = parse_header(path, &head)?;
    Ok((file, len, digest))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(PARTIAL);
    path.with_file_name(name)
}

fn header(len: u64, digest: &blake3::Hash) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..16].copy_from_slice(MAGIC);
    h[16..24].copy_from_slice(&len.to_le_bytes());
    h[24..].copy_from_slice(digest.as_bytes());
    h
}

/// The payload length and digest a header records.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(u64, blake3::Hash), SealError> {
    if !bytes.starts_with(MAGIC) {
        return Err(SealError::NotSealed { path: path.into() });
    }
    if bytes.len() < HEADER_LEN {
        return Err(SealError::Corrupt {
            path: path.into(),
            reason: "it is truncated inside its header".into(),
        });
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let digest: [u8; 32] = bytes[24..HEADER_LEN].try_into().expect("32 bytes");
    Ok((len, digest.into()))
}

fn check_len(path: &Path, want: u64, got: u64) -> Result<(), SealError> {
    if want == got {
        return Ok(());
    }
    Err(SealError::Corrupt {
        path: path.into(),
        reason: format!("it holds {got} bytes after its header, which records {want}"),
    })
}

fn check_digest(path: &Path, want: &blake3::Hash, got: &blake3::Hash) -> Result<(), SealError> {
    if want == got {
        return Ok(());
    }
    Err(SealError::Corrupt {
        path: path.into(),
        reason: format!("its bytes hash to {got}, not to the digest it was sealed with ({want})"),
    })
}

fn missing_or(path: &Path, op: &'static str, e: io::Error) -> SealError {
    if e.kind() == io::ErrorKind::NotFound {
        SealError::Missing { path: path.into() }
    } else {
        io_err(op, path)(e)
    }
}

/// Makes a rename in `path`'s directory durable.
fn sync_parent(path: &Path) -> Result<(), SealError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(dir: &Path, payload: &[u8]) -> PathBuf {
        let path = dir.join("resume.ckpt");
        write(&path, |w| w.write_all(payload)).unwrap();
        path
    }

    #[test]
    fn round_trips_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let path = sealed(dir.path(), &payload);
        assert_eq!(read(&path).unwrap(), payload);
        assert_eq!(check(&path).unwrap(), payload.len() as u64);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn every_flipped_bit_is_caught_by_read_and_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = sealed(dir.path(), b"weights and replay buffer");
        let good = std::fs::read(&path).unwrap();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&path, &bad).unwrap();
            let (r, c) = (read(&path).unwrap_err(), check(&path).unwrap_err());
            let expected = |e: &SealError| match e {
                SealError::NotSealed { .. } => bit < 16 * 8,
                SealError::Corrupt { .. } => bit >= 16 * 8,
                _ => false,
            };
            assert!(expected(&r) && expected(&c), "bit {bit}: {r} / {c}");
            assert!(r.to_string().contains("resume.ckpt"), "{r}");
        }
    }

    #[test]
    fn truncation_and_missing_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = sealed(dir.path(), b"0123456789");
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        let e = check(&path).unwrap_err();
        assert!(e.to_string().contains("holds 9 bytes"), "{e}");
        std::fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(read(&path), Err(SealError::Corrupt { .. })));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(read(&path), Err(SealError::Missing { .. })));
        assert!(matches!(check(&path), Err(SealError::Missing { .. })));
    }

    #[test]
    fn set_aside_keeps_the_file_under_a_name_nothing_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = sealed(dir.path(), b"x");
        let aside = set_aside(&path).unwrap();
        assert!(!path.exists() && aside.is_file());
        assert!(is_leftover(&aside), "{}", aside.display());
        assert!(is_leftover(&partial_path(&path)));
        assert!(!is_leftover(&path));
    }

    #[test]
    fn a_full_disk_names_the_file_and_how_to_free_space() {
        // /dev/full fails every write with ENOSPC, as a full file system does.
        let Ok(mut full) = File::options().write(true).open("/dev/full") else {
            return;
        };
        let source = full.write_all(&[0; 4096]).and_then(|()| full.flush());
        let source = source.expect_err("/dev/full accepted a write");
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        let e = io_err("write", Path::new("/store/scratch/k/resume.ckpt.partial"))(source);
        let msg = e.to_string();
        for part in [
            "/store/scratch/k/resume.ckpt.partial",
            "prunus store gc",
            "store du",
        ] {
            assert!(msg.contains(part), "{part:?} missing in: {msg}");
        }
    }
}
