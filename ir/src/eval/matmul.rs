//! Batched matrix product with broadcast batch axes and optional transposes.
//!
//! The inner kernel is a plain i-k-j loop: for each row `i` of `A` and each `k`, the row
//! `B[k, :]` scaled by `A[i, k]` is added into the row `C[i, :]`, contiguous slices that
//! the compiler vectorises. Column blocks of `B` (and blocks of `k`) keep the touched part
//! of `B` in cache. Blocking does not change the arithmetic: every `C[i, j]` is accumulated
//! over `k = 0, 1, ..., K-1` in that order, from 0, in f32.
//!
//! Precision: operands are read as f32 (f16 widened exactly). The running sum is f32 and the
//! result is rounded once to the result type, unless the op has `half_partials` and f16
//! operands: then the partial sum is rounded to f16 after every multiply-add (the product
//! of two f16 values is exact in f32), which models fp16 partials on the IPU.
//!
//! A transposed operand is copied into row-major order first; when `B` has no batch axes
//! (a `Linear` layer's weight) and `A` is not transposed, `A`'s batch axes are folded into
//! its rows and the product is one large GEMM. For `x W^T` with few rows, `C^T = W x^T` is
//! computed instead, which transposes the small `x` and `C` rather than the large `W`;
//! the products and their summation order, hence the bits, are the same.

use super::error::KernelError;
use super::strided::{broadcast_strides, for_each_offset};
use super::values::{floats, from_floats, round_f16};
use crate::dtype::DType;
use crate::tensor::Tensor;
use std::borrow::Cow;

/// Columns of `B`/`C` per block.
const N_BLOCK: usize = 256;
/// Rows of `B` (the contraction) per block.
const K_BLOCK: usize = 128;

fn internal(msg: impl Into<String>) -> KernelError {
    KernelError::Internal(msg.into())
}

/// The matrix part `[rows, cols]` and the batch axes of an operand's shape.
fn split_matrix(shape: &[usize]) -> Result<(&[usize], usize, usize), KernelError> {
    match shape {
        [batch @ .., r, c] => Ok((batch, *r, *c)),
        _ => Err(internal(format!("matmul operand of rank {}", shape.len()))),
    }
}

/// Side of the square tiles in which matrices are transposed (keeps reads and writes in cache).
const T_BLOCK: usize = 64;

/// The `rows x cols` row-major matrix `src` transposed to `cols x rows`: tile by tile,
/// writing contiguous runs of each output row.
fn transpose_matrix(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for j0 in (0..cols).step_by(T_BLOCK) {
        for i0 in (0..rows).step_by(T_BLOCK) {
            let i1 = (i0 + T_BLOCK).min(rows);
            for j in j0..(j0 + T_BLOCK).min(cols) {
                let Some(run) = out.get_mut(j * rows + i0..j * rows + i1) else {
                    continue;
                };
                for (slot, i) in run.iter_mut().zip(i0..) {
                    *slot = src.get(i * cols + j).copied().unwrap_or(0.0);
                }
            }
        }
    }
    out
}

/// The `[j0, j1)` column block of rows `k0..k1` of the row-major `B[_, n]`.
#[derive(Clone, Copy)]
struct BBlock<'a> {
    b: &'a [f32],
    n: usize,
    ks: (usize, usize),
    js: (usize, usize),
}

impl<'a> BBlock<'a> {
    fn rows(self) -> impl Iterator<Item = &'a [f32]> {
        let (j0, j1) = self.js;
        self.b
            .chunks_exact(self.n)
            .skip(self.ks.0)
            .take(self.ks.1 - self.ks.0)
            .filter_map(move |row| row.get(j0..j1))
    }
}

/// `C[i, js] += A[i, ks] B[ks, js]` for one row `i`; with `half`, partial sums are
/// rounded to f16 after every multiply-add.
fn update_row(c_row: &mut [f32], a_row: &[f32], blk: BBlock<'_>, half: bool) {
    let (Some(c), Some(a)) = (
        c_row.get_mut(blk.js.0..blk.js.1),
        a_row.get(blk.ks.0..blk.ks.1),
    ) else {
        return;
    };
    for (b, &x) in blk.rows().zip(a) {
        if half {
            for (cv, &bv) in c.iter_mut().zip(b) {
                *cv = round_f16(*cv + x * bv);
            }
        } else {
            for (cv, &bv) in c.iter_mut().zip(b) {
                *cv += x * bv;
            }
        }
    }
}

/// [`update_row`] for four rows at once (f32 partials): every element of `B` loaded from
/// memory serves four rows. The arithmetic per element of `C` is unchanged.
fn update_four_rows(rows: [(&mut [f32], &[f32]); 4], blk: BBlock<'_>) {
    let (j0, j1) = blk.js;
    let (k0, k1) = blk.ks;
    let [(c0, a0), (c1, a1), (c2, a2), (c3, a3)] = rows;
    let (Some(c0), Some(c1), Some(c2), Some(c3)) = (
        c0.get_mut(j0..j1),
        c1.get_mut(j0..j1),
        c2.get_mut(j0..j1),
        c3.get_mut(j0..j1),
    ) else {
        return;
    };
    let (Some(a0), Some(a1), Some(a2), Some(a3)) = (
        a0.get(k0..k1),
        a1.get(k0..k1),
        a2.get(k0..k1),
        a3.get(k0..k1),
    ) else {
        return;
    };
    let a_cols = a0.iter().zip(a1).zip(a2).zip(a3);
    for (b, (((&x0, &x1), &x2), &x3)) in blk.rows().zip(a_cols) {
        let cs = c0
            .iter_mut()
            .zip(c1.iter_mut())
            .zip(c2.iter_mut())
            .zip(c3.iter_mut());
        for ((((v0, v1), v2), v3), &bv) in cs.zip(b) {
            *v0 += x0 * bv;
            *v1 += x1 * bv;
            *v2 += x2 * bv;
            *v3 += x3 * bv;
        }
    }
}

