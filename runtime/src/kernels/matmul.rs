//! The matmul vertex: multiplies through the [`super::gemm`] wrapper with strides that read the
//! transposed layouts in place, rounds to `partials` and optionally accumulates into the old
//! `C` (see [`MatMul`]).
//!
//! f32 operands are read where they lie: on a little-endian host an aligned f32 region of tile
//! memory *is* its little-endian encoding, so it is viewed as `&[f32]` (a checked, safe cast)
//! instead of being decoded into scratch, and an f32 `C` that is overwritten receives the
//! product directly. Operands that cannot be viewed (f16, or an unaligned tile buffer) are
//! decoded. Both paths hand `gemm` the same shape and strides, so they give the same bits.

use super::gemm::gemm;
use super::io::{decode, encode, le_view, le_view_mut, round_to, split};
use super::{KernelError, Scratch};
use crate::vertex::{Elem, MatMul};

/// `bytes` viewed as f32 values, if they are f32 elements on a little-endian host and aligned.
fn view(bytes: &[u8], elem: Elem) -> Option<&[f32]> {
    (elem == Elem::F32).then(|| le_view(bytes)).flatten()
}

/// `bytes` viewed as mutable f32 values, under the same conditions as [`view`].
fn view_mut(bytes: &mut [u8], elem: Elem) -> Option<&mut [f32]> {
    (elem == Elem::F32).then(|| le_view_mut(bytes)).flatten()
}

/// `C (+)= op(A) · op(B)` as documented on [`MatMul`].
pub(super) fn matmul(mem: &mut [u8], mm: &MatMul, s: &mut Scratch) -> Result<(), KernelError> {
    let (m, k, n) = (mm.m as usize, mm.k as usize, mm.n as usize);
    let (reader, c_bytes) = split(mem, mm.c)?;
    let (a_bytes, b_bytes) = (reader.get(mm.a)?, reader.get(mm.b)?);
    let a = match view(a_bytes, mm.input) {
        Some(a) => a,
        None => {
            decode(a_bytes, mm.input, &mut s.a)?;
            &s.a
        }
    };
    let b = match view(b_bytes, mm.input) {
        Some(b) => b,
        None => {
            decode(b_bytes, mm.input, &mut s.b)?;
            &s.b
        }
    };
    if c_bytes.len() != m * n * mm.partials.size() as usize {
        return Err(KernelError::Operand(format!(
            "matmul {m}x{k}x{n}: c {} is mis-sized",
            mm.c
        )));
    }
    let product = |c: &mut [f32]| {
        gemm(m, k, n, (a, mm.transpose_a), (b, mm.transpose_b), c)
            .map_err(|e| KernelError::Operand(e.to_string()))
    };
    let p = mm.partials;
    if !mm.accumulate {
        if let Some(c) = view_mut(c_bytes, p) {
            return product(c);
        }
    }
    s.c.clear();
    s.c.resize(m * n, 0.0);
    product(&mut s.c)?;
    if mm.accumulate {
        if let Some(c) = view_mut(c_bytes, p) {
            // f32 partials: `round_to` is the identity, so this is `C = C + sum`.
            c.iter_mut().zip(&s.c).for_each(|(old, sum)| *old += *sum);
            return Ok(());
        }
        decode(c_bytes, p, &mut s.d)?;
        s.c.iter_mut()
            .zip(&s.d)
            .for_each(|(sum, old)| *sum = round_to(p, *old + round_to(p, *sum)));
    }
    Ok(encode(&s.c, p, c_bytes)?)
}
