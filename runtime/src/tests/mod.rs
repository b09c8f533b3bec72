//! End-to-end tests of hand-built tile programs: a K-split matmul with partial-sum reduction
//! through exchange (f32 and f16), determinism across thread counts, load errors, a
//! 1472-tile program, and what each trace mode records.

mod errors;
mod exchange;
mod ksplit;
mod streams;
mod trace;
mod training;
mod vertices;

use half::f16;

/// Little-endian bytes of `vals` as f32.
pub(crate) fn f32_bytes(vals: &[f32]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes of `vals` rounded to f16.
pub(crate) fn f16_bytes(vals: &[f32]) -> Vec<u8> {
    vals.iter()
        .flat_map(|v| f16::from_f32(*v).to_le_bytes())
        .collect()
}

/// Decodes little-endian f32 bytes.
pub(crate) fn from_f32_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Decodes little-endian f16 bytes (widened to f32).
pub(crate) fn from_f16_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| f16::from_le_bytes(c.try_into().unwrap()).to_f32())
        .collect()
}

/// A pool of `n` threads.
pub(crate) fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}
