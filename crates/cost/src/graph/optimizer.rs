//! Trained parameters, and the per-parameter work that is not in a forward/backward graph:
//! gradient accumulation and (when the graph has no optimizer nodes) the AdamW update.
//!
//! A parameter is **trained** when the graph has an output `grad.<name>` (autodiff's
//! convention); its gradient has that output's type. Both analytic ops are memory-bound,
//! costed like an elementwise op per parameter tensor (one superstep each, as PopART
//! updates each weight with its own op):
//! - **accumulation** (every micro-batch when gradient accumulation is on): per element,
//!   load the accumulator and the gradient, store the accumulator: `3·s(grad)` bytes;
//! - **AdamW** (once per step): per element, load weight, gradient, both moments and store
//!   weight and both moments: `2·s(w) + s(grad) + 2·s(m) + 2·4` bytes (the second moment
//!   is `f32`), and [`crate::Assumptions::adamw_flops_per_element`] FLOPs.

use std::collections::HashMap;
use tessera_ir::{Graph, NodeId, Op};

use super::PhaseCost;
use crate::op::memory::spread_vectors;
use crate::op::{Model, Rates};

/// The output-name prefix of gradients (autodiff's `grad.<param name>`).
pub const GRAD_PREFIX: &str = "grad.";

/// One trained parameter.
#[derive(Debug, Clone)]
pub(crate) struct TrainedParam {
    /// The parameter node.
    pub param: NodeId,
    /// Elements of the parameter.
    pub elems: u64,
    /// Parameter element size, bytes.
    pub weight_size: u64,
    /// Gradient element size, bytes.
    pub grad_size: u64,
}

/// The trained parameters of `graph`, in output order.
pub(crate) fn trained_params(graph: &Graph) -> Vec<TrainedParam> {
    let by_name: HashMap<&str, NodeId> = graph
        .node_ids()
        .filter_map(|id| match &graph.node(id).op {
            Op::Param { name, .. } => Some((name.as_str(), id)),
            _ => None,
        })
        .collect();
    graph
        .outputs()
        .iter()
        .filter(|o| graph.contains(o.node))
        .filter_map(|o| {
            let name = o.name.strip_prefix(GRAD_PREFIX)?;
            let param = *by_name.get(name)?;
            let w = &graph.node(param).ty;
            let g = &graph.node(o.node).ty;
            Some(TrainedParam {
                param,
                elems: w.num_elements() as u64,
                weight_size: w.dtype.size_bytes() as u64,
                grad_size: g.dtype.size_bytes() as u64,
            })
        })
        .collect()
}

/// Adds to `phase` one memory-bound superstep per parameter, moving `bytes_per_element`
/// per element, and returns the code and vertex-state bytes those supersteps need.
fn per_param_steps(
    params: &[&TrainedParam],
    bytes_per_element: impl Fn(&TrainedParam) -> u64,
    flops_per_element: u64,
    tiles: u32,
    model: &Model<'_>,
    phase: &mut PhaseCost,
) -> u64 {
    let a = &model.assumptions;
    let mut code = 0u64;
    for p in params {
        if p.elems == 0 {
            continue;
        }
        let (used, e_t) = spread_vectors(p.elems, p.weight_size, tiles, a);
        let compute = Rates::cycles(e_t.saturating_mul(bytes_per_element(p)), model.rates.ls);
        phase.cycles.compute = phase.cycles.compute.saturating_add(compute);
        phase.cycles.sync = phase.cycles.sync.saturating_add(model.rates.step);
        phase.supersteps += 1;
        phase.nodes += 1;
        phase.flops = phase
            .flops
            .saturating_add(p.elems.saturating_mul(flops_per_element));
        code = code.saturating_add(used.saturating_mul(
            a.control_bytes_per_superstep + model.rates.workers * a.vertex_state_bytes,
        ));
    }
    code
}

/// Gradient accumulation of one micro-batch into the accumulators of `params`.
pub(crate) fn accumulation(
    params: &[&TrainedParam],
    tiles: u32,
    model: &Model<'_>,
) -> (PhaseCost, u64) {
    let mut phase = PhaseCost::default();
    let code = per_param_steps(params, |p| 3 * p.grad_size, 1, tiles, model, &mut phase);
    (phase, code)
}

/// One AdamW step over `params` with a first moment of `m_size` bytes per element.
pub(crate) fn adamw(
    params: &[&TrainedParam],
    m_size: u64,
    tiles: u32,
    model: &Model<'_>,
) -> (PhaseCost, u64) {
    let mut phase = PhaseCost::default();
    let flops = model.assumptions.adamw_flops_per_element;
    let code = per_param_steps(
        params,
        |p| 2 * p.weight_size + p.grad_size + 2 * m_size + 2 * 4,
        flops,
        tiles,
        model,
        &mut phase,
    );
    (phase, code)
}
