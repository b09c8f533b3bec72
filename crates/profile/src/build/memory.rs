//! Per-chip memory figures from the plan's per-tile memory (`TilePlan::memory`, chip-major),
//! live bytes per superstep and the code and vertex state estimate
//! (`tessera_passes::lower::program::code_state`, as the lowering's memory check counts it):
//! headroom (with the estimate added to each tile's peak), fullest tiles, always-live versus
//! the rest, bytes by category at each tile's peak, and per-tile memory downsampled for the
//! memory SVG.

use super::heatmap::per_bucket;
use super::scan::TileTotals;
use crate::model::{Categories, ChipProfile, MemoryBucket, TileMemoryInfo};
use crate::TOP_N;
use tessera_passes::lower::program::{CodeState, TileMemory, TilePlan};

/// Most tile buckets per chip in [`ChipProfile::memory_buckets`].
pub const MAX_MEMORY_BUCKETS: u64 = 512;

/// One tile's memory with its code and vertex state estimate.
#[derive(Clone, Copy)]
struct Tile {
    mem: TileMemory,
    code: u64,
}

impl Tile {
    fn total(&self) -> u64 {
        self.mem.peak + self.code
    }
}

fn signed(x: u64, y: u64) -> i64 {
    (i128::from(x) - i128::from(y)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// One [`ChipProfile`] per chip of the plan; `code` is the estimate per global tile.
pub(crate) fn chips(
    plan: &TilePlan,
    capacity: u64,
    tiles: &[TileTotals],
    code: &[CodeState],
) -> Vec<ChipProfile> {
    let per_chip = plan.step.tiles_per_chip as usize;
    (0..plan.step.chips)
        .map(|chip| {
            let start = chip as usize * per_chip;
            let mem = plan
                .memory
                .get(start..start + per_chip)
                .or_else(|| plan.memory.get(start..))
                .unwrap_or(&[]);
            let mem: Vec<Tile> = mem
                .iter()
                .enumerate()
                .map(|(i, &m)| Tile {
                    mem: m,
                    code: code.get(start + i).map_or(0, |c| c.total()),
                })
                .collect();
            let cycles = tiles
                .get(start..start + per_chip)
                .unwrap_or(&[])
                .iter()
                .map(|t| t.compute_cycles)
                .sum();
            let max_live = plan
                .live_bytes
                .iter()
                .filter_map(|l| l.get(chip as usize))
                .copied()
                .max()
                .unwrap_or(0);
            chip_profile(chip, &mem, capacity, cycles, max_live)
        })
        .collect()
}

fn chip_profile(
    chip: u32,
    tiles: &[Tile],
    capacity: u64,
    tile_cycles: u64,
    max_live_bytes: u64,
) -> ChipProfile {
    let max_peak = tiles.iter().map(|t| t.mem.peak).max().unwrap_or(0);
    let max_total = tiles.iter().map(Tile::total).max().unwrap_or(0);
    let mut order: Vec<(usize, &Tile)> = tiles.iter().enumerate().collect();
    order.sort_by_key(|&(i, t)| (std::cmp::Reverse(t.total()), i));
    let fullest_tiles = order
        .iter()
        .take(TOP_N)
        .map(|&(i, t)| TileMemoryInfo {
            tile: i as u32,
            peak_bytes: t.mem.peak,
            always_live_bytes: t.mem.always_live,
            code_vertex_state_bytes: t.code,
            vertices: t.mem.vertices,
        })
        .collect();
    let mut at_peak = Categories::default();
    for t in tiles {
        let c = t.mem.at_peak;
        at_peak.weights += c.weights;
        at_peak.inputs += c.inputs;
        at_peak.constants += c.constants;
        at_peak.activations += c.activations;
        at_peak.exchange_buffers += c.exchange_buffers;
        at_peak.temporaries += c.temporaries;
        at_peak.gradients += c.gradients;
        at_peak.stash += c.stash;
        at_peak.optimizer_state += c.optimizer_state;
        at_peak.code_vertex_state += t.code;
    }
    let total_peak: u64 = tiles.iter().map(|t| t.mem.peak).sum();
    ChipProfile {
        chip,
        capacity_bytes: capacity,
        max_peak_bytes: max_peak,
        max_code_vertex_state_bytes: tiles.iter().map(|t| t.code).max().unwrap_or(0),
        max_total_bytes: max_total,
        headroom_bytes: signed(capacity, max_total),
        data_headroom_bytes: signed(capacity, max_peak),
        tiles_over_capacity: tiles.iter().filter(|t| t.total() > capacity).count() as u64,
        mean_peak_bytes: if tiles.is_empty() {
            0.0
        } else {
            total_peak as f64 / tiles.len() as f64
        },
        used_tiles: tiles
            .iter()
            .filter(|t| t.mem.peak > 0 || t.mem.vertices > 0)
            .count() as u64,
        fullest_tiles,
        always_live_bytes: tiles.iter().map(|t| t.mem.always_live).sum(),
        not_always_live_bytes: tiles
            .iter()
            .map(|t| t.mem.peak.saturating_sub(t.mem.always_live))
            .sum(),
        at_peak,
        max_live_bytes,
        tile_cycles,
        memory_buckets: buckets(tiles),
    }
}

fn buckets(tiles: &[Tile]) -> Vec<MemoryBucket> {
    let per = per_bucket(tiles.len() as u64, MAX_MEMORY_BUCKETS) as usize;
    tiles
        .chunks(per)
        .enumerate()
        .map(|(i, c)| MemoryBucket {
            first_tile: (i * per) as u32,
            tiles: c.len() as u32,
            max_peak_bytes: c.iter().map(|t| t.mem.peak).max().unwrap_or(0),
            max_always_live_bytes: c.iter().map(|t| t.mem.always_live).max().unwrap_or(0),
            max_total_bytes: c.iter().map(Tile::total).max().unwrap_or(0),
        })
        .collect()
}
