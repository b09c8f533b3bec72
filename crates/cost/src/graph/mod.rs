//! The cost of a whole (training) graph per pipeline stage: [`graph_cost`].
//!
//! Every node is costed once with [`crate::op_cost`] on the tiles of its stage's chip and
//! added to its stage's phase ([`phase`]): forward, backward (recomputation included, and
//! also reported on its own) or optimizer. Forward and backward figures are per
//! micro-batch; the optimizer step is per weight update. When gradient accumulation is on
//! (`G > 1`), adding each micro-batch's gradients into the accumulators is charged to the
//! backward phase ([`optimizer`] module); when the graph has no optimizer nodes, an AdamW
//! update of the trained parameters is costed analytically instead.
//!
//! Inter-chip copies: a value (other than a weight, constant or input, which are placed
//! on every chip that reads them) used on another stage than its own is sent there once
//! per micro-batch: as an activation if a forward node reads it there (a backward node
//! on that stage then reads the copy from its stash), otherwise as a gradient.
//!
//! Memory per stage ([`MemoryBreakdown`]), in bytes over the whole chip:
//! - weights: the parameters on the stage (a parameter used on two stages is on both);
//! - gradients: one buffer per trained parameter, of its gradient's type (the accumulator
//!   with `G > 1`, otherwise the gradient waiting for the optimizer);
//! - optimizer state: two moments per trained parameter element, the second `f32`, the
//!   first `f32` or `f16` (`half_first_order_momentum`); divided over the replicas with
//!   replicated tensor sharding (`R > 1`); in streaming memory instead of on chip with
//!   `optimizer_state_offchip`;
//! - stashed activations and peak temporaries: see [`memory`];
//! - code and vertex state: [`crate::Assumptions::code_bytes_per_tile`] on every tile,
//!   plus per superstep and used tile the control code, plus one vertex state per worker
//!   per used tile of each superstep that computes;
//! - capacity: `tiles_per_chip × bytes_per_tile`; `fits` when the on-chip total is within.

pub mod memory;
pub mod optimizer;
pub mod phase;
mod report;
#[cfg(test)]
mod tests;

use tessera_ir::{Graph, Op};
use tessera_target::Target;

use crate::op::Model;
use crate::CostError;
use phase::{Phase, Placement};

pub use memory::stash_copies;
pub use optimizer::GRAD_PREFIX;
pub use report::{CopyBytes, CostOptions, GraphCost, MemoryBreakdown, PhaseCost, StageCost};

/// Costs `graph` on `target` per pipeline stage. See the module documentation.
pub fn graph_cost(
    graph: &Graph,
    target: &Target,
    opts: &CostOptions,
) -> Result<GraphCost, CostError> {
    opts.pipeline.validate()?;
    let mut model = Model::new(target, &opts.assumptions)?;
    let tiles = opts.tiles_per_stage.unwrap_or(target.tiles_per_chip);
    if tiles == 0 || tiles > target.tiles_per_chip {
        return Err(CostError::InvalidOption {
            field: "tiles_per_stage",
            value: tiles.to_string(),
            expected: "between 1 and the target's tiles_per_chip",
        });
    }
    let p = opts.pipeline.stages;
    let num = p as usize;
    let pl = Placement::new(graph, p)?;
    let mut stages: Vec<StageCost> = (0..p)
        .map(|s| StageCost {
            stage: s,
            ..StageCost::default()
        })
        .collect();
    let mut op_temp = vec![0u64; pl.pos.len()];
    let mut code = vec![0u64; num];
    let a = &opts.assumptions;
    let workers = u64::from(target.worker_threads_per_tile);
    let mut training = false;
    for &id in &pl.order {
        let node = graph.node(id);
        let c = model.cost(graph, id, tiles)?;
        if let Some(t) = op_temp.get_mut(id.index()) {
            *t = c.temp_bytes;
        }
        let s = pl.stage(id) as usize;
        let Some(st) = stages.get_mut(s) else {
            continue;
        };
        let vertex_sets = if c.cycles.compute > 0 {
            c.supersteps
        } else {
            0
        };
        if let Some(cb) = code.get_mut(s) {
            let used = u64::from(c.tiles_used);
            *cb = cb
                .saturating_add(used * u64::from(c.supersteps) * a.control_bytes_per_superstep)
                .saturating_add(used * u64::from(vertex_sets) * workers * a.vertex_state_bytes);
        }
        if node.op.is_leaf() {
            continue;
        }
        match pl.phase(id) {
            Phase::Forward => st.forward.add(&c),
            Phase::Backward => {
                training = true;
                st.backward.add(&c);
                if node.annot.recompute {
                    st.recompute.add(&c);
                }
            }
            Phase::Optimizer => {
                st.optimizer.add(&c);
                st.optimizer_from_graph = true;
            }
        }
    }
    add_copies(graph, &pl, &mut stages);
    let trained = optimizer::trained_params(graph);
    let m_size: u64 = if opts.half_first_order_momentum { 2 } else { 4 };
    let (stash, stashed) = memory::stashes(graph, &pl, num);
    let excluded = memory::excluded_roots(graph, &pl);
    let peaks = memory::peak_temporaries(graph, &pl, (&excluded, &stashed), &op_temp, num);
    let g = opts.pipeline.grad_accum;
    let weights = weights_per_stage(graph, &pl, num);
    for st in &mut stages {
        let s = st.stage;
        let mine: Vec<&optimizer::TrainedParam> = trained
            .iter()
            .filter(|t| {
                pl.stages
                    .get(t.param.index())
                    .is_some_and(|v| v.contains(&s))
            })
            .collect();
        st.trained_elements = mine.iter().map(|t| t.elems).sum();
        st.trained_weight_bytes = mine.iter().map(|t| t.elems * t.weight_size).sum();
        st.gradient_bytes = mine.iter().map(|t| t.elems * t.grad_size).sum();
        st.optimizer_state_bytes = st.trained_elements.saturating_mul(m_size + 4);
        let mut extra_code = 0;
        if g > 1 {
            let (acc, c) = optimizer::accumulation(&mine, tiles, &model);
            st.accumulation = acc;
            st.backward.merge(&acc);
            extra_code += c;
        }
        if !st.optimizer_from_graph {
            let (opt, c) = optimizer::adamw(&mine, m_size, tiles, &model);
            st.optimizer = opt;
            extra_code += c;
        }
        let code_bytes = code
            .get(s as usize)
            .map_or(extra_code, |c| c.saturating_add(extra_code));
        st.memory = breakdown(
            target,
            opts,
            s,
            BreakdownParts {
                weights: weights.get(s as usize).copied().unwrap_or(0),
                gradients: st.gradient_bytes,
                optimizer_state: st.optimizer_state_bytes,
                stash: stash.get(s as usize).copied().unwrap_or(0),
                temporaries: peaks.get(s as usize).copied().unwrap_or(0),
                code: code_bytes,
                training,
            },
        );
    }
    Ok(GraphCost {
        graph: graph.name.clone(),
        target: target.name.clone(),
        tiles_per_stage: tiles,
        training,
        options: opts.clone(),
        stages,
    })
}

