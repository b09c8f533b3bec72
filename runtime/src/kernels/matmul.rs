//! The matmul vertex: decodes `A` and `B` to f32 (as stored, possibly transposed), multiplies
//! through the [`super::gemm`] wrapper with strides that read the transposed layouts in place,
//! rounds to `partials` and optionally accumulates into the old `C` (see [`MatMul`]).

use super::gemm::gemm;
use super::io::{decode, encode, round_to, split};
use super::{KernelError, Scratch};
use crate::vertex::MatMul;

/// `C (+)= op(A) · op(B)` as documented on [`MatMul`].
pub(super) fn matmul(mem: &mut [u8], mm: &MatMul, s: &mut Scratch) -> Result<(), KernelError> {
    let (m, k, n) = (mm.m as usize, mm.k as usize, mm.n as usize);
    let (reader, c_bytes) = split(mem, mm.c)?;
    decode(reader.get(mm.a)?, mm.input, &mut s.a)?;
    decode(reader.get(mm.b)?, mm.input, &mut s.b)?;
    if c_bytes.len() != m * n * mm.partials.size() as usize {
        return Err(KernelError::Operand(format!(
            "matmul {m}x{k}x{n}: c {} is mis-sized",
            mm.c
        )));
    }
    s.c.clear();
    s.c.resize(m * n, 0.0);
    gemm(
        m,
        k,
        n,
        (&s.a, mm.transpose_a),
        (&s.b, mm.transpose_b),
        &mut s.c,
    )
    .map_err(|e| KernelError::Operand(e.to_string()))?;
    let p = mm.partials;
    if mm.accumulate {
        decode(c_bytes, p, &mut s.a)?;
        s.c.iter_mut()
            .zip(&s.a)
            .for_each(|(sum, old)| *sum = round_to(p, *old + round_to(p, *sum)));
    }
    Ok(encode(&s.c, p, c_bytes)?)
}
