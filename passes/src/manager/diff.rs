//! What a pass changed: nodes added and removed, and whether anything changed at all.
//!
//! Passes may keep node ids (most start from a clone of their input) or rebuild the graph
//! from scratch (the mixed-precision pass does), so nodes are matched by content, not by
//! id: a node's *signature* is its op with its attributes, result type, scope and
//! annotations (not its operands). Added = output nodes left over after matching the
//! signatures of the input one to one; removed = input nodes left over. A node rewritten in
//! place (new type, new scope) counts once in each; an inserted cast counts as added; a
//! node whose only change is its operands counts in neither. The graph *changed* when its
//! printed text IR differs, which catches rewiring, renamed outputs and renamed graphs; the
//! texts are only compared when the counts are both zero.

use std::collections::HashMap;
use tessera_ir::{Graph, Node};

/// Node-level difference between a pass's input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphDiff {
    /// Output nodes with no matching input node.
    pub added: usize,
    /// Input nodes with no matching output node.
    pub removed: usize,
    /// True when the printed text IR differs.
    pub changed: bool,
}

/// Compares `before` and `after` (see the module documentation).
pub fn diff(before: &Graph, after: &Graph) -> GraphDiff {
    let mut balance: HashMap<String, i64> = HashMap::with_capacity(before.len());
    for id in before.node_ids() {
        *balance.entry(signature(before.node(id))).or_default() -= 1;
    }
    for id in after.node_ids() {
        *balance.entry(signature(after.node(id))).or_default() += 1;
    }
    let sum = |positive: bool| -> usize {
        balance
            .values()
            .filter(|&&v| (v > 0) == positive && v != 0)
            .map(|v| v.unsigned_abs() as usize)
            .sum()
    };
    let (added, removed) = (sum(true), sum(false));
    let changed = added > 0
        || removed > 0
        || tessera_ir::text::print(before) != tessera_ir::text::print(after);
    GraphDiff {
        added,
        removed,
        changed,
    }
}

/// Everything about a node but its operands. `Debug` of the op includes its attributes
/// and prints a NaN constant the same way every time.
fn signature(n: &Node) -> String {
    format!("{:?}|{}|{}|{:?}", n.op, n.ty, n.scope, n.annot)
}
