//! The optimizer step on the tiles: the optimizer graph merged into the placed training graph
//! as one more segment, run once per step after the flush.
//!
//! [`merge_optimizer`] appends the optimizer graph (`tessera_passes::optim`) to the gradient
//! graph: its parameters are the training graph's (same names: the update reads the weights
//! where they live); its `grad_sum.<p>` inputs are bound to the gradient accumulators of the
//! `grad.<p>` outputs (no copy); its Adam moments `adam_m.<p>` / `adam_v.<p>` are *streamed*:
//! off chip between steps, copied onto the tiles when the optimizer segment starts and back
//! when it ends (optimum-graphcore's `optimizer_state_offchip`); each `param.<p>` result is
//! copied over the weight `<p>` at the end. Every optimizer node goes on the chip of its
//! largest operand, so a weight's update runs where the weight is and only scalars (the
//! learning rate, the global gradient norm) cross chips. A sharded optimizer
//! (`crate::optim::build_optimizer_graph_sharded`) names its state and results
//! `<kind>.<p>@<k>`: shard `k` of weight `p`, whose new rows are written over the weight's
//! from the shard's first element.

use crate::autodiff::GRAD_PREFIX;
use crate::lower::error::LowerError;
use crate::optim::split_shard_name;
use std::collections::{HashMap, HashSet};
use tessera_ir::{Graph, NodeId, Op};

/// How the optimizer's inputs and outputs attach to the training graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct OptimizerBinding {
    /// Nodes of the optimizer (in the merged graph), with its bound and streamed inputs
    /// (not its plain scalar inputs, which stream in like any input).
    pub nodes: HashSet<NodeId>,
    /// `grad_sum.<p>` input → the `grad.<p>` output whose accumulator it reads.
    pub grad_inputs: HashMap<NodeId, String>,
    /// Streamed optimizer-state inputs (`adam_m.<p>`, `adam_v.<p>`).
    pub state_inputs: Vec<NodeId>,
    /// `param.<p>` (or shard `param.<p>@<k>`) output name → the weight `<p>` it replaces,
    /// from element `offset` on (a shard's first element; 0 when unsharded).
    pub writes: Vec<(String, NodeId, u64)>,
    /// Names of the optimizer's outputs (streamed out after its segment).
    pub outputs: Vec<String>,
}

/// The prefix of the optimizer's gradient inputs.
pub const GRAD_SUM_PREFIX: &str = "grad_sum.";
/// The prefix of the optimizer's updated-weight outputs.
pub const PARAM_PREFIX: &str = "param.";

fn err(what: &str, reason: String) -> LowerError {
    LowerError::Pipeline {
        node: what.to_string(),
        scope: "optimizer".into(),
        reason,
    }
}

/// `grad` (placed training graph) with `opt` (optimizer graph) appended; see the module docs.
pub(crate) fn merge_optimizer(
    grad: &Graph,
    opt: &Graph,
) -> Result<(Graph, OptimizerBinding), LowerError> {
    let mut g = grad.clone();
    let mut params: HashMap<String, NodeId> = HashMap::new();
    for p in g.params() {
        if let Op::Param { name, .. } = &g.node(p).op {
            params.insert(name.clone(), p);
        }
    }
    let grad_outputs: HashMap<String, NodeId> = g
        .outputs()
        .iter()
        .map(|o| (o.name.clone(), o.node))
        .collect();
    let stage = |g: &Graph, id: NodeId| g.node(id).annot.stage.unwrap_or(0);
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    let mut b = OptimizerBinding::default();
    for id in opt.topo_order() {
        let node = opt.node(id);
        let new = match &node.op {
            Op::Param { name, ty } => {
                let p = *params.get(name).ok_or_else(|| {
                    err(
                        name,
                        "the optimizer updates a weight the training graph does not have".into(),
                    )
                })?;
                if g.node(p).ty != *ty {
                    return Err(err(
                        name,
                        format!(
                            "the optimizer expects {ty}, the training graph has {}",
                            g.node(p).ty
                        ),
                    ));
                }
                p
            }
            Op::Input { name, ty } => {
                if let Ok(existing) = g.input_by_name(name) {
                    existing
                } else {
                    let i = g
                        .input(name, ty.clone())
                        .map_err(|e| err(name, e.to_string()))?;
                    let on = if let Some(p) = name.strip_prefix(GRAD_SUM_PREFIX) {
                        let out = format!("{GRAD_PREFIX}{p}");
                        let gnode = *grad_outputs.get(&out).ok_or_else(|| {
                            err(name, format!("the training graph has no output `{out}`"))
                        })?;
                        b.grad_inputs.insert(i, out);
                        b.nodes.insert(i);
                        stage(&g, gnode)
                    } else if let Some((_, p)) = name.split_once('.') {
                        b.state_inputs.push(i);
                        b.nodes.insert(i);
                        let p = split_shard_name(p).map_or(p, |(base, _)| base);
                        params.get(p).map_or(0, |&w| stage(&g, w))
                    } else {
                        0
                    };
                    g.node_mut(i).annot.stage = Some(on);
                    i
                }
            }
            op => {
                let operands: Vec<NodeId> = opt
                    .operands(id)
                    .into_iter()
                    .map(|o| {
                        map.get(&o)
                            .copied()
                            .ok_or_else(|| err(op.name(), "operand not merged".into()))
                    })
                    .collect::<Result<_, _>>()?;
                // The chip of the largest operand (ties: the first).
                let on = operands
                    .iter()
                    .copied()
                    .max_by_key(|&o| (g.node(o).ty.num_elements(), std::cmp::Reverse(o)))
                    .map_or(0, |o| stage(&g, o));
                let n = g
                    .add(op.clone(), &operands, node.scope.clone())
                    .map_err(|e| err(op.name(), e.to_string()))?;
                g.node_mut(n).annot.stage = Some(on);
                b.nodes.insert(n);
                n
            }
        };
        map.insert(id, new);
    }
    // Shards of a weight's update write consecutive row ranges, in shard order.
    let mut next: HashMap<(String, usize), u64> = HashMap::new();
    let mut sizes: HashMap<String, Vec<(usize, u64)>> = HashMap::new();
    for o in opt.outputs() {
        if let Some(p) = o.name.strip_prefix(PARAM_PREFIX) {
            if let Some((base, k)) = split_shard_name(p) {
                let n = opt.node(o.node).ty.num_elements() as u64;
                sizes.entry(base.to_string()).or_default().push((k, n));
            }
        }
    }
    for (base, mut shards) in sizes {
        shards.sort_unstable();
        let mut at = 0;
        for (k, n) in shards {
            next.insert((base.clone(), k), at);
            at += n;
        }
    }
    for o in opt.outputs() {
        let node = *map
            .get(&o.node)
            .ok_or_else(|| err(&o.name, "output not merged".into()))?;
        g.set_output(&o.name, node)
            .map_err(|e| err(&o.name, e.to_string()))?;
        if let Some(p) = o.name.strip_prefix(PARAM_PREFIX) {
            let (base, offset) = match split_shard_name(p) {
                Some((base, k)) => (base, next.get(&(base.to_string(), k)).copied()),
                None => (p, Some(0)),
            };
            let w = *params
                .get(base)
                .ok_or_else(|| err(&o.name, "no such weight".into()))?;
            let offset = offset.ok_or_else(|| err(&o.name, "shard not found".into()))?;
            b.writes.push((o.name.clone(), w, offset));
        }
        b.outputs.push(o.name.clone());
    }
    Ok((g, b))
}
