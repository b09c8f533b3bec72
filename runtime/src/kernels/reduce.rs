//! Accumulating kernels: the row reduction and the scatter-add, delegating the arithmetic to
//! `tessera_ir::eval::accum` so that they are bit-identical to the reference evaluator
//! (accumulation in f64 for f32 data and in f32 for f16 data, each result rounded once).

use super::io::decode_i64;
use super::rows::dtype;
use super::{bytes, read, write, KernelError, Scratch};
use crate::program::Region;
use crate::vertex::Elem;
use tessera_ir::eval::accum::{reduce_rows_into, scatter_add_rows_into};
use tessera_ir::ReduceKind;

/// `dst[r]` = `kind` over row `r` of `src` (rows of `cols` elements).
pub(super) fn reduce_rows(
    mem: &mut [u8],
    kind: ReduceKind,
    elem: Elem,
    cols: u32,
    src: Region,
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    let cols = cols as usize;
    read(mem, src, elem, &mut s.a)?;
    if cols == 0 || !s.a.len().is_multiple_of(cols) {
        return Err(KernelError::Operand(format!(
            "reduce: src {src} ({} elements) is not rows of {cols}",
            s.a.len()
        )));
    }
    reduce_rows_into(dtype(elem), kind, &s.a, cols, &mut s.c);
    write(mem, dst, elem, &s.c)
}

/// `dst[c]` = the reduction of column `c` of the `rows` rows in `src` (see
/// [`Vertex::ReduceCols`](crate::vertex::Vertex::ReduceCols)): the columns are transposed
/// into rows and reduced as [`reduce_rows`] reduces rows, so both give the same bits for the
/// same elements in the same order.
pub(super) fn reduce_cols(
    mem: &mut [u8],
    kind: ReduceKind,
    elem: Elem,
    rows: u32,
    src: Region,
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    let rows = rows as usize;
    let cols = (dst.len / elem.size()) as usize;
    read(mem, src, elem, &mut s.a)?;
    if rows == 0 || s.a.len() != rows * cols {
        return Err(KernelError::Operand(format!(
            "reduce_cols: src {src} ({} elements) is not {rows} rows of {cols}",
            s.a.len()
        )));
    }
    s.b.clear();
    s.b.extend((0..cols).flat_map(|c| s.a.iter().skip(c).step_by(cols.max(1)).copied()));
    reduce_rows_into(dtype(elem), kind, &s.b, rows, &mut s.c);
    write(mem, dst, elem, &s.c)
}

/// `dst` = zero rows plus each update row added into its indexed row, rounded once.
pub(super) fn scatter_add(
    mem: &mut [u8],
    elem: Elem,
    rows: u32,
    width: u32,
    [indices, updates]: [Region; 2],
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    let w = width as usize;
    decode_i64(bytes(mem, indices)?, &mut s.idx);
    read(mem, updates, elem, &mut s.a)?;
    if s.a.len() != s.idx.len() * w {
        return Err(KernelError::Operand(format!(
            "scatter_add: updates {updates} do not hold {} rows of {width}",
            s.idx.len()
        )));
    }
    scatter_add_rows_into(dtype(elem), &s.idx, &s.a, rows as usize, w, &mut s.c).map_err(|e| {
        KernelError::Index {
            index: e.index,
            rows,
        }
    })?;
    write(mem, dst, elem, &s.c)
}
