//! Index-driven kernels and constants: gather, scatter_add, one_hot, iota and full.
//!
//! Every index is checked against its bound before use: a negative or too large index is a
//! [`KernelError::IndexOutOfRange`] that gives the value and its position in the indices
//! tensor. scatter_add accumulates in f64 for f32 updates and in f32 for f16 updates (then
//! rounds once), like the reductions; that arithmetic lives in [`super::accum`], shared with
//! the tile runtime.

use super::accum::scatter_add_rows_into;
use super::error::KernelError;
use super::strided::unravel;
use super::values::{dispatch, elems, floats, from_floats, make, Elem};
use crate::dtype::DType;
use crate::tensor::{Tensor, TensorData};
use crate::types::TensorType;
use half::f16;

/// The index at flat position `pos` as a row number below `bound`.
fn checked_index(
    index: i64,
    pos: usize,
    shape: &[usize],
    bound: usize,
) -> Result<usize, KernelError> {
    usize::try_from(index)
        .ok()
        .filter(|&i| i < bound)
        .ok_or_else(|| KernelError::IndexOutOfRange {
            index,
            position: unravel(pos, shape),
            bound,
        })
}

fn gather_t<T: Elem>(table: &Tensor, idx: &Tensor) -> Result<TensorData, KernelError> {
    let rows = table.shape().first().copied().unwrap_or(0);
    let row_len: usize = table.shape().iter().skip(1).product();
    let data = elems::<T>(table)?;
    let ids = elems::<i64>(idx)?;
    let mut out = Vec::with_capacity(ids.len() * row_len);
    for (pos, &id) in ids.iter().enumerate() {
        let r = checked_index(id, pos, idx.shape(), rows)?;
        let row = data
            .get(r * row_len..(r + 1) * row_len)
            .ok_or_else(|| KernelError::Internal("gather row past the table's end".into()))?;
        out.extend_from_slice(row);
    }
    Ok(T::wrap(out))
}

/// `gather(table, indices)`: the table rows selected by the indices.
pub(crate) fn gather(table: &Tensor, idx: &Tensor, out: &[usize]) -> Result<Tensor, KernelError> {
    let data = dispatch!(table.dtype(), gather_t(table, idx))?;
    make(out, data)
}

/// `scatter_add(indices, updates)` into `rows` zero rows.
pub(crate) fn scatter_add(
    idx: &Tensor,
    upd: &Tensor,
    rows: usize,
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let row_len: usize = upd.shape().iter().skip(idx.shape().len()).product();
    let ids = elems::<i64>(idx)?;
    let u = floats(upd)?;
    let mut v = Vec::new();
    scatter_add_rows_into(upd.dtype(), ids, &u, rows, row_len, &mut v).map_err(|e| {
        KernelError::IndexOutOfRange {
            index: e.index,
            position: unravel(e.position, idx.shape()),
            bound: e.bound,
        }
    })?;
    from_floats(out, upd.dtype(), v)
}

/// `one_hot(indices)`: 1 at each index along a new last axis of extent `depth`.
pub(crate) fn one_hot(
    idx: &Tensor,
    depth: usize,
    dtype: DType,
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let ids = elems::<i64>(idx)?;
    let mut v = vec![0f32; ids.len() * depth];
    for (pos, &id) in ids.iter().enumerate() {
        let c = checked_index(id, pos, idx.shape(), depth)?;
        if let Some(slot) = v.get_mut(pos * depth + c) {
            *slot = 1.0;
        }
    }
    from_floats(out, dtype, v)
}

/// A value of type `dtype` from an f64 (f16 rounds to nearest even; i64 truncates; bool is
/// `!= 0`).
fn constant_data(dtype: DType, values: impl Iterator<Item = f64>) -> TensorData {
    match dtype {
        DType::F32 => TensorData::F32(values.map(|x| x as f32).collect()),
        DType::F16 => TensorData::F16(values.map(f16::from_f64).collect()),
        DType::I64 => TensorData::I64(values.map(|x| x as i64).collect()),
        DType::Bool => TensorData::Bool(values.map(|x| x != 0.0).collect()),
    }
}

/// `full`: every element equal to `value`.
pub(crate) fn full(value: f64, ty: &TensorType) -> Result<Tensor, KernelError> {
    let n = ty.num_elements();
    make(&ty.shape, constant_data(ty.dtype, (0..n).map(|_| value)))
}

/// `iota`: each element equal to its index along `axis`.
pub(crate) fn iota(axis: usize, ty: &TensorType) -> Result<Tensor, KernelError> {
    let extent = *ty
        .shape
        .get(axis)
        .ok_or_else(|| KernelError::Internal(format!("iota axis {axis} of {ty}")))?;
    let inner: usize = ty.shape.iter().skip(axis + 1).product();
    let n = ty.num_elements();
    let values = (0..n).map(|i| ((i / inner.max(1)) % extent.max(1)) as f64);
    make(&ty.shape, constant_data(ty.dtype, values))
}
