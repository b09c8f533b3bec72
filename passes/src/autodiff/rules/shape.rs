//! Rules of the ops that only move elements: each gradient is the adjoint movement.
//!
//! `reshape` ↔ `reshape` back, `transpose` ↔ the inverse permutation, `broadcast_to` ↔ sum
//! over the broadcast axes, `slice` ↔ `pad` with zeros, `pad` ↔ `slice`, `concat` ↔ one
//! `slice` per operand.

use super::{Grads, RuleError, Site};
use crate::emit::Emitter;
use tessera_ir::{NodeId, Op};

/// Rule of `reshape`.
pub(super) fn reshape(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let shape = s.x_ty(0)?.shape.clone();
    Ok(vec![Some(e.reshape(s.dy, &shape)?)])
}

/// Rule of `transpose` by `perm`: transpose back by the inverse permutation.
pub(super) fn transpose(e: &mut Emitter, s: &Site, perm: &[usize]) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        let slot = inverse
            .get_mut(p)
            .ok_or_else(|| RuleError::Unsupported(format!("{perm:?} is not a permutation")))?;
        *slot = i;
    }
    if inverse.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(vec![Some(s.dy)]);
    }
    Ok(vec![Some(e.op(Op::Transpose { perm: inverse }, &[s.dy])?)])
}

/// Rule of `broadcast_to`: sum over the broadcast axes.
pub(super) fn broadcast_to(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let shape = s.x_ty(0)?.shape.clone();
    Ok(vec![Some(e.unbroadcast(s.dy, &shape)?)])
}

/// Rule of `slice(axis, start..end)`: pad the gradient with zeros back to full extent.
pub(super) fn slice(
    e: &mut Emitter,
    s: &Site,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let extent = extent(s, 0, axis)?;
    let after = extent
        .checked_sub(end)
        .ok_or_else(|| RuleError::Unsupported(format!("slice end {end} beyond extent {extent}")))?;
    let pad = Op::Pad {
        axis,
        before: start,
        after,
    };
    Ok(vec![Some(e.op(pad, &[s.dy])?)])
}

/// Rule of `pad(axis, before, after)`: slice the operand's part out of the gradient.
pub(super) fn pad(
    e: &mut Emitter,
    s: &Site,
    axis: usize,
    before: usize,
    _after: usize,
) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let extent = extent(s, 0, axis)?;
    Ok(vec![Some(part(e, s, 0, axis, before, extent)?)])
}

/// Rule of `concat` along `axis`: each operand gets its slice of the gradient.
pub(super) fn concat(e: &mut Emitter, s: &Site, axis: usize) -> Result<Grads, RuleError> {
    let mut offset = 0;
    let mut grads = Vec::with_capacity(s.xs.len());
    for i in 0..s.xs.len() {
        let extent = extent(s, i, axis)?;
        grads.push(if s.wants(i) {
            Some(part(e, s, i, axis, offset, extent)?)
        } else {
            None
        });
        offset += extent;
    }
    Ok(grads)
}

/// Elements `start..start + extent` of `dy` along `axis`, as operand `i`'s gradient (zeros
/// for an operand with no elements along `axis`, which a slice cannot express).
fn part(
    e: &mut Emitter,
    s: &Site,
    i: usize,
    axis: usize,
    start: usize,
    extent: usize,
) -> Result<NodeId, RuleError> {
    if extent == 0 {
        return Ok(e.full(0.0, s.x_ty(i)?.clone())?);
    }
    if start == 0 && s.y_ty.shape.get(axis) == Some(&extent) {
        return Ok(s.dy);
    }
    let slice = Op::Slice {
        axis,
        start,
        end: start + extent,
    };
    Ok(e.op(slice, &[s.dy])?)
}

fn extent(s: &Site, i: usize, axis: usize) -> Result<usize, RuleError> {
    let ty = s.x_ty(i)?;
    ty.shape
        .get(axis)
        .copied()
        .ok_or_else(|| RuleError::Unsupported(format!("axis {axis} out of range for {ty}")))
}
