//! Graphviz DOT export of a [`Graph`], for looking at a model or a pass result as a picture
//! (`dot -Tsvg`).
//!
//! Every node is a DOT node `n<index>` labelled with its printed value name, op, attributes
//! (as in the text IR) and result type; graph inputs, parameters and constants have their
//! own shapes and colours. Edges run from operand to user and carry the operand position
//! when the user has more than one operand. Named outputs are extra `out<i>` nodes. Nodes
//! are grouped into `subgraph cluster_...` boxes by pipeline stage when any node has a
//! stage annotation, otherwise by the first two components of their scope
//! (`lxmert.encoder`). Names use the same rules as [`crate::text`], so a label can be
//! looked up in the printed IR.

use crate::graph::{Graph, Node, NodeId};
use crate::op::Op;
use crate::text::names::ValueNames;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// Escapes `s` for a double-quoted DOT string: `"` and `\` are backslash-escaped, line
/// breaks become `\n` (a centred line break in a label), other control characters spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Which box a node is drawn in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Cluster {
    Stage(u32),
    Scope(String),
}

impl Cluster {
    fn of(node: &Node, by_stage: bool) -> Option<Cluster> {
        if by_stage {
            return node.annot.stage.map(Cluster::Stage);
        }
        if node.scope.is_empty() {
            return None;
        }
        let prefix: Vec<&str> = node.scope.splitn(3, '.').take(2).collect();
        Some(Cluster::Scope(prefix.join(".")))
    }

    fn label(&self) -> String {
        match self {
            Cluster::Stage(s) => format!("stage {s}"),
            Cluster::Scope(s) => s.clone(),
        }
    }
}

/// The DOT attributes (without label) that give each kind of node its look.
fn style(node: &Node) -> &'static str {
    match node.op {
        Op::Input { .. } => "shape=invhouse, style=filled, fillcolor=\"#cfe3ff\"",
        Op::Param { .. } => "shape=box, style=filled, fillcolor=\"#ffe8a3\"",
        Op::Full { .. } | Op::Iota { .. } => "shape=ellipse, style=filled, fillcolor=\"#e4e4e4\"",
        _ if node.annot.recompute => "shape=box, style=\"rounded,dashed\"",
        _ => "shape=box, style=rounded",
    }
}

/// The (unescaped) label: `%k = op`, the parameter name (quoted as in the text IR) or the
/// attributes, the result type.
fn label(name: &str, node: &Node) -> String {
    let mut l = format!("{name} = {}", node.op.name());
    if let Op::Param { name: ckpt, .. } = &node.op {
        l.push('\n');
        crate::text::names::push_quoted(&mut l, ckpt);
    }
    let attrs = crate::text::op_attributes(&node.op);
    if !attrs.is_empty() {
        let _ = write!(l, "\n{{{}}}", attrs.join(", "));
    }
    let _ = write!(l, "\n{}", node.ty);
    if node.annot.recompute {
        l.push_str("\nrecompute");
    }
    l
}

