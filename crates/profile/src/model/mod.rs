//! The profile data model, which is also the `profile.json` format: every field below is
//! written to `profile.json` under its Rust name (snake case) by `serde_json`.
//!
//! Units: cycles are the target's clock cycles as estimated by the lowering's cost model
//! (`tessera_passes::lower::program::vertex_cycles` per vertex, busiest tile per superstep);
//! times are seconds unless a field name says otherwise (`_us`: microseconds); bytes are
//! bytes. Shares are fractions in `[0, 1]`. Tiles are numbered within their chip; a *global*
//! tile index is `chip * tiles_per_chip + tile` (chip-major), as in `TilePlan::memory`.
//! Optional fields are `null` when absent (e.g. `measured` without an emulator trace).
//! The per-chip memory figures are in `memory`, the pipeline figures of pipelined training
//! plans in `pipeline`, the measured per-tile times in `tiles` (all re-exported here).

mod memory;
mod pipeline;
mod tiles;

pub use memory::*;
pub use pipeline::*;
pub use tiles::*;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the `profile.json` format written by this build; [`crate::Profile::load`]
/// refuses other versions. Version 2 added the pipeline figures, the `gradients`, `stash` and
/// `code_vertex_state` memory categories and the code-inclusive headroom; version 3 the
/// measured per-tile times (`measured_tiles`) and the code and vertex state of `oom`.
pub const FORMAT_VERSION: u32 = 3;

/// Who/what was profiled: given by the caller, copied into the profile unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// Model name (e.g. `lxmert-tiny`).
    pub model: String,
    /// Samples per execution of the `step` program (the batch size; for a pipelined training
    /// plan, the micro-batch size), for samples/s.
    pub batch: u64,
    /// Free-form settings worth recording (sequence length, precision, chips, ...), sorted.
    pub settings: BTreeMap<String, String>,
}

/// A whole profile of one lowered plan (the root object of `profile.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Format version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The caller's description of the run.
    pub meta: ProfileMeta,
    /// The machine the plan was lowered for.
    pub machine: MachineInfo,
    /// Whole-run totals.
    pub totals: Totals,
    /// Predicted throughput of one step (for a pipelined plan: the pipelined step).
    pub throughput: Throughput,
    /// Pipeline schedule figures of a pipelined training plan (`TilePlan::pipeline`); `null`
    /// for a plan run as one program (its chips run their stages one after another).
    pub pipeline: Option<PipelineInfo>,
    /// One entry per superstep of the `step` program, in order.
    pub supersteps: Vec<SuperstepProfile>,
    /// Supersteps ("compute sets") with the most compute cycles (busiest tile), most first
    /// (at most [`crate::TOP_N`]; ties by index).
    pub top_compute_sets: Vec<TopStep>,
    /// Vertex kinds (`matmul`, `softmax`, ...) by cycles summed over every tile, most first
    /// (all kinds that ran).
    pub top_vertex_kinds: Vec<Group>,
    /// Superstep labels (the ops each superstep lowers) by vertex cycles summed over every
    /// tile and over every superstep with that label, most first (at most [`crate::TOP_N`]).
    pub top_labels: Vec<Group>,
    /// One entry per chip, in chip order.
    pub chips: Vec<ChipProfile>,
    /// Tiles with the most compute cycles summed over the run, most first (at most
    /// [`crate::TOP_N`]; ties by global tile index).
    pub busiest_tiles: Vec<TileCycles>,
    /// Per-tile × per-superstep compute cycles, downsampled.
    pub heatmap: Heatmap,
    /// Measured per-tile times (a trace recorded with `TraceMode::Tiles`), `null` without.
    pub measured_tiles: Option<MeasuredTiles>,
    /// The first tile over capacity, when the plan was lowered with `allow_oom`.
    pub oom: Option<OomInfo>,
}

/// The machine of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Target name (e.g. `mk2`).
    pub target: String,
    /// Chips (pipeline stages run one after another).
    pub chips: u32,
    /// Tiles per chip.
    pub tiles_per_chip: u32,
    /// Memory per tile in bytes.
    pub bytes_per_tile: u64,
    /// Clock in Hz, for cycles → time.
    pub clock_hz: f64,
}

