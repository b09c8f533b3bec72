//! A packed, register-blocked f32 GEMM `C = A · B` (row-major, dense), in safe Rust.
//!
//! `A` is packed into panels of `MR` rows and `B` into panels of `NR` columns (zero padded),
//! and an `MR×NR` micro-kernel keeps its accumulators in registers (with AVX2/FMA enabled in
//! `.cargo/config.toml` it compiles to 12 ymm fused multiply-adds per `k` step). Each output
//! element is the sum over `k` in increasing order of fused multiply-adds starting from zero, so
//! the result depends only on the operands, never on threads or blocking.

/// Rows per micro-kernel tile.
pub(crate) const MR: usize = 6;
/// Columns per micro-kernel tile.
pub(crate) const NR: usize = 16;

/// Reusable packing buffers (contents never affect results).
#[derive(Debug, Default)]
pub(crate) struct GemmScratch {
    a: Vec<[f32; MR]>,
    b: Vec<[f32; NR]>,
}

/// `MR×NR` block of `sum_k a[k][i] * b[k][j]`.
#[inline(always)]
fn micro(a: &[[f32; MR]], b: &[[f32; NR]]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    for (av, bv) in a.iter().zip(b) {
        for (row, &ai) in acc.iter_mut().zip(av) {
            for (c, &bj) in row.iter_mut().zip(bv) {
                *c = ai.mul_add(bj, *c);
            }
        }
    }
    acc
}

/// Packs row-major `a` (`m×k`) into `ceil(m/MR)` panels of `k` columns of `MR` values.
fn pack_a(a: &[f32], m: usize, k: usize, out: &mut Vec<[f32; MR]>) {
    out.clear();
    for i0 in (0..m).step_by(MR) {
        for kk in 0..k {
            let mut col = [0.0f32; MR];
            for (i, v) in col.iter_mut().enumerate() {
                if i0 + i < m {
                    *v = a.get((i0 + i) * k + kk).copied().unwrap_or(0.0);
                }
            }
            out.push(col);
        }
    }
}

/// Packs row-major `b` (`k×n`) into `ceil(n/NR)` panels of `k` rows of `NR` values.
fn pack_b(b: &[f32], k: usize, n: usize, out: &mut Vec<[f32; NR]>) {
    out.clear();
    for j0 in (0..n).step_by(NR) {
        let w = NR.min(n - j0);
        for kk in 0..k {
            let mut row = [0.0f32; NR];
            let start = kk * n + j0;
            if let (Some(dst), Some(src)) = (row.get_mut(..w), b.get(start..start + w)) {
                dst.copy_from_slice(src);
            }
            out.push(row);
        }
    }
}

/// `c = a · b` with `a: m×k`, `b: k×n`, `c: m×n`, all row-major. Slices shorter than their
/// shape are treated as zero-padded (callers validate lengths beforehand).
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    s: &mut GemmScratch,
) {
    if k == 0 {
        c.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    pack_a(a, m, k, &mut s.a);
    pack_b(b, k, n, &mut s.b);
    for (jp, bp) in s.b.chunks_exact(k).enumerate() {
        let j0 = jp * NR;
        let w = NR.min(n - j0);
        for (ip, ap) in s.a.chunks_exact(k).enumerate() {
            let i0 = ip * MR;
            let acc = micro(ap, bp);
            for (i, row) in acc.iter().enumerate().take(m - i0) {
                let start = (i0 + i) * n + j0;
                if let (Some(dst), Some(src)) = (c.get_mut(start..start + w), row.get(..w)) {
                    dst.copy_from_slice(src);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Direct triple loop in f64.
    fn reference(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|kk| f64::from(a[i * k + kk]) * f64::from(b[kk * n + j]))
                    .sum();
            }
        }
        c
    }

    #[test]
    fn matches_f64_on_ragged_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut s = GemmScratch::default();
        for &(m, k, n) in &[(1, 1, 1), (7, 5, 17), (6, 16, 16), (13, 33, 40), (2, 0, 3)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut c = vec![f32::NAN; m * n];
            gemm(m, k, n, &a, &b, &mut c, &mut s);
            for (got, want) in c.iter().zip(reference(m, k, n, &a, &b)) {
                assert!(
                    (f64::from(*got) - want).abs() <= 1e-5 * (k as f64 + 1.0),
                    "{got} vs {want}"
                );
            }
        }
    }
}
