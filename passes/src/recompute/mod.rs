//! The `recompute` pass: trade FLOPs for activation memory by recomputing forward values
//! in the backward pass instead of keeping them.
//!
//! Mechanism and policy are separate (as in burn's `checkpoint` module). The *policy*
//! ([`RecomputeMode`]) decides which forward values are checkpoints — stored from the
//! forward to the backward pass — and [`analysis`] derives what that implies: the forward
//! nodes that backward nodes need and that are not checkpoints, transitively. The
//! *mechanism* ([`mechanism`]) duplicates those nodes (marked `recompute`, printed as such
//! in the text IR, on their original's stage) and rewires backward nodes to the copies;
//! the result is rebuilt with each copy scheduled just before its first reader
//! ([`crate::schedule`]), so node ids change.
//! The forward pass is untouched and each copy repeats its original's op on the same
//! operand values, so every output — the loss and every gradient — is bit-identical.
//!
//! Modes:
//! - `none`: nothing is recomputed (the pass only reports activation memory);
//! - `layer`: a checkpoint on every layer output (the seed run's
//!   `recompute_checkpoint_every_layer`), layers from the [`LayerRule`];
//! - `pipeline`: everything on a stage is recomputed from the stage's inputs (needs stage
//!   annotations: run after the pipeline pass's placement);
//! - `auto`: per layer (and stage), the checkpoint granularity with the fewest extra FLOPs
//!   whose stash fits a memory budget per chip ([`auto`]).
//!
//! The pass reports ([`RecomputeStats`]) the stash — the activation memory of one
//! micro-batch, before and after, per stage, counted by storage root as the cost model
//! does — and the extra FLOPs. It assumes a graph from the autodiff pass (backward nodes
//! carry a `backward` scope component; see [`crate::layers`]).

pub(crate) mod analysis;
mod auto;
pub(crate) mod mechanism;
mod policy;
#[cfg(test)]
mod tests;

pub use auto::{AutoChoice, FRONTIER_LIMIT};

use crate::layers::{Granularity, LayerRule, Units};
use analysis::{analyze, Info};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tessera_cost::graph::stash_copies;
use tessera_ir::{Graph, NodeId, VerifyError};

/// A memory budget for the stashed activations of each chip, bytes (in-flight
/// micro-batches included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Budget {
    /// The same budget on every chip.
    PerChip(u64),
    /// One budget per stage, in stage order.
    PerStage(Vec<u64>),
}

/// Which values are checkpoints (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecomputeMode {
    /// No recomputation.
    None,
    /// A checkpoint on every layer output.
    Layer,
    /// Everything on a stage recomputed from the stage's inputs.
    Pipeline,
    /// The fewest extra FLOPs under a stash budget per chip.
    Auto(Budget),
}

impl RecomputeMode {
    /// The mode's name on the command line (`none`, `layer`, `pipeline`, `auto`).
    pub fn name(&self) -> &'static str {
        match self {
            RecomputeMode::None => "none",
            RecomputeMode::Layer => "layer",
            RecomputeMode::Pipeline => "pipeline",
            RecomputeMode::Auto(_) => "auto",
        }
    }
}

/// Options of the [`recompute`] pass.
#[derive(Debug, Clone, PartialEq)]
pub struct RecomputeConfig {
    /// The policy.
    pub mode: RecomputeMode,
    /// What a layer is.
    pub rule: LayerRule,
    /// Micro-batches per weight update (`auto` on a placed graph: stage `s` of `P` keeps
    /// `min(2(P−1−s)+1, G)` micro-batches' stashes, PopART's schedule).
    pub grad_accum: u32,
}

impl RecomputeConfig {
    /// `mode` with the numbered layer rule and no gradient accumulation.
    pub fn new(mode: RecomputeMode) -> Self {
        RecomputeConfig {
            mode,
            rule: LayerRule::numbered(),
            grad_accum: 1,
        }
    }
}

