//! Errors of the cost model.
//!
//! Every error names what it is about: the node (by index, op and scope, as the text IR
//! prints them), the target field, or the pipeline setting, so that a caller can point the
//! user at the offending line of a dump or of a configuration file.

use tessera_ir::{Graph, NodeId};

/// Why a cost could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CostError {
    /// The node id does not name a node of the graph.
    #[error("node #{index} is not in graph @{graph}")]
    NoSuchNode {
        /// The node's index.
        index: u32,
        /// The graph's name.
        graph: String,
    },
    /// A node's operands do not have the shape or element type its op needs (the graph
    /// was built with unchecked edits and not verified).
    #[error("cannot cost {node}: {reason}")]
    MalformedNode {
        /// The node, as `#index \`op\` @scope`.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// An op was asked to run on zero tiles.
    #[error("cannot cost {node} on 0 tiles")]
    NoTiles {
        /// The node, as `#index \`op\` @scope`.
        node: String,
    },
    /// The target description has a value the model cannot divide by.
    #[error("target `{target}` is invalid: {reason}")]
    InvalidTarget {
        /// The target's name.
        target: String,
        /// What the target's own validation found (its message, naming the field).
        reason: String,
    },
    /// The target lacks a resource the configuration needs (links, streaming memory).
    #[error("target `{target}` cannot run this configuration: {reason}")]
    MissingResource {
        /// The target's name.
        target: String,
        /// What is missing, and which setting needs it.
        reason: String,
    },
    /// A pipeline or cost option is out of range.
    #[error("invalid {field} = {value}: {expected}")]
    InvalidOption {
        /// The option's name (`stages`, `grad_accum`, ...).
        field: &'static str,
        /// Its value.
        value: String,
        /// The valid range.
        expected: &'static str,
    },
    /// A node is placed on a stage the pipeline does not have.
    #[error("{node} is on stage {stage}, but the pipeline has {stages} stage(s)")]
    StageOutOfRange {
        /// The node, as `#index \`op\` @scope`.
        node: String,
        /// Its stage annotation.
        stage: u32,
        /// The number of stages.
        stages: u32,
    },
    /// A modelling assumption has a value the model cannot use (e.g. a zero grain).
    #[error("invalid assumption {field} = {value}: {expected}")]
    InvalidAssumption {
        /// The assumption's field name.
        field: &'static str,
        /// Its value.
        value: String,
        /// The valid range.
        expected: &'static str,
    },
}

/// A node as error messages print it: `#index \`op\` @scope` (`@<top>` for the empty scope).
pub(crate) fn describe(graph: &Graph, id: NodeId) -> String {
    if !graph.contains(id) {
        return format!("#{}", id.index());
    }
    let node = graph.node(id);
    let scope = if node.scope.is_empty() {
        "<top>"
    } else {
        node.scope.as_str()
    };
    format!("#{} `{}` @{}", id.index(), node.op.name(), scope)
}

/// A [`CostError::MalformedNode`] for `id`.
pub(crate) fn malformed(graph: &Graph, id: NodeId, reason: impl Into<String>) -> CostError {
    CostError::MalformedNode {
        node: describe(graph, id),
        reason: reason.into(),
    }
}
