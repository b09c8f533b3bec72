//! Vertex kernels: each runs on exactly one tile's memory (`&mut [u8]`), which is the only
//! memory it can reach. Operands are decoded from little-endian bytes into f32 scratch, computed
//! and encoded back, so tile memory needs no alignment beyond what validation already checks.
//!
//! Every range access goes through `get`/`get_mut`, so even an unvalidated program cannot make
//! a kernel touch another tile or panic: it gets a [`KernelError`] instead.

mod gemm;
mod io;

use crate::program::Region;
use crate::vertex::{Elem, MatMul, Vertex};
use gemm::gemm;
use io::{decode, encode, round_to, split};
use std::cell::RefCell;
use tessera_ir::eval::math::{binary_f32, unary_f32};

/// A kernel's operand was unusable (only reachable if load-time validation was bypassed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelError(pub String);

/// Per-thread scratch: decoded operands and results.
#[derive(Debug, Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `v` on one tile's memory.
pub(crate) fn run_vertex(mem: &mut [u8], v: &Vertex) -> Result<(), KernelError> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => run_with(mem, v, &mut s),
        Err(_) => run_with(mem, v, &mut Scratch::default()),
    })
}

fn run_with(mem: &mut [u8], v: &Vertex, s: &mut Scratch) -> Result<(), KernelError> {
    match v {
        Vertex::MatMul(mm) => matmul(mem, mm, s),
        Vertex::Unary { op, elem, src, dst } => {
            read(mem, *src, *elem, &mut s.a)?;
            s.a.iter_mut().for_each(|x| *x = unary_f32(*op, *x));
            write(mem, *dst, *elem, &s.a)
        }
        Vertex::Binary {
            op,
            elem,
            a,
            b,
            dst,
        } => {
            read(mem, *a, *elem, &mut s.a)?;
            read(mem, *b, *elem, &mut s.b)?;
            s.a.iter_mut()
                .zip(&s.b)
                .for_each(|(x, y)| *x = binary_f32(*op, *x, *y));
            write(mem, *dst, *elem, &s.a)
        }
        Vertex::AddPartials { elem, dst, srcs } => {
            read(mem, *dst, *elem, &mut s.c)?;
            for src in srcs {
                read(mem, *src, *elem, &mut s.a)?;
                s.c.iter_mut()
                    .zip(&s.a)
                    .for_each(|(acc, x)| *acc = round_to(*elem, *acc + *x));
            }
            write(mem, *dst, *elem, &s.c)
        }
        Vertex::Cast { from, to, src, dst } => {
            read(mem, *src, *from, &mut s.a)?;
            write(mem, *dst, *to, &s.a)
        }
        Vertex::Fill { elem, dst, value } => {
            let n = (dst.len / elem.size()) as usize;
            s.a.clear();
            s.a.resize(n, *value);
            write(mem, *dst, *elem, &s.a)
        }
        Vertex::Copy { src, dst } => {
            let (s0, len, d0) = (src.offset as usize, src.len as usize, dst.offset as usize);
            if dst.len as usize != len
                || mem.get(s0..s0 + len).is_none()
                || mem.get(d0..d0 + len).is_none()
            {
                return Err(KernelError(format!("copy {src} -> {dst} out of range")));
            }
            mem.copy_within(s0..s0 + len, d0);
            Ok(())
        }
    }
}

/// Decodes `region` of `mem` as `elem` values into `out`.
fn read(mem: &[u8], region: Region, elem: Elem, out: &mut Vec<f32>) -> Result<(), KernelError> {
    let start = region.offset as usize;
    let bytes = mem
        .get(start..start + region.len as usize)
        .ok_or_else(|| KernelError(format!("read of {region} out of range")))?;
    decode(bytes, elem, out);
    Ok(())
}

/// Encodes `vals` as `elem` into `region` of `mem` (which must hold exactly that many).
fn write(mem: &mut [u8], region: Region, elem: Elem, vals: &[f32]) -> Result<(), KernelError> {
    let start = region.offset as usize;
    let bytes = mem
        .get_mut(start..start + region.len as usize)
        .filter(|b| b.len() == vals.len() * elem.size() as usize)
        .ok_or_else(|| KernelError(format!("write of {region} out of range or mis-sized")))?;
    encode(vals, elem, bytes);
    Ok(())
}

/// `C (+)= A · B` as documented on [`MatMul`].
fn matmul(mem: &mut [u8], mm: &MatMul, s: &mut Scratch) -> Result<(), KernelError> {
    let (m, k, n) = (mm.m as usize, mm.k as usize, mm.n as usize);
    let (reader, c_bytes) = split(mem, mm.c).map_err(KernelError)?;
    decode(reader.get(mm.a).map_err(KernelError)?, mm.input, &mut s.a);
    decode(reader.get(mm.b).map_err(KernelError)?, mm.input, &mut s.b);
    if s.a.len() != m * k
        || s.b.len() != k * n
        || c_bytes.len() != m * n * mm.partials.size() as usize
    {
        return Err(KernelError(format!(
            "matmul {m}x{k}x{n} operands mis-sized"
        )));
    }
    s.c.clear();
    s.c.resize(m * n, 0.0);
    gemm(m, k, n, &s.a, &s.b, &mut s.c).map_err(|e| KernelError(e.to_string()))?;
    let p = mm.partials;
    if mm.accumulate {
        decode(c_bytes, p, &mut s.a);
        s.c.iter_mut()
            .zip(&s.a)
            .for_each(|(sum, old)| *sum = round_to(p, *old + round_to(p, *sum)));
    }
    encode(&s.c, p, c_bytes);
    Ok(())
}

#[cfg(test)]
mod tests;
