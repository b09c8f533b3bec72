//! Accumulating row kernels shared by the reference evaluator and the tile runtime: sum /
//! mean / max over each row of a dense block, scatter-add of update rows into zero rows, and
//! the scalar comparison.
//!
//! The evaluator's `reduce`, `scatter_add` and `compare` ops use exactly these steps (the
//! reductions visit each output's elements in increasing input index, which is the row order
//! here), so the tile runtime's vertices, which call these functions, are bit-identical to
//! the oracle. Sums accumulate in f64 for f32 data and in f32 for f16 data (`Acc`); a mean
//! divides the accumulated sum by the element count converted to the accumulator type; max
//! propagates NaN. Results are returned as f32; an f16 result is obtained by rounding each of
//! them to f16 (nearest even), as the evaluator does.

use super::values::{with_acc, Acc};
use crate::dtype::DType;
use crate::op::{CmpOp, ReduceKind};
use thiserror::Error;

/// `op(a, b)` with IEEE semantics (every comparison with a NaN is false except `!=`); the
/// evaluator's `compare` for every element type (f16 values compare as their exact f32
/// widenings).
pub fn compare_values<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
    }
}

/// One step of the NaN-propagating running maximum: `acc` after seeing `v` (NaN once either
/// is NaN; the start value is `-inf`).
pub fn max_step(acc: f32, v: f32) -> f32 {
    if v.is_nan() || acc.is_nan() {
        f32::NAN
    } else if v > acc {
        v
    } else {
        acc
    }
}

/// A finished sum (or mean over `count` elements) rounded to f32, as the evaluator does.
pub(crate) fn finish_sum<A: Acc>(s: A, mean: bool, count: usize) -> f32 {
    if mean {
        (s / A::of_count(count)).to_f32()
    } else {
        s.to_f32()
    }
}

/// `kind` over each row of `cols` elements of `x` (rows = `x.len() / cols`; a trailing
/// partial row and `cols == 0` give no output), as the evaluator reduces data of type
/// `dtype`: sums left to right in the accumulator type, mean divided by `cols` in it, max
/// NaN-propagating from `-inf`.
pub fn reduce_rows(dtype: DType, kind: ReduceKind, x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len().checked_div(cols).unwrap_or(0));
    reduce_rows_into(dtype, kind, x, cols, &mut out);
    out
}

/// [`reduce_rows`] writing into `out` (cleared first), to reuse its allocation.
pub fn reduce_rows_into(
    dtype: DType,
    kind: ReduceKind,
    x: &[f32],
    cols: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    if cols == 0 {
        return;
    }
    match kind {
        ReduceKind::Max => out.extend(
            x.chunks_exact(cols)
                .map(|row| row.iter().fold(f32::NEG_INFINITY, |m, &v| max_step(m, v))),
        ),
        ReduceKind::Sum => with_acc!(dtype, sum_rows(x, cols, false, out)),
        ReduceKind::Mean => with_acc!(dtype, sum_rows(x, cols, true, out)),
    }
}

fn sum_rows<A: Acc>(x: &[f32], cols: usize, mean: bool, out: &mut Vec<f32>) {
    out.extend(x.chunks_exact(cols).map(|row| {
        let s = row.iter().fold(A::ZERO, |s, &v| s + A::of(v));
        finish_sum(s, mean, cols)
    }));
}

/// An index of a scatter-add outside `[0, bound)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("index {index} at position {position} is outside [0, {bound})")]
pub struct IndexOutOfBounds {
    /// Flat position of the index in the indices.
    pub position: usize,
    /// The index value.
    pub index: i64,
    /// The exclusive bound (number of rows).
    pub bound: usize,
}

/// Scatter-add as the evaluator computes it for updates of type `dtype`: `rows` zero rows of
/// `width` accumulators (f64 for f32, f32 for f16), update row `i` (`updates[i*width..]`)
/// added into row `ids[i]` for `i` in order, then each accumulator rounded once to f32.
/// Writes `rows * width` values into `out` (cleared first). Indices are checked in order (all
/// of them, even when `width == 0`); the first one outside `[0, rows)` is the error. Update
/// rows past the end of `updates` (a short last row included) are ignored.
pub fn scatter_add_rows_into(
    dtype: DType,
    ids: &[i64],
    updates: &[f32],
    rows: usize,
    width: usize,
    out: &mut Vec<f32>,
) -> Result<(), IndexOutOfBounds> {
    out.clear();
    with_acc!(dtype, scatter_rows(ids, updates, rows, width, out))
}

