//! Kernels that read i64 operands: the row gather (indices) and the i64 → float cast.
//!
//! The gather moves bytes only (rows are copied, not decoded), so it is exact for any element
//! type; every index is checked against the table's row count before use. The cast converts
//! as `tessera_ir::Tensor::cast` does: i64 → f32 with `as f32` (one rounding to nearest
//! even), i64 → f16 through f64 (`f16::from_f64(x as f64)`).

use super::io::{decode_i64, split};
use super::{bytes, bytes_mut, KernelError, Scratch};
use crate::program::Region;
use crate::vertex::Elem;
use half::f16;

/// `dst` row `i` = `table` row `indices[i]`, rows of `width` elements of `elem`.
pub(super) fn gather(
    mem: &mut [u8],
    elem: Elem,
    rows: u32,
    width: u32,
    [table, indices]: [Region; 2],
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    let row = width as usize * elem.size() as usize;
    let (reader, out) = split(mem, dst)?;
    let table_bytes = reader.get(table)?;
    decode_i64(reader.get(indices)?, &mut s.idx);
    if table_bytes.len() != rows as usize * row || out.len() != s.idx.len() * row {
        return Err(KernelError::Operand(format!(
            "gather: table {table} or dst {dst} mis-sized for {} indices of {rows} rows × {width}",
            s.idx.len()
        )));
    }
    if row == 0 {
        // Nothing to copy, but indices are still checked.
        return match s
            .idx
            .iter()
            .find(|&&i| usize::try_from(i).map_or(true, |r| r >= rows as usize))
        {
            Some(&index) => Err(KernelError::Index { index, rows }),
            None => Ok(()),
        };
    }
    for (&index, chunk) in s.idx.iter().zip(out.chunks_exact_mut(row)) {
        let src = usize::try_from(index)
            .ok()
            .filter(|&r| r < rows as usize)
            .and_then(|r| table_bytes.get(r * row..(r + 1) * row))
            .ok_or(KernelError::Index { index, rows })?;
        chunk.copy_from_slice(src);
    }
    Ok(())
}

/// Converts the i64 values of `src` to `to` (f32 or f16) into `dst`.
pub(super) fn cast_i64(
    mem: &mut [u8],
    to: Elem,
    src: Region,
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    decode_i64(bytes(mem, src)?, &mut s.idx);
    let out = bytes_mut(mem, dst, s.idx.len() * to.size() as usize)?;
    match to {
        Elem::F32 => out
            .chunks_exact_mut(4)
            .zip(&s.idx)
            .for_each(|(c, &v)| c.copy_from_slice(&(v as f32).to_le_bytes())),
        Elem::F16 => out
            .chunks_exact_mut(2)
            .zip(&s.idx)
            .for_each(|(c, &v)| c.copy_from_slice(&f16::from_f64(v as f64).to_le_bytes())),
        Elem::I64 | Elem::Bool => {
            return Err(KernelError::Operand(format!(
                "cast from i64 to {} is not a vertex",
                to.name()
            )))
        }
    }
    Ok(())
}