/// Whole-run totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Supersteps of the `step` program.
    pub supersteps: u64,
    /// Vertices run (over all tiles and supersteps).
    pub vertices: u64,
    /// Vertices run by kind name, sorted by name.
    pub vertices_by_kind: BTreeMap<String, u64>,
    /// Floating-point operations of all vertices (2 per multiply-add).
    pub flops: u64,
    /// `compute_cycles + exchange_cycles + sync_cycles` (= `TilePlan::total_cycles()`).
    pub total_cycles: u64,
    /// Compute-phase cycles summed over supersteps (each the busiest tile's).
    pub compute_cycles: u64,
    /// Exchange-phase cycles summed over supersteps.
    pub exchange_cycles: u64,
    /// Synchronisation cycles summed over supersteps.
    pub sync_cycles: u64,
    /// `compute_cycles / total_cycles` (0 when there are no cycles).
    pub compute_share: f64,
    /// `exchange_cycles / total_cycles`.
    pub exchange_share: f64,
    /// `sync_cycles / total_cycles`.
    pub sync_share: f64,
    /// `total_cycles / clock_hz`: estimated time of one step on the target (for a pipelined
    /// plan: of one micro-batch through every segment, one after another, as `step` runs when
    /// executed as one program; the pipelined step is [`PipelineInfo::step_seconds`]).
    pub estimated_seconds: f64,
    /// Bytes moved by exchange (including between chips).
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Bytes streamed host → tile (inputs) in one step.
    pub host_to_tile_bytes: u64,
    /// Bytes streamed tile → host (outputs) in one step.
    pub tile_to_host_bytes: u64,
    /// Emulator wall time, when the profile was built with a trace (for a pipelined profile
    /// built with measured segment runs: summed over every run of the step; the accumulator
    /// reset and gradient read-out are not traced).
    pub measured: Option<Measured>,
}

/// Wall times measured on the host by the emulator (`tessera_runtime::Trace`), in seconds.
/// These vary from run to run; they say nothing about the target's speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Host → tile stream copies.
    pub host_to_tile_seconds: f64,
    /// Compute phases.
    pub compute_seconds: f64,
    /// Exchange phases.
    pub exchange_seconds: f64,
    /// Tile → host stream copies.
    pub tile_to_host_seconds: f64,
    /// Sum of the four.
    pub total_seconds: f64,
}

/// Predicted throughput of one step: one execution of `step`, or for a pipelined plan one
/// pipelined training step ([`PipelineInfo`]; the optimizer, which runs on the host, is not
/// included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Samples per step (`meta.batch`; pipelined: [`PipelineInfo::samples_per_step`]).
    pub batch: u64,
    /// Estimated seconds per step (`totals.estimated_seconds`; pipelined:
    /// [`PipelineInfo::step_seconds`]).
    pub step_seconds: f64,
    /// `batch / step_seconds`; `null` when the step has no cycles.
    pub samples_per_second: Option<f64>,
}

/// One superstep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuperstepProfile {
    /// Index in the `step` program.
    pub index: u64,
    /// What it does (the ops it lowers).
    pub label: String,
    /// Chips with work in it (compute, exchange source or destination, host streams),
    /// ascending; empty for a superstep that only synchronises.
    pub chips: Vec<u32>,
    /// Cycle at which it starts on the cost model's timeline (sum of earlier supersteps).
    pub start_cycle: u64,
    /// Compute-phase cycles (busiest tile).
    pub compute_cycles: u64,
    /// Exchange-phase cycles.
    pub exchange_cycles: u64,
    /// Synchronisation cycles.
    pub sync_cycles: u64,
    /// Vertices run.
    pub vertices: u64,
    /// Compute balance over tiles.
    pub balance: Balance,
    /// Bytes moved by exchange.
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Most bytes any one tile receives by exchange.
    pub max_tile_received_bytes: u64,
    /// Bytes streamed host → tile.
    pub host_to_tile_bytes: u64,
    /// Bytes streamed tile → host.
    pub tile_to_host_bytes: u64,
    /// Emulator wall times, when built with a trace (pipelined profile with measured runs:
    /// the mean over the runs that include this superstep; `null` for the untraced
    /// accumulator reset and gradient read-out).
    pub measured: Option<MeasuredStep>,
}

