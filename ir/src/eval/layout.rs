//! Data-movement kernels: reshape, transpose, broadcast_to, slice, pad, concat, and cast.
//!
//! They are exact for every element type (no arithmetic), written once generic over
//! [`Elem`]. Cast follows [`Tensor::cast`]: floats round to nearest even, float to i64
//! truncates toward zero (saturating at the i64 range, NaN to 0), anything to bool is `!= 0`.

use super::error::KernelError;
use super::strided::{broadcast_strides, for_each_offset, strides};
use super::values::{dispatch, elems, make, Elem};
use crate::dtype::DType;
use crate::tensor::{Tensor, TensorData};

fn internal(msg: String) -> KernelError {
    KernelError::Internal(msg)
}

/// The elements of `x` read at `read` strides over the index space of `out`.
fn strided_copy<T: Elem>(
    x: &Tensor,
    out: &[usize],
    read: &[usize],
) -> Result<TensorData, KernelError> {
    let data = elems::<T>(x)?;
    let mut res = Vec::with_capacity(out.iter().product());
    let mut bad = false;
    for_each_offset(out, [read], |[i]| match data.get(i) {
        Some(&v) => res.push(v),
        None => bad = true,
    })?;
    if bad {
        return Err(internal(format!("strided read past the end of {}", x.ty())));
    }
    Ok(T::wrap(res))
}

/// The same elements with shape `out`.
pub(crate) fn reshape(x: &Tensor, out: &[usize]) -> Result<Tensor, KernelError> {
    make(out, x.data().clone())
}

/// Result axis `i` is operand axis `perm[i]`.
pub(crate) fn transpose(x: &Tensor, perm: &[usize], out: &[usize]) -> Result<Tensor, KernelError> {
    let own = strides(x.shape());
    let read = perm
        .iter()
        .map(|&p| own.get(p).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| internal(format!("perm {perm:?} does not fit {}", x.ty())))?;
    let data = dispatch!(x.dtype(), strided_copy(x, out, &read))?;
    make(out, data)
}

/// NumPy broadcast of `x` to `out`.
pub(crate) fn broadcast_to(x: &Tensor, out: &[usize]) -> Result<Tensor, KernelError> {
    let read = broadcast_strides(x.shape(), out);
    let data = dispatch!(x.dtype(), strided_copy(x, out, &read))?;
    make(out, data)
}

/// `(outer, extent, inner)`: the element counts before, along and after `axis`.
fn split_at_axis(shape: &[usize], axis: usize) -> Result<(usize, usize, usize), KernelError> {
    let extent = *shape
        .get(axis)
        .ok_or_else(|| internal(format!("axis {axis} of shape {shape:?}")))?;
    let outer = shape.iter().take(axis).product();
    let inner = shape.iter().skip(axis + 1).product();
    Ok((outer, extent, inner))
}

/// A part of each output block along the axis being sliced, padded or concatenated.
enum Piece<'a, T> {
    /// From an operand whose per-outer-index block has `block` elements: its elements
    /// `start..end` within the block (`Copy(data, block, start, end)`).
    Copy(&'a [T], usize, usize, usize),
    /// This many zero elements.
    Zeros(usize),
}

/// For every outer index in turn, the pieces one after the other.
fn assemble<T: Elem>(outer: usize, pieces: &[Piece<'_, T>]) -> Result<Vec<T>, KernelError> {
    let mut res = Vec::new();
    for o in 0..outer {
        for p in pieces {
            match *p {
                Piece::Copy(data, block, start, end) => {
                    let src = data
                        .get(o * block + start..o * block + end)
                        .ok_or_else(|| internal("copy past the end of an operand".into()))?;
                    res.extend_from_slice(src);
                }
                Piece::Zeros(n) => res.resize(res.len() + n, T::default()),
            }
        }
    }
    Ok(res)
}

fn slice_t<T: Elem>(
    x: &Tensor,
    axis: usize,
    range: (usize, usize),
) -> Result<TensorData, KernelError> {
    let (outer, extent, inner) = split_at_axis(x.shape(), axis)?;
    let piece = Piece::Copy(
        elems::<T>(x)?,
        extent * inner,
        range.0 * inner,
        range.1 * inner,
    );
    Ok(T::wrap(assemble(outer, &[piece])?))
}

/// Elements `start..end` along `axis`.
pub(crate) fn slice(
    x: &Tensor,
    axis: usize,
    range: (usize, usize),
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let data = dispatch!(x.dtype(), slice_t(x, axis, range))?;
    make(out, data)
}

fn pad_t<T: Elem>(
    x: &Tensor,
    axis: usize,
    (before, after): (usize, usize),
) -> Result<TensorData, KernelError> {
    let (outer, extent, inner) = split_at_axis(x.shape(), axis)?;
    let pieces = [
        Piece::Zeros(before * inner),
        Piece::Copy(elems::<T>(x)?, extent * inner, 0, extent * inner),
        Piece::Zeros(after * inner),
    ];
    Ok(T::wrap(assemble(outer, &pieces)?))
}

/// Zeros (false for bool) `before` and `after` along `axis`.
pub(crate) fn pad(
    x: &Tensor,
    axis: usize,
    widths: (usize, usize),
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let data = dispatch!(x.dtype(), pad_t(x, axis, widths))?;
    make(out, data)
}

fn concat_t<T: Elem>(xs: &[&Tensor], axis: usize) -> Result<TensorData, KernelError> {
    let mut outer = 1;
    let mut pieces = Vec::with_capacity(xs.len());
    for x in xs {
        let (o, extent, inner) = split_at_axis(x.shape(), axis)?;
        outer = o;
        pieces.push(Piece::Copy(
            elems::<T>(x)?,
            extent * inner,
            0,
            extent * inner,
        ));
    }
    Ok(T::wrap(assemble(outer, &pieces)?))
}

/// Concatenation along `axis`.
pub(crate) fn concat(xs: &[&Tensor], axis: usize, out: &[usize]) -> Result<Tensor, KernelError> {
    let first = xs
        .first()
        .ok_or_else(|| internal("concat of no operands".into()))?;
    let data = dispatch!(first.dtype(), concat_t(xs, axis))?;
    make(out, data)
}

/// Element type conversion.
pub(crate) fn cast(x: &Tensor, to: DType) -> Tensor {
    x.cast(to)
}
