//! Layers, units and phases: how recomputation and pipeline placement see a graph.
//!
//! Both passes reason about groups of nodes rather than single nodes:
//!
//! - the **phase** of a node ([`Phase`], [`phase`]): optimizer nodes are scoped
//!   `optimizer...`; backward nodes have a `backward` scope component (autodiff's
//!   convention) or are recomputations; everything else, the loss included, is forward;
//! - its **module scope** ([`module_scope`]): the scope without the trailing markers the
//!   passes add (`backward`, and the pipeline pass's [`COPY_MARKER`] and
//!   [`STASH_MARKER`]), i.e. the module whose forward computation the node belongs to;
//! - its **layer**: what a [`LayerRule`] makes of the module scope;
//! - its **unit** ([`Units`]): a layer, or a part of one (its direct sub-modules, e.g. a
//!   transformer layer's attention and feed-forward blocks) when placement may cut inside
//!   layers. Forward and backward nodes of a module share its unit.
//!
//! These conventions match the cost model's (`tessera-cost`), so that a unit's nodes are
//! costed in the phase this module puts them in.

mod attach;
mod rule;
#[cfg(test)]
mod tests_units;
mod units;

pub use rule::{is_number, prefix, LayerRule, LayerRuleError};
pub use units::{Granularity, Unit, Units};

use crate::autodiff::BACKWARD;
use tessera_ir::{Node, Op};

/// The scope component the pipeline pass appends to an inter-chip copy's scope.
pub const COPY_MARKER: &str = "ipu_copy";
/// The scope component the pipeline pass appends to a stash restore's scope.
pub const STASH_MARKER: &str = "stash";
/// The first scope component of optimizer nodes.
pub const OPTIMIZER_SCOPE: &str = "optimizer";

/// The part of a training step a node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The forward pass of a micro-batch (loss included).
    Forward,
    /// The backward pass of a micro-batch, recomputation included.
    Backward,
    /// The optimizer step.
    Optimizer,
}

/// The phase of a node (see the module documentation).
pub fn phase(node: &Node) -> Phase {
    phase_of(&node.scope, node.annot.recompute)
}

/// The phase of a node with `scope` and `recompute` flag.
pub fn phase_of(scope: &str, recompute: bool) -> Phase {
    if scope.split('.').next() == Some(OPTIMIZER_SCOPE) {
        Phase::Optimizer
    } else if recompute || scope.split('.').any(|c| c == BACKWARD) {
        Phase::Backward
    } else {
        Phase::Forward
    }
}

/// True for a forward node that is not a leaf: the values recomputation may duplicate.
pub fn is_forward_compute(node: &Node) -> bool {
    !node.op.is_leaf() && phase(node) == Phase::Forward
}

/// True for leaves that hold no per-micro-batch data (weights and constants).
pub fn is_static_leaf(op: &Op) -> bool {
    matches!(op, Op::Param { .. } | Op::Full { .. } | Op::Iota { .. })
}

/// `scope` without its trailing pass markers (`backward`, [`COPY_MARKER`],
/// [`STASH_MARKER`]): the module the node computes for.
pub fn module_scope(scope: &str) -> &str {
    let mut s = scope;
    loop {
        let (head, last) = match s.rsplit_once('.') {
            Some((h, l)) => (h, l),
            None => ("", s),
        };
        if last == BACKWARD || last == COPY_MARKER || last == STASH_MARKER {
            s = head;
        } else {
            return s;
        }
    }
}

/// `scope` with `marker` appended as a last component.
pub fn with_marker(scope: &str, marker: &str) -> String {
    if scope.is_empty() {
        marker.to_string()
    } else {
        format!("{scope}.{marker}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_scope_conventions() {
        assert_eq!(phase_of("enc.layer.0", false), Phase::Forward);
        assert_eq!(phase_of("enc.layer.0.backward", false), Phase::Backward);
        assert_eq!(
            phase_of("enc.layer.0.backward.ipu_copy", false),
            Phase::Backward
        );
        assert_eq!(phase_of("enc.layer.0", true), Phase::Backward);
        assert_eq!(phase_of("optimizer.adamw", false), Phase::Optimizer);
        assert_eq!(phase_of("loss", false), Phase::Forward);
        assert_eq!(phase_of("backwards", false), Phase::Forward);
    }

    #[test]
    fn module_scope_strips_markers_only_at_the_end() {
        assert_eq!(module_scope("a.b.backward"), "a.b");
        assert_eq!(module_scope("a.b.backward.ipu_copy"), "a.b");
        assert_eq!(module_scope("a.b.stash"), "a.b");
        assert_eq!(module_scope("backward"), "");
        assert_eq!(module_scope("a.backward.b"), "a.backward.b");
        assert_eq!(module_scope(""), "");
        assert_eq!(with_marker("", "stash"), "stash");
        assert_eq!(with_marker("a", "stash"), "a.stash");
    }
}
