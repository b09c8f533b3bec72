//! The compile report stored in a plan and printed by `tessera compile` (as a table, or as
//! JSON with `--json`): the run's settings, timings, one row per stage and the predicted
//! throughput. Plain data, so that the runtime and report writers need no compiler crate.

use serde::{Deserialize, Serialize};

/// The settings a plan was compiled for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The model (preset name or file).
    pub model: String,
    /// The whole training step (else: the forward graph).
    pub train: bool,
    /// `fp32` or `fp16`.
    pub precision: String,
    /// Placement mode.
    pub placement: String,
    /// Recomputation mode.
    pub recompute: String,
    /// The target's name.
    pub target: String,
    /// IPUs (pipeline stages) per replica.
    pub ipus_per_replica: u32,
    /// Data-parallel replicas.
    pub replicas: u32,
    /// Micro-batches per weight update.
    pub gradient_accumulation: u32,
    /// Steps per host call.
    pub device_iterations: u32,
    /// Samples per micro-batch.
    pub micro_batch: u32,
    /// Input extents as `name=value` pairs (e.g. `seq_len=512`).
    pub shapes: Vec<(String, usize)>,
}

/// Wall time of one compile step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassTiming {
    /// The step (`build`, `autodiff`, `recompute+pipeline`, ...).
    pub name: String,
    /// Seconds.
    pub seconds: f64,
    /// Nodes of the graph after it.
    pub nodes: usize,
}

/// Memory of one chip by kind, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRow {
    /// Parameters.
    pub weights: u64,
    /// Gradient accumulators.
    pub gradients: u64,
    /// Optimizer state on chip.
    pub optimizer_state: u64,
    /// Optimizer state in streaming memory (not part of the total).
    pub optimizer_state_streaming: u64,
    /// Stashed activations of all in-flight micro-batches.
    pub stash: u64,
    /// In-flight micro-batches the stash holds.
    pub stash_copies: u64,
    /// Peak temporaries.
    pub temporaries: u64,
    /// Code and vertex state.
    pub code: u64,
}

/// One stage of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRow {
    /// The stage (IPU within the replica).
    pub stage: u32,
    /// What it holds, abridged.
    pub contents: String,
    /// FLOPs per micro-batch (forward and backward, recomputation included).
    pub flops: u64,
    /// Forward FLOPs.
    pub forward_flops: u64,
    /// Backward FLOPs.
    pub backward_flops: u64,
    /// Recomputation FLOPs (part of `backward_flops`).
    pub recompute_flops: u64,
    /// Cycles per micro-batch (forward and backward).
    pub cycles: u64,
    /// Seconds per micro-batch, inter-chip copies included.
    pub time_s: f64,
    /// On-chip bytes.
    pub memory_bytes: u64,
    /// The chip's capacity, bytes.
    pub capacity_bytes: u64,
    /// `memory_bytes ≤ capacity_bytes`.
    pub fits: bool,
    /// `memory_bytes` by kind.
    pub memory: MemoryRow,
}

/// Another placement's prediction, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Its name.
    pub placement: String,
    /// Predicted samples per second.
    pub samples_per_second: f64,
    /// Its bottleneck stage.
    pub bottleneck_stage: u32,
    /// Its bottleneck's seconds per micro-batch.
    pub bottleneck_s: f64,
    /// Every chip fits.
    pub fits: bool,
    /// This plan's samples per second over this one's.
    pub speedup: f64,
}

/// What recomputation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecomputeRow {
    /// Recomputed nodes.
    pub recomputed_nodes: usize,
    /// Extra FLOPs per micro-batch.
    pub extra_flops: u64,
    /// Stash of one micro-batch without recomputation, bytes (all stages).
    pub stash_bytes_before: u64,
    /// Stash of one micro-batch with it, bytes (all stages).
    pub stash_bytes: u64,
}

/// The report of one compile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompileReport {
    /// Settings.
    pub settings: RunSettings,
    /// Predicted training samples per second (inference: per-sample forward throughput of
    /// the same pipeline model).
    pub predicted_samples_per_second: f64,
    /// Wall time of the whole compile, seconds.
    pub compile_seconds: f64,
    /// Per step.
    pub passes: Vec<PassTiming>,
    /// One row per stage.
    pub stages: Vec<StageRow>,
    /// The slowest stage.
    pub bottleneck_stage: u32,
    /// Its seconds per micro-batch.
    pub bottleneck_s: f64,
    /// Seconds per micro-batch of a perfectly balanced pipeline (`Σ stages / P`).
    pub lower_bound_s: f64,
    /// Optimizer step seconds (slowest stage).
    pub optimizer_s: f64,
    /// Gradient all-reduce seconds (slowest stage).
    pub all_reduce_s: f64,
    /// One step (weight update), seconds.
    pub step_s: f64,
    /// The seed run's hand placement, when it applies.
    pub hand_placement: Option<Comparison>,
    /// Recomputation.
    pub recompute: Option<RecomputeRow>,
    /// Nodes of the plan's graph.
    pub nodes: usize,
    /// Inter-chip copies.
    pub copies: usize,
    /// Stash restores.
    pub stashes: usize,
    /// Warnings (ignored IPU configuration keys, ...).
    pub warnings: Vec<String>,
}
