//! Just-in-time placement of helper nodes in a graph's schedule.
//!
//! [`Graph::topo_order`] — which the text printer numbers nodes by and the cost model scans
//! for liveness — is Kahn's algorithm taking the ready node created first. Nodes a pass
//! adds late (recomputed copies, inter-chip copies, stash restores) therefore run as soon as
//! their operands allow, long before they are needed: all of a stage's recomputation would
//! sit at the start of its backward pass, every recomputed activation live at once.
//!
//! The same holds for backward nodes that do not depend on the incoming gradient (the
//! factor `1 − y²` of `tanh′`, GELU's derivative, ...): ready as soon as the forward values
//! (or their recomputed copies) exist, they would pull the whole recomputation forward
//! with them. [`off_chain_backward`] finds them.
//!
//! [`rebuild_lazy`] rebuilds the graph with node ids in a better schedule: the current
//! topological order of the other nodes, each *lazy* node moved to just before its first
//! user (after its own lazy operands, recursively). Kahn's algorithm on the rebuilt graph,
//! whose ids follow that order, reproduces it exactly. Node ids change; ops, types,
//! scopes, annotations, edges and outputs do not.

use std::collections::HashMap;
use tessera_ir::{Graph, NodeId, Output};

/// The input graph is not a DAG (a node's operand is not scheduled before it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot schedule graph @{graph}: node #{node} is on a cycle or reads a missing node")]
pub struct ScheduleError {
    /// The graph's name.
    pub graph: String,
    /// The node's index in the input graph.
    pub node: usize,
}

/// The backward nodes that do not depend on the gradient seed, by node index.
///
/// The seed is autodiff's `d loss`: a backward-phase leaf in the scope of the node of the
/// `loss` output (or below it: loss scaling seeds `loss.scale.backward`). Nodes reachable
/// from it form the gradient chain; every other backward node (a derivative factor, a
/// constant's broadcast) is off the chain. Without a `loss` output nothing is.
pub fn off_chain_backward(graph: &Graph) -> Vec<bool> {
    use crate::layers::{module_scope, phase, Phase};
    let size = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
    let mut off = vec![false; size];
    let Ok(loss) = graph.output(crate::loss::LOSS) else {
        return off;
    };
    let loss_module = module_scope(&graph.node(loss).scope).to_string();
    let is_seed = |node: &tessera_ir::Node| {
        let m = module_scope(&node.scope);
        node.op.is_leaf()
            && phase(node) == Phase::Backward
            && (m == loss_module || m.starts_with(&format!("{loss_module}.")))
    };
    let mut on_chain = vec![false; size];
    for id in graph.topo_order() {
        let node = graph.node(id);
        if is_seed(node) {
            if let Some(slot) = on_chain.get_mut(id.index()) {
                *slot = true;
            }
            continue;
        }
        if node.op.is_leaf() || phase(node) != Phase::Backward {
            continue;
        }
        let fed = graph
            .operands(id)
            .into_iter()
            .any(|o| on_chain.get(o.index()).copied().unwrap_or(false));
        let slot = if fed {
            on_chain.get_mut(id.index())
        } else {
            off.get_mut(id.index())
        };
        if let Some(slot) = slot {
            *slot = true;
        }
    }
    off
}

