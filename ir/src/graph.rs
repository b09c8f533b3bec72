//! The dataflow graph: nodes (one op, one typed result each) and operand edges, on petgraph.
//!
//! A [`Graph`] is a `StableDiGraph` whose node weights are [`Node`]s and whose edges run from
//! an operand to its user, weighted with the operand position. Node ids stay valid when other
//! nodes are removed, so passes can rewrite in place. Types are inferred when a node is added
//! ([`Graph::add`]): an ill-typed node never enters the graph through the checked API. Graph
//! inputs, parameters and constants are nodes without operands; named outputs point at nodes.
//!
//! The text printer numbers nodes in [`Graph::topo_order`], a deterministic topological order
//! (ties broken by creation order), so that dumps diff cleanly between passes.

use crate::error::IrError;
use crate::op::Op;
use crate::types::TensorType;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// Identifies a node in a [`Graph`]; stable across removal of other nodes.
pub type NodeId = NodeIndex<u32>;

/// Annotations that passes attach to nodes (printed at the end of the node's line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    /// Pipeline stage (chip within a replica) the node is placed on.
    pub stage: Option<u32>,
    /// The node is a recomputation (a copy of a forward node made for the backward pass).
    pub recompute: bool,
}

impl Annotations {
    /// True when no annotation is set.
    pub fn is_empty(&self) -> bool {
        self.stage.is_none() && !self.recompute
    }
}

/// One node: an op, its inferred result type, the scope of the module that created it, and
/// pass annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The result type (inferred when the node was added).
    pub ty: TensorType,
    /// Dotted module path, e.g. `lxmert.encoder.x_layers.2.visual_attention`; empty at top level.
    pub scope: String,
    /// Pass annotations.
    pub annot: Annotations,
}

/// A named graph output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The output's name, e.g. `question_answering_score`.
    pub name: String,
    /// The node whose value it is.
    pub node: NodeId,
}

