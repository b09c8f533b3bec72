//! Per-chip memory figures from the plan's per-tile memory (`TilePlan::memory`, chip-major)
//! and live bytes per superstep: headroom, fullest tiles, always-live versus the rest, bytes
//! by category at each tile's peak, and per-tile memory downsampled for the memory SVG.

use super::heatmap::per_bucket;
use super::scan::TileTotals;
use crate::model::{Categories, ChipProfile, MemoryBucket, TileMemoryInfo};
use crate::TOP_N;
use tessera_passes::lower::program::{TileMemory, TilePlan};

/// Most tile buckets per chip in [`ChipProfile::memory_buckets`].
pub const MAX_MEMORY_BUCKETS: u64 = 512;

/// One [`ChipProfile`] per chip of the plan.
pub(crate) fn chips(plan: &TilePlan, capacity: u64, tiles: &[TileTotals]) -> Vec<ChipProfile> {
    let per_chip = plan.step.tiles_per_chip as usize;
    (0..plan.step.chips)
        .map(|chip| {
            let start = chip as usize * per_chip;
            let mem = plan
                .memory
                .get(start..start + per_chip)
                .or_else(|| plan.memory.get(start..))
                .unwrap_or(&[]);
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
            chip_profile(chip, mem, capacity, cycles, max_live)
        })
        .collect()
}

fn chip_profile(
    chip: u32,
    mem: &[TileMemory],
    capacity: u64,
    tile_cycles: u64,
    max_live_bytes: u64,
) -> ChipProfile {
    let max_peak = mem.iter().map(|m| m.peak).max().unwrap_or(0);
    let mut order: Vec<(usize, &TileMemory)> = mem.iter().enumerate().collect();
    order.sort_by_key(|&(i, m)| (std::cmp::Reverse(m.peak), i));
    let fullest_tiles = order
        .iter()
        .take(TOP_N)
        .map(|&(i, m)| TileMemoryInfo {
            tile: i as u32,
            peak_bytes: m.peak,
            always_live_bytes: m.always_live,
            vertices: m.vertices,
        })
        .collect();
    let mut at_peak = Categories::default();
    for m in mem {
        let c = m.at_peak;
        at_peak.weights += c.weights;
        at_peak.inputs += c.inputs;
        at_peak.constants += c.constants;
        at_peak.activations += c.activations;
        at_peak.exchange_buffers += c.exchange_buffers;
        at_peak.temporaries += c.temporaries;
    }
    let total_peak: u64 = mem.iter().map(|m| m.peak).sum();
    ChipProfile {
        chip,
        capacity_bytes: capacity,
        max_peak_bytes: max_peak,
        headroom_bytes: (i128::from(capacity) - i128::from(max_peak))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        mean_peak_bytes: if mem.is_empty() {
            0.0
        } else {
            total_peak as f64 / mem.len() as f64
        },
        used_tiles: mem.iter().filter(|m| m.peak > 0 || m.vertices > 0).count() as u64,
        fullest_tiles,
        always_live_bytes: mem.iter().map(|m| m.always_live).sum(),
        not_always_live_bytes: mem
            .iter()
            .map(|m| m.peak.saturating_sub(m.always_live))
            .sum(),
        at_peak,
        max_live_bytes,
        tile_cycles,
        memory_buckets: buckets(mem),
    }
}

fn buckets(mem: &[TileMemory]) -> Vec<MemoryBucket> {
    let per = per_bucket(mem.len() as u64, MAX_MEMORY_BUCKETS) as usize;
    mem.chunks(per)
        .enumerate()
        .map(|(i, c)| MemoryBucket {
            first_tile: (i * per) as u32,
            tiles: c.len() as u32,
            max_peak_bytes: c.iter().map(|m| m.peak).max().unwrap_or(0),
            max_always_live_bytes: c.iter().map(|m| m.always_live).max().unwrap_or(0),
        })
        .collect()
}
