//! Vertex kernels: each runs on exactly one tile's memory (`&mut [u8]`), which is the only
//! memory it can reach. Operands are decoded from little-endian bytes into f32 scratch, computed
//! and encoded back, so tile memory needs no alignment beyond what validation already checks.
//!
//! Every range access goes through `get`/`get_mut`, so even an unvalidated program cannot make
//! a kernel touch another tile or panic: it gets a [`KernelError`] instead. The only error a
//! validated program can meet at run time is a gather or scatter-add index outside its table.
//!
//! Submodules: [`io`] (byte encoding, split borrows), [`gemm`] (the f32 GEMM wrapper, with
//! `gemm_nt` its small-block `A · Bᵀ` kernel),
//! [`matmul`] (the matmul vertex), [`rows`] (softmax, layer norm), [`gather`] (gather and the
//! i64 → float cast), [`select`] (compare, select, bool → float cast), [`reduce`] (row
//! reduction, scatter-add).

mod gather;
mod gemm;
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod gemm_nt;
mod io;
mod matmul;
mod reduce;
mod rows;
mod select;

use crate::program::Region;
use crate::vertex::{Elem, Vertex};
use io::{decode, encode, round_to};
use std::cell::RefCell;
use tessera_ir::eval::math::{binary_f32, unary_f32};
use tessera_ir::BinaryOp;

/// Why a kernel failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelError {
    /// An operand was unusable (only reachable if load-time validation was bypassed).
    Operand(String),
    /// A gather or scatter-add index outside `[0, rows)`.
    Index {
        /// The index.
        index: i64,
        /// Rows in the table.
        rows: u32,
    },
}

impl From<String> for KernelError {
    fn from(s: String) -> Self {
        KernelError::Operand(s)
    }
}

/// Per-thread scratch: decoded operands and results.
#[derive(Debug, Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    d: Vec<f32>,
    idx: Vec<i64>,
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
        Vertex::MatMul(mm) => matmul::matmul(mem, mm, s),
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
            let n = (dst.len / elem.size()) as usize;
            if n > 0 && (s.a.is_empty() || s.b.is_empty()) {
                return Err(KernelError::Operand(format!(
                    "binary: empty operand for a result of {n} elements"
                )));
            }
            elementwise(*op, &s.a, &s.b, n, &mut s.c);
            write(mem, *dst, *elem, &s.c)
        }
        Vertex::AddPartials { elem, dst, srcs } => {
            read(mem, *dst, *elem, &mut s.c)?;
            for src in srcs {
                read(mem, *src, *elem, &mut s.a)?;
                if *elem == Elem::F32 {
                    s.c.iter_mut().zip(&s.a).for_each(|(acc, x)| *acc += *x);
                } else {
                    s.c.iter_mut()
                        .zip(&s.a)
                        .for_each(|(acc, x)| *acc = round_to(*elem, *acc + *x));
                }
            }
            write(mem, *dst, *elem, &s.c)
        }
        Vertex::Cast {
            from: Elem::I64,
            to,
            src,
            dst,
        } => gather::cast_i64(mem, *to, *src, *dst, s),
        Vertex::Cast {
            from: Elem::Bool,
            to,
            src,
            dst,
        } => select::cast_bool(mem, *to, *src, *dst),
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
                return Err(KernelError::Operand(format!(
                    "copy {src} -> {dst} out of range"
                )));
            }
            mem.copy_within(s0..s0 + len, d0);
            Ok(())
        }
        Vertex::Softmax {
            elem,
            cols,
            src,
            dst,
        } => rows::softmax(mem, *elem, *cols, *src, *dst, s),
        Vertex::LayerNorm {
            elem,
            cols,
            eps,
            x,
            gamma,
            beta,
            dst,
        } => rows::layer_norm(mem, *elem, *cols, *eps, [*x, *gamma, *beta], *dst, s),
        Vertex::Gather {
            elem,
            rows,
            width,
            table,
            indices,
            dst,
        } => gather::gather(mem, *elem, *rows, *width, [*table, *indices], *dst, s),
        Vertex::Compare {
            op,
            elem,
            a,
            b,
            dst,
        } => select::compare(mem, *op, *elem, [*a, *b], *dst),
        Vertex::Select {
            elem,
            cond,
            a,
            b,
            dst,
        } => select::select(mem, *elem, [*cond, *a, *b], *dst),
        Vertex::ReduceRows {
            kind,
            elem,
            cols,
            src,
            dst,
        } => reduce::reduce_rows(mem, *kind, *elem, *cols, *src, *dst, s),
        Vertex::ReduceCols {
            kind,
            elem,
            rows,
            src,
            dst,
        } => reduce::reduce_cols(mem, *kind, *elem, *rows, *src, *dst, s),
        Vertex::ScatterAdd {
            elem,
            rows,
            width,
            indices,
            updates,
            dst,
        } => reduce::scatter_add(mem, *elem, *rows, *width, [*indices, *updates], *dst, s),
        Vertex::Expand {
            elem,
            repeat,
            src,
            dst,
        } => expand(mem, elem.size() as usize, *repeat as usize, *src, *dst),
    }
}

