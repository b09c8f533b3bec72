//! transformers' `get_linear_schedule_with_warmup`, on the host and as graph nodes.
//!
//! The multiplier of the peak learning rate at 0-based step `s` is `s / max(1, warmup)`
//! while `s < warmup`, then `max(0, (total − s) / max(1, total − warmup))`: it rises
//! linearly from 0 (the first step has learning rate 0 when there is warmup) and falls
//! linearly to 0 at `total`.

use crate::emit::Emitter;
use tessera_ir::{BinaryOp, CmpOp, DType, IrError, NodeId};

/// The learning rate at 0-based step `step` (host-side, f64).
pub fn linear_with_warmup(lr: f64, warmup: u64, total: u64, step: f64) -> f64 {
    let (warmup, total) = (warmup as f64, total as f64);
    let factor = if step < warmup {
        step / warmup.max(1.0)
    } else {
        ((total - step) / (total - warmup).max(1.0)).max(0.0)
    };
    lr * factor
}

/// Adds the nodes computing the learning rate (f32 scalar) from the f32 scalar `step`.
pub(crate) fn emit_linear_with_warmup(
    e: &mut Emitter,
    step: NodeId,
    lr: f64,
    warmup: u64,
    total: u64,
) -> Result<NodeId, IrError> {
    let (warmup, total) = (warmup as f64, total as f64);
    let dt = DType::F32;
    let warmup_n = e.scalar(warmup, dt)?;
    let warmup_div = e.scalar(warmup.max(1.0), dt)?;
    let rising = e.div(step, warmup_div)?;
    let total_n = e.scalar(total, dt)?;
    let left = e.sub(total_n, step)?;
    let decay_div = e.scalar((total - warmup).max(1.0), dt)?;
    let falling = e.div(left, decay_div)?;
    let zero = e.scalar(0.0, dt)?;
    let falling = e.binary(BinaryOp::Max, falling, zero)?;
    let warming = e.cmp(CmpOp::Lt, step, warmup_n)?;
    let factor = e.select(warming, rising, falling)?;
    e.scale(factor, lr)
}
