//! What `tessera inspect plan.tsp` and the tile part of `tessera compile`'s summary show
//! about a plan: the model and target, and for plans with a tile program the supersteps,
//! vertices by kind, exchange, estimated cycles and time, per-chip tile memory, the
//! pipeline of a training plan (stages, segments, stash rings and slots, the optimizer
//! segment: [`optimizer`]), and the costliest supersteps. [`PlanInfo`] is plain data (its JSON is `inspect --json`), so the
//! figures can be tested without a process; [`PlanInfo::to_text`] and [`tiles_text`] print it.

mod optimizer;

use optimizer::{optimizer_line, optimizer_summary, OptimizerSummary};

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use tessera_passes::lower::program::code_state::code_state;
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
    /// The pipeline of a pipelined training plan.
    pub pipeline: Option<PipelineSummary>,
}

/// The pipeline of a pipelined training plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineSummary {
    /// Stages (chips).
    pub stages: u32,
    /// Segments (a forward and a backward per stage).
    pub segments: usize,
    /// Stash rings: segments whose values wait in one slot per micro-batch in flight.
    pub stash_rings: usize,
    /// Slots of all the rings.
    pub stash_slots: u64,
    /// Bytes of boundary buffers and stash slots over all tiles.
    pub stash_bytes: u64,
    /// Bytes of gradient accumulators over all tiles.
    pub gradient_bytes: u64,
    /// The optimizer segment, when the optimizer runs on the tiles.
    pub optimizer: Option<OptimizerSummary>,
}

/// Tile memory of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryInfo {
    /// Bytes per tile.
    pub capacity: u64,
    /// Always-live bytes summed over all tiles (weights, inputs, constants).
    pub always_live_bytes: u64,
    /// Estimated code and vertex state summed over all tiles (always live; counted in every
    /// peak below, as the lowering's out-of-memory check counts it).
    pub code_vertex_state_bytes: u64,
    /// Tiles whose peak (data plus code and vertex state) exceeds the capacity.
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
        pipeline: t.pipeline.as_ref().map(|p| {
            let saves = p.segments.iter().filter_map(|s| s.save.as_ref());
            PipelineSummary {
                stages: p.schedule.stages,
                segments: p.segments.len(),
                stash_rings: saves.clone().count(),
                stash_slots: saves.map(|s| u64::from(s.slots)).sum(),
                // Both are always live, so each tile's peak holds all of them.
                stash_bytes: t.memory.iter().map(|m| m.at_peak.stash).sum(),
                gradient_bytes: t.memory.iter().map(|m| m.at_peak.gradients).sum(),
                optimizer: optimizer_summary(t, p),
            }
        }),
    }
}

fn memory_info(t: &TilePlan) -> MemoryInfo {
    let capacity = u64::from(t.step.bytes_per_tile);
    let per_chip = t.step.tiles_per_chip.max(1) as usize;
    // Each tile's peak data plus its code and vertex state (always live), as the lowering's
    // out-of-memory check counts them.
    let code = code_state(&[&t.load, &t.step], t.memory.len());
    let used: Vec<u64> = t
        .memory
        .iter()
        .enumerate()
        .map(|(i, m)| m.peak + code.get(i).map_or(0, |c| c.code + c.vertex_state))
        .collect();
    let fullest = |tiles: &[u64]| {
        tiles
            .iter()
            .enumerate()
            .max_by_key(|(i, &u)| (u, std::cmp::Reverse(*i)))
            .map(|(i, &u)| (i, u))
    };
    let chips = used
        .chunks(per_chip)
        .enumerate()
        .map(|(chip, tiles)| {
            let (tile, max_peak) = fullest(tiles).unwrap_or((0, 0));
            ChipMemory {
                chip: chip as u32,
                max_peak,
                mean_peak: tiles.iter().map(|&u| u as f64).sum::<f64>() / tiles.len().max(1) as f64,
                fullest_tile: tile as u32,
            }
        })
        .collect();
    MemoryInfo {
        capacity,
        always_live_bytes: t.memory.iter().map(|m| m.always_live).sum(),
        code_vertex_state_bytes: code.iter().map(|c| c.code + c.vertex_state).sum(),
        tiles_over_capacity: used.iter().filter(|&&u| u > capacity).count(),
        fullest_tile: fullest(&used).map(|(i, peak)| TileAt {
            chip: (i / per_chip) as u32,
            tile: (i % per_chip) as u32,
            peak,
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
    if let Some(p) = &t.pipeline {
        let _ = writeln!(
            out,
            "pipeline: {} stages, {} segments; stash: {} ring(s), {} slot(s), {} bytes with the boundary buffers; gradient accumulators {} bytes",
            p.stages,
            p.segments,
            p.stash_rings,
            p.stash_slots,
            thousands(p.stash_bytes),
            thousands(p.gradient_bytes)
        );
        match &p.optimizer {
            Some(o) => {
                let _ = writeln!(out, "{}", optimizer_line(o));
            }
            None => {
                let _ = writeln!(out, "optimizer: not in the plan (the host runs it)");
            }
        }
    }
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
            "memory: always-live {} bytes in total, code and vertex state ~{} (estimate, counted \
             in every tile's peak); {} tile(s) over capacity",
            thousands(m.always_live_bytes),
            thousands(m.code_vertex_state_bytes),
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
mod tests;