/// `out[i] = op(a[i % a.len()], b[i % b.len()])` for `i < n` (both operands non-empty), with
/// the operator chosen once rather than per element and the common shapes (equal lengths, a
/// scalar operand) as straight loops.
fn elementwise(op: BinaryOp, a: &[f32], b: &[f32], n: usize, out: &mut Vec<f32>) {
    fn apply(f: impl Fn(f32, f32) -> f32, a: &[f32], b: &[f32], n: usize, out: &mut Vec<f32>) {
        out.clear();
        match (a.len(), b.len()) {
            (la, lb) if la == n && lb == n => out.extend(a.iter().zip(b).map(|(x, y)| f(*x, *y))),
            (la, 1) if la == n => out.extend(a.iter().map(|x| f(*x, b[0]))),
            (1, lb) if lb == n => out.extend(b.iter().map(|y| f(a[0], *y))),
            _ => out.extend(
                a.iter()
                    .cycle()
                    .zip(b.iter().cycle())
                    .take(n)
                    .map(|(x, y)| f(*x, *y)),
            ),
        }
    }
    match op {
        BinaryOp::Add => apply(|x, y| x + y, a, b, n, out),
        BinaryOp::Sub => apply(|x, y| x - y, a, b, n, out),
        BinaryOp::Mul => apply(|x, y| x * y, a, b, n, out),
        BinaryOp::Div => apply(|x, y| x / y, a, b, n, out),
        _ => apply(|x, y| binary_f32(op, x, y), a, b, n, out),
    }
}

/// [`Vertex::Expand`]: each `es`-byte element of `src` written `repeat` times into `dst`.
fn expand(
    mem: &mut [u8],
    es: usize,
    repeat: usize,
    src: Region,
    dst: Region,
) -> Result<(), KernelError> {
    let (s0, n, d0) = (src.offset as usize, src.len as usize, dst.offset as usize);
    let out = n.checked_mul(repeat).filter(|&o| o == dst.len as usize);
    if es == 0 || n % es != 0 || out.is_none() || mem.get(s0..s0 + n).is_none() {
        return Err(KernelError::Operand(format!(
            "expand {src} x{repeat} -> {dst} out of range"
        )));
    }
    let compact = mem[s0..s0 + n].to_vec();
    let run = es * repeat;
    let target = mem
        .get_mut(d0..d0 + n * repeat)
        .ok_or_else(|| KernelError::Operand(format!("expand destination {dst} out of range")))?;
    for (chunk, e) in target.chunks_exact_mut(run).zip(compact.chunks_exact(es)) {
        for slot in chunk.chunks_exact_mut(es) {
            slot.copy_from_slice(e);
        }
    }
    Ok(())
}

/// The bytes of `region` of `mem`.
fn bytes(mem: &[u8], region: Region) -> Result<&[u8], KernelError> {
    let start = region.offset as usize;
    mem.get(start..start + region.len as usize)
        .ok_or_else(|| KernelError::Operand(format!("read of {region} out of range")))
}

/// The bytes of `region` of `mem`, writable, checked to be exactly `len` long.
fn bytes_mut(mem: &mut [u8], region: Region, len: usize) -> Result<&mut [u8], KernelError> {
    let start = region.offset as usize;
    mem.get_mut(start..start + region.len as usize)
        .filter(|b| b.len() == len)
        .ok_or_else(|| KernelError::Operand(format!("write of {region} out of range or mis-sized")))
}

/// Decodes `region` of `mem` as `elem` values into `out`.
fn read(mem: &[u8], region: Region, elem: Elem, out: &mut Vec<f32>) -> Result<(), KernelError> {
    Ok(decode(bytes(mem, region)?, elem, out)?)
}

/// Encodes `vals` as `elem` into `region` of `mem` (which must hold exactly that many).
fn write(mem: &mut [u8], region: Region, elem: Elem, vals: &[f32]) -> Result<(), KernelError> {
    let out = bytes_mut(mem, region, vals.len() * elem.size() as usize)?;
    Ok(encode(vals, elem, out)?)
}

#[cfg(test)]
mod tests;
