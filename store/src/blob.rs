//! The blob file format, and streaming in and out of it.
//!
//! A blob file is a valid `.zst` file (so `zstd -d` reads it): a zstd *skippable frame* holding
//! `PRNS`, a format version and the uncompressed size, followed by the zstd-compressed bytes.
//! The header is written last (the size of a streamed input is known only at its end), and the
//! file only becomes visible under its digest after an fsync and an atomic rename.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Digest;
use crate::error::StoreError;

/// Skippable-frame magic (zstd reserves 0x184D2A50..=0x184D2A5F for user data).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5B;
const TAG: &[u8; 4] = b"PRNS";
const FORMAT: u32 = 1;
/// Bytes before the zstd data: magic, frame length, tag, format, size.
pub(crate) const HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8;
/// Chunk size for streaming: large enough for blake3's SIMD and zstd's workers.
pub(crate) const CHUNK: usize = 1 << 20;
/// zstd level, as `zstd -3` (the CLI default).
const LEVEL: i32 = 3;
/// Inputs at least this large are compressed by zstd's worker threads.
const MT_THRESHOLD: u64 = 4 << 20;

fn header(size: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&16u32.to_le_bytes());
    h[8..12].copy_from_slice(TAG);
    h[12..16].copy_from_slice(&FORMAT.to_le_bytes());
    h[16..24].copy_from_slice(&size.to_le_bytes());
    h
}

/// Parses a blob header; returns the uncompressed size.
pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> Result<u64, String> {
    let magic = u32::from_le_bytes(h[0..4].try_into().unwrap());
    let len = u32::from_le_bytes(h[4..8].try_into().unwrap());
    if magic != SKIPPABLE_MAGIC || len != 16 || &h[8..12] != TAG {
        return Err("not a prunus blob: bad header".into());
    }
    let format = u32::from_le_bytes(h[12..16].try_into().unwrap());
    if format != FORMAT {
        return Err(format!(
            "blob format {format} is not supported by this prunus (knows {FORMAT}); upgrade prunus"
        ));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().unwrap()))
}

/// Reads the uncompressed size recorded in a blob file's header.
pub(crate) fn read_size(path: &Path) -> io::Result<Result<u64, String>> {
    let mut f = File::open(path)?;
    let mut h = [0u8; HEADER_LEN];
    match f.read_exact(&mut h) {
        Ok(()) => Ok(parse_header(&h)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Err("truncated header".into())),
        Err(e) => Err(e),
    }
}

/// Threads worth giving zstd for an input of `size_hint` bytes (0 = single-threaded).
fn workers(size_hint: Option<u64>) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    match size_hint {
        Some(n) if n < MT_THRESHOLD => 0,
        _ if cores > 1 => cores,
        _ => 0,
    }
}

/// Compresses `input` into `tmp` (a fresh temp file) while hashing it; fsyncs the result.
/// Returns the digest and uncompressed size.
pub(crate) fn write_blob(
    input: &mut dyn Read,
    size_hint: Option<u64>,
    tmp: File,
    tmp_path: &Path,
) -> Result<(Digest, u64), StoreError> {
    use crate::error::IoContext;
    let mut file = tmp;
    file.write_all(&[0u8; HEADER_LEN])
        .ctx("write temp blob", tmp_path)?;
    let mut enc = zstd::Encoder::new(io::BufWriter::with_capacity(CHUNK, file), LEVEL)
        .ctx("start compressing into", tmp_path)?;
    let n = workers(size_hint);
    if n > 0 {
        enc.multithread(n).ctx("start zstd workers for", tmp_path)?;
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let got = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(StoreError::Io {
                    op: "read the input being stored into",
                    path: tmp_path.to_path_buf(),
                    source: e,
                });
            }
        };
        hasher.update(&buf[..got]);
        enc.write_all(&buf[..got])
            .ctx("write temp blob", tmp_path)?;
        size += got as u64;
    }
    let mut file = enc
        .finish()
        .ctx("finish compressing into", tmp_path)?
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("write temp blob", tmp_path)?;
    file.seek(SeekFrom::Start(0))
        .ctx("seek temp blob", tmp_path)?;
    file.write_all(&header(size))
        .ctx("write temp blob header", tmp_path)?;
    file.sync_all().ctx("fsync temp blob", tmp_path)?;
    Ok((hasher.finalize().into(), size))
}

/// A verifying reader over one blob: yields the uncompressed bytes and fails with
/// `InvalidData` (wrapping [`StoreError::CorruptBlob`]) at end of stream if they do not hash to
/// the blob's digest or have the wrong length.
pub struct BlobReader {
    decoder: zstd::Decoder<'static, BufReader<File>>,
    hasher: blake3::Hasher,
    digest: Digest,
    path: PathBuf,
    expected: u64,
    seen: u64,
    done: bool,
}

impl BlobReader {
    pub(crate) fn open(path: PathBuf, digest: Digest, mut file: File) -> io::Result<BlobReader> {
        let mut h = [0u8; HEADER_LEN];
        let corrupt = |reason: String| corrupt_err(digest, &path, reason);
        match file.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(corrupt("truncated header".into()));
            }
            Err(e) => return Err(e),
        }
        let expected = parse_header(&h).map_err(corrupt)?;
        let decoder = zstd::Decoder::with_buffer(BufReader::with_capacity(CHUNK, file))?;
        Ok(BlobReader {
            decoder,
            hasher: blake3::Hasher::new(),
            digest,
            path,
            expected,
            seen: 0,
            done: false,
        })
    }

    /// The uncompressed size recorded in the header (verified at end of stream).
    pub fn size(&self) -> u64 {
        self.expected
    }

    fn fail(&mut self, reason: String) -> io::Error {
        self.done = true;
        corrupt_err(self.digest, &self.path, reason)
    }
}

pub(crate) fn corrupt_err(digest: Digest, path: &Path, reason: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        StoreError::CorruptBlob {
            digest,
            path: path.to_path_buf(),
            reason,
        },
    )
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = match self.decoder.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.fail(format!("does not decompress: {e}"))),
        };
        if n == 0 {
            self.done = true;
            if self.seen != self.expected {
                return Err(self.fail(format!(
                    "holds {} bytes, its header says {}",
                    self.seen, self.expected
                )));
            }
            let got: Digest = self.hasher.finalize().into();
            if got != self.digest {
                return Err(self.fail(format!("its bytes hash to {got}")));
            }
            return Ok(0);
        }
        self.seen += n as u64;
        if self.seen > self.expected {
            return Err(self.fail(format!(
                "holds more than the {} bytes its header says",
                self.expected
            )));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
