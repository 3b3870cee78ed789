//! The blob file format, and streaming in and out of it on every core.
//!
//! A blob file is a valid `.zst` file (`zstd -d` reads it): a zstd *skippable frame* holding
//! `PRNS`, a format version and the uncompressed size, then the data cut into [`FRAME`]-sized
//! pieces, each an independent zstd frame preceded by a skippable frame that holds its
//! compressed length (as `pzstd` does, see zstd's `contrib/pzstd/README.md`). A piece that
//! does not compress by an eighth is a frame of raw blocks, read back at memory speed. Independent
//! frames let both compression and decompression run on all cores while the calling thread
//! hashes, and the length prefixes let a reader hand out frames without parsing them.
//!
//! The header is written last (a streamed input's size is known only at its end), and the file
//! becomes visible under its digest only after an fsync and an atomic rename (see `Store`).

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len};

use crate::Digest;
use crate::error::{IoContext, StoreError};

/// Skippable-frame magics (zstd reserves 0x184D2A50..=0x184D2A5F for user data).
const HEADER_MAGIC: u32 = 0x184D_2A5B;
const LENGTH_MAGIC: u32 = 0x184D_2A50;
const TAG: &[u8; 4] = b"PRNS";
const FORMAT: u32 = 1;
/// Bytes before the first frame: magic, frame length, tag, format, size.
pub(crate) const HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8;
/// Uncompressed bytes per zstd frame: a whole number of blake3 chunks, small enough that a
/// 20 MB checkpoint still spreads over the cores, large enough that ratio does not suffer.
pub(crate) const FRAME: usize = 4 << 20;
/// zstd level, as `zstd -3` (the CLI default).
const LEVEL: i32 = 3;
/// A frame is kept compressed only when that saves at least 1/`MIN_SAVING` of it (ZFS's
/// rule); otherwise it is stored as raw zstd blocks. Near-incompressible data (dense float
/// weights: ratio ~1.1, all of it from Huffman-coded exponent bytes) decodes at ~1 GB/s per
/// core compressed and at memory speed raw, so a dense checkpoint's get is not CPU-bound.
const MIN_SAVING: usize = 8;
/// Samples, and bytes per sample, that decide whether a frame is worth compressing at all.
const SAMPLES: usize = 8;
const SAMPLE: usize = 8 << 10;
/// Granularity of the holes a [`Sink`] leaves for zeros (a file-system block).
const HOLE_BLOCK: usize = 4096;

fn header(size: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&16u32.to_le_bytes());
    h[8..12].copy_from_slice(TAG);
    h[12..16].copy_from_slice(&FORMAT.to_le_bytes());
    h[16..24].copy_from_slice(&size.to_le_bytes());
    h
}

