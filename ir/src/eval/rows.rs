//! Row kernels shared by the reference evaluator and the tile runtime: softmax and layer norm
//! over each row of a dense row-major block of f32 values.
//!
//! These are the exact arithmetic of the evaluator's `softmax` and `layer_norm` ops (which call
//! them), made public so that the tile runtime's vertices can be bit-identical to the oracle.
//! Statistics accumulate in f64 when the data type is f32 and in f32 when it is f16
//! (see the module docs of [`crate::eval`]); the returned values are f32, and an f16 result is
//! obtained by rounding each of them to f16 (nearest even), as the evaluator does.

use super::values::{with_acc, Acc};
use crate::dtype::DType;

/// Softmax of each row of `cols` elements of `x` (rows = `x.len() / cols`; a trailing partial
/// row and `cols == 0` give no output), as the evaluator computes it for data of type `dtype`:
/// subtract the row max (NaN-propagating), exponentiate, divide by the sum, all in the
/// accumulator type, then round to f32.
pub fn softmax_rows(dtype: DType, x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    softmax_rows_into(dtype, x, cols, &mut out);
    out
}

/// [`softmax_rows`] writing into `out` (cleared first), to reuse its allocation.
pub fn softmax_rows_into(dtype: DType, x: &[f32], cols: usize, out: &mut Vec<f32>) {
    out.clear();
    if cols > 0 {
        with_acc!(dtype, softmax_acc(x, cols, out));
    }
}

fn softmax_acc<A: Acc>(x: &[f32], h: usize, out: &mut Vec<f32>) {
    let mut e = Vec::with_capacity(h);
    for row in x.chunks_exact(h) {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| {
            if v.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(v)
            }
        });
        e.clear();
        e.extend(row.iter().map(|&v| (A::of(v) - A::of(m)).exp()));
        let sum = e.iter().fold(A::ZERO, |s, &v| s + v);
        out.extend(e.iter().map(|&v| (v / sum).to_f32()));
    }
}

/// Layer norm of each row of `gamma.len()` elements of `x` with weight `gamma` and bias
/// `beta` (which must have `gamma.len()` elements; extra ones are ignored), as the evaluator
/// computes it for data of type `dtype`: biased variance in two passes, then
/// `(x - mean) / sqrt(var + eps) * gamma + beta` in the accumulator type, rounded to f32.
/// An empty `gamma` or a trailing partial row gives no output.
pub fn layer_norm_rows(dtype: DType, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    layer_norm_rows_into(dtype, x, gamma, beta, eps, &mut out);
    out
}

/// [`layer_norm_rows`] writing into `out` (cleared first), to reuse its allocation.
pub fn layer_norm_rows_into(
    dtype: DType,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    out: &mut Vec<f32>,
) {
    out.clear();
    if !gamma.is_empty() {
        with_acc!(dtype, layer_norm_acc(x, gamma, beta, eps, out));
    }
}

fn layer_norm_acc<A: Acc>(x: &[f32], g: &[f32], b: &[f32], eps: f64, out: &mut Vec<f32>) {
    let h = g.len();
    let n = A::of_count(h);
    let eps = A::of_f64(eps);
    for row in x.chunks_exact(h) {
        let mean = row.iter().fold(A::ZERO, |s, &v| s + A::of(v)) / n;
        let var = row.iter().fold(A::ZERO, |s, &v| {
            let d = A::of(v) - mean;
            s + d * d
        }) / n;
        let std = (var + eps).sqrt();
        out.extend(
            row.iter()
                .zip(g.iter().zip(b))
                .map(|(&v, (&gv, &bv))| ((A::of(v) - mean) / std * A::of(gv) + A::of(bv)).to_f32()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_f64_formula() {
        let x = [1.0f32, 2.0, 3.0, -1.0, 0.0, 1.0e3];
        let got = softmax_rows(DType::F32, &x, 3);
        for (r, row) in x.chunks(3).enumerate() {
            let m = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let s: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
            for (c, &v) in row.iter().enumerate() {
                let want = ((f64::from(v) - m).exp() / s) as f32;
                assert_eq!(got[r * 3 + c], want);
            }
        }
        assert!(softmax_rows(DType::F32, &x, 0).is_empty());
        assert_eq!(softmax_rows(DType::F32, &x, 4).len(), 4);
    }

    #[test]
    fn layer_norm_matches_hand_values() {
        // Row [1, 3]: mean 2, biased var 1, so (x - 2) / sqrt(1 + 0) = [-1, 1].
        let got = layer_norm_rows(DType::F32, &[1.0, 3.0], &[2.0, 3.0], &[0.5, -0.5], 0.0);
        assert_eq!(got, vec![-1.5, 2.5]);
        assert!(layer_norm_rows(DType::F16, &[1.0], &[], &[], 1e-5).is_empty());
    }
}
