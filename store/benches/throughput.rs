//! Put/get throughput on 1 GiB checkpoint-like files, beside `b3sum` + `zstd -3 -T0`.
//!
//! `cargo bench -p prunus-store` (env: `PRUNUS_BENCH_MIB` to change the size, default 1024;
//! `PRUNUS_BENCH_DIR` for where the files go, default the temp dir). The CLIs are the reference:
//! a put hashes and compresses, so it is compared with `b3sum` plus `zstd -3 -T0` run one after
//! the other on the same file in the same run; a get with `zstd -d` (which does not verify a
//! blake3 digest). Every input is in the page cache for both. A prunus put fsyncs the blob (the
//! CLIs do not fsync); the get figures are given to memory and to a file (not fsynced: it is a
//! copy of what the store keeps), as medians of interleaved rounds. Run it on an idle machine:
//! other load skews both sides.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use prunus_store::Store;

/// Checkpoint-like float32 data: `zero_frac` of the values exactly zero (pruned weights), the
/// rest uniform in [-1, 1).
fn write_input(path: &Path, bytes: u64, zero_frac: f64) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let threshold = (zero_frac * u32::MAX as f64) as u32;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut left = bytes / 4;
    while left > 0 {
        buf.clear();
        for _ in 0..left.min(1 << 18) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let v = if ((r >> 32) as u32) < threshold {
                0.0f32
            } else {
                ((r & 0xFF_FFFF) as f32 / (1u32 << 23) as f32) - 1.0
            };
            buf.extend_from_slice(&v.to_le_bytes());
        }
        left -= (buf.len() / 4) as u64;
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

/// Writes `bytes` of non-zero data from a 4 MiB buffer into `path`: what putting a gigabyte
/// into the page cache costs on this machine, without decompressing or hashing anything.
fn write_only(path: &Path, bytes: u64) {
    let buf = vec![0x5Au8; 4 << 20];
    let mut f = std::fs::File::create(path).unwrap();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

/// Rounds of each get, interleaved.
const ROUNDS: usize = 5;

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

/// Runs a CLI and returns its wall time, or `None` (with a note) if it is not installed.
fn cli(program: &str, args: &[&str]) -> Option<f64> {
    let t = Instant::now();
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Some(t.elapsed().as_secs_f64()),
        Ok(o) => {
            println!(
                "  note: `{program}` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(_) => {
            println!(
                "  note: `{program}` is not installed (apt-get install b3sum zstd); CLI reference skipped"
            );
            None
        }
    }
}

fn main() {
    let mib: u64 = std::env::var("PRUNUS_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let bytes = mib << 20;
    let base = std::env::var_os("PRUNUS_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).unwrap();
    let mb = bytes as f64 / 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "prunus-store throughput: {mib} MiB float32 files, {cores} cores, files under {}",
        dir.path().display()
    );

    for (label, zero_frac) in [("sparse f32, 95% zeros", 0.95), ("dense f32", 0.0)] {
        let input = dir.path().join("input.bin");
        write_input(&input, bytes, zero_frac);
        let store = Store::open(
            dir.path()
                .join(format!("store-{}", (zero_frac * 100.0) as u32)),
        )
        .unwrap();

        let (b, put_s) = timed(|| store.put_file(&input).unwrap());
        let du = store.du().unwrap();
        // Gets are interleaved rounds (write only, prunus read, get_to_file, zstd -d), reported
        // as medians: this VM's speed drifts more between seconds than the sides differ, and the
        // first gigabyte written into fresh guest memory is slow for whoever writes it.
        let out = dir.path().join("out.bin");
        let zst = dir.path().join("cli.zst");
        let dec = dir.path().join("cli.out");
        let (inp, zst, dec) = (
            input.to_str().unwrap(),
            zst.to_str().unwrap(),
            dec.to_str().unwrap(),
        );
        let b3 = cli("b3sum", &[inp]);
        let z = cli("zstd", &["-3", "-T0", "-q", "-f", inp, "-o", zst]);
        let (mut reads, mut gets, mut zds, mut writes) = (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            writes.push(timed(|| write_only(&out, bytes)).1);
            std::fs::remove_file(&out).unwrap();
            let (n, read_s) = timed(|| {
                let mut r = store.read(&b.digest).unwrap();
                let mut buf = vec![0u8; 1 << 20];
                let mut n = 0u64;
                loop {
                    match r.read(&mut buf).unwrap() {
                        0 => break n,
                        k => n += k as u64,
                    }
                }
            });
            assert_eq!(n, bytes);
            reads.push(read_s);
            gets.push(timed(|| store.get_to_file(&b.digest, &out).unwrap()).1);
            std::fs::remove_file(&out).unwrap();
            if z.is_some()
                && let Some(t) = cli("zstd", &["-d", "-q", "-f", zst, "-o", dec])
            {
                zds.push(t);
                std::fs::remove_file(dec).unwrap();
            }
        }
        let first_get = gets[0];
        let (read_s, get_s) = (median(&mut reads), median(&mut gets));
        let write_s = median(&mut writes);
        let zd = (!zds.is_empty()).then(|| median(&mut zds));

        println!(
            "\n{label}: compression ratio {:.3} ({} -> {} bytes)",
            du.compression_ratio, du.logical_bytes, du.stored_bytes
        );
        println!(
            "  prunus put_file            {put_s:7.3} s  {:8.0} MB/s  (blake3 + zstd -3, fsynced)",
            mb / put_s
        );
        println!(
            "  prunus read (verified)     {read_s:7.3} s  {:8.0} MB/s  (decompress + blake3, to memory; median of {ROUNDS})",
            mb / read_s
        );
        println!(
            "  prunus get_to_file         {get_s:7.3} s  {:8.0} MB/s  (verified, to the page cache; median of {ROUNDS}, first {:.0} MB/s)",
            mb / get_s,
            mb / first_get
        );

        println!(
            "  write only                 {write_s:7.3} s  {:8.0} MB/s  (the same bytes from memory into a file, one thread)",
            mb / write_s
        );
        if let (Some(b3), Some(z)) = (b3, z) {
            let cli_ratio = bytes as f64 / std::fs::metadata(zst).unwrap().len() as f64;
            println!(
                "  b3sum                      {b3:7.3} s  {:8.0} MB/s",
                mb / b3
            );
            println!(
                "  zstd -3 -T0                {z:7.3} s  {:8.0} MB/s  (ratio {cli_ratio:.3})",
                mb / z
            );
            println!(
                "  put vs b3sum + zstd: {put_s:.3} s vs {:.3} s = {:.2}x (target <= 1.2x)",
                b3 + z,
                put_s / (b3 + z)
            );
        }
        if let Some(zd) = zd {
            println!(
                "  zstd -d                    {zd:7.3} s  {:8.0} MB/s  (no digest check, one thread; median of {ROUNDS})",
                mb / zd
            );
        }
        println!(
            "  get target >= 1 GB/s: read {:.2} GB/s, get_to_file {:.2} GB/s",
            bytes as f64 / read_s / 1e9,
            bytes as f64 / get_s / 1e9
        );
        for f in [zst, dec, inp] {
            let _ = std::fs::remove_file(f);
        }
    }
}