/// `C = A B` for row-major `A[m, k]`, `B[k, n]`, `C[m, n]`, accumulating from zero in
/// ascending `k`; with `half`, each partial sum is rounded to f16.
pub(crate) fn gemm(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    (m, k, n): (usize, usize, usize),
    half: bool,
) -> Result<(), KernelError> {
    if a.len() != m * k || b.len() != k * n || c.len() != m * n {
        return Err(internal(format!(
            "gemm buffers {}/{}/{} do not fit {m}x{k}x{n}",
            a.len(),
            b.len(),
            c.len()
        )));
    }
    c.fill(0.0);
    if m == 0 || n == 0 || k == 0 {
        return Ok(());
    }
    for j0 in (0..n).step_by(N_BLOCK) {
        for k0 in (0..k).step_by(K_BLOCK) {
            let blk = BBlock {
                b,
                n,
                ks: (k0, (k0 + K_BLOCK).min(k)),
                js: (j0, (j0 + N_BLOCK).min(n)),
            };
            let mut rows = c.chunks_exact_mut(n).zip(a.chunks_exact(k));
            while !half && rows.len() >= 4 {
                let (Some(r0), Some(r1), Some(r2), Some(r3)) =
                    (rows.next(), rows.next(), rows.next(), rows.next())
                else {
                    break;
                };
                update_four_rows([r0, r1, r2, r3], blk);
            }
            for (c_row, a_row) in rows {
                update_row(c_row, a_row, blk, half);
            }
        }
    }
    Ok(())
}

/// Flags of a matmul node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatMulFlags {
    /// Swap the last two axes of `a` first.
    pub transpose_a: bool,
    /// Swap the last two axes of `b` first.
    pub transpose_b: bool,
    /// Round partial sums to f16 (only meaningful for f16 operands).
    pub half_partials: bool,
}

/// The batched product of `a` and `b` with result shape `out` (inferred by the type rules).
pub(crate) fn matmul(
    a: &Tensor,
    b: &Tensor,
    flags: MatMulFlags,
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let (a_batch, a_r, a_c) = split_matrix(a.shape())?;
    let (b_batch, b_r, b_c) = split_matrix(b.shape())?;
    let (out_batch, _, _) = split_matrix(out)?;
    let (m, k) = if flags.transpose_a {
        (a_c, a_r)
    } else {
        (a_r, a_c)
    };
    let (k2, n) = if flags.transpose_b {
        (b_c, b_r)
    } else {
        (b_r, b_c)
    };
    if k != k2 {
        return Err(internal(format!("contraction extents {k} and {k2}")));
    }
    let dtype = a.dtype();
    let half = flags.half_partials && dtype == DType::F16;
    let (fa, fb) = (floats(a)?, floats(b)?);
    let total: usize = out.iter().product();
    let mut c = vec![0f32; total];
    if total == 0 {
        return from_floats(out, dtype, c);
    }
    let b_batches: usize = b_batch.iter().product();
    if b_batches == 1 && !flags.transpose_a {
        // One GEMM: A's batch axes folded into its rows.
        let rows = total / n;
        if flags.transpose_b && rows * (k + n) < n * k {
            // A `Linear` layer on few rows: rather than transposing the big weight, compute
            // C^T = B A^T with B as stored. Same products, same order: same bits.
            let a_t = transpose_matrix(&fa, rows, k);
            let mut c_t = vec![0f32; n * rows];
            gemm(&fb, &a_t, &mut c_t, (n, k, rows), half)?;
            return from_floats(out, dtype, transpose_matrix(&c_t, n, rows));
        }
        let b_mat = if flags.transpose_b {
            Cow::Owned(transpose_matrix(&fb, n, k))
        } else {
            Cow::Borrowed(&fb[..])
        };
        gemm(&fa, &b_mat, &mut c, (rows, k, n), half)?;
        return from_floats(out, dtype, c);
    }
    let scale = |s: Vec<usize>, by: usize| s.into_iter().map(|x| x * by).collect::<Vec<_>>();
    let sa = scale(broadcast_strides(a_batch, out_batch), m * k);
    let sb = scale(broadcast_strides(b_batch, out_batch), k * n);
    let mut offsets = Vec::new();
    for_each_offset(out_batch, [&sa, &sb], |o| offsets.push(o))?;
    let mut b_cache: Option<(usize, Vec<f32>)> = None;
    for (c_blk, [oa, ob]) in c.chunks_exact_mut(m * n).zip(offsets) {
        let a_blk = fa
            .get(oa..oa + m * k)
            .ok_or_else(|| internal("matmul batch of a out of range"))?;
        let b_blk = fb
            .get(ob..ob + k * n)
            .ok_or_else(|| internal("matmul batch of b out of range"))?;
        let a_mat = if flags.transpose_a {
            Cow::Owned(transpose_matrix(a_blk, k, m))
        } else {
            Cow::Borrowed(a_blk)
        };
        let b_mat: &[f32] = if flags.transpose_b {
            if b_cache.as_ref().map(|(o, _)| *o) != Some(ob) {
                b_cache = Some((ob, transpose_matrix(b_blk, n, k)));
            }
            b_cache.as_ref().map(|(_, v)| v.as_slice()).unwrap_or(b_blk)
        } else {
            b_blk
        };
        gemm(&a_mat, b_mat, c_blk, (m, k, n), half)?;
    }
    from_floats(out, dtype, c)
}