/// Parses a blob header; returns the uncompressed size.
pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> Result<u64, String> {
    let word = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
    if word(0) != HEADER_MAGIC || word(4) != 16 || &h[8..12] != TAG {
        return Err("not a prunus blob: bad header".into());
    }
    if word(12) != FORMAT {
        return Err(format!(
            "blob format {} is not supported by this prunus (it knows {FORMAT}); upgrade prunus",
            word(12)
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A one-shot slot for a result computed on another thread; a queue of these keeps order.
type Slot<T> = Receiver<Result<T, String>>;
/// A job for a pool: the frame's index, its input, and where to put the result.
type Job<T> = (u64, Vec<u8>, SyncSender<Result<T, String>>);
/// A decoded or compressed frame with the blake3 chaining value of its uncompressed bytes.
type Hashed = (Vec<u8>, ChainingValue);
/// A decoded frame, with its chaining value when the pool decoded it.
type Decoded = (Vec<u8>, Option<ChainingValue>);

/// Starts `n` threads that apply `f` to jobs from the returned queue, replying on each
/// job's slot. They end when the queue's sender is dropped.
fn pool<T: Send + 'static>(
    n: usize,
    f: impl Fn(u64, &[u8]) -> Result<T, String> + Send + Clone + 'static,
) -> SyncSender<Job<T>> {
    let (tx, rx) = sync_channel::<Job<T>>(n);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..n {
        let rx = Arc::clone(&rx);
        let f = f.clone();
        std::thread::spawn(move || {
            loop {
                let job = rx.lock().unwrap().recv();
                let Ok((index, data, reply)) = job else { break };
                let _ = reply.send(f(index, &data));
            }
        });
    }
    tx
}

/// One frame, compressed, or raw when compressing would not save 1/[`MIN_SAVING`] of it.
fn compress(data: &[u8]) -> Result<Vec<u8>, String> {
    thread_local! {
        static CCTX: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::new(LEVEL).map_err(|e| e.to_string())?);
        }
        let c = c.as_mut().unwrap();
        let mut compress_into = |data: &[u8], out: &mut Vec<u8>| {
            out.clear();
            out.reserve(zstd::zstd_safe::compress_bound(data.len()));
            c.compress_to_buffer(data, out).map_err(|e| e.to_string())
        };
        let worth_it = |data: &[u8], compressed: &[u8]| {
            compressed.len() <= data.len() - data.len() / MIN_SAVING
        };
        // As btrfs does before compressing: if a sample from the middle of each eighth of a
        // large frame fails to compress, store the frame raw without compressing the rest
        // (dense float data would spend most of a put in zstd for a 10% saving). A
        // compressible stretch missed by every sample is under an eighth of the frame, so the
        // frame as a whole would hardly have saved an eighth either.
        let mut out = Vec::new();
        if data.len() >= 8 * SAMPLES * SAMPLE {
            let part = data.len() / SAMPLES;
            let mut any = false;
            for i in 0..SAMPLES {
                let at = i * part + (part - SAMPLE) / 2;
                let sample = &data[at..at + SAMPLE];
                compress_into(sample, &mut out)?;
                any |= worth_it(sample, &out);
                if any {
                    break;
                }
            }
            if !any {
                return Ok(raw_frame(data));
            }
        }
        compress_into(data, &mut out)?;
        if !worth_it(data, &out) {
            return Ok(raw_frame(data));
        }
        Ok(out)
    })
}

/// `data` as a zstd frame of raw (stored) blocks: RFC 8878 §3.1.1, a single-segment frame
/// with a 4-byte content size and no checksum, cut into blocks of at most 128 KiB.
fn raw_frame(data: &[u8]) -> Vec<u8> {
    const MAGIC: u32 = 0xFD2F_B528;
    /// Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag set.
    const DESCRIPTOR: u8 = (2 << 6) | (1 << 5);
    const BLOCK: usize = 128 << 10;
    let mut out = Vec::with_capacity(data.len() + 9 + 3 * data.len().div_ceil(BLOCK).max(1));
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(DESCRIPTOR);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut blocks = data.chunks(BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]); // one empty last block
    }
    while let Some(block) = blocks.next() {
        // Block_Header: Last_Block (bit 0), Block_Type 0 = raw (bits 1-2), Block_Size.
        let header = ((block.len() as u32) << 3) | u32::from(blocks.peek().is_none());
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
    out
}

fn decompress(frame: &[u8]) -> Result<Vec<u8>, String> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n as usize <= FRAME => n as usize,
        _ => return Err("a frame has a bad header".into()),
    };
    DCTX.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let mut out = Vec::with_capacity(size);
        d.as_mut()
            .unwrap()
            .decompress_to_buffer(frame, &mut out)
            .map_err(|e| format!("a frame does not decompress: {e}"))?;
        if out.len() != size {
            return Err("a frame decompresses to the wrong length".into());
        }
        Ok(out)
    })
}

/// The chaining value of frame `index` as a subtree of the whole input's blake3 tree: frames
/// are a power-of-two number of blake3 chunks, so each is a complete subtree and the pool can
/// hash them in parallel (see blake3's `hazmat` module).
fn subtree_cv(index: u64, data: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(index * FRAME as u64)
        .update(data)
        .finalize_non_root()
}

/// The blake3 hash of `len` bytes (more than one frame) from its frames' chaining values,
/// merged in the shape of the blake3 tree.
fn root_hash(cvs: &[ChainingValue], len: u64) -> Digest {
    fn split(cvs: &[ChainingValue], len: u64) -> (ChainingValue, ChainingValue) {
        let left_len = left_subtree_len(len);
        let k = (left_len / FRAME as u64) as usize;
        (
            subtree(&cvs[..k], left_len),
            subtree(&cvs[k..], len - left_len),
        )
    }
    fn subtree(cvs: &[ChainingValue], len: u64) -> ChainingValue {
        if cvs.len() == 1 {
            return cvs[0];
        }
        let (l, r) = split(cvs, len);
        blake3::hazmat::merge_subtrees_non_root(&l, &r, Mode::Hash)
    }
    let (l, r) = split(cvs, len);
    blake3::hazmat::merge_subtrees_root(&l, &r, Mode::Hash).into()
}

