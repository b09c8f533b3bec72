//! Reductions (sum, mean, max over any axes), softmax and layer norm (the row arithmetic of
//! the last two lives in [`super::rows`], the sum / mean / max steps in [`super::accum`], both
//! shared with the tile runtime).
//!
//! Precision: sums, means and the softmax / layer-norm statistics accumulate in f64 for f32
//! data and in f32 for f16 data ([`Acc`]), in row-major order, and each result element is
//! rounded once to the result type. i64 sums are checked for overflow. Max propagates NaN.
//! Softmax subtracts the row max, exponentiates and divides by the sum, all in the
//! accumulator type. Layer norm uses the biased variance (two passes: mean, then mean of
//! squared deviations) and computes `(x - mean) / sqrt(var + eps) * gamma + beta` per
//! element in the accumulator type.

use super::accum::{finish_sum, max_step};
use super::error::KernelError;
use super::rows::{layer_norm_rows, softmax_rows};
use super::strided::{broadcast_strides, for_each_offset, strides};
use super::values::{elems, floats, from_floats, make, with_acc, Acc};
use crate::dtype::DType;
use crate::op::ReduceKind;
use crate::tensor::{Tensor, TensorData};

/// The operand's shape with reduced axes set to 1 (the keep-dims result shape).
fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

/// `(input offset, output offset)` pairs, visiting input elements in row-major order.
fn reduce_pairs(
    shape: &[usize],
    axes: &[usize],
    mut f: impl FnMut(usize, usize),
) -> Result<(), KernelError> {
    let kept = kept_shape(shape, axes);
    let s_in = strides(shape);
    let s_out = broadcast_strides(&kept, shape);
    for_each_offset(shape, [&s_in, &s_out], |[i, o]| f(i, o))
}

fn sum_floats<A: Acc>(
    x: &[f32],
    shape: &[usize],
    axes: &[usize],
    out_len: usize,
    mean: bool,
) -> Result<Vec<f32>, KernelError> {
    let mut acc = vec![A::ZERO; out_len];
    reduce_pairs(shape, axes, |i, o| {
        if let (Some(a), Some(&v)) = (acc.get_mut(o), x.get(i)) {
            *a = *a + A::of(v);
        }
    })?;
    let count: usize = axes.iter().filter_map(|&a| shape.get(a)).product();
    Ok(acc
        .into_iter()
        .map(|s| finish_sum(s, mean, count))
        .collect())
}

fn max_floats(
    x: &[f32],
    shape: &[usize],
    axes: &[usize],
    out_len: usize,
) -> Result<Vec<f32>, KernelError> {
    let mut acc = vec![f32::NEG_INFINITY; out_len];
    reduce_pairs(shape, axes, |i, o| {
        if let (Some(a), Some(&v)) = (acc.get_mut(o), x.get(i)) {
            *a = max_step(*a, v);
        }
    })?;
    Ok(acc)
}

fn reduce_i64(
    x: &[i64],
    shape: &[usize],
    axes: &[usize],
    out_len: usize,
    kind: ReduceKind,
) -> Result<Vec<i64>, KernelError> {
    let init = if kind == ReduceKind::Max { i64::MIN } else { 0 };
    let mut acc = vec![init; out_len];
    let mut overflow = None;
    reduce_pairs(shape, axes, |i, o| {
        if let (Some(a), Some(&v)) = (acc.get_mut(o), x.get(i)) {
            match kind {
                ReduceKind::Max => *a = (*a).max(v),
                _ => match a.checked_add(v) {
                    Some(s) => *a = s,
                    None => overflow = Some((*a, v)),
                },
            }
        }
    })?;
    match overflow {
        Some((lhs, rhs)) => Err(KernelError::IntegerOverflow {
            op: kind.name(),
            lhs,
            rhs,
        }),
        None => Ok(acc),
    }
}

/// A reduction over `axes` with result shape `out`.
pub(crate) fn reduce(
    x: &Tensor,
    kind: ReduceKind,
    axes: &[usize],
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let out_len: usize = out.iter().product();
    let shape = x.shape();
    let reduced: usize = axes.iter().filter_map(|&a| shape.get(a)).product();
    if kind == ReduceKind::Max && reduced == 0 && out_len > 0 {
        return Err(KernelError::EmptyReduction {
            axes: axes.to_vec(),
            shape: shape.to_vec(),
        });
    }
    match x.dtype() {
        DType::I64 => {
            let v = reduce_i64(elems::<i64>(x)?, shape, axes, out_len, kind)?;
            make(out, TensorData::I64(v))
        }
        dtype => {
            let f = floats(x)?;
            let v = match kind {
                ReduceKind::Max => max_floats(&f, shape, axes, out_len)?,
                ReduceKind::Sum => with_acc!(dtype, sum_floats(&f, shape, axes, out_len, false))?,
                ReduceKind::Mean => with_acc!(dtype, sum_floats(&f, shape, axes, out_len, true))?,
            };
            from_floats(out, dtype, v)
        }
    }
}

/// Softmax over the last axis.
pub(crate) fn softmax(x: &Tensor) -> Result<Tensor, KernelError> {
    let h = x.shape().last().copied().unwrap_or(1);
    let f = floats(x)?;
    let v = softmax_rows(x.dtype(), &f, h);
    from_floats(x.shape(), x.dtype(), v)
}

/// Layer norm over the last axis with weight `g` and bias `b`.
pub(crate) fn layer_norm(
    x: &Tensor,
    g: &Tensor,
    b: &Tensor,
    eps: f64,
) -> Result<Tensor, KernelError> {
    let (fx, fg, fb) = (floats(x)?, floats(g)?, floats(b)?);
    let h = fg.len();
    if x.shape().last() != Some(&h) || fb.len() != h {
        return Err(KernelError::Internal(format!(
            "layer_norm of {} with gamma {} and beta {}",
            x.ty(),
            g.ty(),
            b.ty()
        )));
    }
    let v = layer_norm_rows(x.dtype(), &fx, &fg, &fb, eps);
    from_floats(x.shape(), x.dtype(), v)
}
