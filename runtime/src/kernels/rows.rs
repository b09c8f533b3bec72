//! Row kernels: softmax and layer norm over rows of `cols` elements, delegating the
//! arithmetic to `tessera_ir::eval::rows` so that they are bit-identical to the reference
//! evaluator (the f16 result is rounded from the returned f32 values, as the evaluator does).

use super::{read, write, KernelError, Scratch};
use crate::program::Region;
use crate::vertex::Elem;
use tessera_ir::eval::rows::{layer_norm_rows_into, softmax_rows_into};
use tessera_ir::DType;

/// The evaluator data type whose accumulator `elem` uses (only floats get this far: reading
/// an i64 or bool operand fails first).
pub(super) fn dtype(elem: Elem) -> DType {
    match elem {
        Elem::F16 => DType::F16,
        Elem::F32 | Elem::I64 | Elem::Bool => DType::F32,
    }
}

/// `len` elements must be a positive whole number of rows of `cols`.
fn check_rows(what: &str, len: usize, cols: usize) -> Result<(), KernelError> {
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(KernelError::Operand(format!(
            "{what}: {len} elements are not rows of {cols}"
        )));
    }
    Ok(())
}

/// Softmax of each row of `src` into `dst`.
pub(super) fn softmax(
    mem: &mut [u8],
    elem: Elem,
    cols: u32,
    src: Region,
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    read(mem, src, elem, &mut s.a)?;
    check_rows("softmax", s.a.len(), cols as usize)?;
    softmax_rows_into(dtype(elem), &s.a, cols as usize, &mut s.c);
    write(mem, dst, elem, &s.c)
}

/// Layer norm of each row of `x` (with `gamma` and `beta`) into `dst`.
pub(super) fn layer_norm(
    mem: &mut [u8],
    elem: Elem,
    cols: u32,
    eps: f64,
    [x, gamma, beta]: [Region; 3],
    dst: Region,
    s: &mut Scratch,
) -> Result<(), KernelError> {
    let cols = cols as usize;
    read(mem, x, elem, &mut s.a)?;
    read(mem, gamma, elem, &mut s.b)?;
    read(mem, beta, elem, &mut s.d)?;
    check_rows("layer_norm", s.a.len(), cols)?;
    if s.b.len() != cols || s.d.len() != cols {
        return Err(KernelError::Operand(format!(
            "layer_norm: gamma {gamma} / beta {beta} do not hold {cols} elements"
        )));
    }
    layer_norm_rows_into(dtype(elem), &s.a, &s.b, &s.d, eps, &mut s.c);
    write(mem, dst, elem, &s.c)
}
