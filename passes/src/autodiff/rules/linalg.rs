//! Rules of `matmul`, `gather` and `scatter_add`.
//!
//! For `Y = op(A) · op(B)` (op = optional transpose of the last two axes, batch axes
//! broadcast): `dop(A) = dY · op(B)ᵀ` and `dop(B) = op(A)ᵀ · dY`, each written as one
//! matmul with transpose flags so that no explicit transpose node is needed, then summed
//! over broadcast batch axes. The backward matmuls keep the forward's `half_partials`.
//! For a linear layer's weight (`B` of rank 2, `A` of rank > 2, `A` not transposed) the
//! batch axes are folded into the contraction instead (`A` and `dY` reshaped to 2-D), so
//! the weight gradient is one `[K, rows] x [rows, N]` product and no per-batch partial
//! gradients are materialised.
//!
//! `gather` and `scatter_add` are each other's adjoints: the table's gradient scatters
//! (adds, so repeated indices accumulate) the output gradient back to the gathered rows.
//! For a table with a padding row (torch's `padding_idx`, given in the options) the
//! positions reading that row are zeroed first, so the row gets no gradient.

use super::{Grads, RuleError, Site};
use crate::emit::Emitter;
use tessera_ir::{CmpOp, DType, NodeId, Op, TensorType};

/// Rule of `matmul`.
pub(super) fn matmul(
    e: &mut Emitter,
    s: &Site,
    ta: bool,
    tb: bool,
    half_partials: bool,
) -> Result<Grads, RuleError> {
    let (a, b, dy) = (s.x(0)?, s.x(1)?, s.dy);
    let (a_ty, b_ty) = (s.x_ty(0)?.clone(), s.x_ty(1)?.clone());
    let mm = |transpose_a, transpose_b| Op::MatMul {
        transpose_a,
        transpose_b,
        half_partials,
    };
    let da = if s.wants(0) {
        let raw = if ta {
            // A is [.., K, M]: dA = (dY op(B)ᵀ)ᵀ = op(B) dYᵀ.
            e.op(mm(tb, true), &[b, dy])?
        } else {
            e.op(mm(false, !tb), &[dy, b])?
        };
        Some(e.unbroadcast(raw, &a_ty.shape)?)
    } else {
        None
    };
    let db = if !s.wants(1) {
        None
    } else if !ta && b_ty.rank() == 2 && a_ty.rank() > 2 {
        Some(folded_weight_grad(e, a, dy, tb, half_partials)?)
    } else {
        let raw = if tb {
            // B is [.., N, K]: dB = (op(A)ᵀ dY)ᵀ = dYᵀ op(A).
            e.op(mm(true, ta), &[dy, a])?
        } else {
            e.op(mm(!ta, false), &[a, dy])?
        };
        Some(e.unbroadcast(raw, &b_ty.shape)?)
    };
    Ok(vec![da, db])
}

/// The gradient of a rank-2 `B` in `Y = A · op(B)` with `A` of rank > 2 (not transposed):
/// `A` and `dY` are flattened to `[rows, K]` and `[rows, N]` and contracted over `rows`.
fn folded_weight_grad(
    e: &mut Emitter,
    a: NodeId,
    dy: NodeId,
    tb: bool,
    half_partials: bool,
) -> Result<NodeId, RuleError> {
    let a_shape = e.ty(a).shape.clone();
    let dy_shape = e.ty(dy).shape.clone();
    let (Some((&k, a_rows)), Some(&n)) = (a_shape.split_last(), dy_shape.last()) else {
        return Err(RuleError::Unsupported("matmul operand of rank 0".into()));
    };
    let rows: usize = a_rows.iter().product();
    let a2 = e.reshape(a, &[rows, k])?;
    let dy2 = e.reshape(dy, &[rows, n])?;
    // dB = A2ᵀ dY2 ([K, N]), or its transpose dY2ᵀ A2 ([N, K]) when B is used transposed.
    let (x, y) = if tb { (dy2, a2) } else { (a2, dy2) };
    let op = Op::MatMul {
        transpose_a: true,
        transpose_b: false,
        half_partials,
    };
    Ok(e.op(op, &[x, y])?)
}

/// Rule of `gather(table, indices)`: `dtable = scatter_add(indices, dy)`, with row
/// `padding_idx` (if any) zeroed: `select(iota == padding_idx, 0, dtable)`, as PyTorch's
/// `nn.Embedding(padding_idx=...)` never updates that row.
pub(super) fn gather(
    e: &mut Emitter,
    s: &Site,
    padding_idx: Option<usize>,
) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let rows = s
        .x_ty(0)?
        .shape
        .first()
        .copied()
        .ok_or_else(|| RuleError::Unsupported("gather table of rank 0".into()))?;
    let d = e.op(Op::ScatterAdd { rows }, &[s.x(1)?, s.dy])?;
    let Some(p) = padding_idx else {
        return Ok(vec![Some(d), None]);
    };
    let rows_ty = TensorType::new(DType::I64, vec![rows, 1]);
    let row = e.op(
        Op::Iota {
            axis: 0,
            ty: rows_ty,
        },
        &[],
    )?;
    let pad = e.scalar(p as f64, DType::I64)?;
    let is_pad = e.op(Op::Compare(CmpOp::Eq), &[row, pad])?;
    let zero = e.scalar_like(0.0, d)?;
    let d = e.op(Op::Select, &[is_pad, zero, d])?;
    Ok(vec![Some(d), None])
}

/// Rule of `scatter_add(indices, updates)`: `dupdates = gather(dy, indices)`.
pub(super) fn scatter_add(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    if !s.wants(1) {
        return Ok(s.none());
    }
    let d = e.op(Op::Gather { padding_idx: None }, &[s.dy, s.x(0)?])?;
    Ok(vec![None, Some(d)])
}
