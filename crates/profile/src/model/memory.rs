//! The memory part of the profile (`profile.json` → `chips`): per chip, the allocator's
//! per-tile peaks with the code and vertex state estimate added for the headroom, bytes by
//! category at each tile's peak, the fullest tiles and per-tile memory for plotting.

use serde::{Deserialize, Serialize};

/// One chip's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChipProfile {
    /// Chip index.
    pub chip: u32,
    /// Bytes per tile (capacity).
    pub capacity_bytes: u64,
    /// Largest peak over the chip's tiles, as the lowering's allocator counts it (data only:
    /// no code or vertex state).
    pub max_peak_bytes: u64,
    /// Largest estimated code and vertex state of any of the chip's tiles (see
    /// [`crate::CODE_BYTES_PER_CODELET`]).
    pub max_code_vertex_state_bytes: u64,
    /// Largest `peak + code and vertex state estimate` over the chip's tiles.
    pub max_total_bytes: u64,
    /// `capacity_bytes - max_total_bytes`: the headroom with the code and vertex state
    /// estimate added to each tile's peak; negative when a tile is over capacity.
    pub headroom_bytes: i64,
    /// `capacity_bytes - max_peak_bytes`: the headroom of the data alone (the lowering's view).
    pub data_headroom_bytes: i64,
    /// Tiles whose peak plus code and vertex state estimate exceeds the capacity.
    pub tiles_over_capacity: u64,
    /// Mean peak over the chip's tiles.
    pub mean_peak_bytes: f64,
    /// Tiles holding any bytes or running any vertex.
    pub used_tiles: u64,
    /// Tiles with the largest peak plus code and vertex state, largest first (at most
    /// [`crate::TOP_N`]; ties by tile).
    pub fullest_tiles: Vec<TileMemoryInfo>,
    /// Always-live bytes (weights, inputs, constants, gradient accumulators, stash) summed
    /// over tiles, as the allocator counts them (without code and vertex state).
    pub always_live_bytes: u64,
    /// `peak - always_live` summed over tiles (each tile's high-water mark of the rest).
    pub not_always_live_bytes: u64,
    /// Live bytes by category at each tile's peak, summed over tiles (the code and vertex state
    /// estimate is always resident, so it is at every peak).
    pub at_peak: Categories,
    /// Largest live bytes of the chip (summed over tiles) at the end of any superstep.
    pub max_live_bytes: u64,
    /// Compute cycles summed over the chip's tiles and all supersteps.
    pub tile_cycles: u64,
    /// Per-tile memory downsampled for plotting (max over each bucket of tiles).
    pub memory_buckets: Vec<MemoryBucket>,
}

/// Bytes by what they hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Categories {
    /// Parameters (always live).
    pub weights: u64,
    /// Graph inputs (always live).
    pub inputs: u64,
    /// Constants (always live).
    pub constants: u64,
    /// Op results.
    pub activations: u64,
    /// Exchange scratch blocks (and K-split partial sums).
    pub exchange_buffers: u64,
    /// Vertex temporaries.
    pub temporaries: u64,
    /// Gradient accumulators of a pipelined training step (always live).
    pub gradients: u64,
    /// Pipeline boundary buffers and stash slots (always live).
    pub stash: u64,
    /// Optimizer state streamed onto the tiles while the optimizer step runs on them.
    #[serde(default)]
    pub optimizer_state: u64,
    /// Code and vertex state: an estimate made by the profiler from the vertices placed on
    /// the tile (not allocated by the lowering; see [`crate::CODE_BYTES_PER_CODELET`]).
    pub code_vertex_state: u64,
}

/// One tile's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileMemoryInfo {
    /// Tile within the chip.
    pub tile: u32,
    /// Peak bytes (the allocator's: data only).
    pub peak_bytes: u64,
    /// Always-live bytes.
    pub always_live_bytes: u64,
    /// Estimated code and vertex state bytes.
    pub code_vertex_state_bytes: u64,
    /// Vertices placed on the tile.
    pub vertices: u64,
}

/// The memory of a contiguous range of tiles `[first_tile, first_tile + tiles)` of a chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryBucket {
    /// First tile of the range.
    pub first_tile: u32,
    /// Tiles in the range.
    pub tiles: u32,
    /// Largest peak in the range.
    pub max_peak_bytes: u64,
    /// Largest always-live bytes in the range.
    pub max_always_live_bytes: u64,
    /// Largest peak plus code and vertex state estimate in the range.
    pub max_total_bytes: u64,
}
