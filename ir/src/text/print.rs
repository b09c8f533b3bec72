//! The printer: a [`Graph`] as text IR, one node per line in [`Graph::topo_order`].
//!
//! Values are named as [`Graph::value_names`] names them (inputs by feed name, every other
//! node `%k` in printed order), so that verifier messages point at printed lines. Names are
//! computed once for the whole graph and output is appended to one buffer, so printing is
//! linear in the graph size (plus the topological sort).

use super::attrs::push_attrs;
use super::names::{push_name, push_quoted, ValueNames};
use crate::graph::{Annotations, Graph, Node};
use crate::op::Op;
use std::fmt::Write as _;

/// Appends `@scope` and then the annotations (`stage=N recompute`), each group preceded by
/// `sep` and left out when empty.
fn push_trailer(out: &mut String, scope: &str, annot: &Annotations, sep: &str) {
    if !scope.is_empty() {
        out.push_str(sep);
        out.push('@');
        push_name(out, scope);
    }
    if let Some(stage) = annot.stage {
        let _ = write!(out, "{sep}stage={stage}");
    }
    if annot.recompute {
        out.push_str(if annot.stage.is_some() { " " } else { sep });
        out.push_str("recompute");
    }
}

/// Prints the graph in the text IR format documented in [`crate::text`].
pub fn print(graph: &Graph) -> String {
    let names = ValueNames::new(graph);
    let mut out = String::with_capacity(64 * graph.len() + 64);
    out.push_str("graph @");
    push_name(&mut out, &graph.name);
    out.push('(');
    for (i, id) in graph.inputs().into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let node = graph.node(id);
        names.push(&mut out, id);
        let _ = write!(out, ": {}", node.ty);
        push_trailer(&mut out, &node.scope, &node.annot, " ");
    }
    out.push_str(") {\n");

    for &id in &names.order {
        let node = graph.node(id);
        if !matches!(node.op, Op::Input { .. }) {
            push_node(&mut out, graph, &names, id, node);
        }
    }
    if names.order.len() < graph.len() {
        let _ = writeln!(
            out,
            "  // error: {} node(s) on a cycle, not printed",
            graph.len() - names.order.len()
        );
    }

    out.push_str("  return");
    for (i, o) in graph.outputs().iter().enumerate() {
        out.push_str(if i > 0 { ", %" } else { " %" });
        push_name(&mut out, &o.name);
        out.push_str(": ");
        names.push(&mut out, o.node);
    }
    out.push_str("\n}\n");
    out
}

fn push_node(out: &mut String, graph: &Graph, names: &ValueNames, id: crate::NodeId, node: &Node) {
    out.push_str("  ");
    names.push(out, id);
    out.push_str(" = ");
    out.push_str(node.op.name());
    if !node.op.is_leaf() {
        out.push('(');
        for (i, o) in graph.operands(id).into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            names.push(out, o);
        }
        out.push(')');
    }
    if let Op::Param { name, .. } = &node.op {
        out.push(' ');
        push_quoted(out, name);
    }
    push_attrs(out, &node.op);
    let _ = write!(out, " : {}", node.ty);
    push_trailer(out, &node.scope, &node.annot, "  ");
    out.push('\n');
}
