//! What the pipeline pass reports: per stage its contents, FLOPs, cycles, time and memory
//! by kind against capacity; the predicted throughput; the bottleneck against the balanced
//! lower bound and against the hand placement; and how the automatic search went.

use super::{assign, PipelineConfig, Placed, Planner};
use crate::layers::{is_number, Granularity, LayerRule, Units};
use crate::recompute::RecomputeStats;
use serde::{Deserialize, Serialize};
use tessera_cost::{MemoryBreakdown, Throughput};

/// One stage of the placed graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// The stage (chip within the replica).
    pub stage: u32,
    /// Its units, in order.
    pub units: Vec<String>,
    /// The units, abridged (`lxmert.encoder.layer.{0..8}`).
    pub contents: String,
    /// Forward FLOPs per micro-batch.
    pub forward_flops: u64,
    /// Backward FLOPs per micro-batch, recomputation included.
    pub backward_flops: u64,
    /// The recomputation part of `backward_flops`.
    pub recompute_flops: u64,
    /// Forward and backward cycles per micro-batch.
    pub cycles: u64,
    /// Compute seconds per micro-batch.
    pub compute_s: f64,
    /// Inter-chip copy seconds per micro-batch.
    pub copy_s: f64,
    /// `compute_s + copy_s`.
    pub time_s: f64,
    /// Memory by kind, with capacity.
    pub memory: MemoryBreakdown,
}

/// Another placement's figures, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Its name.
    pub placement: String,
    /// Predicted samples per second.
    pub samples_per_s: f64,
    /// Its slowest stage's time per micro-batch.
    pub micro_batch_s: f64,
    /// Its slowest stage.
    pub bottleneck_stage: u32,
    /// Every chip fits.
    pub fits: bool,
    /// Per-stage time per micro-batch.
    pub stage_s: Vec<f64>,
    /// This pass's placement's samples per second over this one's.
    pub speedup: f64,
}

/// How the automatic search went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchStats {
    /// Units partitioned.
    pub units: usize,
    /// Contiguous partitions there are.
    pub partitions: u64,
    /// Every partition was considered (else: dynamic programme and local search).
    pub exhaustive: bool,
    /// Complete partitions evaluated (after pruning).
    pub visited: u64,
    /// Samples per second the per-segment model predicted for the best candidate.
    pub estimated_samples_per_s: f64,
}

/// What the [`super::pipeline`] pass did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// The placement mode.
    pub placement: String,
    /// Stages, in order.
    pub stages: Vec<StageReport>,
    /// The throughput prediction and its breakdown.
    pub throughput: Throughput,
    /// Predicted training samples per second.
    pub samples_per_s: f64,
    /// The slowest stage.
    pub bottleneck_stage: u32,
    /// Its time per micro-batch.
    pub bottleneck_s: f64,
    /// `Σ stage times / P`: the time per micro-batch of a perfectly balanced pipeline.
    pub lower_bound_s: f64,
    /// `bottleneck_s / lower_bound_s` (1 is perfect balance).
    pub bottleneck_over_lower_bound: f64,
    /// Inter-chip copies inserted.
    pub copies: usize,
    /// Bytes they move per micro-batch.
    pub copy_bytes: u64,
    /// Stash restores inserted.
    pub stashes: usize,
    /// The optimum-graphcore hand placement's figures, when it applies.
    pub hand: Option<Comparison>,
    /// The automatic search, when it ran.
    pub search: Option<SearchStats>,
    /// What recomputation did on the placed graph, when the pass ran it.
    pub recompute: Option<RecomputeStats>,
}

/// `name (n B)` pieces of a memory breakdown, for messages.
pub(crate) fn memory_detail(m: &MemoryBreakdown) -> String {
    format!(
        "weights {}, gradients {}, optimizer state {}, stash {} × {}, temporaries {}, code {}",
        m.weights,
        m.gradients,
        m.optimizer_state,
        m.stash_per_micro_batch,
        m.stash_copies,
        m.temporaries_peak,
        m.code_and_vertex_state
    )
}