/// `ids[pos]` as a row number below `bound`.
fn row_of(ids: &[i64], pos: usize, bound: usize) -> Result<usize, IndexOutOfBounds> {
    let index = ids.get(pos).copied().unwrap_or(-1);
    usize::try_from(index)
        .ok()
        .filter(|&r| r < bound)
        .ok_or(IndexOutOfBounds {
            position: pos,
            index,
            bound,
        })
}

fn scatter_rows<A: Acc>(
    ids: &[i64],
    upd: &[f32],
    rows: usize,
    width: usize,
    out: &mut Vec<f32>,
) -> Result<(), IndexOutOfBounds> {
    let mut acc = vec![A::ZERO; rows * width];
    if width > 0 {
        for (pos, u_row) in upd.chunks_exact(width).take(ids.len()).enumerate() {
            let r = row_of(ids, pos, rows)?;
            if let Some(a_row) = acc.get_mut(r * width..(r + 1) * width) {
                for (a, &u) in a_row.iter_mut().zip(u_row) {
                    *a = *a + A::of(u);
                }
            }
        }
    } else {
        for pos in 0..ids.len() {
            row_of(ids, pos, rows)?;
        }
    }
    out.extend(acc.into_iter().map(A::to_f32));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_rows_hand_values() {
        let x = [1.0f32, 2.0, 4.0, -1.0, f32::NAN, 3.0];
        assert_eq!(
            reduce_rows(DType::F32, ReduceKind::Sum, &x[..3], 3),
            vec![7.0]
        );
        let mean = reduce_rows(DType::F32, ReduceKind::Mean, &x[..3], 3);
        assert_eq!(mean, vec![(7.0f64 / 3.0) as f32]);
        let max = reduce_rows(DType::F32, ReduceKind::Max, &x, 3);
        assert_eq!(max[0], 4.0);
        assert!(max[1].is_nan());
        assert!(reduce_rows(DType::F32, ReduceKind::Sum, &x, 0).is_empty());
    }

    #[test]
    fn f32_sums_accumulate_in_f64_and_f16_sums_in_f32() {
        // 1 + 2^-30 - 1: exact in f64 (2^-30), lost in f32 (0).
        let x = [1.0f32, 2f32.powi(-30), -1.0];
        assert_eq!(
            reduce_rows(DType::F32, ReduceKind::Sum, &x, 3),
            vec![2f32.powi(-30)]
        );
        assert_eq!(reduce_rows(DType::F16, ReduceKind::Sum, &x, 3), vec![0.0]);
    }

    #[test]
    fn scatter_add_rows_hand_values() {
        // Rows 1, 0, 1 of width 2 into 3 rows.
        let upd = [1.0f32, 2.0, 10.0, 20.0, 100.0, 200.0];
        let mut out = Vec::new();
        scatter_add_rows_into(DType::F32, &[1, 0, 1], &upd, 3, 2, &mut out).unwrap();
        assert_eq!(out, vec![10.0, 20.0, 101.0, 202.0, 0.0, 0.0]);
        let err = scatter_add_rows_into(DType::F32, &[1, 3], &upd, 3, 2, &mut out).unwrap_err();
        assert_eq!(
            err,
            IndexOutOfBounds {
                position: 1,
                index: 3,
                bound: 3
            }
        );
        let err = scatter_add_rows_into(DType::F16, &[-1], &[], 3, 0, &mut out).unwrap_err();
        assert_eq!(err.index, -1);
    }

    #[test]
    fn compare_nan_is_unordered() {
        for op in CmpOp::ALL {
            assert_eq!(compare_values(op, f32::NAN, 1.0), op == CmpOp::Ne, "{op:?}");
        }
        assert!(compare_values(CmpOp::Eq, 0.0f32, -0.0));
        assert!(compare_values(CmpOp::Lt, -3i64, 2));
    }
}