/// How evenly a superstep's compute is spread over tiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    /// Tiles that run at least one vertex.
    pub computing_tiles: u64,
    /// Compute cycles of the busiest tile.
    pub max_cycles: u64,
    /// Mean compute cycles over the tiles that compute (0 when none does).
    pub mean_cycles_computing: f64,
    /// Mean compute cycles over all tiles of the chips where tiles compute (idle ones count 0).
    pub mean_cycles_all: f64,
    /// `mean_cycles_computing / max_cycles`: 1 is perfectly balanced (1 when nothing runs).
    pub efficiency_computing: f64,
    /// `mean_cycles_all / max_cycles`: the fraction of those chips' compute capacity used.
    pub efficiency_all: f64,
}

/// Emulator wall times of one superstep, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasuredStep {
    /// Host → tile stream copies.
    pub host_to_tile_us: f64,
    /// Compute phase.
    pub compute_us: f64,
    /// Exchange phase.
    pub exchange_us: f64,
    /// Tile → host stream copies.
    pub tile_to_host_us: f64,
}

/// A superstep in a top list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopStep {
    /// Superstep index.
    pub index: u64,
    /// Its label.
    pub label: String,
    /// Its compute cycles (busiest tile).
    pub compute_cycles: u64,
    /// `compute_cycles / totals.compute_cycles`.
    pub share_of_compute: f64,
}

/// Vertices grouped by a name (kind or superstep label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The kind or label.
    pub name: String,
    /// Vertices in the group.
    pub vertices: u64,
    /// Their cycles summed over every tile (total work, not time: tiles run in parallel).
    pub tile_cycles: u64,
    /// `tile_cycles` over the same sum for all vertices.
    pub share: f64,
}

/// A tile's work over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TileCycles {
    /// Chip.
    pub chip: u32,
    /// Tile within the chip.
    pub tile: u32,
    /// Compute cycles summed over supersteps.
    pub compute_cycles: u64,
    /// Exchange cycles receiving (bytes received / exchange bytes per cycle per tile).
    pub receive_cycles: u64,
    /// Vertices run.
    pub vertices: u64,
    /// `compute_cycles / totals.compute_cycles`: how much of the compute critical path this
    /// tile's work would fill.
    pub share_of_compute: f64,
}

/// Per-tile × per-superstep compute cycles, downsampled with max aggregation: cell
/// `cells[r][c]` is the largest compute cycles of any tile in tile bucket `r` in any
/// superstep of superstep bucket `c`. Bucket `r` holds global tiles
/// `[r * tiles_per_bucket, min((r + 1) * tiles_per_bucket, tiles))`, and likewise for
/// supersteps; at most [`crate::MAX_TILE_BUCKETS`] × [`crate::MAX_STEP_BUCKETS`] cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    /// Global tiles (all chips).
    pub tiles: u64,
    /// Supersteps.
    pub supersteps: u64,
    /// Global tiles per row bucket (≥ 1).
    pub tiles_per_bucket: u64,
    /// Supersteps per column bucket (≥ 1).
    pub steps_per_bucket: u64,
    /// Largest cell.
    pub max_cycles: u64,
    /// Rows (tile buckets) of columns (superstep buckets).
    pub cells: Vec<Vec<u64>>,
}

/// The first tile over capacity (plans lowered with `allow_oom`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomInfo {
    /// Chip.
    pub chip: u32,
    /// Tile within the chip.
    pub tile: u32,
    /// Bytes needed: the tile's peak of tensors and buffers plus its code and vertex state.
    pub used_bytes: u64,
    /// Of which code and vertex state (always live).
    pub code_vertex_state_bytes: u64,
    /// Capacity.
    pub capacity_bytes: u64,
}
