//! Recomputation policies: which forward values are checkpoints.
//!
//! - `layer`: a value is a checkpoint when a node of another unit (a layer, or a part of
//!   one at [`Granularity::SubLayer`]) or of another stage reads it, or it is a graph
//!   output — the outputs of every layer, as optimum-graphcore's
//!   `recompute_checkpoint_every_layer` places them. Everything inside a layer that the
//!   backward pass needs is recomputed from the layer's inputs.
//! - `pipeline`: only what a stage receives from other stages is kept, as in PopART's
//!   pipeline recomputation: the pipeline pass's inter-chip copies (views whose operand is
//!   on another stage), and values read directly across stages (which the analysis
//!   stashes on the reading stage); every other value on a stage, graph outputs aside, is
//!   recomputed from them.
//!
//! [`Granularity::SubLayer`]: crate::layers::Granularity::SubLayer

use super::RecomputeError;
use crate::layers::Units;
use tessera_ir::{Graph, NodeId, Op};

/// Checkpoints at unit boundaries (see the module documentation), by node index.
pub(crate) fn unit_boundaries(graph: &Graph, units: &Units) -> Vec<bool> {
    let mut keep = outputs(graph);
    for v in graph.node_ids() {
        let (unit, stage) = (units.unit_of(v), graph.node(v).annot.stage);
        let boundary = graph
            .users(v)
            .into_iter()
            .any(|u| units.unit_of(u) != unit || graph.node(u).annot.stage != stage);
        if boundary {
            set(&mut keep, v);
        }
    }
    keep
}

/// Checkpoints at stage inputs (see the module documentation), by node index; every
/// computed node must have a stage. Values read across stages need no entry: they are
/// never recomputed for a reader on another stage.
pub(crate) fn stage_inputs(graph: &Graph) -> Result<Vec<bool>, RecomputeError> {
    let mut keep = outputs(graph);
    for v in graph.node_ids() {
        let node = graph.node(v);
        if node.op.is_leaf() {
            continue;
        }
        let Some(stage) = node.annot.stage else {
            return Err(RecomputeError::MissingStage {
                node: super::describe(graph, v),
            });
        };
        let view = matches!(node.op, Op::Reshape { .. } | Op::BroadcastTo { .. });
        let received = view
            && graph.operands(v).into_iter().any(|o| {
                let on = graph.node(o);
                !on.op.is_leaf() && on.annot.stage != Some(stage)
            });
        if received {
            set(&mut keep, v);
        }
    }
    Ok(keep)
}

/// A table with the graph outputs' nodes marked.
fn outputs(graph: &Graph) -> Vec<bool> {
    let size = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
    let mut keep = vec![false; size];
    for o in graph.outputs() {
        set(&mut keep, o.node);
    }
    keep
}

fn set(keep: &mut [bool], id: NodeId) {
    if let Some(k) = keep.get_mut(id.index()) {
        *k = true;
    }
}

/// Looks a node up in a table made by this module.
pub(crate) fn kept(keep: &[bool], id: NodeId) -> bool {
    keep.get(id.index()).copied().unwrap_or(true)
}