/// A typed dataflow graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Graph {
    /// The graph's name (`@name` in the text IR).
    pub name: String,
    g: StableDiGraph<Node, u32, u32>,
    outputs: Vec<Output>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Graph {
            name: name.into(),
            g: StableDiGraph::default(),
            outputs: Vec::new(),
        }
    }

    /// Adds a node after inferring its type from its operands; an ill-typed node is rejected
    /// with an error naming the op and scope.
    pub fn add(
        &mut self,
        op: Op,
        operands: &[NodeId],
        scope: impl Into<String>,
    ) -> Result<NodeId, IrError> {
        let scope = scope.into();
        let mut types = Vec::with_capacity(operands.len());
        for &o in operands {
            match self.g.node_weight(o) {
                Some(n) => types.push(&n.ty),
                None => {
                    return Err(IrError::DanglingOperand {
                        op: op.name(),
                        scope,
                    })
                }
            }
        }
        let ty = op.infer(&types).map_err(|source| IrError::IllTyped {
            op: op.name(),
            scope: scope.clone(),
            source,
        })?;
        if let Op::Input { name, .. } | Op::Param { name, .. } = &op {
            let kind = if matches!(op, Op::Input { .. }) {
                "input"
            } else {
                "param"
            };
            let clash = self.g.node_weights().any(|n| match (&n.op, &op) {
                (Op::Input { name: a, .. }, Op::Input { .. })
                | (Op::Param { name: a, .. }, Op::Param { .. }) => a == name,
                _ => false,
            });
            if clash {
                return Err(IrError::DuplicateName {
                    kind,
                    name: name.clone(),
                });
            }
        }
        Ok(self.add_unchecked(op, operands, ty, scope))
    }

    /// Adds a node with a given result type without checking it. For passes that build
    /// nodes whose type they know and for tests of the verifier; [`crate::verify`] catches
    /// any inconsistency. Operands must exist (panics otherwise, like petgraph).
    pub fn add_unchecked(
        &mut self,
        op: Op,
        operands: &[NodeId],
        ty: TensorType,
        scope: impl Into<String>,
    ) -> NodeId {
        let id = self.g.add_node(Node {
            op,
            ty,
            scope: scope.into(),
            annot: Annotations::default(),
        });
        for (i, &o) in operands.iter().enumerate() {
            self.g.add_edge(o, id, i as u32);
        }
        id
    }

    /// Adds a graph input named `name` of type `ty`.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Result<NodeId, IrError> {
        self.add(
            Op::Input {
                name: name.to_string(),
                ty,
            },
            &[],
            "",
        )
    }

    /// Adds a parameter with its checkpoint name; its scope is the name without the last
    /// component (`a.b.weight` is in scope `a.b`).
    pub fn param(&mut self, name: &str, ty: TensorType) -> Result<NodeId, IrError> {
        let scope = name.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
        self.add(
            Op::Param {
                name: name.to_string(),
                ty,
            },
            &[],
            scope,
        )
    }

    /// Names a node as a graph output.
    pub fn set_output(&mut self, name: &str, node: NodeId) -> Result<(), IrError> {
        if self.outputs.iter().any(|o| o.name == name) {
            return Err(IrError::DuplicateName {
                kind: "output",
                name: name.to_string(),
            });
        }
        self.outputs.push(Output {
            name: name.to_string(),
            node,
        });
        Ok(())
    }

    /// Replaces the whole output list.
    pub fn set_outputs(&mut self, outputs: Vec<Output>) {
        self.outputs = outputs;
    }

    /// The named outputs, in order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The node of the output called `name`.
    pub fn output(&self, name: &str) -> Result<NodeId, IrError> {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.node)
            .ok_or_else(|| IrError::NotFound {
                kind: "output",
                name: name.to_string(),
                graph: self.name.clone(),
            })
    }

    /// The node with id `id`. Panics if it was removed (ids come from this graph).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id]
    }

    /// The node with id `id`, mutably (to set annotations or scope; changing `op` or `ty`
    /// is the caller's responsibility to keep consistent, and the verifier checks it).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id]
    }

    /// True when `id` names a node of this graph.
    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// All node ids in creation order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.g.node_indices()
    }

    /// The operands of `id`, in operand order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut edges: Vec<(u32, NodeId)> = self
            .g
            .edges_directed(id, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, s)| s).collect()
    }

    /// The distinct nodes that use `id` as an operand, in creation order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let set: BTreeSet<NodeId> = self
            .g
            .edges_directed(id, Direction::Outgoing)
            .map(|e| e.target())
            .collect();
        set.into_iter().collect()
    }

    /// Makes every use of `old` (operands and outputs) use `new` instead.
    pub fn replace_all_uses(&mut self, old: NodeId, new: NodeId) {
        let edges: Vec<(NodeId, u32)> = self
            .g
            .edges_directed(old, Direction::Outgoing)
            .map(|e| (e.target(), *e.weight()))
            .collect();
        for (target, pos) in edges {
            if let Some(e) = self.g.find_edge(old, target) {
                self.g.remove_edge(e);
            }
            self.g.add_edge(new, target, pos);
        }
        for o in &mut self.outputs {
            if o.node == old {
                o.node = new;
            }
        }
    }

    /// Sets operand `pos` of `id` to `new`.
    pub fn set_operand(&mut self, id: NodeId, pos: usize, new: NodeId) {
        let edge = self
            .g
            .edges_directed(id, Direction::Incoming)
            .find(|e| *e.weight() as usize == pos)
            .map(|e| e.id());
        if let Some(e) = edge {
            self.g.remove_edge(e);
        }
        self.g.add_edge(new, id, pos as u32);
    }

    /// Removes a node and its edges (the caller makes sure nothing still uses it).
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        self.g.remove_node(id)
    }

    /// Removes every node from which no output is reachable; returns how many were removed.
    pub fn remove_dead(&mut self) -> usize {
        let live = self.live_set();
        let dead: Vec<NodeId> = self
            .g
            .node_indices()
            .filter(|n| !live.contains(n))
            .collect();
        for &d in &dead {
            self.g.remove_node(d);
        }
        dead.len()
    }

    /// The nodes from which some output is reachable (inputs and parameters included).
    pub fn live_set(&self) -> HashSet<NodeId> {
        let mut live = HashSet::new();
        let mut stack: Vec<NodeId> = self.outputs.iter().map(|o| o.node).collect();
        while let Some(n) = stack.pop() {
            if self.g.contains_node(n) && live.insert(n) {
                stack.extend(self.g.neighbors_directed(n, Direction::Incoming));
            }
        }
        live
    }

    /// A deterministic topological order: Kahn's algorithm, always taking the ready node
    /// created first. Nodes on a cycle (never produced by the checked API) are left out;
    /// the verifier reports them.
    pub fn topo_order(&self) -> Vec<NodeId> {
        use std::cmp::Reverse;
        use std::collections::{BinaryHeap, HashMap};
        let mut indeg: HashMap<NodeId, usize> = HashMap::with_capacity(self.g.node_count());
        let mut ready = BinaryHeap::new();
        for n in self.g.node_indices() {
            let d = self.g.edges_directed(n, Direction::Incoming).count();
            if d == 0 {
                ready.push(Reverse(n));
            }
            indeg.insert(n, d);
        }
        let mut order = Vec::with_capacity(self.g.node_count());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let t = e.target();
                if let Some(d) = indeg.get_mut(&t) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(Reverse(t));
                    }
                }
            }
        }
        order
    }

    /// Graph inputs (nodes with [`Op::Input`]) in creation order.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.g
            .node_indices()
            .filter(|&n| matches!(self.g[n].op, Op::Input { .. }))
            .collect()
    }

    /// Parameters (nodes with [`Op::Param`]) in creation order.
    pub fn params(&self) -> Vec<NodeId> {
        self.g
            .node_indices()
            .filter(|&n| matches!(self.g[n].op, Op::Param { .. }))
            .collect()
    }

    /// The input node fed as `name`.
    pub fn input_by_name(&self, name: &str) -> Result<NodeId, IrError> {
        self.find_leaf(name, true)
    }

    /// The parameter node with checkpoint name `name`.
    pub fn param_by_name(&self, name: &str) -> Result<NodeId, IrError> {
        self.find_leaf(name, false)
    }

    fn find_leaf(&self, name: &str, input: bool) -> Result<NodeId, IrError> {
        self.g
            .node_indices()
            .find(|&n| match &self.g[n].op {
                Op::Input { name: x, .. } if input => x == name,
                Op::Param { name: x, .. } if !input => x == name,
                _ => false,
            })
            .ok_or_else(|| IrError::NotFound {
                kind: if input { "input" } else { "param" },
                name: name.to_string(),
                graph: self.name.clone(),
            })
    }

    /// The underlying petgraph graph (read-only), for graph algorithms.
    pub fn petgraph(&self) -> &StableDiGraph<Node, u32, u32> {
        &self.g
    }
}