/// Activation memory and recomputation of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageActivations {
    /// The stage (`None`: the graph is not placed).
    pub stage: Option<u32>,
    /// Stash of one micro-batch without recomputation, bytes.
    pub stash_bytes_before: u64,
    /// Stash of one micro-batch after the pass, bytes.
    pub stash_bytes: u64,
    /// FLOPs of the stage's recomputed nodes.
    pub extra_flops: u64,
}

/// What the [`recompute`] pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecomputeStats {
    /// The mode's name.
    pub mode: String,
    /// Recomputed (duplicated) nodes.
    pub recomputed_nodes: usize,
    /// Distinct stashed values (checkpoints the backward pass reads) after the pass.
    pub stashed_values: usize,
    /// FLOPs of the recomputed nodes.
    pub extra_flops: u64,
    /// FLOPs of the forward pass, for scale.
    pub forward_flops: u64,
    /// Stash of one micro-batch without recomputation, bytes (all stages).
    pub stash_bytes_before: u64,
    /// Stash of one micro-batch after the pass, bytes (all stages).
    pub stash_bytes: u64,
    /// Per stage.
    pub stages: Vec<StageActivations>,
    /// `auto` only: the choice per layer and stage.
    pub choices: Vec<AutoChoice>,
}

/// Why the recompute pass failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecomputeError {
    /// `pipeline` (or a per-stage budget) needs stage annotations, and a node has none.
    #[error(
        "recompute mode `pipeline` needs every computed node placed on a stage, but {node} \
         has no stage (run the pipeline pass's placement first)"
    )]
    MissingStage {
        /// The node, as `%k op @scope`.
        node: String,
    },
    /// A per-stage budget list does not cover a stage.
    #[error("recompute budget lists {given} stage(s), but the graph uses stage {stage}")]
    BudgetStages {
        /// Budgets given.
        given: usize,
        /// The stage without a budget.
        stage: u32,
    },
    /// Even recomputing every layer leaves more stash than the budget.
    #[error(
        "recomputation cannot fit {}: even with every layer recomputed its stash needs \
         {needed_bytes} bytes ({copies} in-flight micro-batch(es)), over the budget of \
         {budget_bytes} bytes by {}",
        stage_name(.stage),
        .needed_bytes.saturating_sub(*.budget_bytes)
    )]
    NothingFits {
        /// The stage (`None`: the unplaced graph).
        stage: Option<u32>,
        /// The least stash of the stage times its in-flight copies, bytes.
        needed_bytes: u64,
        /// The budget, bytes.
        budget_bytes: u64,
        /// In-flight micro-batches whose stash the stage keeps.
        copies: u64,
    },
    /// The result could not be scheduled (the input has a cycle).
    #[error("recompute: {0}")]
    Schedule(#[from] crate::schedule::ScheduleError),
    /// The result failed verification (a bug in the pass).
    #[error("recompute produced an invalid graph: {0}")]
    Verify(#[from] VerifyError),
}

fn stage_name(stage: &Option<u32>) -> String {
    match stage {
        Some(s) => format!("stage {s}"),
        None => "the chip".to_string(),
    }
}

/// `%k op @scope` of a node, for messages.
pub(crate) fn describe(graph: &Graph, id: NodeId) -> String {
    let node = graph.node(id);
    let name = graph
        .value_names()
        .remove(&id)
        .unwrap_or_else(|| format!("%?{}", id.index()));
    if node.scope.is_empty() {
        format!("{name} {}", node.op.name())
    } else {
        format!("{name} {} @{}", node.op.name(), node.scope)
    }
}

/// Applies recomputation policy `cfg.mode` to `graph` (see the module documentation).
pub fn recompute(
    graph: &Graph,
    cfg: &RecomputeConfig,
) -> Result<(Graph, RecomputeStats), RecomputeError> {
    let info = Info::new(graph);
    let keep: Vec<bool> = match &cfg.mode {
        RecomputeMode::None => Vec::new(),
        RecomputeMode::Layer => {
            let units = Units::new(graph, &cfg.rule, Granularity::Layer);
            policy::unit_boundaries(graph, &units)
        }
        RecomputeMode::Pipeline => policy::stage_inputs(graph)?,
        RecomputeMode::Auto(budget) => {
            let layers = Units::new(graph, &cfg.rule, Granularity::Layer);
            let subs = Units::new(graph, &cfg.rule, Granularity::SubLayer);
            let stages = graph
                .node_ids()
                .filter_map(|id| graph.node(id).annot.stage)
                .max()
                .map_or(1, |s| s + 1);
            let limits = |stage: Option<u32>| -> Result<(u64, u64), RecomputeError> {
                let b = match (budget, stage) {
                    (Budget::PerChip(b), _) => *b,
                    (Budget::PerStage(v), s) => {
                        let s = s.unwrap_or(0);
                        *v.get(s as usize).ok_or(RecomputeError::BudgetStages {
                            given: v.len(),
                            stage: s,
                        })?
                    }
                };
                let copies = stage.map_or(1, |s| stash_copies(s, stages, cfg.grad_accum));
                Ok((b, copies))
            };
            let (keep, choices) = auto::choose(graph, &info, &layers, &subs, &limits)?;
            return finish(graph, &info, cfg, &keep, choices);
        }
    };
    finish(graph, &info, cfg, &keep, Vec::new())
}

/// Applies checkpoint table `keep` (empty: everything kept) and builds the statistics.
fn finish(
    graph: &Graph,
    info: &Info,
    cfg: &RecomputeConfig,
    keep: &[bool],
    choices: Vec<AutoChoice>,
) -> Result<(Graph, RecomputeStats), RecomputeError> {
    let before = analyze(graph, info, &|_| true);
    let after = if keep.is_empty() {
        before.clone()
    } else {
        analyze(graph, info, &|v| policy::kept(keep, v))
    };
    let g = if after.recomputed.is_empty() {
        graph.clone()
    } else {
        let (g, copies) = mechanism::apply(graph, &after);
        // Recompute each copy just before the backward node that first needs it, and
        // compute the backward nodes that need no gradient no earlier than that either.
        let lazy: std::collections::HashSet<NodeId> = copies.values().copied().collect();
        let off = crate::schedule::off_chain_backward(&g);
        let off_chain = |n: NodeId| off.get(n.index()).copied().unwrap_or(false);
        crate::schedule::rebuild_lazy(&g, &|n| lazy.contains(&n) || off_chain(n))?
    };
    #[cfg(debug_assertions)]
    tessera_ir::verify(&g)?;
    let bytes_before = before.stash_bytes(graph);
    let bytes_after = after.stash_bytes(graph);
    let mut keys: Vec<Option<u32>> = bytes_before
        .keys()
        .chain(bytes_after.keys())
        .chain(after.extra_flops.keys())
        .copied()
        .collect();
    keys.sort();
    keys.dedup();
    let stages: Vec<StageActivations> = keys
        .iter()
        .map(|&stage| StageActivations {
            stage,
            stash_bytes_before: bytes_before.get(&stage).copied().unwrap_or(0),
            stash_bytes: bytes_after.get(&stage).copied().unwrap_or(0),
            extra_flops: after.extra_flops.get(&stage).copied().unwrap_or(0),
        })
        .collect();
    let forward_flops = graph
        .node_ids()
        .filter(|&id| crate::layers::is_forward_compute(graph.node(id)))
        .map(|id| tessera_ir::flops::node_flops(graph, id).total())
        .sum();
    let sum = |m: &BTreeMap<Option<u32>, u64>| m.values().sum::<u64>();
    let stats = RecomputeStats {
        mode: cfg.mode.name().to_string(),
        recomputed_nodes: after.recomputed.len(),
        stashed_values: after.stash.len(),
        extra_flops: after.total_extra_flops(),
        forward_flops,
        stash_bytes_before: sum(&bytes_before),
        stash_bytes: sum(&bytes_after),
        stages,
        choices,
    };
    Ok((g, stats))
}
