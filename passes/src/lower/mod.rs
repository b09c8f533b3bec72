//! Lowering of a placed graph to tiles, first slice: tile mappings and per-tile static
//! memory planning.
//!
//! - [`mapping`]: linear tile mappings with a grain size, as poputil's
//!   `mapTensorLinearly`.
//! - [`plan_memory`]: every value's pieces get addresses on their tiles; always-live values
//!   (inputs, parameters, constants, outputs) get fixed offsets and the others reuse each
//!   other's bytes by liveness, so the plan states each tile's peak memory.
//! - [`LowerError::OutOfMemory`]: a tile over its memory is reported as Poplar does
//!   (`Out of memory on tile 17 of chip 2: 701,344 bytes used but tiles only have 638,976
//!   bytes`) with the largest tensors on that tile; [`PlanOptions::allow_oom`] returns the
//!   plan with the failure recorded instead.
//!
//! - [`program`]: the whole lowering to tile programs (vertices, exchange, supersteps) with
//!   its own liveness-based allocation of values and scratch blocks.

mod alloc;
pub mod error;
pub mod mapping;
pub mod memory;
pub mod program;
#[cfg(test)]
mod tests;

pub use error::{thousands, LowerError, OutOfMemory, TileTensor};
pub use mapping::{map_linearly, map_linearly_with_offset, Interval, TileMapping};
pub use memory::{plan_memory, MemoryPlan, Piece, TileUsage, ValuePlan};

/// Options of [`plan_memory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Return the plan (with [`MemoryPlan::oom`] set) instead of failing when a tile is out
    /// of memory (the CLI's `--allow-oom`).
    pub allow_oom: bool,
    /// Every piece's bytes are rounded up to a multiple of this (bytes, at least 1).
    pub alignment: u64,
    /// Start each tensor's mapping on the tile after the previous tensor's last tile
    /// (poputil's `mapTensorLinearlyWithOffset`), so small tensors spread over the chip
    /// instead of piling onto tile 0.
    pub rotate: bool,
    /// How many of the largest tensors an out-of-memory report lists.
    pub report_largest: usize,
}

impl Default for PlanOptions {
    /// No `allow_oom`, 8-byte alignment (a 64-bit load), rotation on, 5 tensors reported.
    fn default() -> Self {
        PlanOptions {
            allow_oom: false,
            alignment: 8,
            rotate: true,
            report_largest: 5,
        }
    }
}