/// An abridged list of unit names: runs of numbered layers with the same prefix become
/// `prefix.{a..b}`; a layer whose units are all listed appears once by its name; a
/// partial layer as `layer[part, part]`.
pub fn describe_units(names: &[String], units: &Units) -> String {
    // Group consecutive units by layer.
    let mut groups: Vec<(String, Vec<String>, bool)> = Vec::new();
    for name in names {
        let Some(u) = units.find(name).and_then(|i| units.units().get(i)) else {
            groups.push((name.clone(), vec![name.clone()], true));
            continue;
        };
        match groups.last_mut() {
            Some((layer, parts, _)) if *layer == u.layer => parts.push(u.name.clone()),
            _ => groups.push((u.layer.clone(), vec![u.name.clone()], true)),
        }
    }
    for (layer, parts, whole) in &mut groups {
        let all = units.units().iter().filter(|u| &u.layer == layer).count();
        *whole = parts.len() == all;
    }
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(String, u64, u64)> = None;
    let flush = |run: &mut Option<(String, u64, u64)>, out: &mut Vec<String>| {
        if let Some((prefix, a, b)) = run.take() {
            out.push(if a == b {
                format!("{prefix}.{a}")
            } else {
                format!("{prefix}.{{{a}..{b}}}")
            });
        }
    };
    for (layer, parts, whole) in groups {
        let numbered = layer
            .rsplit_once('.')
            .filter(|(_, n)| is_number(n))
            .and_then(|(p, n)| n.parse::<u64>().ok().map(|n| (p.to_string(), n)));
        match (whole, numbered) {
            (true, Some((prefix, k))) => match &mut run {
                Some((p, _, b)) if *p == prefix && *b + 1 == k => *b = k,
                _ => {
                    flush(&mut run, &mut out);
                    run = Some((prefix, k, k));
                }
            },
            (true, None) => {
                flush(&mut run, &mut out);
                out.push(layer);
            }
            (false, _) => {
                flush(&mut run, &mut out);
                let short: Vec<&str> = parts
                    .iter()
                    .map(|p| p.strip_prefix(&format!("{layer}.")).unwrap_or(p))
                    .map(|p| if p == layer { "(self)" } else { p })
                    .collect::<Vec<_>>();
                out.push(format!("{layer}[{}]", short.join(", ")));
            }
        }
    }
    flush(&mut run, &mut out);
    out.join(", ")
}

/// The report of a placed graph.
pub(crate) fn build(
    placed: &Placed,
    units: &Units,
    cfg: &PipelineConfig,
    hand: Option<Comparison>,
    search: Option<SearchStats>,
) -> PipelineReport {
    let tp = &placed.throughput;
    let stages = placed
        .cost
        .stages
        .iter()
        .map(|s| {
            let names: Vec<String> = units
                .units()
                .iter()
                .zip(&placed.assignment)
                .filter(|(_, &stage)| stage == s.stage)
                .map(|(u, _)| u.name.clone())
                .collect();
            let time = tp.stages.iter().find(|t| t.stage == s.stage);
            StageReport {
                stage: s.stage,
                contents: describe_units(&names, units),
                units: names,
                forward_flops: s.forward.flops,
                backward_flops: s.backward.flops,
                recompute_flops: s.recompute.flops,
                cycles: s
                    .forward
                    .cycles
                    .total()
                    .saturating_add(s.backward.cycles.total()),
                compute_s: time.map_or(0.0, |t| t.compute_s),
                copy_s: time.map_or(0.0, |t| t.copy_s),
                time_s: time.map_or(0.0, |t| t.total_s),
                memory: s.memory,
            }
        })
        .collect();
    PipelineReport {
        placement: cfg.placement.name().to_string(),
        stages,
        throughput: tp.clone(),
        samples_per_s: tp.samples_per_s,
        bottleneck_stage: tp.bottleneck_stage,
        bottleneck_s: tp.micro_batch_s,
        lower_bound_s: tp.balanced_micro_batch_s,
        bottleneck_over_lower_bound: if tp.balanced_micro_batch_s > 0.0 {
            tp.micro_batch_s / tp.balanced_micro_batch_s
        } else {
            1.0
        },
        copies: placed.copies,
        copy_bytes: placed.copy_bytes,
        stashes: placed.stashes,
        hand,
        search,
        recompute: placed.recompute.clone(),
    }
}

/// The hand placement's figures on the same graph, when it applies (LXMERT, 4 chips).
pub(crate) fn hand_comparison(planner: &Planner<'_>, ours: &Throughput) -> Option<Comparison> {
    let units = planner.units(&LayerRule::lxmert(), Granularity::Layer);
    let assignment = assign::optimum_graphcore(&units, planner.cfg.stages()).ok()?;
    let placed = planner.place(&units, &assignment, false).ok()?;
    let tp = &placed.throughput;
    Some(Comparison {
        placement: "optimum-graphcore".to_string(),
        samples_per_s: tp.samples_per_s,
        micro_batch_s: tp.micro_batch_s,
        bottleneck_stage: tp.bottleneck_stage,
        fits: placed.cost.stages.iter().all(|s| s.memory.fits),
        stage_s: tp.stages.iter().map(|s| s.total_s).collect(),
        speedup: if tp.samples_per_s > 0.0 {
            ours.samples_per_s / tp.samples_per_s
        } else {
            f64::INFINITY
        },
    })
}
