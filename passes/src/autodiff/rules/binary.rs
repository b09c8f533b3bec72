//! Rules of the broadcasting binary ops, `select` and `cast`.
//!
//! An operand broadcast in the forward op gets its gradient summed over the broadcast axes
//! ([`Emitter::unbroadcast`]: a `reduce_sum` over those axes and a `reshape`).
//!
//! Choices at non-differentiable points:
//! - `max`/`min` at ties: the gradient is split equally between the operands (torch's
//!   `maximum`/`minimum`), so `max(x, x)` passes the full gradient to `x`.
//! - `pow(a, b)`: the exponent's gradient `z ln a` is taken as 0 where `a == 0`, and the
//!   base's gradient `b a^(b-1)` as 0 where `b == 0` (as torch's `pow` backward).

use super::{Grads, RuleError, Site};
use crate::emit::Emitter;
use tessera_ir::{BinaryOp, CmpOp, NodeId, UnaryOp};

/// Rule of [`BinaryOp`] `z = a ∘ b`.
pub(super) fn binary(e: &mut Emitter, s: &Site, b: BinaryOp) -> Result<Grads, RuleError> {
    let (x0, x1, z, dz) = (s.x(0)?, s.x(1)?, s.y, s.dy);
    let (want0, want1) = (s.wants(0), s.wants(1));
    // Unreduced gradients (result shape) for each wanted operand.
    let (g0, g1): (Option<NodeId>, Option<NodeId>) = match b {
        BinaryOp::Add => (want0.then_some(dz), want1.then_some(dz)),
        BinaryOp::Sub => (want0.then_some(dz), opt(want1, || e.neg(dz))?),
        BinaryOp::Mul => (opt(want0, || e.mul(dz, x1))?, opt(want1, || e.mul(dz, x0))?),
        BinaryOp::Div => (
            opt(want0, || e.div(dz, x1))?,
            opt(want1, || {
                // d(a/b)/db = -a/b² = -z/b.
                let q = e.div(z, x1)?;
                let p = e.mul(dz, q)?;
                e.neg(p)
            })?,
        ),
        BinaryOp::Max | BinaryOp::Min => {
            let wins = if b == BinaryOp::Max {
                CmpOp::Gt
            } else {
                CmpOp::Lt
            };
            // Weight of `a`: 1 where it wins, 1/2 at ties, 0 where it loses.
            let win = e.cmp(wins, x0, x1)?;
            let tie = e.cmp(CmpOp::Eq, x0, x1)?;
            let one = e.scalar_like(1.0, z)?;
            let half = e.scalar_like(0.5, z)?;
            let zero = e.scalar_like(0.0, z)?;
            let at_tie = e.select(tie, half, zero)?;
            let w0 = e.select(win, one, at_tie)?;
            let g0 = opt(want0, || e.mul(dz, w0))?;
            let g1 = opt(want1, || {
                let w1 = e.sub(one, w0)?;
                e.mul(dz, w1)
            })?;
            (g0, g1)
        }
        BinaryOp::Pow => {
            let zero = e.scalar_like(0.0, z)?;
            let g0 = opt(want0, || {
                let one = e.scalar_like(1.0, z)?;
                let bm1 = e.sub(x1, one)?;
                let p = e.binary(BinaryOp::Pow, x0, bm1)?;
                let d = e.mul(x1, p)?;
                let g = e.mul(dz, d)?;
                let b_zero = e.cmp(CmpOp::Eq, x1, zero)?;
                e.select(b_zero, zero, g)
            })?;
            let g1 = opt(want1, || {
                let ln = e.unary(UnaryOp::Log, x0)?;
                let d = e.mul(z, ln)?;
                let g = e.mul(dz, d)?;
                let a_zero = e.cmp(CmpOp::Eq, x0, zero)?;
                e.select(a_zero, zero, g)
            })?;
            (g0, g1)
        }
    };
    Ok(vec![
        reduce_to(e, g0, &s.x_ty(0)?.shape)?,
        reduce_to(e, g1, &s.x_ty(1)?.shape)?,
    ])
}

/// Rule of `select(c, a, b)`: `a` gets `dy` where `c`, `b` where not; `c` gets nothing.
pub(super) fn select(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    let (c, dy) = (s.x(0)?, s.dy);
    let zero = e.scalar_like(0.0, dy)?;
    let ga = opt(s.wants(1), || e.select(c, dy, zero))?;
    let gb = opt(s.wants(2), || e.select(c, zero, dy))?;
    Ok(vec![
        None,
        reduce_to(e, ga, &s.x_ty(1)?.shape)?,
        reduce_to(e, gb, &s.x_ty(2)?.shape)?,
    ])
}

/// Rule of `cast`: the gradient is cast back to the operand's element type.
pub(super) fn cast(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let dtype = s.x_ty(0)?.dtype;
    Ok(vec![Some(e.cast(s.dy, dtype)?)])
}

/// Runs `f` when `want`.
fn opt<E>(want: bool, f: impl FnOnce() -> Result<NodeId, E>) -> Result<Option<NodeId>, E> {
    want.then(f).transpose()
}

/// Sums a result-shaped gradient back to an operand's shape.
fn reduce_to(
    e: &mut Emitter,
    grad: Option<NodeId>,
    shape: &[usize],
) -> Result<Option<NodeId>, RuleError> {
    Ok(match grad {
        Some(g) => Some(e.unbroadcast(g, shape)?),
        None => None,
    })
}