/// Appends one length-prefixed frame.
fn write_frame(out: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    let mut prefix = [0u8; 12];
    prefix[0..4].copy_from_slice(&LENGTH_MAGIC.to_le_bytes());
    prefix[4..8].copy_from_slice(&4u32.to_le_bytes());
    prefix[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    out.write_all(&prefix)?;
    out.write_all(frame)
}

/// Reads the next length-prefixed frame, `None` at a clean end of file.
fn read_frame(input: &mut impl Read) -> Result<Option<Vec<u8>>, String> {
    let mut prefix = [0u8; 12];
    let got = read_full(input, &mut prefix).map_err(|e| format!("cannot be read: {e}"))?;
    if got == 0 {
        return Ok(None);
    }
    let word = |i: usize| u32::from_le_bytes(prefix[i..i + 4].try_into().unwrap());
    if got < 12 || word(0) != LENGTH_MAGIC || word(4) != 4 {
        return Err("is truncated or damaged between frames".into());
    }
    let len = word(8) as usize;
    if len > zstd::zstd_safe::compress_bound(FRAME) {
        return Err("has an impossible frame length".into());
    }
    let mut frame = vec![0u8; len];
    let got = read_full(input, &mut frame).map_err(|e| format!("cannot be read: {e}"))?;
    if got < len {
        return Err("is truncated inside a frame".into());
    }
    Ok(Some(frame))
}

/// Reads until `buf` is full or the stream ends.
pub(crate) fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Starts the kernel writing back what was just written, so the final fsync has little left
/// to wait for (compression and disk writes overlap).
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on a file descriptor we own; a failure only loses the hint.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Compresses `input` into `file` (a fresh temp file at `tmp_path`) while hashing it, then
/// fsyncs. Returns the digest and uncompressed size.
pub(crate) fn write_blob(
    input: &mut dyn Read,
    mut file: File,
    tmp_path: &Path,
) -> Result<(Digest, u64), StoreError> {
    file.write_all(&[0u8; HEADER_LEN])
        .ctx("write temp blob", tmp_path)?;
    let mut size = 0u64;
    let mut next_chunk = || -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0u8; FRAME];
        let n = read_full(input, &mut buf).map_err(|e| input_err(tmp_path, e))?;
        buf.truncate(n);
        size += n as u64;
        Ok(buf)
    };
    let first = next_chunk()?;
    let second = if first.len() == FRAME && cores() > 1 {
        next_chunk()?
    } else {
        Vec::new()
    };
    let (mut file, digest) = if second.is_empty() {
        // One frame (or one core): compress and hash on this thread.
        let mut hasher = blake3::Hasher::new();
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        let mut chunk = first;
        while !chunk.is_empty() {
            hasher.update(&chunk);
            let frame = compress(&chunk).map_err(|e| zstd_err(tmp_path, e))?;
            write_frame(&mut out, &frame).ctx("write temp blob", tmp_path)?;
            chunk = next_chunk()?;
        }
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx("write temp blob", tmp_path)?;
        (file, hasher.finalize().into())
    } else {
        // This thread reads; the pool compresses and hashes; a writer thread appends in
        // order. `order` bounds the frames in flight.
        let workers = cores();
        let jobs = pool(workers, |index, data| {
            Ok((compress(data)?, subtree_cv(index, data)))
        });
        let (order, in_order) = sync_channel::<Slot<Hashed>>(2 * workers);
        let path = tmp_path.to_path_buf();
        let writer =
            std::thread::spawn(move || -> Result<(File, Vec<ChainingValue>), StoreError> {
                let mut offset = HEADER_LEN as u64;
                let mut cvs = Vec::new();
                for slot in in_order {
                    let (frame, cv) = slot
                        .recv()
                        .map_err(|_| zstd_err(&path, "a worker died".into()))?
                        .map_err(|e| zstd_err(&path, e))?;
                    write_frame(&mut file, &frame).ctx("write temp blob", &path)?;
                    let len = 12 + frame.len() as u64;
                    start_writeback(&file, offset, len);
                    offset += len;
                    cvs.push(cv);
                }
                Ok((file, cvs))
            });
        let mut chunks = [first, second].into_iter();
        let mut index = 0;
        let fed = loop {
            let chunk = match chunks.next() {
                Some(c) => c,
                None => match next_chunk() {
                    Ok(c) => c,
                    Err(e) => break Err(e),
                },
            };
            if chunk.is_empty() {
                break Ok(());
            }
            let (reply, slot) = sync_channel(1);
            // A closed queue means the writer stopped on an error, reported below.
            if order.send(slot).is_err() || jobs.send((index, chunk, reply)).is_err() {
                break Ok(());
            }
            index += 1;
        };
        drop((order, jobs));
        let written = writer
            .join()
            .expect("the blob writer thread does not panic");
        fed?;
        let (file, cvs) = written?;
        (file, root_hash(&cvs, size))
    };
    file.seek(SeekFrom::Start(0))
        .ctx("seek temp blob", tmp_path)?;
    file.write_all(&header(size))
        .ctx("write temp blob header", tmp_path)?;
    file.sync_all().ctx("fsync temp blob", tmp_path)?;
    Ok((digest, size))
}