/// The graph as a Graphviz `digraph`.
pub fn to_dot(graph: &Graph) -> String {
    let names = ValueNames::new(graph);
    let mut order = names.order.clone();
    if order.len() < graph.len() {
        let seen: HashSet<NodeId> = order.iter().copied().collect();
        order.extend(graph.node_ids().filter(|n| !seen.contains(n)));
    }
    let by_stage = order.iter().any(|&id| graph.node(id).annot.stage.is_some());

    // Clusters in order of first appearance, each with its nodes in printed order.
    let mut clusters: Vec<(Cluster, Vec<NodeId>)> = Vec::new();
    let mut index: HashMap<Cluster, usize> = HashMap::new();
    let mut loose = Vec::new();
    for &id in &order {
        match Cluster::of(graph.node(id), by_stage) {
            Some(c) => {
                let i = *index.entry(c.clone()).or_insert_with(|| {
                    clusters.push((c, Vec::new()));
                    clusters.len() - 1
                });
                if let Some((_, members)) = clusters.get_mut(i) {
                    members.push(id);
                }
            }
            None => loose.push(id),
        }
    }

    let mut out = String::with_capacity(128 * graph.len() + 256);
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&graph.name));
    out.push_str("  rankdir=TB;\n  graph [fontname=\"monospace\"];\n");
    out.push_str("  node [fontname=\"monospace\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=8];\n");
    let node_line = |out: &mut String, id: NodeId, indent: &str| {
        let node = graph.node(id);
        let _ = writeln!(
            out,
            "{indent}n{} [label=\"{}\", {}];",
            id.index(),
            escape(&label(&names.get(id), node)),
            style(node)
        );
    };
    for (i, (c, members)) in clusters.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{i} {{");
        let _ = writeln!(out, "    label=\"{}\";", escape(&c.label()));
        out.push_str("    style=\"rounded,filled\";\n    fillcolor=\"#f6f6f6\";\n");
        for &id in members {
            node_line(&mut out, id, "    ");
        }
        out.push_str("  }\n");
    }
    for &id in &loose {
        node_line(&mut out, id, "  ");
    }
    for &id in &order {
        let operands = graph.operands(id);
        for (pos, o) in operands.iter().enumerate() {
            let _ = write!(out, "  n{} -> n{}", o.index(), id.index());
            if operands.len() > 1 {
                let _ = write!(out, " [label=\"{pos}\"]");
            }
            out.push_str(";\n");
        }
    }
    for (i, o) in graph.outputs().iter().enumerate() {
        let _ = writeln!(
            out,
            "  out{i} [label=\"{}\", shape=doubleoctagon];",
            escape(&format!("return {}", o.name))
        );
        if graph.contains(o.node) {
            let _ = writeln!(out, "  n{} -> out{i};", o.node.index());
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BinaryOp, DType, TensorType};

    fn small() -> (Graph, Vec<NodeId>) {
        let mut g = Graph::new("my \"graph\"");
        let x = g
            .input("x", TensorType::new(DType::F32, vec![2, 3]))
            .unwrap();
        let w = g
            .param(
                "lxmert.encoder.w\"q\"",
                TensorType::new(DType::F32, vec![3]),
            )
            .unwrap();
        let c = g
            .add(
                Op::Full {
                    value: 0.5,
                    ty: TensorType::scalar(DType::F32),
                },
                &[],
                "",
            )
            .unwrap();
        let m = g
            .add(Op::Binary(BinaryOp::Mul), &[x, w], "lxmert.encoder.layer.0")
            .unwrap();
        let a = g
            .add(Op::Binary(BinaryOp::Add), &[m, c], "lxmert.pooler")
            .unwrap();
        g.set_output("out", a).unwrap();
        (g, vec![x, w, c, m, a])
    }

    /// Braces outside quoted strings balance and never go negative.
    fn balanced(dot: &str) -> bool {
        let (mut depth, mut in_str, mut esc) = (0i64, false, false);
        for ch in dot.chars() {
            match (in_str, esc, ch) {
                (true, true, _) => esc = false,
                (true, false, '\\') => esc = true,
                (true, false, '"') => in_str = false,
                (false, _, '"') => in_str = true,
                (false, _, '{') => depth += 1,
                (false, _, '}') => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                _ => {}
            }
        }
        depth == 0 && !in_str
    }

    #[test]
    fn every_node_and_edge_with_escaped_labels() {
        let (g, ids) = small();
        let dot = to_dot(&g);
        assert!(dot.starts_with("digraph \"my \\\"graph\\\"\" {"), "{dot}");
        assert!(balanced(&dot), "{dot}");
        for id in &ids {
            assert!(dot.contains(&format!("  n{} [label=", id.index())), "{dot}");
        }
        let [x, w, c, m, a] = ids[..] else { panic!() };
        for (from, to, pos) in [(x, m, 0), (w, m, 1), (m, a, 0), (c, a, 1)] {
            let edge = format!("n{} -> n{} [label=\"{pos}\"];", from.index(), to.index());
            assert!(dot.contains(&edge), "missing {edge} in\n{dot}");
        }
        assert_eq!(dot.matches(" -> ").count(), 5, "{dot}");
        assert!(dot.contains(&format!("n{} -> out0;", a.index())), "{dot}");
        // The parameter's quotes are escaped inside the label.
        assert!(dot.contains(r#"\"lxmert.encoder.w\\\"q\\\"\"\n"#), "{dot}");
        assert!(dot.contains(r"%2 = mul\nf32[2,3]"), "{dot}");
        assert!(dot.contains(r"%1 = full\n{value=0.5}\nf32[]"), "{dot}");
        assert!(
            dot.contains(r#"[label="%x = input\nf32[2,3]", shape=invhouse"#),
            "{dot}"
        );
    }

    #[test]
    fn clusters_by_scope_prefix_then_by_stage() {
        let (mut g, ids) = small();
        let dot = to_dot(&g);
        // param (scope lxmert.encoder) and mul (lxmert.encoder.layer.0) share a box.
        assert_eq!(dot.matches("subgraph cluster_").count(), 2, "{dot}");
        assert!(dot.contains("label=\"lxmert.encoder\";"), "{dot}");
        assert!(dot.contains("label=\"lxmert.pooler\";"), "{dot}");
        let enc = dot.split("subgraph cluster_").nth(1).unwrap();
        let enc = &enc[..enc.find("  }").unwrap()];
        assert!(enc.contains(&format!("n{} ", ids[1].index())), "{enc}");
        assert!(enc.contains(&format!("n{} ", ids[3].index())), "{enc}");

        g.node_mut(ids[3]).annot.stage = Some(1);
        g.node_mut(ids[4]).annot.stage = Some(1);
        g.node_mut(ids[4]).annot.recompute = true;
        let dot = to_dot(&g);
        assert!(balanced(&dot));
        assert_eq!(dot.matches("subgraph cluster_").count(), 1, "{dot}");
        assert!(dot.contains("label=\"stage 1\";"), "{dot}");
        assert!(dot.contains("rounded,dashed"), "{dot}");
    }

    #[test]
    fn escape_rules() {
        assert_eq!(escape("a\"b\\c\nd\te"), "a\\\"b\\\\c\\nd e");
        assert!(!balanced("{ \"}\" "));
        assert!(balanced("{ \"}\\\"\" }"));
    }
}
