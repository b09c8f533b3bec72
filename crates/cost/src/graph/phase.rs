//! Where each node belongs: its phase (forward, backward, optimizer), its stage(s), and
//! the storage it occupies (views share their operand's storage).
//!
//! - **Phase**: a node whose scope starts with `optimizer` is part of the optimizer step;
//!   a node marked `recompute`, or whose scope has a `backward` component (autodiff's
//!   convention), is backward; everything else (including the loss) is forward.
//! - **Stage**: `annot.stage`, with `None` meaning stage 0. A leaf (input, parameter,
//!   constant) without a stage annotation lives on every stage that uses it (a weight
//!   used on two chips is stored on both; an input is streamed to every chip that reads
//!   it); an unused leaf lives on stage 0.
//! - **Storage root**: reshape and broadcast are views in Poplar, so their result is
//!   their operand's storage; the root of any other node is itself.

use tessera_ir::{Graph, NodeId, Op};

use crate::error::describe;
use crate::CostError;

/// The part of a training step a node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Forward pass (and loss) of a micro-batch.
    Forward,
    /// Backward pass of a micro-batch, recomputation included.
    Backward,
    /// The optimizer step, once per weight update.
    Optimizer,
}

/// The phase of a node with `scope` and `recompute` flag.
pub(crate) fn phase_of(scope: &str, recompute: bool) -> Phase {
    if scope == "optimizer" || scope.starts_with("optimizer.") {
        return Phase::Optimizer;
    }
    if recompute || has_component(scope, "backward") {
        Phase::Backward
    } else {
        Phase::Forward
    }
}

/// True when `part` is one of the dot-separated components of `scope`.
fn has_component(scope: &str, part: &str) -> bool {
    let bytes = scope.as_bytes();
    scope.match_indices(part).any(|(i, _)| {
        let end = i + part.len();
        let starts = i == 0 || bytes.get(i.wrapping_sub(1)) == Some(&b'.');
        let ends = end == bytes.len() || bytes.get(end) == Some(&b'.');
        starts && ends
    })
}

/// Per-node facts the accounting needs, indexed by node index.
pub(crate) struct Placement {
    /// The graph's nodes in its deterministic topological order.
    pub order: Vec<NodeId>,
    /// Position of each node index in `order` (`usize::MAX` for vacant indices).
    pub pos: Vec<usize>,
    /// Phase per node index.
    pub phase: Vec<Phase>,
    /// Stages per node index (one for computed nodes; the users' stages for leaves).
    pub stages: Vec<Vec<u32>>,
    /// Storage root per node index.
    pub root: Vec<NodeId>,
    /// Operands per node index, in operand order.
    operands: Vec<Vec<NodeId>>,
}

impl Placement {
    /// Computes the placement of every node, checking stages against `num_stages`.
    pub fn new(graph: &Graph, num_stages: u32) -> Result<Self, CostError> {
        let order = graph.topo_order();
        let size = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
        let mut pos = vec![usize::MAX; size];
        let mut phase = vec![Phase::Forward; size];
        let mut own_stage = vec![0u32; size];
        let mut root: Vec<NodeId> = (0..size).map(NodeId::new).collect();
        let mut operands = vec![Vec::new(); size];
        for (i, &id) in order.iter().enumerate() {
            let node = graph.node(id);
            let k = id.index();
            pos[k] = i;
            phase[k] = phase_of(&node.scope, node.annot.recompute);
            let stage = node.annot.stage.unwrap_or(0);
            if stage >= num_stages {
                return Err(CostError::StageOutOfRange {
                    node: describe(graph, id),
                    stage,
                    stages: num_stages,
                });
            }
            own_stage[k] = stage;
            let ops = graph.operands(id);
            if matches!(node.op, Op::Reshape { .. } | Op::BroadcastTo { .. }) {
                // Operands come before users in `order`, so the operand's root is final.
                if let Some(&src) = ops.first() {
                    root[k] = root[src.index()];
                }
            }
            operands[k] = ops;
        }
        let mut stages = vec![Vec::new(); size];
        for &id in &order {
            let node = graph.node(id);
            let k = id.index();
            stages[k] = if node.op.is_leaf() && node.annot.stage.is_none() {
                let mut s: Vec<u32> = graph
                    .users(id)
                    .iter()
                    .map(|u| own_stage[u.index()])
                    .collect();
                s.sort_unstable();
                s.dedup();
                if s.is_empty() {
                    vec![0]
                } else {
                    s
                }
            } else {
                vec![own_stage[k]]
            };
        }
        Ok(Placement {
            order,
            pos,
            phase,
            stages,
            root,
            operands,
        })
    }

    /// The operands of a node, in operand order.
    pub fn operands(&self, id: NodeId) -> &[NodeId] {
        self.operands.get(id.index()).map_or(&[], Vec::as_slice)
    }

    /// The stage of a computed node (the first of a leaf's stages).
    pub fn stage(&self, id: NodeId) -> u32 {
        self.stages
            .get(id.index())
            .and_then(|s| s.first())
            .copied()
            .unwrap_or(0)
    }

    /// The phase of a node.
    pub fn phase(&self, id: NodeId) -> Phase {
        self.phase
            .get(id.index())
            .copied()
            .unwrap_or(Phase::Forward)
    }

    /// The storage root of a node.
    pub fn root(&self, id: NodeId) -> NodeId {
        self.root.get(id.index()).copied().unwrap_or(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_scope_conventions() {
        assert_eq!(phase_of("lxmert.encoder.layer.0", false), Phase::Forward);
        assert_eq!(
            phase_of(
                "lxmert.encoder.layer.0.attention.self.query.backward",
                false
            ),
            Phase::Backward
        );
        assert_eq!(phase_of("lxmert.encoder.layer.0", true), Phase::Backward);
        assert_eq!(phase_of("optimizer.adamw", false), Phase::Optimizer);
        assert_eq!(phase_of("loss", false), Phase::Forward);
        // A module merely named like the markers is not one.
        assert_eq!(phase_of("backwards.optimizers", false), Phase::Forward);
        assert_eq!(phase_of("", false), Phase::Forward);
        assert_eq!(phase_of("backward", false), Phase::Backward);
        assert_eq!(phase_of("a.backward.b", false), Phase::Backward);
        assert_eq!(phase_of("a.xbackward", false), Phase::Forward);
        assert_eq!(phase_of("optimizers", false), Phase::Forward);
    }
}
