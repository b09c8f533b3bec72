//! Measured per-tile times (`tessera_runtime::TraceMode::Tiles` records) folded per superstep
//! of `step` ([`Folder`]: means over the traced runs that include each superstep) and set
//! against the scan's cost-model figures ([`measured_tiles`]).

use super::heatmap::HeatmapBuilder;
use super::scan::Scan;
use crate::model::{MeasuredBalance, MeasuredHeatmap, MeasuredTile, MeasuredTiles, TileCycles};
use crate::TOP_N;
use std::collections::HashMap;
use tessera_runtime::TileTime;

/// One tile's mean measured times in one superstep, ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TileMean {
    /// Global tile.
    pub tile: u64,
    /// Compute time.
    pub compute_ns: f64,
    /// Time receiving exchange.
    pub exchange_ns: f64,
}

/// Accumulates per-tile records per superstep of `step`.
pub(crate) struct Folder {
    records: Vec<Vec<TileTime>>,
    counts: Vec<u64>,
    any: bool,
}

impl Folder {
    /// A folder for `steps` supersteps.
    pub(crate) fn new(steps: usize) -> Self {
        Folder {
            records: vec![Vec::new(); steps],
            counts: vec![0; steps],
            any: false,
        }
    }

    /// Adds one traced run of superstep `step` (its per-tile records; ignored out of range).
    pub(crate) fn add(&mut self, step: usize, tiles: &[TileTime]) {
        if let (Some(r), Some(n)) = (self.records.get_mut(step), self.counts.get_mut(step)) {
            r.extend_from_slice(tiles);
            *n += 1;
            self.any |= !tiles.is_empty();
        }
    }

    /// Per superstep, each tile's mean over the runs of that superstep (a tile absent from a
    /// run counts 0 there), sorted by tile; `None` when no run had per-tile records.
    pub(crate) fn finish(self) -> Option<Vec<Vec<TileMean>>> {
        if !self.any {
            return None;
        }
        let steps = self
            .records
            .into_iter()
            .zip(self.counts)
            .map(|(mut recs, n)| {
                recs.sort_by_key(|r| r.tile);
                let n = n.max(1) as f64;
                let mut out: Vec<TileMean> = Vec::new();
                for r in recs {
                    let (c, x) = (f64::from(r.compute_ns), f64::from(r.exchange_ns));
                    match out.last_mut() {
                        Some(m) if m.tile == u64::from(r.tile) => {
                            m.compute_ns += c;
                            m.exchange_ns += x;
                        }
                        _ => out.push(TileMean {
                            tile: u64::from(r.tile),
                            compute_ns: c,
                            exchange_ns: x,
                        }),
                    }
                }
                for m in &mut out {
                    m.compute_ns /= n;
                    m.exchange_ns /= n;
                }
                out
            })
            .collect();
        Some(steps)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        1.0
    }
}

/// The measured tile figures from `steps` (per superstep, from [`Folder::finish`]) over
/// `runs` traced runs, against `scan` and the cost model's `busiest` tiles; `per_chip` tiles
/// per chip.
pub(crate) fn measured_tiles(
    steps: &[Vec<TileMean>],
    runs: u64,
    scan: &Scan,
    busiest: &[TileCycles],
    per_chip: u64,
) -> MeasuredTiles {
    let mut heat = HeatmapBuilder::new(scan.tiles.len() as u64, steps.len() as u64);
    let mut per_tile: HashMap<u64, (f64, f64)> = HashMap::new();
    let mut supersteps = Vec::with_capacity(steps.len());
    let (mut sum_max, mut sum_mean, mut model_max, mut model_mean) = (0.0, 0.0, 0.0, 0.0);
    for (i, tiles) in steps.iter().enumerate() {
        let mut computing = 0u64;
        let (mut max, mut sum, mut max_x) = (0.0f64, 0.0f64, 0.0f64);
        let mut slowest: Option<(u64, f64)> = None;
        for t in tiles {
            let e = per_tile.entry(t.tile).or_default();
            e.0 += t.compute_ns;
            e.1 += t.exchange_ns;
            max_x = max_x.max(t.exchange_ns);
            heat.add(t.tile, i as u64, t.compute_ns.round() as u64);
            if t.compute_ns > 0.0 {
                computing += 1;
                sum += t.compute_ns;
                if slowest.is_none_or(|(_, s)| t.compute_ns > s) {
                    slowest = Some((t.tile, t.compute_ns));
                }
                max = max.max(t.compute_ns);
            }
        }
        let mean = if computing > 0 {
            sum / computing as f64
        } else {
            0.0
        };
        sum_max += max;
        sum_mean += mean;
        let model = scan.steps.get(i);
        let (m_max, m_mean) = model.map_or((0.0, 0.0), |s| {
            (s.balance.max_cycles as f64, s.balance.mean_cycles_computing)
        });
        model_max += m_max;
        model_mean += m_mean;
        supersteps.push(MeasuredBalance {
            index: i as u64,
            computing_tiles: computing,
            max_compute_us: max / 1e3,
            mean_compute_us: mean / 1e3,
            max_over_mean: ratio(max, mean),
            modelled_max_over_mean: ratio(m_max, m_mean),
            slowest_tile: slowest.map(|s| s.0),
            modelled_busiest_tile: model.and_then(|s| s.busiest_tile),
            max_exchange_us: max_x / 1e3,
        });
    }
    // Ranks of the cost model's compute cycles (1 = busiest), over tiles that compute.
    let mut by_cycles: Vec<(usize, u64)> = scan
        .tiles
        .iter()
        .enumerate()
        .filter(|(_, t)| t.compute_cycles > 0)
        .map(|(g, t)| (g, t.compute_cycles))
        .collect();
    by_cycles.sort_by_key(|&(g, c)| (std::cmp::Reverse(c), g));
    let rank: HashMap<usize, u64> = by_cycles
        .iter()
        .enumerate()
        .map(|(r, &(g, _))| (g, r as u64 + 1))
        .collect();
    let all: f64 = per_tile.values().map(|(c, x)| c + x).sum();
    let mut order: Vec<(u64, f64, f64)> =
        per_tile.into_iter().map(|(g, (c, x))| (g, c, x)).collect();
    order.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
    let per_chip = per_chip.max(1);
    let busiest_tiles: Vec<MeasuredTile> = order
        .into_iter()
        .take(TOP_N)
        .map(|(g, c, x)| MeasuredTile {
            chip: (g / per_chip) as u32,
            tile: (g % per_chip) as u32,
            compute_us: c / 1e3,
            exchange_us: x / 1e3,
            share_of_measured: ratio(c + x, all).min(1.0),
            compute_cycles: scan.tiles.get(g as usize).map_or(0, |t| t.compute_cycles),
            modelled_rank: rank.get(&(g as usize)).copied(),
        })
        .collect();
    let common = busiest_tiles
        .iter()
        .filter(|m| busiest.iter().any(|b| (b.chip, b.tile) == (m.chip, m.tile)))
        .count() as u64;
    let h = heat.finish();
    MeasuredTiles {
        runs,
        supersteps,
        efficiency: ratio(sum_mean, sum_max).min(1.0),
        modelled_efficiency: ratio(model_mean, model_max).min(1.0),
        busiest_tiles,
        common_with_modelled: common,
        heatmap: MeasuredHeatmap {
            tiles: h.tiles,
            supersteps: h.supersteps,
            tiles_per_bucket: h.tiles_per_bucket,
            steps_per_bucket: h.steps_per_bucket,
            max_ns: h.max_cycles,
            cells: h.cells,
        },
    }
}
