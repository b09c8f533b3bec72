//! What `tessera inspect plan.tsp` and the tile part of `tessera compile`'s summary show
//! about a plan: the model and target, and for plans with a tile program the supersteps,
//! vertices by kind, exchange, estimated cycles and time, per-chip tile memory, and the
//! costliest supersteps. [`PlanInfo`] is plain data (its JSON is `inspect --json`), so the
//! figures can be tested without a process; [`PlanInfo::to_text`] and [`tiles_text`] print it.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use tessera_passes::lower::program::TilePlan;
use tessera_passes::lower::thousands;
use tessera_plan::Plan;

/// How many supersteps [`TileInfo::top_supersteps`] lists.
pub const TOP_SUPERSTEPS: usize = 10;

/// A summary of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanInfo {
    /// The MODEL argument it was compiled from.
    pub model: String,
    /// The seed of the default weights.
    pub seed: u64,
    /// A training plan.
    pub train: bool,
    /// `fp32` or `fp16`.
    pub precision: String,
    /// The target's name.
    pub target: String,
    /// Chips (IPUs per replica).
    pub chips: u32,
    /// Tiles per chip.
    pub tiles_per_chip: u32,
    /// The tile program's figures; `None` for plans without one.
    pub tiles: Option<TileInfo>,
}

/// The figures of a tile program.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileInfo {
    /// Supersteps of the step program.
    pub supersteps: usize,
    /// Vertices of the step program.
    pub vertices: u64,
    /// Vertices by kind (`matmul`, `binary`, ...).
    pub vertices_by_kind: BTreeMap<String, u64>,
    /// Bytes exchanged per step (between tiles, including between chips).
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Estimated cycles of one step.
    pub cycles: u64,
    /// Estimated seconds of one step at the target's clock.
    pub seconds: f64,
    /// Tile memory.
    pub memory: MemoryInfo,
    /// The out-of-memory report of a plan written with `--allow-oom`.
    pub oom: Option<String>,
    /// The costliest supersteps, most cycles first (at most [`TOP_SUPERSTEPS`]).
    pub top_supersteps: Vec<SuperstepInfo>,
}

/// Tile memory of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryInfo {
    /// Bytes per tile.
    pub capacity: u64,
    /// Always-live bytes summed over all tiles (weights, inputs, constants).
    pub always_live_bytes: u64,
    /// Tiles whose peak exceeds the capacity.
    pub tiles_over_capacity: usize,
    /// The tile with the largest peak.
    pub fullest_tile: Option<TileAt>,
    /// Per chip.
    pub chips: Vec<ChipMemory>,
}

/// A tile's place and peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TileAt {
    /// The chip.
    pub chip: u32,
    /// The tile within it.
    pub tile: u32,
    /// Its peak bytes.
    pub peak: u64,
}

/// Tile memory of one chip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChipMemory {
    /// The chip.
    pub chip: u32,
    /// The largest tile peak, bytes.
    pub max_peak: u64,
    /// The mean tile peak, bytes.
    pub mean_peak: f64,
    /// The fullest tile.
    pub fullest_tile: u32,
}

/// One superstep's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuperstepInfo {
    /// Its index in the step program.
    pub index: usize,
    /// What it does.
    pub label: String,
    /// Compute + exchange + sync cycles.
    pub cycles: u64,
    /// Bytes it exchanges.
    pub exchange_bytes: u64,
}

/// The figures of a tile plan.
pub fn tile_info(t: &TilePlan) -> TileInfo {
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for step in &t.step.supersteps {
        for c in &step.compute {
            for v in &c.vertices {
                *by_kind.entry(v.kind().to_string()).or_default() += 1;
            }
        }
    }
    let cycles = t.total_cycles();
    let mut top: Vec<SuperstepInfo> = t
        .costs
        .iter()
        .enumerate()
        .map(|(index, c)| SuperstepInfo {
            index,
            label: c.label.clone(),
            cycles: c.compute_cycles + c.exchange_cycles + c.sync_cycles,
            exchange_bytes: c.exchange_bytes,
        })
        .collect();
    top.sort_by_key(|s| (std::cmp::Reverse(s.cycles), s.index));
    top.truncate(TOP_SUPERSTEPS);
    TileInfo {
        supersteps: t.step.supersteps.len(),
        vertices: by_kind.values().sum(),
        vertices_by_kind: by_kind,
        exchange_bytes: t.costs.iter().map(|c| c.exchange_bytes).sum(),
        inter_chip_bytes: t.costs.iter().map(|c| c.inter_chip_bytes).sum(),
        cycles,
        seconds: if t.clock_hz > 0.0 {
            cycles as f64 / t.clock_hz
        } else {
            0.0
        },
        memory: memory_info(t),
        oom: t.oom.as_ref().map(|o| o.to_string()),
        top_supersteps: top,
    }
}