impl Graph {
    /// The printed name of every node: a graph input is `%` + its feed name, every other
    /// node `%k`, numbered 0, 1, ... in [`Graph::topo_order`]. The text printer, the verifier
    /// and DOT export all use these names so that messages point at the printed IR.
    pub fn value_names(&self) -> std::collections::HashMap<NodeId, String> {
        let mut names = std::collections::HashMap::with_capacity(self.len());
        let mut k = 0usize;
        for id in self.topo_order() {
            let name = match &self.g[id].op {
                Op::Input { name, .. } => format!("%{name}"),
                _ => {
                    k += 1;
                    format!("%{}", k - 1)
                }
            };
            names.insert(id, name);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::op::{BinaryOp, UnaryOp};

    #[test]
    fn build_and_rewrite() {
        let mut g = Graph::new("t");
        let x = g
            .input("x", TensorType::new(DType::F32, vec![2, 3]))
            .unwrap();
        let w = g
            .param("m.w", TensorType::new(DType::F32, vec![3]))
            .unwrap();
        assert_eq!(g.node(w).scope, "m");
        let y = g.add(Op::Binary(BinaryOp::Mul), &[x, w], "m").unwrap();
        let z = g.add(Op::Unary(UnaryOp::Tanh), &[y], "m").unwrap();
        g.set_output("z", z).unwrap();
        assert_eq!(g.operands(y), vec![x, w]);
        assert_eq!(g.users(x), vec![y]);
        assert_eq!(g.topo_order(), vec![x, w, y, z]);
        let unused = g.add(Op::Unary(UnaryOp::Exp), &[x], "").unwrap();
        assert_eq!(g.remove_dead(), 1);
        assert!(!g.contains(unused));
        let e = g.add(Op::Unary(UnaryOp::Exp), &[y], "").unwrap();
        g.replace_all_uses(y, e);
        assert_eq!(g.operands(z), vec![e]);
    }

    #[test]
    fn rejects_ill_typed_and_duplicates() {
        let mut g = Graph::new("t");
        let x = g
            .input("x", TensorType::new(DType::F32, vec![2, 3]))
            .unwrap();
        let i = g
            .input("i", TensorType::new(DType::I64, vec![2, 3]))
            .unwrap();
        let e = g
            .add(Op::Binary(BinaryOp::Add), &[x, i], "enc.layer.0")
            .unwrap_err();
        assert!(e.to_string().contains("enc.layer.0"), "{e}");
        assert!(g.input("x", TensorType::scalar(DType::F32)).is_err());
    }
}
