//! Content-addressed artifact store: blake3-addressed zstd blobs, action cache, checkpoint scratch.