fn input_err(tmp_path: &Path, e: io::Error) -> StoreError {
    StoreError::Io {
        op: "read the input being stored into",
        path: tmp_path.to_path_buf(),
        source: e,
    }
}

fn zstd_err(tmp_path: &Path, e: String) -> StoreError {
    StoreError::Io {
        op: "compress into",
        path: tmp_path.to_path_buf(),
        source: io::Error::other(e),
    }
}

/// A file a reader writes each decoded frame into, at the frame's offset, zero blocks left as
/// holes (sparse files stay sparse). The pool's workers write their own frames, so copying
/// into the page cache runs on every core rather than on the caller's thread.
pub(crate) struct Sink {
    file: File,
    /// The first write error; nothing is written after it.
    error: OnceLock<io::Error>,
}

impl Sink {
    pub(crate) fn new(file: File) -> Arc<Sink> {
        Arc::new(Sink {
            file,
            error: OnceLock::new(),
        })
    }

    fn write(&self, offset: u64, data: &[u8]) {
        if self.error.get().is_none()
            && let Err(e) = write_sparse(&self.file, offset, data)
        {
            let _ = self.error.set(e);
        }
    }

    /// Sets the file's length (trailing zeros become a hole), or the first write error.
    pub(crate) fn finish(&self, len: u64) -> io::Result<()> {
        match self.error.get() {
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
            None => self.file.set_len(len),
        }
    }
}

/// Writes `data` at `offset`, one call per run of non-zero blocks; zero blocks are skipped,
/// so they read back as zeros from a hole (the file holds nothing there yet).
fn write_sparse(file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut run: Option<usize> = None;
    for (i, block) in data.chunks(HOLE_BLOCK).enumerate() {
        let at = i * HOLE_BLOCK;
        match (is_zero(block), run) {
            (false, None) => run = Some(at),
            (true, Some(start)) => {
                write_at(file, &data[start..at], offset + start as u64)?;
                run = None;
            }
            _ => {}
        }
    }
    match run {
        Some(start) => write_at(file, &data[start..], offset + start as u64),
        None => Ok(()),
    }
}

#[cfg(unix)]
fn write_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Whether `buf` is all zeros (64-byte blocks so the OR vectorizes).
fn is_zero(buf: &[u8]) -> bool {
    let blocks = buf.chunks_exact(64);
    let tail = blocks.remainder();
    tail.iter().all(|&b| b == 0)
        && blocks
            .into_iter()
            .all(|c| c.iter().fold(0, |a, &b| a | b) == 0)
}

/// A blob file's bytes as a reader reads them: the file itself, or a remote's stream.
pub(crate) type Source = Box<dyn Read + Send>;

/// Where a reader's decoded frames come from.
enum Frames {
    /// Decoded on the calling thread (small blobs, one core).
    Inline(io::BufReader<Source>),
    /// Decoded and hashed ahead by a pool; slots in file order.
    Parallel(Receiver<Slot<Hashed>>),
}

