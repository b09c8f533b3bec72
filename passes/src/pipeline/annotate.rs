//! Writing a placement into the graph: stage annotations, inter-chip copies and stash
//! restores (steps 3–5 of the module documentation of [`super`]).

use crate::layers::{is_static_leaf, phase, with_marker, Phase, Units, COPY_MARKER, STASH_MARKER};
use std::collections::HashMap;
use tessera_ir::{Graph, IrError, NodeId, Op};

/// `graph` with every node's stage set: computed nodes from their unit's entry in
/// `assignment`, leaves to the lowest stage that reads them (0 if none does).
pub(crate) fn annotate(graph: &Graph, units: &Units, assignment: &[u32]) -> Graph {
    let mut g = graph.clone();
    let ids: Vec<NodeId> = g.node_ids().collect();
    for &id in &ids {
        if !g.node(id).op.is_leaf() {
            let stage = units
                .unit_of(id)
                .and_then(|u| assignment.get(u))
                .copied()
                .unwrap_or(0);
            g.node_mut(id).annot.stage = Some(stage);
        }
    }
    for &id in &ids {
        if g.node(id).op.is_leaf() {
            let stage = g
                .users(id)
                .into_iter()
                .filter_map(|u| g.node(u).annot.stage)
                .min()
                .unwrap_or(0);
            g.node_mut(id).annot.stage = Some(stage);
        }
    }
    g
}

/// True for the nodes the pass schedules just before their first reader: inter-chip
/// copies, stash restores and recomputed copies.
pub(crate) fn is_helper(node: &tessera_ir::Node) -> bool {
    let last = node.scope.rsplit('.').next().unwrap_or("");
    node.annot.recompute || last == COPY_MARKER || last == STASH_MARKER
}

/// Adds an identity (`reshape` to the same shape) of `of` on `stage`, scoped
/// `<scope of of>.<marker>`.
fn identity(g: &mut Graph, of: NodeId, stage: u32, marker: &str) -> Result<NodeId, IrError> {
    let node = g.node(of);
    let op = Op::Reshape {
        shape: node.ty.shape.clone(),
    };
    let scope = with_marker(&node.scope, marker);
    let id = g.add(op, &[of], scope)?;
    g.node_mut(id).annot.stage = Some(stage);
    Ok(id)
}

/// Inserts one inter-chip copy per (computed value, receiving stage) and makes the
/// readers on that stage use it; returns the number of copies and the bytes they move.
pub(crate) fn insert_copies(g: &mut Graph) -> Result<(usize, u64), IrError> {
    let mut copies: HashMap<(NodeId, u32), NodeId> = HashMap::new();
    let mut bytes = 0u64;
    for u in g.topo_order() {
        if g.node(u).op.is_leaf() {
            continue;
        }
        let Some(to) = g.node(u).annot.stage else {
            continue;
        };
        for (pos, o) in g.operands(u).into_iter().enumerate() {
            let src = g.node(o);
            if src.op.is_leaf() || src.annot.stage == Some(to) {
                continue;
            }
            let c = match copies.get(&(o, to)) {
                Some(&c) => c,
                None => {
                    bytes += src.ty.size_bytes() as u64;
                    let c = identity(g, o, to, COPY_MARKER)?;
                    copies.insert((o, to), c);
                    c
                }
            };
            g.set_operand(u, pos, c);
        }
    }
    Ok((copies.len(), bytes))
}

/// The storage root of `id`: through reshapes and broadcasts to the value they view.
fn storage_root(g: &Graph, mut id: NodeId) -> NodeId {
    while matches!(g.node(id).op, Op::Reshape { .. } | Op::BroadcastTo { .. }) {
        match g.operands(id).first() {
            Some(&o) => id = o,
            None => break,
        }
    }
    id
}

/// Makes every read of a forward value (or graph input) by a backward or recomputed node
/// go through a stash restore on the reader's stage: an identity scoped
/// `<source scope>.stash`, one per (value, stage). Returns how many restores were added.
/// Run it on a placed graph after recomputation (it is step 5 of the pass, exposed for
/// drivers that recompute between placement and stashing).
pub fn insert_stashes(g: &mut Graph) -> Result<usize, IrError> {
    let mut restores: HashMap<(NodeId, Option<u32>), NodeId> = HashMap::new();
    for b in g.topo_order() {
        let reader = g.node(b);
        if reader.op.is_leaf() || phase(reader) != Phase::Backward {
            continue;
        }
        let stage = reader.annot.stage;
        for (pos, o) in g.operands(b).into_iter().enumerate() {
            let src = g.node(o);
            let restored = src.scope.rsplit('.').next() == Some(STASH_MARKER);
            if restored
                || phase(src) != Phase::Forward
                || is_static_leaf(&g.node(storage_root(g, o)).op)
            {
                continue;
            }
            let r = match restores.get(&(o, stage)) {
                Some(&r) => r,
                None => {
                    let r = identity(g, o, stage.unwrap_or(0), STASH_MARKER)?;
                    if stage.is_none() {
                        g.node_mut(r).annot.stage = None;
                    }
                    restores.insert((o, stage), r);
                    r
                }
            };
            g.set_operand(b, pos, r);
        }
    }
    Ok(restores.len())
}

/// Checks that every recomputed node is read on its own stage only.
pub(crate) fn check_recompute_local(g: &Graph) -> Result<(), super::PipelineError> {
    for id in g.node_ids() {
        let node = g.node(id);
        if !node.annot.recompute {
            continue;
        }
        let stage = node.annot.stage.unwrap_or(0);
        for u in g.users(id) {
            let reader_stage = g.node(u).annot.stage.unwrap_or(0);
            if reader_stage != stage {
                return Err(super::PipelineError::RecomputeAcrossStages {
                    node: crate::recompute::describe(g, id),
                    stage,
                    reader_stage,
                });
            }
        }
    }
    Ok(())
}
