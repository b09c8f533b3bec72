//! Rules of the reductions, softmax and layer normalisation.
//!
//! - `reduce_sum`/`reduce_mean`: the gradient is broadcast back over the reduced axes
//!   (divided by the number of reduced elements for the mean).
//! - `reduce_max`: the gradient goes to the elements equal to the maximum, split equally
//!   between ties (as torch's `amax`).
//! - `softmax` (last axis): `dx = y ⊙ (dy − Σ(dy ⊙ y))`, the sum over the last axis.
//! - `layer_norm(x, γ, β)`: mean and reciprocal standard deviation are recomputed from `x`
//!   (biased variance, as torch); with `x̂ = (x − μ)·rstd`: `dβ = Σ dy`, `dγ = Σ dy ⊙ x̂`
//!   (sums over all leading axes) and `dx = rstd · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))` where
//!   `g = dy ⊙ γ` and the means are over the last axis.

use super::{Grads, RuleError, Site};
use crate::emit::Emitter;
use tessera_ir::{CmpOp, NodeId, ReduceKind, UnaryOp};

/// Rule of `reduce_{sum,mean,max}` over `axes`.
pub(super) fn reduce(
    e: &mut Emitter,
    s: &Site,
    kind: ReduceKind,
    axes: &[usize],
    keep_dims: bool,
) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let (x, y, dy) = (s.x(0)?, s.y, s.dy);
    if axes.is_empty() {
        return Ok(vec![Some(dy)]);
    }
    let x_shape = s.x_ty(0)?.shape.clone();
    let kept: Vec<usize> = x_shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let _ = keep_dims; // `dy` is reshaped to the kept shape either way.
    let dy_kept = e.reshape(dy, &kept)?;
    let dx = match kind {
        ReduceKind::Sum => e.broadcast_to(dy_kept, &x_shape)?,
        ReduceKind::Mean => {
            let n: usize = axes.iter().filter_map(|&a| x_shape.get(a)).product();
            let inv = if n == 0 { 0.0 } else { 1.0 / n as f64 };
            let scaled = e.scale(dy_kept, inv)?;
            e.broadcast_to(scaled, &x_shape)?
        }
        ReduceKind::Max => {
            let y_kept = e.reshape(y, &kept)?;
            let is_max = e.cmp(CmpOp::Eq, x, y_kept)?;
            let one = e.scalar_like(1.0, x)?;
            let zero = e.scalar_like(0.0, x)?;
            let mask = e.select(is_max, one, zero)?;
            let count = e.sum(mask, axes.to_vec(), true)?;
            let share = e.div(dy_kept, count)?;
            e.mul(mask, share)?
        }
    };
    Ok(vec![Some(dx)])
}

/// Rule of `softmax` over the last axis.
pub(super) fn softmax(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let (y, dy) = (s.y, s.dy);
    let last = last_axis(s)?;
    let p = e.mul(dy, y)?;
    let sum = e.sum(p, vec![last], true)?;
    let c = e.sub(dy, sum)?;
    Ok(vec![Some(e.mul(y, c)?)])
}

/// Rule of `layer_norm(x, gamma, beta)` with `eps`.
pub(super) fn layer_norm(e: &mut Emitter, s: &Site, eps: f64) -> Result<Grads, RuleError> {
    let (x, gamma, dy) = (s.x(0)?, s.x(1)?, s.dy);
    let last = last_axis(s)?;
    let lead: Vec<usize> = (0..last).collect();
    let dbeta = if s.wants(2) {
        Some(e.sum(dy, lead.clone(), false)?)
    } else {
        None
    };
    if !s.wants(0) && !s.wants(1) {
        return Ok(vec![None, None, dbeta]);
    }
    let (xhat, rstd) = normalise(e, x, last, eps)?;
    let dgamma = if s.wants(1) {
        let p = e.mul(dy, xhat)?;
        Some(e.sum(p, lead, false)?)
    } else {
        None
    };
    let dx = if s.wants(0) {
        let g = e.mul(dy, gamma)?;
        let g_mean = e.mean(g, vec![last], true)?;
        let gx = e.mul(g, xhat)?;
        let gx_mean = e.mean(gx, vec![last], true)?;
        let t = e.mul(xhat, gx_mean)?;
        let u = e.sub(g, g_mean)?;
        let v = e.sub(u, t)?;
        Some(e.mul(v, rstd)?)
    } else {
        None
    };
    Ok(vec![dx, dgamma, dbeta])
}

/// Recomputes `x̂ = (x − μ)·rstd` and `rstd = 1/√(var + eps)` over axis `last`.
fn normalise(
    e: &mut Emitter,
    x: NodeId,
    last: usize,
    eps: f64,
) -> Result<(NodeId, NodeId), RuleError> {
    let mu = e.mean(x, vec![last], true)?;
    let xc = e.sub(x, mu)?;
    let sq = e.mul(xc, xc)?;
    let var = e.mean(sq, vec![last], true)?;
    let eps = e.scalar_like(eps, x)?;
    let ve = e.add(var, eps)?;
    let rstd = e.unary(UnaryOp::Rsqrt, ve)?;
    let xhat = e.mul(xc, rstd)?;
    Ok((xhat, rstd))
}

fn last_axis(s: &Site) -> Result<usize, RuleError> {
    s.x_ty(0)?
        .rank()
        .checked_sub(1)
        .ok_or_else(|| RuleError::Unsupported("operand of rank 0".into()))
}