/// How a reader hashes: sequentially on the calling thread, or from the pool's chaining values.
enum Hashing {
    Sequential(Box<blake3::Hasher>),
    Subtrees(Vec<ChainingValue>),
}

/// A verifying reader over one blob: yields the uncompressed bytes and fails with
/// `InvalidData` (wrapping [`StoreError::CorruptBlob`]) if they do not hash to the blob's
/// digest, have the wrong length, or do not decompress. Large blobs decompress on all cores.
pub struct BlobReader {
    frames: Frames,
    current: Vec<u8>,
    pos: usize,
    hashing: Hashing,
    /// A frame shorter than [`FRAME`] was seen: it must be the last.
    short: bool,
    digest: Digest,
    path: PathBuf,
    expected: u64,
    seen: u64,
    done: bool,
    /// Where inline-decoded frames are also written (the pool writes its own).
    sink: Option<Arc<Sink>>,
}

impl BlobReader {
    /// A reader over the blob file `file`; with a `sink`, every frame is also written there.
    /// `file` is any source of a blob file's bytes (a remote's stream is verified the same
    /// way as a local file); `path` names it in errors.
    pub(crate) fn open(
        path: PathBuf,
        digest: Digest,
        file: impl Read + Send + 'static,
        sink: Option<Arc<Sink>>,
    ) -> io::Result<BlobReader> {
        let mut file: Source = Box::new(file);
        let mut h = [0u8; HEADER_LEN];
        match file.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(corrupt_err(digest, &path, "truncated header".into()));
            }
            Err(e) => return Err(e),
        }
        let expected = parse_header(&h).map_err(|r| corrupt_err(digest, &path, r))?;
        let (frames, hashing) = if expected <= FRAME as u64 || cores() == 1 {
            let file = io::BufReader::with_capacity(1 << 20, file);
            (Frames::Inline(file), Hashing::Sequential(Box::default()))
        } else {
            (
                Frames::Parallel(decode_ahead(file, sink.clone())),
                Hashing::Subtrees(Vec::new()),
            )
        };
        Ok(BlobReader {
            frames,
            current: Vec::new(),
            pos: 0,
            hashing,
            short: false,
            digest,
            path,
            expected,
            seen: 0,
            done: false,
            sink,
        })
    }

    /// The uncompressed size recorded in the header (verified at end of stream).
    pub fn size(&self) -> u64 {
        self.expected
    }

    fn fail(&mut self, reason: String) -> io::Error {
        self.done = true;
        self.current = Vec::new();
        self.pos = 0;
        corrupt_err(self.digest, &self.path, reason)
    }

    /// The next decoded frame (with its chaining value when decoded by the pool), `None` at
    /// the end.
    fn next_frame(&mut self) -> Result<Option<Decoded>, String> {
        match &mut self.frames {
            Frames::Inline(file) => match read_frame(file)? {
                Some(frame) => {
                    let data = decompress(&frame)?;
                    if let Some(sink) = &self.sink {
                        sink.write(self.seen, &data);
                    }
                    Ok(Some((data, None)))
                }
                None => Ok(None),
            },
            Frames::Parallel(slots) => match slots.recv() {
                Ok(slot) => {
                    let (data, cv) = slot
                        .recv()
                        .map_err(|_| "a decoder thread died".to_string())??;
                    Ok(Some((data, Some(cv))))
                }
                Err(_) => Ok(None),
            },
        }
    }
}

