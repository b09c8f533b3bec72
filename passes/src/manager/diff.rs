//! What a pass changed: nodes added and removed by node identity, and whether anything
//! changed at all.
//!
//! Passes preserve the ids of the nodes they keep ([`Graph`] ids are stable under removal,
//! and passes start from a clone of their input). A node of the input is *kept* when the
//! output has a node with the same id and the same op, type, scope and annotations; every
//! other input node counts as removed and every other output node as added, so a node
//! rewritten in place counts once in each. A kept node whose operands changed (a cast
//! inserted in front of it) is *rewired*, not added. The graph *changed* when a node was
//! added, removed or rewired, or the outputs or the graph's name differ. Whenever the printed
//! text IR differs the graph changed (the converse fails only for a pass that replaces a
//! node by an identical copy), and no printing is needed to find out.

use tessera_ir::{Graph, Node};

/// Node-level difference between a pass's input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphDiff {
    /// Nodes of the output that are not kept input nodes.
    pub added: usize,
    /// Nodes of the input that are not kept.
    pub removed: usize,
    /// Kept nodes whose operands changed.
    pub rewired: usize,
    /// True when anything differs (nodes, operands, outputs, graph name).
    pub changed: bool,
}

/// Compares `before` and `after` (see the module documentation).
pub fn diff(before: &Graph, after: &Graph) -> GraphDiff {
    let (mut kept, mut rewired) = (0, 0);
    for id in before.node_ids() {
        if after.contains(id) && same_node(before.node(id), after.node(id)) {
            kept += 1;
            if before.operands(id) != after.operands(id) {
                rewired += 1;
            }
        }
    }
    let removed = before.len() - kept;
    let added = after.len().saturating_sub(kept);
    let changed = added > 0
        || removed > 0
        || rewired > 0
        || before.outputs() != after.outputs()
        || before.name != after.name;
    GraphDiff {
        added,
        removed,
        rewired,
        changed,
    }
}

/// Node equality that treats two NaN constants as equal (`Op` compares floats with `==`).
fn same_node(a: &Node, b: &Node) -> bool {
    a.ty == b.ty
        && a.scope == b.scope
        && a.annot == b.annot
        && (a.op == b.op || format!("{:?}", a.op) == format!("{:?}", b.op))
}
