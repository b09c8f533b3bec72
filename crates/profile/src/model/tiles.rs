//! The measured per-tile part of the profile (`profile.json` → `measured_tiles`): the
//! emulator's wall time per tile and superstep (`tessera_runtime::TraceMode::Tiles`) set
//! against the cost model's cycles for the same tiles and supersteps. Emulator times are host
//! time, not target time: they show where the emulator spends its time, and whether the cost
//! model's busiest tiles are the ones that take longest.

use serde::{Deserialize, Serialize};

/// Measured per-tile times and their balance, next to the cost model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredTiles {
    /// Traces folded in: 1 for a plan run as one program (`tessera profile` passes the
    /// element-wise fastest of several runs, `tessera_profile::fastest_of`); for a pipelined
    /// step, its segment runs (a superstep's figures are then means over the runs that include
    /// it).
    pub runs: u64,
    /// One entry per superstep of `step`, in order (as `supersteps`).
    pub supersteps: Vec<MeasuredBalance>,
    /// Over all supersteps: `Σ mean_compute_us / Σ max_compute_us` (1 when nothing runs), the
    /// measured counterpart of the cost model's figure below.
    pub efficiency: f64,
    /// Over the same supersteps: `Σ mean / Σ max` of the cost model's compute cycles over the
    /// tiles that compute.
    pub modelled_efficiency: f64,
    /// Tiles with the most measured time (compute plus receiving exchange) summed over the
    /// run, most first (at most [`crate::TOP_N`]; ties by global tile).
    pub busiest_tiles: Vec<MeasuredTile>,
    /// How many of `busiest_tiles` are among the cost model's `busiest_tiles`.
    pub common_with_modelled: u64,
    /// Measured compute time per tile and superstep, downsampled like the modelled heatmap.
    pub heatmap: MeasuredHeatmap,
}

/// One superstep's measured compute balance over tiles, with the cost model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredBalance {
    /// Superstep index.
    pub index: u64,
    /// Tiles with a measured compute time (those that ran vertices).
    pub computing_tiles: u64,
    /// Largest tile compute time, µs.
    pub max_compute_us: f64,
    /// Mean tile compute time over `computing_tiles`, µs (0 when none).
    pub mean_compute_us: f64,
    /// `max_compute_us / mean_compute_us`: 1 is balanced (1 when nothing runs).
    pub max_over_mean: f64,
    /// The cost model's `max / mean` compute cycles over the tiles that compute (1 when
    /// nothing runs).
    pub modelled_max_over_mean: f64,
    /// Global tile with the largest measured compute time (`null` when none computes).
    pub slowest_tile: Option<u64>,
    /// Global tile with the most compute cycles in the cost model (`null` when none).
    pub modelled_busiest_tile: Option<u64>,
    /// Largest tile time receiving exchange, µs (0 when no tile receives).
    pub max_exchange_us: f64,
}

/// One tile's measured time over the run, with the cost model's view of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredTile {
    /// Chip.
    pub chip: u32,
    /// Tile within the chip.
    pub tile: u32,
    /// Measured compute time summed over supersteps, µs.
    pub compute_us: f64,
    /// Measured time receiving exchange summed over supersteps, µs.
    pub exchange_us: f64,
    /// `(compute_us + exchange_us)` over the same sum for all tiles.
    pub share_of_measured: f64,
    /// The cost model's compute cycles of the tile summed over supersteps.
    pub compute_cycles: u64,
    /// The tile's rank by the cost model's compute cycles (1 = busiest; `null` when the tile
    /// has no modelled compute).
    pub modelled_rank: Option<u64>,
}

/// Measured compute time per tile and superstep, downsampled with max aggregation exactly as
/// [`crate::model::Heatmap`] (same buckets), in nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredHeatmap {
    /// Global tiles (all chips).
    pub tiles: u64,
    /// Supersteps.
    pub supersteps: u64,
    /// Global tiles per row bucket (≥ 1).
    pub tiles_per_bucket: u64,
    /// Supersteps per column bucket (≥ 1).
    pub steps_per_bucket: u64,
    /// Largest cell, ns.
    pub max_ns: u64,
    /// Rows (tile buckets) of columns (superstep buckets), ns.
    pub cells: Vec<Vec<u64>>,
}
