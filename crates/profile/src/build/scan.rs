//! One pass over the `step` program's supersteps: per-tile compute cycles (summed per
//! superstep with the lowering's own `vertex_cycles`), exchange bytes received per tile,
//! host stream bytes, and the chips each superstep involves. Everything per tile × superstep
//! is folded on the fly (into the downsampled heatmap and per-tile totals), so a large
//! machine never needs a full tiles × supersteps matrix.

use super::heatmap::HeatmapBuilder;
use crate::error::{ProfileError, Result};
use crate::model::Balance;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tessera_passes::lower::program::vertex_cycles;
use tessera_runtime::program::{Superstep, TileProgram, TileRef};
use tessera_target::Target;

/// Vertex count, tile cycles and flops of one group of vertices.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GroupSums {
    pub vertices: u64,
    pub tile_cycles: u64,
    pub flops: u64,
}

/// What the scan finds in one superstep.
#[derive(Debug, Clone)]
pub(crate) struct StepScan {
    pub chips: Vec<u32>,
    pub balance: Balance,
    pub max_tile_received_bytes: u64,
    pub host_to_tile_bytes: u64,
    pub tile_to_host_bytes: u64,
    pub tile_cycles: u64,
    /// Global tile with the most compute cycles (the first of equals), if any computes.
    pub busiest_tile: Option<u64>,
}

/// Per-tile totals over the run (indexed by global tile).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TileTotals {
    pub compute_cycles: u64,
    pub receive_cycles: u64,
    pub vertices: u64,
}

/// Everything the scan finds.
pub(crate) struct Scan {
    pub steps: Vec<StepScan>,
    pub tiles: Vec<TileTotals>,
    pub kinds: BTreeMap<String, GroupSums>,
    pub heatmap: HeatmapBuilder,
}

/// Scans every superstep of `program`.
pub(crate) fn scan(program: &TileProgram, target: &Target) -> Result<Scan> {
    let per_chip = u64::from(program.tiles_per_chip);
    let total_tiles = program.total_tiles();
    let mut out = Scan {
        steps: Vec::with_capacity(program.supersteps.len()),
        tiles: vec![TileTotals::default(); usize::try_from(total_tiles).unwrap_or(0)],
        kinds: BTreeMap::new(),
        heatmap: HeatmapBuilder::new(total_tiles, program.supersteps.len() as u64),
    };
    let rate = target.exchange_bytes_per_cycle_per_tile.max(1e-9);
    for (si, step) in program.supersteps.iter().enumerate() {
        let global = |t: TileRef| -> Result<usize> {
            if t.chip >= program.chips || t.tile >= program.tiles_per_chip {
                return Err(ProfileError::TileOutOfRange {
                    superstep: si,
                    chip: t.chip,
                    tile: t.tile,
                    chips: program.chips,
                    tiles: program.tiles_per_chip,
                });
            }
            Ok((u64::from(t.chip) * per_chip + u64::from(t.tile)) as usize)
        };
        let mut chips = BTreeSet::new();
        let mut compute_chips = BTreeSet::new();
        let (mut max, mut sum, mut computing) = (0u64, 0u64, 0u64);
        let mut busiest: Option<(u64, u64)> = None;
        for tc in &step.compute {
            let g = global(tc.tile)?;
            let mut cycles = 0u64;
            for v in &tc.vertices {
                let c = vertex_cycles(v, target);
                cycles += c;
                let k = out.kinds.entry(v.kind().to_string()).or_default();
                k.vertices += 1;
                k.tile_cycles += c;
                k.flops += v.flops();
            }
            if let Some(t) = out.tiles.get_mut(g) {
                t.compute_cycles += cycles;
                t.vertices += tc.vertices.len() as u64;
            }
            out.heatmap.add(g as u64, si as u64, cycles);
            if !tc.vertices.is_empty() {
                let g = g as u64;
                if busiest.is_none_or(|(bg, bc)| cycles > bc || (cycles == bc && g < bg)) {
                    busiest = Some((g, cycles));
                }
                computing += 1;
                compute_chips.insert(tc.tile.chip);
                chips.insert(tc.tile.chip);
            }
            max = max.max(cycles);
            sum += cycles;
        }
        let max_received = receive(step, &mut chips, &mut out.tiles, rate, &global)?;
        let (h2t, t2h) = streams(step, &mut chips);
        let all_tiles = compute_chips.len() as u64 * per_chip;
        let mean = |n: u64| if n == 0 { 0.0 } else { sum as f64 / n as f64 };
        let eff = |m: f64| if max == 0 { 1.0 } else { m / max as f64 };
        let balance = Balance {
            computing_tiles: computing,
            max_cycles: max,
            mean_cycles_computing: mean(computing),
            mean_cycles_all: mean(all_tiles),
            efficiency_computing: eff(mean(computing)),
            efficiency_all: eff(mean(all_tiles)),
        };
        out.steps.push(StepScan {
            chips: chips.into_iter().collect(),
            balance,
            max_tile_received_bytes: max_received,
            host_to_tile_bytes: h2t,
            tile_to_host_bytes: t2h,
            tile_cycles: sum,
            busiest_tile: busiest.map(|b| b.0),
        });
    }
    Ok(out)
}

/// Adds each tile's receive cycles; returns the most bytes one tile receives.
fn receive(
    step: &Superstep,
    chips: &mut BTreeSet<u32>,
    tiles: &mut [TileTotals],
    rate: f64,
    global: &dyn Fn(TileRef) -> Result<usize>,
) -> Result<u64> {
    let mut received: HashMap<usize, u64> = HashMap::new();
    for e in &step.exchange {
        global(e.src.tile)?;
        let g = global(e.dst_tile)?;
        chips.insert(e.src.tile.chip);
        chips.insert(e.dst_tile.chip);
        *received.entry(g).or_default() += u64::from(e.src.region.len);
    }
    for (&g, &bytes) in &received {
        if let Some(t) = tiles.get_mut(g) {
            t.receive_cycles += (bytes as f64 / rate).ceil() as u64;
        }
    }
    Ok(received.values().copied().max().unwrap_or(0))
}

/// Host → tile and tile → host bytes of a superstep (and their chips).
fn streams(step: &Superstep, chips: &mut BTreeSet<u32>) -> (u64, u64) {
    let mut sum = |copies: &[tessera_runtime::program::StreamCopy]| {
        copies
            .iter()
            .map(|c| {
                chips.insert(c.tile.tile.chip);
                u64::from(c.tile.region.len)
            })
            .sum::<u64>()
    };
    let h2t = sum(&step.host_to_tile);
    let t2h = sum(&step.tile_to_host);
    (h2t, t2h)
}