/// Rebuilds `graph` with every node for which `lazy` holds scheduled just before its first
/// user (see the module documentation).
pub fn rebuild_lazy(graph: &Graph, lazy: &dyn Fn(NodeId) -> bool) -> Result<Graph, ScheduleError> {
    let order = graph.topo_order();
    let error = |id: NodeId| ScheduleError {
        graph: graph.name.clone(),
        node: id.index(),
    };
    if order.len() != graph.len() {
        let on_cycle = graph
            .node_ids()
            .find(|id| !order.contains(id))
            .unwrap_or_default();
        return Err(error(on_cycle));
    }
    let mut g = Graph::new(graph.name.clone());
    let mut new: HashMap<NodeId, NodeId> = HashMap::with_capacity(graph.len());
    // Adds `id` (all of whose operands are already added).
    let emit = |g: &mut Graph, new: &mut HashMap<NodeId, NodeId>, id: NodeId| {
        let node = graph.node(id);
        let operands = graph
            .operands(id)
            .into_iter()
            .map(|o| new.get(&o).copied().ok_or_else(|| error(id)))
            .collect::<Result<Vec<_>, _>>()?;
        let n = g.add_unchecked(
            node.op.clone(),
            &operands,
            node.ty.clone(),
            node.scope.clone(),
        );
        g.node_mut(n).annot = node.annot.clone();
        new.insert(id, n);
        Ok::<(), ScheduleError>(())
    };
    for &id in &order {
        if lazy(id) || new.contains_key(&id) {
            continue;
        }
        // Lazy operands first, depth first, each after its own lazy operands.
        let mut stack: Vec<(NodeId, bool)> = graph
            .operands(id)
            .into_iter()
            .rev()
            .filter(|o| lazy(*o) && !new.contains_key(o))
            .map(|o| (o, false))
            .collect();
        while let Some((v, expanded)) = stack.pop() {
            if new.contains_key(&v) {
                continue;
            }
            if expanded {
                emit(&mut g, &mut new, v)?;
                continue;
            }
            stack.push((v, true));
            for o in graph.operands(v).into_iter().rev() {
                if lazy(o) && !new.contains_key(&o) {
                    stack.push((o, false));
                }
            }
        }
        emit(&mut g, &mut new, id)?;
    }
    // Lazy nodes no other node reads (e.g. feeding outputs only), in topological order.
    for &id in &order {
        if !new.contains_key(&id) {
            emit(&mut g, &mut new, id)?;
        }
    }
    let outputs = graph
        .outputs()
        .iter()
        .map(|o| {
            new.get(&o.node)
                .map(|&node| Output {
                    name: o.name.clone(),
                    node,
                })
                .ok_or_else(|| error(o.node))
        })
        .collect::<Result<Vec<_>, _>>()?;
    g.set_outputs(outputs);
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::{DType, Op, TensorType, UnaryOp};

    #[test]
    fn lazy_nodes_move_to_just_before_their_first_user() {
        let t = TensorType::new(DType::F32, vec![2]);
        let mut g = Graph::new("s");
        let x = g.input("x", t).unwrap();
        let a = g.add(Op::Unary(UnaryOp::Tanh), &[x], "a").unwrap();
        let b = g.add(Op::Unary(UnaryOp::Exp), &[a], "b").unwrap();
        let c = g.add(Op::Unary(UnaryOp::Neg), &[b], "c").unwrap();
        // Added last but ready right after `a`: Kahn runs it second.
        let l1 = g.add(Op::Unary(UnaryOp::Abs), &[a], "lazy1").unwrap();
        let l2 = g.add(Op::Unary(UnaryOp::Sqrt), &[l1], "lazy2").unwrap();
        let d = g
            .add(Op::Binary(tessera_ir::BinaryOp::Add), &[c, l2], "d")
            .unwrap();
        g.set_output("d", d).unwrap();
        let scopes = |g: &Graph| -> Vec<String> {
            g.topo_order()
                .iter()
                .map(|&n| g.node(n).scope.clone())
                .collect()
        };
        assert_eq!(scopes(&g), ["", "a", "b", "c", "lazy1", "lazy2", "d"]);
        let lazy = [l1, l2];
        let r = rebuild_lazy(&g, &|n| lazy.contains(&n)).unwrap();
        assert_eq!(scopes(&r), ["", "a", "b", "c", "lazy1", "lazy2", "d"]);
        // Ids follow the schedule, so topo_order is creation order.
        let ids: Vec<usize> = r.topo_order().iter().map(|n| n.index()).collect();
        assert_eq!(ids, (0..7).collect::<Vec<_>>());
        assert_eq!(tessera_ir::text::print(&r), tessera_ir::text::print(&g));
    }

    #[test]
    fn backward_nodes_off_the_gradient_chain_are_found() {
        let t = TensorType::new(DType::F32, vec![2]);
        let mut g = Graph::new("s");
        let x = g.input("x", t.clone()).unwrap();
        let y = g.add(Op::Unary(UnaryOp::Tanh), &[x], "f").unwrap();
        let loss = g.add(Op::Unary(UnaryOp::Neg), &[y], "loss").unwrap();
        let seed = g
            .add(
                Op::Full {
                    value: 1.0,
                    ty: t.clone(),
                },
                &[],
                "loss.backward",
            )
            .unwrap();
        let dy = g
            .add(Op::Unary(UnaryOp::Neg), &[seed], "loss.backward")
            .unwrap();
        // 1 − y² needs only the forward value and a constant; dy · (1 − y²) needs the seed.
        let one = g
            .add(Op::Full { value: 1.0, ty: t }, &[], "f.backward")
            .unwrap();
        let y2 = g
            .add(Op::Binary(tessera_ir::BinaryOp::Mul), &[y, y], "f.backward")
            .unwrap();
        let d = g
            .add(
                Op::Binary(tessera_ir::BinaryOp::Sub),
                &[one, y2],
                "f.backward",
            )
            .unwrap();
        let dx = g
            .add(
                Op::Binary(tessera_ir::BinaryOp::Mul),
                &[dy, d],
                "f.backward",
            )
            .unwrap();
        g.set_output("loss", loss).unwrap();
        g.set_output("dx", dx).unwrap();
        let off = off_chain_backward(&g);
        assert!(off[y2.index()] && off[d.index()]);
        assert!(!off[dx.index()] && !off[dy.index()] && !off[y.index()] && !off[seed.index()]);
    }

    #[test]
    fn lazy_nodes_do_not_run_early() {
        let t = TensorType::new(DType::F32, vec![2]);
        let mut g = Graph::new("s");
        let x = g.input("x", t).unwrap();
        let a = g.add(Op::Unary(UnaryOp::Tanh), &[x], "a").unwrap();
        // A removed node leaves a hole that the next addition reuses: the lazy node gets a
        // small id and Kahn runs it right after `a`, long before `e` needs it.
        let tmp = g.add(Op::Unary(UnaryOp::Erf), &[x], "tmp").unwrap();
        let b = g.add(Op::Unary(UnaryOp::Exp), &[a], "b").unwrap();
        let c = g.add(Op::Unary(UnaryOp::Neg), &[b], "c").unwrap();
        let d = g.add(Op::Unary(UnaryOp::Abs), &[c], "d").unwrap();
        g.remove(tmp);
        let late = g.add(Op::Unary(UnaryOp::Sqrt), &[a], "late").unwrap();
        let e = g
            .add(Op::Binary(tessera_ir::BinaryOp::Add), &[d, late], "e")
            .unwrap();
        g.set_output("e", e).unwrap();
        let before: Vec<String> = g
            .topo_order()
            .iter()
            .map(|&n| g.node(n).scope.clone())
            .collect();
        assert_eq!(before, ["", "a", "late", "b", "c", "d", "e"]);
        let r = rebuild_lazy(&g, &|n| n == late).unwrap();
        let scopes: Vec<String> = r
            .topo_order()
            .iter()
            .map(|&n| r.node(n).scope.clone())
            .collect();
        assert_eq!(scopes, ["", "a", "b", "c", "d", "late", "e"]);
        assert_eq!(r.outputs()[0].name, "e");
    }
}