fn memory_info(t: &TilePlan) -> MemoryInfo {
    let capacity = u64::from(t.step.bytes_per_tile);
    let per_chip = t.step.tiles_per_chip.max(1) as usize;
    let chips = t
        .memory
        .chunks(per_chip)
        .enumerate()
        .map(|(chip, tiles)| {
            let (fullest, max_peak) = tiles
                .iter()
                .enumerate()
                .max_by_key(|(i, m)| (m.peak, std::cmp::Reverse(*i)))
                .map_or((0, 0), |(i, m)| (i, m.peak));
            ChipMemory {
                chip: chip as u32,
                max_peak,
                mean_peak: tiles.iter().map(|m| m.peak as f64).sum::<f64>()
                    / tiles.len().max(1) as f64,
                fullest_tile: fullest as u32,
            }
        })
        .collect();
    MemoryInfo {
        capacity,
        always_live_bytes: t.memory.iter().map(|m| m.always_live).sum(),
        tiles_over_capacity: t.memory.iter().filter(|m| m.peak > capacity).count(),
        fullest_tile: t.fullest_tile().map(|(chip, tile, m)| TileAt {
            chip,
            tile,
            peak: m.peak,
        }),
        chips,
    }
}

/// The summary of `plan`.
pub fn plan_info(plan: &Plan) -> PlanInfo {
    let s = &plan.report.settings;
    PlanInfo {
        model: plan.source.model.clone(),
        seed: plan.source.seed,
        train: s.train,
        precision: s.precision.clone(),
        target: plan.target.name.clone(),
        chips: plan
            .tiles
            .as_ref()
            .map_or(s.ipus_per_replica, |t| t.step.chips),
        tiles_per_chip: plan.target.tiles_per_chip,
        tiles: plan.tiles.as_ref().map(tile_info),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The compile summary's lines about a tile program: supersteps, vertices, exchange,
/// estimated cycles and time, the fullest tile of each chip, and the OOM report if any.
pub fn tiles_text(t: &TileInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tiles: {} supersteps, {} vertices, {} exchange bytes ({} between chips)",
        t.supersteps,
        thousands(t.vertices),
        thousands(t.exchange_bytes),
        thousands(t.inter_chip_bytes)
    );
    let _ = writeln!(
        out,
        "estimated step: {} cycles = {:.3} ms",
        thousands(t.cycles),
        t.seconds * 1e3
    );
    let cap = t.memory.capacity;
    for c in &t.memory.chips {
        let _ = writeln!(
            out,
            "chip {}: fullest tile {} at {} / {} bytes ({:.1}%), mean tile peak {:.0} bytes",
            c.chip,
            c.fullest_tile,
            thousands(c.max_peak),
            thousands(cap),
            percent(c.max_peak, cap),
            c.mean_peak
        );
    }
    if let Some(oom) = &t.oom {
        let _ = writeln!(
            out,
            "{} tile(s) over capacity; the plan cannot run:\n{oom}",
            t.memory.tiles_over_capacity
        );
    }
    out
}

impl PlanInfo {
    /// The report of `tessera inspect plan.tsp`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "model: {} (seed {})", self.model, self.seed);
        let _ = writeln!(
            out,
            "{}, {}; target {}: {} chip(s) x {} tiles",
            if self.train { "training" } else { "forward" },
            self.precision,
            self.target,
            self.chips,
            self.tiles_per_chip
        );
        let Some(t) = &self.tiles else {
            let _ = writeln!(out, "no tile program (compiled with --no-tiles)");
            return out;
        };
        out += &tiles_text(t);
        let kinds: Vec<String> = t
            .vertices_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {}", thousands(*n)))
            .collect();
        let _ = writeln!(out, "vertices by kind: {}", kinds.join(", "));
        let m = &t.memory;
        let _ = writeln!(
            out,
            "memory: always-live {} bytes in total; {} tile(s) over capacity",
            thousands(m.always_live_bytes),
            m.tiles_over_capacity
        );
        if let Some(f) = &m.fullest_tile {
            let _ = writeln!(
                out,
                "fullest tile: tile {} of chip {}, {} / {} bytes",
                f.tile,
                f.chip,
                thousands(f.peak),
                thousands(m.capacity)
            );
        }
        let _ = writeln!(out, "costliest supersteps:");
        for s in &t.top_supersteps {
            let _ = writeln!(
                out,
                "  #{:<5} {:>12} cycles  {}",
                s.index,
                thousands(s.cycles),
                s.label
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::{BinaryOp, DType, Graph, Op, TensorType};
    use tessera_passes::lower::program::{lower_for, StepCost, TileMemory};
    use tessera_target::Target;

    /// A lowered two-op graph whose costs and memory are then replaced by known figures.
    fn plan() -> TilePlan {
        let mut g = Graph::new("t");
        let t = TensorType::new(DType::F32, vec![4, 8]);
        let x = g.input("x", t.clone()).unwrap();
        let w = g.param("w", t).unwrap();
        let y = g.add(Op::Binary(BinaryOp::Add), &[x, w], "m").unwrap();
        g.set_output("y", y).unwrap();
        let mut p = lower_for(&g, &Target::preset("mk2").unwrap(), 1).unwrap();
        let cost = |label: &str, c: u64, bytes: u64| StepCost {
            label: label.into(),
            compute_cycles: c,
            exchange_cycles: 10,
            sync_cycles: 5,
            exchange_bytes: bytes,
            inter_chip_bytes: bytes / 2,
            vertices: 1,
        };
        p.costs = (0..12)
            .map(|i| cost(&format!("s{i}"), 100 * (i % 4), 8))
            .collect();
        p.clock_hz = 1e9;
        p.step.tiles_per_chip = 4;
        p.step.bytes_per_tile = 1000;
        let m = |always_live, peak| TileMemory {
            always_live,
            peak,
            vertices: 0,
            ..TileMemory::default()
        };
        // Two chips of four tiles.
        p.memory = vec![
            m(10, 100),
            m(10, 300),
            m(0, 200),
            m(0, 0),
            m(5, 1200),
            m(5, 400),
            m(5, 1001),
            m(5, 1),
        ];
        p
    }

    #[test]
    fn figures_follow_the_plan() {
        let info = tile_info(&plan());
        // Σ (c + 10 + 5) over c = 100·(i mod 4), i < 12: 3·(0+100+200+300) + 12·15.
        assert_eq!(info.cycles, 1800 + 180);
        assert!((info.seconds - 1980e-9).abs() < 1e-15);
        assert_eq!(info.exchange_bytes, 96);
        assert_eq!(info.inter_chip_bytes, 48);
        let m = &info.memory;
        assert_eq!(m.capacity, 1000);
        assert_eq!(m.always_live_bytes, 40);
        assert_eq!(m.tiles_over_capacity, 2);
        assert_eq!(
            m.fullest_tile,
            Some(TileAt {
                chip: 1,
                tile: 0,
                peak: 1200
            })
        );
        assert_eq!((m.chips[0].max_peak, m.chips[0].fullest_tile), (300, 1));
        assert_eq!(m.chips[0].mean_peak, 150.0);
        assert_eq!(m.chips[1].mean_peak, (1200.0 + 400.0 + 1001.0 + 1.0) / 4.0);
        // Top 10 by cycles (315 > 215 > 115 > 15), ties by index.
        let top: Vec<usize> = info.top_supersteps.iter().map(|s| s.index).collect();
        assert_eq!(top, vec![3, 7, 11, 2, 6, 10, 1, 5, 9, 0]);
        assert_eq!(info.top_supersteps[0].cycles, 315);
        // Vertices are counted from the program: the add is at least one binary vertex.
        assert!(info.vertices_by_kind.get("binary").is_some_and(|n| *n >= 1));
        assert_eq!(info.vertices, info.vertices_by_kind.values().sum::<u64>());
        let text = tiles_text(&info);
        assert!(
            text.contains("chip 1: fullest tile 0 at 1,200 / 1,000 bytes (120.0%)"),
            "{text}"
        );
    }
}
