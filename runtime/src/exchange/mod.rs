//! The exchange phase's precomputed plans: [`direct`] copies source → destination in one
//! parallel pass, which is correct when no copy of the superstep reads bytes another one
//! writes (the common case: lowering allocates exchange buffers fresh); otherwise [`staged`]
//! goes through a staging buffer. Which one a superstep uses is decided once, at load.

pub(crate) mod direct;
pub(crate) mod fused;
pub(crate) mod staged;

use crate::program::{Superstep, TileRef};
use direct::DirectPlan;
use fused::FusedPlan;
use staged::DstGroup;

/// Work per parallel job, in units of about a byte copied (a flop counts one, a vertex's fixed
/// cost [`VERTEX_UNITS`]): smaller jobs cost more in scheduling than they gain in parallelism.
pub(crate) const JOB_UNITS: u64 = 64 * 1024;

/// The fixed cost of running one vertex, in the units of [`JOB_UNITS`].
pub(crate) const VERTEX_UNITS: u64 = 1024;

/// The time of delivering one byte of a fused exchange, in the work units of
/// [`JOB_UNITS`] (a vertex's flop or written byte counts one, plus [`VERTEX_UNITS`] per
/// vertex): used only to split a fused phase's measured wall time between its exchange and
/// its compute when tiles are not timed one by one ([`crate::TraceMode::On`]). Calibrated with
/// [`crate::TraceMode::Tiles`] (summed per-tile delivery and compute times of the fused
/// phases, one clock read taken off each; `TILES_TRACE_COST` in `passes/benches/tiles.rs`):
/// 1.8 units per byte for lxmert-base's forward on 4 chips (large operand blocks), 3.6–3.8
/// for lxmert-tiny's (small copies, where each copy's fixed cost weighs more). 2.5 sits
/// between: the split of either is off by at most about 40 % of its delivery part.
pub(crate) const DELIVERY_UNITS_PER_BYTE: f64 = 2.5;

/// Items per parallel job for `items` items of `units` work in total: enough that each job
/// has about [`JOB_UNITS`] (all items in one job when the total is below that).
pub(crate) fn min_len(units: u64, items: usize) -> usize {
    let jobs = usize::try_from(units / JOB_UNITS)
        .unwrap_or(usize::MAX)
        .clamp(1, items.max(1));
    items.div_ceil(jobs).max(1)
}

/// One copy as plans see it: `(src tile, src offset, dst tile, dst offset, len, index in the
/// superstep's exchange list)`, tiles flat.
pub(crate) type Copy = (usize, usize, usize, usize, usize, usize);

/// `step`'s copies with flat tiles.
pub(crate) fn copies(step: &Superstep, flat: impl Fn(TileRef) -> usize) -> Vec<Copy> {
    step.exchange
        .iter()
        .enumerate()
        .map(|(i, x)| {
            (
                flat(x.src.tile),
                x.src.region.offset as usize,
                flat(x.dst_tile),
                x.dst_offset as usize,
                x.src.region.len as usize,
                i,
            )
        })
        .collect()
}

/// How one superstep's exchange runs.
#[derive(Debug, Clone, Default)]
pub(crate) enum ExchangePlan {
    /// No copies.
    #[default]
    Empty,
    /// Straight from sources to destinations.
    Direct(DirectPlan),
    /// Through the staging buffer (groups sorted by destination tile).
    Staged(Vec<DstGroup>),
    /// Distinct sources staged once, then delivered by the next superstep's compute tasks.
    Fused(FusedPlan),
}

impl ExchangePlan {
    /// The plan for `step`'s (validated) copies.
    pub(crate) fn build(
        bytes_per_tile: u32,
        step: &Superstep,
        flat: impl Fn(TileRef) -> usize,
    ) -> Self {
        if step.exchange.is_empty() {
            ExchangePlan::Empty
        } else if let Some(d) = DirectPlan::build(bytes_per_tile, &copies(step, &flat)) {
            ExchangePlan::Direct(d)
        } else {
            ExchangePlan::Staged(staged::groups(step, &flat))
        }
    }

    /// Staging bytes the plan needs.
    pub(crate) fn staging_bytes(&self) -> usize {
        match self {
            ExchangePlan::Staged(groups) => groups.last().map_or(0, |g| g.staging.end),
            ExchangePlan::Fused(f) => f.staging_bytes,
            ExchangePlan::Empty | ExchangePlan::Direct(_) => 0,
        }
    }
}
