//! Helpers of [`super::Units`]: node positions, sub-module names, and step 2 of the
//! partition — attaching the computed nodes no layer rule covers to a neighbour's unit.

use super::units::{Key, NONE};
use super::{is_forward_compute, phase, Phase};
use tessera_ir::{Graph, NodeId};

/// One past the largest node index of `graph`.
pub(super) fn index_bound(graph: &Graph) -> usize {
    graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0)
}

/// Position of each node index in `order` (`usize::MAX` for vacant indices).
pub(super) fn positions(order: &[NodeId], size: usize) -> Vec<usize> {
    let mut pos = vec![usize::MAX; size];
    for (i, id) in order.iter().enumerate() {
        pos[id.index()] = i;
    }
    pos
}

/// `<layer>.<next component>` of module scope `ms` under `layer`, or `layer` itself.
pub(super) fn sub_module<'s>(ms: &'s str, layer: &'s str) -> &'s str {
    match ms.get(layer.len() + 1..) {
        Some(rest) if ms.len() > layer.len() && !rest.is_empty() => {
            let comp = rest.split('.').next().unwrap_or("");
            &ms[..layer.len() + 1 + comp.len()]
        }
        _ => layer,
    }
}

/// Gives every computed node without a unit the unit of its first user, else of its
/// latest operand, else a catch-all unit.
pub(super) fn attach_uncovered(
    graph: &Graph,
    order: &[NodeId],
    pos: &[usize],
    prov: &mut [u32],
    keys: &mut Vec<Key>,
) {
    let needs = |id: NodeId, prov: &[u32]| !graph.node(id).op.is_leaf() && prov[id.index()] == NONE;
    for &id in order.iter().rev() {
        if needs(id, prov) {
            let best = graph
                .users(id)
                .into_iter()
                .filter(|u| prov[u.index()] != NONE)
                .min_by_key(|u| pos[u.index()]);
            if let Some(u) = best {
                prov[id.index()] = prov[u.index()];
            }
        }
    }
    let mut catch_all = None;
    for &id in order {
        if needs(id, prov) {
            let forward = phase(graph.node(id)) == Phase::Forward;
            let best = graph
                .operands(id)
                .into_iter()
                .filter(|o| prov[o.index()] != NONE)
                .filter(|o| forward || is_forward_compute(graph.node(*o)))
                .max_by_key(|o| pos[o.index()])
                .or_else(|| {
                    graph
                        .operands(id)
                        .into_iter()
                        .filter(|o| prov[o.index()] != NONE)
                        .max_by_key(|o| pos[o.index()])
                });
            prov[id.index()] = match best {
                Some(o) => prov[o.index()],
                None => *catch_all.get_or_insert_with(|| {
                    keys.push(Key {
                        name: "(unscoped)".into(),
                        layer: "(unscoped)".into(),
                        first: usize::MAX,
                    });
                    (keys.len() - 1) as u32
                }),
            };
        }
    }
}
