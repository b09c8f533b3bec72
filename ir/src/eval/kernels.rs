//! Dispatch from an [`Op`] to its kernel.
//!
//! The match is exhaustive over [`Op`], so a new op does not compile until it has a kernel.
//! The driver has already checked that the operands fit the op (their types infer the
//! node's type), so kernels may rely on the type rules of [`Op::infer`]; they still never
//! index out of bounds, reporting [`KernelError::Internal`] instead if the rules were broken.

use super::elementwise::{binary, compare, select, unary};
use super::error::KernelError;
use super::index::{full, gather, iota, one_hot, scatter_add};
use super::layout::{broadcast_to, cast, concat, pad, reshape, slice, transpose};
use super::matmul::{matmul, MatMulFlags};
use super::reduce::{layer_norm, reduce, softmax};
use crate::op::Op;
use crate::tensor::Tensor;
use crate::types::TensorType;

/// Exactly `N` operands, or an internal error.
fn take<'a, const N: usize>(op: &Op, args: &[&'a Tensor]) -> Result<[&'a Tensor; N], KernelError> {
    <[&Tensor; N]>::try_from(args).map_err(|_| {
        KernelError::Internal(format!(
            "`{}` got {} operand(s), expected {N}",
            op.name(),
            args.len()
        ))
    })
}

/// The value of a non-leaf op (or a constant) applied to `args`, of result type `ty`.
pub(crate) fn eval_op(op: &Op, args: &[&Tensor], ty: &TensorType) -> Result<Tensor, KernelError> {
    let out = ty.shape.as_slice();
    match op {
        Op::Input { name, .. } | Op::Param { name, .. } => Err(KernelError::Internal(format!(
            "feed `{name}` reached the kernels"
        ))),
        Op::Full { value, .. } => full(*value, ty),
        Op::Iota { axis, .. } => iota(*axis, ty),
        Op::Unary(u) => {
            let [x] = take(op, args)?;
            unary(*u, x)
        }
        Op::Binary(b) => {
            let [x, y] = take(op, args)?;
            binary(*b, x, y, out)
        }
        Op::Compare(c) => {
            let [x, y] = take(op, args)?;
            compare(*c, x, y, out)
        }
        Op::Select => {
            let [c, x, y] = take(op, args)?;
            select(c, x, y, out)
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
            half_partials,
        } => {
            let [a, b] = take(op, args)?;
            let flags = MatMulFlags {
                transpose_a: *transpose_a,
                transpose_b: *transpose_b,
                half_partials: *half_partials,
            };
            matmul(a, b, flags, out)
        }
        Op::Gather { .. } => {
            let [table, idx] = take(op, args)?;
            gather(table, idx, out)
        }
        Op::ScatterAdd { rows } => {
            let [idx, upd] = take(op, args)?;
            scatter_add(idx, upd, *rows, out)
        }
        Op::OneHot { depth, dtype } => {
            let [idx] = take(op, args)?;
            one_hot(idx, *depth, *dtype, out)
        }
        Op::Softmax => {
            let [x] = take(op, args)?;
            softmax(x)
        }
        Op::LayerNorm { eps } => {
            let [x, g, b] = take(op, args)?;
            layer_norm(x, g, b, *eps)
        }
        Op::Reduce { kind, axes, .. } => {
            let [x] = take(op, args)?;
            reduce(x, *kind, axes, out)
        }
        Op::Reshape { .. } => {
            let [x] = take(op, args)?;
            reshape(x, out)
        }
        Op::Transpose { perm } => {
            let [x] = take(op, args)?;
            transpose(x, perm, out)
        }
        Op::BroadcastTo { .. } => {
            let [x] = take(op, args)?;
            broadcast_to(x, out)
        }
        Op::Slice { axis, start, end } => {
            let [x] = take(op, args)?;
            slice(x, *axis, (*start, *end), out)
        }
        Op::Pad {
            axis,
            before,
            after,
        } => {
            let [x] = take(op, args)?;
            pad(x, *axis, (*before, *after), out)
        }
        Op::Concat { axis } => concat(args, *axis, out),
        Op::Cast { to } => {
            let [x] = take(op, args)?;
            Ok(cast(x, *to))
        }
    }
}
