//! The verifier: checks a whole graph and reports every violation, each with its node.
//!
//! Invariants checked:
//! 1. every edge's operand positions of a node are exactly `0..n` (no gaps, no duplicates);
//! 2. every node's stored result type equals the type its op infers from its operands
//!    (so every value is typed and every op is applied to operands it accepts);
//! 3. the graph is acyclic;
//! 4. input names are unique, parameter names are unique, output names are unique;
//! 5. every output refers to a node of the graph;
//! 6. scopes are dotted paths of non-empty components without white space.
//!
//! Passes run the verifier after they finish; the pass manager wraps its report with the
//! pass's name. Errors name nodes as the text printer does (`%12`), with op and scope.

use crate::graph::{Graph, NodeId};
use crate::op::Op;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One violated invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The offending node's printed name (`%12`), or `None` for graph-level problems.
    pub node: Option<String>,
    /// The offending node's scope (empty for graph-level problems).
    pub scope: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) if self.scope.is_empty() => write!(f, "{n}: {}", self.message),
            Some(n) => write!(f, "{n} @{}: {}", self.scope, self.message),
            None => write!(f, "graph: {}", self.message),
        }
    }
}

/// All violations found in a graph (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The graph's name.
    pub graph: String,
    /// Every violation, in printed order.
    pub violations: Vec<Violation>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "graph @{} failed verification with {} error(s):",
            self.graph,
            self.violations.len()
        )?;
        for v in &self.violations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// Checks every invariant listed in the module documentation.
pub fn verify(graph: &Graph) -> Result<(), VerifyError> {
    let mut out = Vec::new();
    let order = graph.topo_order();
    let names = graph.value_names();
    let name_of = |id: NodeId| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("%?{}", id.index()))
    };
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();

    if order.len() != graph.len() {
        let cyclic: Vec<NodeId> = graph
            .node_ids()
            .filter(|n| !position.contains_key(n))
            .collect();
        for id in cyclic {
            let n = graph.node(id);
            out.push((
                usize::MAX,
                Violation {
                    node: Some(format!("%?{}", id.index())),
                    scope: n.scope.clone(),
                    message: format!("`{}` is on a cycle", n.op.name()),
                },
            ));
        }
    }

    let mut seen_inputs = HashSet::new();
    let mut seen_params = HashSet::new();
    for &id in &order {
        let node = graph.node(id);
        let mut report = |message: String| {
            out.push((
                position[&id],
                Violation {
                    node: Some(name_of(id)),
                    scope: node.scope.clone(),
                    message,
                },
            ))
        };
        // 1. operand positions
        let mut positions: Vec<u32> = graph
            .petgraph()
            .edges_directed(id, petgraph::Direction::Incoming)
            .map(|e| *e.weight())
            .collect();
        positions.sort_unstable();
        if positions.iter().enumerate().any(|(i, &p)| p as usize != i) {
            report(format!(
                "`{}` has operand positions {positions:?}, expected 0..{}",
                node.op.name(),
                positions.len()
            ));
            continue;
        }
        // 2. types
        let operands = graph.operands(id);
        let types: Vec<_> = operands.iter().map(|&o| &graph.node(o).ty).collect();
        match node.op.infer(&types) {
            Ok(ty) if ty == node.ty => {}
            Ok(ty) => report(format!(
                "`{}` result declared {} but its operands give {ty}",
                node.op.name(),
                node.ty
            )),
            Err(e) => report(format!("ill-typed `{}`: {e}", node.op.name())),
        }
        // 4. unique names
        match &node.op {
            Op::Input { name, .. } if !seen_inputs.insert(name.clone()) => {
                report(format!("duplicate input name `{name}`"))
            }
            Op::Param { name, .. } if !seen_params.insert(name.clone()) => {
                report(format!("duplicate parameter name `{name}`"))
            }
            _ => {}
        }
        // 6. scope syntax
        if !node.scope.is_empty()
            && node
                .scope
                .split('.')
                .any(|c| c.is_empty() || c.chars().any(char::is_whitespace))
        {
            report(format!("malformed scope `{}`", node.scope));
        }
    }

    // 5. outputs
    let mut seen_outputs = HashSet::new();
    for o in graph.outputs() {
        if !graph.contains(o.node) {
            out.push((
                usize::MAX,
                Violation {
                    node: None,
                    scope: String::new(),
                    message: format!("output `{}` refers to a removed node", o.name),
                },
            ));
        }
        if !seen_outputs.insert(o.name.clone()) {
            out.push((
                usize::MAX,
                Violation {
                    node: None,
                    scope: String::new(),
                    message: format!("duplicate output name `{}`", o.name),
                },
            ));
        }
    }

    if out.is_empty() {
        return Ok(());
    }
    out.sort_by_key(|(p, _)| *p);
    Err(VerifyError {
        graph: graph.name.clone(),
        violations: out.into_iter().map(|(_, v)| v).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::op::{BinaryOp, UnaryOp};
    use crate::types::TensorType;

    #[test]
    fn accepts_well_formed() {
        let mut g = Graph::new("ok");
        let x = g.input("x", TensorType::new(DType::F32, vec![4])).unwrap();
        let y = g.add(Op::Unary(UnaryOp::Exp), &[x], "a.b").unwrap();
        g.set_output("y", y).unwrap();
        verify(&g).unwrap();
    }

    #[test]
    fn reports_every_error_with_its_node() {
        let mut g = Graph::new("bad");
        let x = g.input("x", TensorType::new(DType::F32, vec![4])).unwrap();
        let i = g.input("i", TensorType::new(DType::I64, vec![4])).unwrap();
        // wrong declared type
        let a = g.add_unchecked(
            Op::Unary(UnaryOp::Exp),
            &[x],
            TensorType::new(DType::F32, vec![5]),
            "enc.layer.0",
        );
        // ill-typed: f32 + i64
        let b = g.add_unchecked(
            Op::Binary(BinaryOp::Add),
            &[x, i],
            TensorType::new(DType::F32, vec![4]),
            "enc.layer.1",
        );
        g.set_output("a", a).unwrap();
        g.set_output("b", b).unwrap();
        let err = verify(&g).unwrap_err();
        assert_eq!(err.violations.len(), 2, "{err}");
        let text = err.to_string();
        assert!(text.contains("%0 @enc.layer.0"), "{text}");
        assert!(text.contains("%1 @enc.layer.1"), "{text}");
    }
}