/// Reads frames on a thread of its own and decodes them on a pool (each worker also writing
/// its frame to `sink`), in order.
fn decode_ahead(file: Source, sink: Option<Arc<Sink>>) -> Receiver<Slot<Hashed>> {
    let workers = cores();
    let (order, slots) = sync_channel::<Slot<Hashed>>(2 * workers);
    std::thread::spawn(move || {
        let jobs = pool(workers, move |index, frame| {
            let data = decompress(frame)?;
            let cv = subtree_cv(index, &data);
            if let Some(sink) = &sink {
                sink.write(index * FRAME as u64, &data);
            }
            Ok((data, cv))
        });
        let mut file = io::BufReader::with_capacity(1 << 20, file);
        for index in 0.. {
            let (reply, slot) = sync_channel(1);
            match read_frame(&mut file) {
                Ok(Some(frame)) => {
                    // A closed queue: the reader was dropped; stop.
                    if order.send(slot).is_err() || jobs.send((index, frame, reply)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    let _ = order.send(slot);
                    return;
                }
            }
        }
    });
    slots
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

impl BufRead for BlobReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() && !self.done {
            match self.next_frame() {
                Ok(Some((frame, cv))) => {
                    // Writers cut frames at FRAME bytes; anything else is damage.
                    if self.short || frame.is_empty() {
                        return Err(self.fail("has a short frame before its end".into()));
                    }
                    self.short = frame.len() < FRAME;
                    self.seen += frame.len() as u64;
                    if self.seen > self.expected {
                        let e = format!(
                            "holds more than the {} bytes its header says",
                            self.expected
                        );
                        return Err(self.fail(e));
                    }
                    match (&mut self.hashing, cv) {
                        (Hashing::Sequential(h), _) => {
                            h.update(&frame);
                        }
                        (Hashing::Subtrees(cvs), Some(cv)) => cvs.push(cv),
                        (Hashing::Subtrees(_), None) => unreachable!("the pool hashes every frame"),
                    }
                    self.current = frame;
                    self.pos = 0;
                }
                Ok(None) => {
                    self.done = true;
                    if self.seen != self.expected {
                        let e = format!(
                            "holds {} bytes, its header says {}",
                            self.seen, self.expected
                        );
                        return Err(self.fail(e));
                    }
                    let got: Digest = match &self.hashing {
                        Hashing::Sequential(h) => h.finalize().into(),
                        // More than one frame: `expected > FRAME` chose this mode.
                        Hashing::Subtrees(cvs) => root_hash(cvs, self.seen),
                    };
                    if got != self.digest {
                        return Err(self.fail(format!("its bytes hash to {got}")));
                    }
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.current.len());
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 37]));
        let mut v = vec![0u8; 37];
        v[36] = 1;
        assert!(!is_zero(&v));
        v[36] = 0;
        v[3] = 1;
        assert!(!is_zero(&v));
    }

    #[test]
    fn raw_frames_are_zstd_frames() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..FRAME)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        for len in [0, 1, 128 << 10, (128 << 10) + 1, FRAME] {
            let data = &noise[..len];
            let frame = raw_frame(data);
            assert_eq!(frame.len(), len + 9 + 3 * len.div_ceil(128 << 10).max(1));
            assert_eq!(decompress(&frame).unwrap(), data, "len {len}");
            assert_eq!(zstd::decode_all(&frame[..]).unwrap(), data, "len {len}");
        }
        // Incompressible frames are stored raw; compressible ones compressed, also when only
        // half or a quarter of the frame compresses (some sample lands in it).
        assert_eq!(compress(&noise).unwrap(), raw_frame(&noise));
        let zeros = vec![0u8; FRAME];
        assert!(compress(&zeros).unwrap().len() < 1_000);
        let mut half = noise.clone();
        half[..FRAME / 2].fill(0);
        let c = compress(&half).unwrap();
        assert!(c.len() < FRAME / 2 + FRAME / 8, "{}", c.len());
        assert_eq!(decompress(&c).unwrap(), half);
        let mut hidden = noise.clone();
        hidden[FRAME / 8..FRAME / 4 + FRAME / 8].fill(0);
        let c = compress(&hidden).unwrap();
        assert!(c.len() < FRAME - FRAME / 8, "{}", c.len());
        assert_eq!(decompress(&c).unwrap(), hidden);
    }

    #[test]
    fn sparse_writes_read_back_and_leave_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        // Blocks: data, zero, zero, data, data, zero tail (partial block).
        let mut data = vec![0u8; 5 * HOLE_BLOCK + 100];
        data[7] = 1;
        data[3 * HOLE_BLOCK] = 2;
        data[5 * HOLE_BLOCK - 1] = 3;
        let offset = 2 * HOLE_BLOCK as u64;
        write_sparse(&file, offset, &data).unwrap();
        file.set_len(offset + data.len() as u64).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert!(is_zero(&back[..offset as usize]));
        assert_eq!(&back[offset as usize..], &data[..]);
    }
}
