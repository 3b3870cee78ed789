//! glibc's allocator settings for training.
//!
//! A learning step allocates and frees a few hundred-kilobyte tensors (im2col patches,
//! activations and their gradients). With glibc's defaults the freed top of the heap is
//! trimmed back to the kernel and blocks over the (dynamic) mmap threshold are mapped afresh,
//! so every step pays page faults and zeroing: about half of a MinAtar DQN update
//! (`examples/parts.rs`: 2.4 ms -> 1.1-1.5 ms per update with the settings below). Keeping
//! freed memory in the process (trim threshold 1 GiB) and serving blocks up to 64 MiB from the
//! heap removes that; replay buffers, far larger, are still mapped directly.

/// Applies the settings once per process (a no-op off glibc).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TOP_PAD, 16 << 20);
            }
        });
    }
}