/// Bytes of the parameters on each stage.
fn weights_per_stage(graph: &Graph, pl: &Placement, num_stages: usize) -> Vec<u64> {
    let mut weights = vec![0u64; num_stages];
    for &id in &pl.order {
        let node = graph.node(id);
        if !matches!(node.op, Op::Param { .. }) {
            continue;
        }
        let b = node.ty.size_bytes() as u64;
        for &s in pl.stages.get(id.index()).map_or(&[][..], Vec::as_slice) {
            if let Some(w) = weights.get_mut(s as usize) {
                *w = w.saturating_add(b);
            }
        }
    }
    weights
}

/// Per-stage inputs of [`breakdown`] computed elsewhere.
struct BreakdownParts {
    weights: u64,
    gradients: u64,
    optimizer_state: u64,
    stash: u64,
    temporaries: u64,
    code: u64,
    training: bool,
}

/// The memory breakdown of stage `s`.
fn breakdown(
    target: &Target,
    opts: &CostOptions,
    s: u32,
    parts: BreakdownParts,
) -> MemoryBreakdown {
    let weights = parts.weights;
    let cfg = &opts.pipeline;
    let state = if cfg.replicated_tensor_sharding && cfg.replicas > 1 {
        parts.optimizer_state.div_ceil(u64::from(cfg.replicas))
    } else {
        parts.optimizer_state
    };
    let (on_chip_state, streaming_state) = if cfg.optimizer_state_offchip {
        (0, state)
    } else {
        (state, 0)
    };
    let copies = if parts.training {
        stash_copies(s, cfg.stages, cfg.grad_accum)
    } else {
        0
    };
    let stashed = parts.stash.saturating_mul(copies);
    let code = parts.code.saturating_add(
        opts.assumptions
            .code_bytes_per_tile
            .saturating_mul(u64::from(target.tiles_per_chip)),
    );
    let total = [
        weights,
        parts.gradients,
        on_chip_state,
        stashed,
        parts.temporaries,
        code,
    ]
    .iter()
    .fold(0u64, |acc, b| acc.saturating_add(*b));
    let capacity = target.bytes_per_chip();
    MemoryBreakdown {
        weights,
        gradients: parts.gradients,
        optimizer_state: on_chip_state,
        optimizer_state_streaming: streaming_state,
        stash_per_micro_batch: parts.stash,
        stash_copies: copies,
        stashed_activations: stashed,
        temporaries_peak: parts.temporaries,
        code_and_vertex_state: code,
        total,
        capacity,
        fits: total <= capacity,
    }
}

/// Adds the inter-chip copies of every value used on another stage than its own: once
/// per (value, receiving stage), as an activation if a forward node reads it there, else
/// as a gradient.
fn add_copies(graph: &Graph, pl: &Placement, stages: &mut [StageCost]) {
    use std::collections::HashMap;
    // (root, from, to) → read by a forward node on `to`.
    let mut moves: HashMap<(tessera_ir::NodeId, u32, u32), bool> = HashMap::new();
    for &u in &pl.order {
        let phase = pl.phase(u);
        if phase == Phase::Optimizer {
            continue;
        }
        let to = pl.stage(u);
        for &o in pl.operands(u) {
            let r = pl.root(o);
            if graph.node(r).op.is_leaf() || graph.node(o).op.is_leaf() {
                continue;
            }
            let from = pl.stage(o);
            if from != to {
                *moves.entry((r, from, to)).or_insert(false) |= phase == Phase::Forward;
            }
        }
    }
    for ((r, from, to), forward) in moves {
        let b = graph.node(r).ty.size_bytes() as u64;
        if let Some(src) = stages.get_mut(from as usize) {
            if forward {
                src.copies.forward_sent += b;
            } else {
                src.copies.backward_sent += b;
            }
        }
        if let Some(dst) = stages.get_mut(to as usize) {
            if forward {
                dst.copies.forward_received += b;
            } else {
                dst.copies.backward_received += b;
            }
        }
    }
}
