//! Inter-chip traffic of a segment of units: which values cross unit boundaries, and how
//! many bytes a segment receives and sends per micro-batch (see [`super::segments`]).

use crate::layers::{phase, Phase, Units};
use std::collections::HashMap;
use tessera_ir::{Graph, NodeId, Op};

/// One value that crosses units: its bytes, and (from unit, to unit, read by a forward
/// node) for each crossing.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    bytes: u64,
    edges: Vec<(u32, u32, bool)>,
}

/// The values read across units, by storage root (views share their operand's storage).
pub(crate) fn transfers(graph: &Graph, units: &Units) -> Vec<Transfer> {
    let mut roots: HashMap<NodeId, NodeId> = HashMap::new();
    let mut root = |id: NodeId| -> NodeId {
        if let Some(&r) = roots.get(&id) {
            return r;
        }
        let mut r = id;
        while matches!(
            graph.node(r).op,
            Op::Reshape { .. } | Op::BroadcastTo { .. }
        ) {
            match graph.operands(r).first() {
                Some(&o) => r = o,
                None => break,
            }
        }
        roots.insert(id, r);
        r
    };
    let mut by_root: HashMap<NodeId, Vec<(u32, u32, bool)>> = HashMap::new();
    for u in graph.node_ids() {
        let reader = graph.node(u);
        if reader.op.is_leaf() || phase(reader) == Phase::Optimizer {
            continue;
        }
        let Some(to) = units.unit_of(u) else { continue };
        let forward = phase(reader) == Phase::Forward;
        for o in graph.operands(u) {
            let r = root(o);
            if graph.node(o).op.is_leaf() || graph.node(r).op.is_leaf() {
                continue;
            }
            let Some(from) = units.unit_of(o) else {
                continue;
            };
            if from != to {
                let e = by_root.entry(r).or_default();
                match e
                    .iter_mut()
                    .find(|x| x.0 == from as u32 && x.1 == to as u32)
                {
                    Some(x) => x.2 |= forward,
                    None => e.push((from as u32, to as u32, forward)),
                }
            }
        }
    }
    let mut out: Vec<(NodeId, Transfer)> = by_root
        .into_iter()
        .map(|(r, edges)| {
            (
                r,
                Transfer {
                    bytes: graph.node(r).ty.size_bytes() as u64,
                    edges,
                },
            )
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    out.into_iter().map(|(_, t)| t).collect()
}

/// (received forward, received backward, sent forward, sent backward) bytes of segment
/// `a..b` per micro-batch.
pub(crate) fn traffic(transfers: &[Transfer], a: u32, b: u32) -> (u64, u64, u64, u64) {
    let inside = |u: u32| u >= a && u < b;
    let (mut rf, mut rb, mut sf, mut sb) = (0, 0, 0, 0);
    for t in transfers {
        let (mut recv, mut recv_fwd, mut sent, mut sent_fwd) = (false, false, false, false);
        for &(from, to, fwd) in &t.edges {
            if inside(to) && !inside(from) {
                recv = true;
                recv_fwd |= fwd;
            } else if inside(from) && !inside(to) {
                sent = true;
                sent_fwd |= fwd;
            }
        }
        if recv {
            if recv_fwd {
                rf += t.bytes;
            } else {
                rb += t.bytes;
            }
        }
        if sent {
            if sent_fwd {
                sf += t.bytes;
            } else {
                sb += t.bytes;
            }
        }
    }
    (rf, rb, sf, sb)
}
