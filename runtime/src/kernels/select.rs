//! Kernels around bool operands: the comparison (bool result), the select (bool condition)
//! and the bool → float cast.
//!
//! The comparison decodes each operand in its own type (f32, f16 or i64, not widened) and
//! calls `tessera_ir::eval::accum::compare_values`, the evaluator's own comparison, so NaN
//! and signed-zero behaviour match it exactly. The select copies element bytes (no decoding,
//! no rounding); it reads its operands into scratch first, so `dst` may be an operand.
//! Operands are repeated cyclically (`operand[i % len]`), as in the binary vertex.

use super::io::split;
use super::{bytes, bytes_mut, KernelError};
use crate::program::Region;
use crate::vertex::Elem;
use half::f16;
use tessera_ir::eval::accum::compare_values;
use tessera_ir::CmpOp;

/// A little-endian scalar of a fixed size.
trait Scalar: Copy + PartialOrd {
    /// Bytes per element.
    const SIZE: usize;
    /// Decodes one element from exactly `SIZE` bytes.
    fn from_le(b: &[u8]) -> Self;
}

/// Copies `b` into an `N`-byte array (zero-padded if short; callers pass exact chunks).
fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.iter_mut().zip(b).for_each(|(d, s)| *d = *s);
    a
}

impl Scalar for f32 {
    const SIZE: usize = 4;
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes(array(b))
    }
}

impl Scalar for f16 {
    const SIZE: usize = 2;
    fn from_le(b: &[u8]) -> Self {
        f16::from_le_bytes(array(b))
    }
}

impl Scalar for i64 {
    const SIZE: usize = 8;
    fn from_le(b: &[u8]) -> Self {
        i64::from_le_bytes(array(b))
    }
}

/// The error for an empty operand of a non-empty result.
fn empty(kind: &str, what: &str, r: Region, n: usize) -> KernelError {
    KernelError::Operand(format!(
        "{kind}: {what} {r} is empty for a result of {n} elements"
    ))
}

/// `out[i] = op(a[i % n_a], b[i % n_b])` as 0/1 bytes, elements decoded as `T`.
fn compare_t<T: Scalar>(
    op: CmpOp,
    (a, ra): (&[u8], Region),
    (b, rb): (&[u8], Region),
    out: &mut [u8],
) -> Result<(), KernelError> {
    let xs: Vec<T> = a.chunks_exact(T::SIZE).map(T::from_le).collect();
    let ys: Vec<T> = b.chunks_exact(T::SIZE).map(T::from_le).collect();
    if !out.is_empty() {
        if xs.is_empty() {
            return Err(empty("compare", "a", ra, out.len()));
        }
        if ys.is_empty() {
            return Err(empty("compare", "b", rb, out.len()));
        }
    }
    out.iter_mut()
        .zip(xs.iter().cycle().zip(ys.iter().cycle()))
        .for_each(|(o, (x, y))| *o = u8::from(compare_values(op, *x, *y)));
    Ok(())
}

/// The compare vertex: `dst` gets one bool byte per result element.
pub(super) fn compare(
    mem: &mut [u8],
    op: CmpOp,
    elem: Elem,
    [a, b]: [Region; 2],
    dst: Region,
) -> Result<(), KernelError> {
    let (reader, out) = split(mem, dst)?;
    let (xa, xb) = ((reader.get(a)?, a), (reader.get(b)?, b));
    match elem {
        Elem::F32 => compare_t::<f32>(op, xa, xb, out),
        Elem::F16 => compare_t::<f16>(op, xa, xb, out),
        Elem::I64 => compare_t::<i64>(op, xa, xb, out),
        Elem::Bool => Err(KernelError::Operand(
            "compare of bool operands is not a vertex".into(),
        )),
    }
}

/// The select vertex: element bytes of `a` where `cond` is non-zero, else of `b`.
pub(super) fn select(
    mem: &mut [u8],
    elem: Elem,
    [cond, a, b]: [Region; 3],
    dst: Region,
) -> Result<(), KernelError> {
    let size = elem.size() as usize;
    let c = bytes(mem, cond)?.to_vec();
    let xa = bytes(mem, a)?.to_vec();
    let xb = bytes(mem, b)?.to_vec();
    let out = bytes_mut(mem, dst, dst.len as usize)?;
    if out.len() % size != 0 {
        return Err(KernelError::Operand(format!(
            "select: dst {dst} is not a whole number of {} elements",
            elem.name()
        )));
    }
    let n = out.len() / size;
    for (what, r, data, unit) in [
        ("cond", cond, &c, 1),
        ("a", a, &xa, size),
        ("b", b, &xb, size),
    ] {
        if n > 0 && data.len() < unit {
            return Err(empty("select", what, r, n));
        }
    }
    out.chunks_exact_mut(size)
        .zip(c.iter().cycle())
        .zip(
            xa.chunks_exact(size)
                .cycle()
                .zip(xb.chunks_exact(size).cycle()),
        )
        .for_each(|((o, &c), (x, y))| o.copy_from_slice(if c != 0 { x } else { y }));
    Ok(())
}

/// The bool → float cast: 1 for a non-zero byte, else 0 (as `tessera_ir::Tensor::cast`).
pub(super) fn cast_bool(
    mem: &mut [u8],
    to: Elem,
    src: Region,
    dst: Region,
) -> Result<(), KernelError> {
    let (reader, out) = split(mem, dst)?;
    let flags = reader.get(src)?;
    if out.len() != flags.len() * to.size() as usize {
        return Err(KernelError::Operand(format!(
            "cast from bool: dst {dst} does not hold {} {} elements",
            flags.len(),
            to.name()
        )));
    }
    let one = |f: u8| if f != 0 { 1.0f32 } else { 0.0 };
    match to {
        Elem::F32 => out
            .chunks_exact_mut(4)
            .zip(flags)
            .for_each(|(o, &f)| o.copy_from_slice(&one(f).to_le_bytes())),
        Elem::F16 => out
            .chunks_exact_mut(2)
            .zip(flags)
            .for_each(|(o, &f)| o.copy_from_slice(&f16::from_f32(one(f)).to_le_bytes())),
        Elem::I64 | Elem::Bool => {
            return Err(KernelError::Operand(format!(
                "cast from bool to {} is not a vertex",
                to.name()
            )))
        }
    }
    Ok(())
}
