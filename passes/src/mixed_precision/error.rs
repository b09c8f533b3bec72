//! Errors of the mixed-precision pass and of loss scaling; each names the configuration
//! field, or the node (as the text printer numbers it in the input graph, with op and
//! scope), it is about.

use tessera_ir::{Graph, IrError, NodeId, VerifyError};

/// Why the mixed-precision pass (or the loss-scaled differentiation) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixedPrecisionError {
    /// A configuration value is out of range.
    #[error("invalid precision config: `{field}` = {value}, expected {expected}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: String,
        /// The valid range.
        expected: &'static str,
    },
    /// The graph is not a DAG (never produced by the checked graph API).
    #[error("graph @{graph} has a cycle ({in_order} of {nodes} nodes are in topological order)")]
    Cycle {
        /// The graph's name.
        graph: String,
        /// Nodes that are.
        in_order: usize,
        /// All nodes.
        nodes: usize,
    },
    /// A rewritten node did not type-check (a bug in the pass, or an op whose operands
    /// cannot take the precision the policy gives it).
    #[error("rewriting `{op}` node {node} @{scope} in {dtype}: {source}")]
    Build {
        /// The node's printed name in the input graph.
        node: String,
        /// Its op.
        op: &'static str,
        /// Its scope.
        scope: String,
        /// The precision it was rewritten to (`f16`, `f32`, or `its own type`).
        dtype: String,
        /// The graph error.
        #[source]
        source: Box<IrError>,
    },
    /// The loss output to scale is missing or not a floating-point scalar.
    #[error("loss scaling: {0}")]
    Loss(String),
    /// Differentiating the scaled loss failed.
    #[error("loss scaling: {0}")]
    Autodiff(#[from] crate::autodiff::AutodiffError),
    /// The rewritten graph failed verification (a bug in the pass; checked in debug builds).
    #[error("mixed-precision produced an invalid graph: {0}")]
    Verify(#[from] VerifyError),
}

/// The printed name of `id` in `graph` (`%k`, or `%name` for inputs).
pub(crate) fn printed_name(
    graph: &Graph,
    names: &std::collections::HashMap<NodeId, String>,
    id: NodeId,
) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("%?{} of @{}", id.index(), graph.name))
}
