//! The recomputation mechanism: duplicate the forward nodes an [`Analysis`] selected and
//! make the backward pass read the duplicates.
//!
//! Each selected node gets one copy, with the same op, type, scope and stage, marked
//! `recompute` (so it prints as `... recompute` and the cost model counts it as backward
//! work). A copy reads the copies of its operands where those were selected too (on the
//! same stage), and the original operands otherwise — the checkpoints, leaves and values
//! from other stages. Every backward node that read a selected node on its own stage reads
//! the copy instead. Forward nodes are untouched, so the forward pass and every output are
//! unchanged, and a copy computes exactly what its original did: the same op on the same
//! operand values, hence bit-identical results.

use super::analysis::Analysis;
use crate::layers::{phase, Phase};
use std::collections::HashMap;
use tessera_ir::{Annotations, Graph, NodeId};

/// Returns `graph` with the recomputation `analysis` describes, and the copy of each
/// recomputed node.
pub(crate) fn apply(graph: &Graph, analysis: &Analysis) -> (Graph, HashMap<NodeId, NodeId>) {
    let mut g = graph.clone();
    let mut copy: HashMap<NodeId, NodeId> = HashMap::with_capacity(analysis.recomputed.len());
    let stage = |id: NodeId| graph.node(id).annot.stage;
    for &v in &analysis.recomputed {
        let node = graph.node(v);
        let operands: Vec<NodeId> = graph
            .operands(v)
            .into_iter()
            .map(|o| match copy.get(&o) {
                Some(&c) if stage(o) == stage(v) => c,
                _ => o,
            })
            .collect();
        let c = g.add_unchecked(
            node.op.clone(),
            &operands,
            node.ty.clone(),
            node.scope.clone(),
        );
        g.node_mut(c).annot = Annotations {
            stage: node.annot.stage,
            recompute: true,
        };
        copy.insert(v, c);
    }
    for b in graph.node_ids() {
        let node = graph.node(b);
        if node.op.is_leaf() || phase(node) != Phase::Backward {
            continue;
        }
        for (pos, o) in graph.operands(b).into_iter().enumerate() {
            if let Some(&c) = copy.get(&o) {
                if stage(o) == stage(b) {
                    g.set_operand(b, pos, c);
                }
            }
        }
    }
    (g, copy)
}
