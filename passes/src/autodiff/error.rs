//! Errors of the autodiff pass; each names the node (as the text printer numbers it in the
//! input graph, with op and scope), output or option it is about.

use tessera_ir::{Graph, IrError, NodeId, TensorType, VerifyError};

/// Why the autodiff pass failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutodiffError {
    /// The graph has no output with the loss's name.
    #[error("graph @{graph} has no output `{name}` to differentiate (its outputs: {available})")]
    NoLoss {
        /// The graph's name.
        graph: String,
        /// The loss output name looked for.
        name: String,
        /// The graph's output names, comma-separated.
        available: String,
    },
    /// The loss output refers to a node that is not in the graph (an unverified graph).
    #[error("loss output `{name}` of graph @{graph} refers to a removed node")]
    DanglingLoss {
        /// The graph's name.
        graph: String,
        /// The loss output's name.
        name: String,
    },
    /// The loss is not a floating-point scalar.
    #[error("loss output `{name}` ({node} @{scope}) must be a floating-point scalar, got {ty}")]
    LossNotScalar {
        /// The loss output's name.
        name: String,
        /// The loss node's printed name.
        node: String,
        /// The loss node's scope.
        scope: String,
        /// Its type.
        ty: TensorType,
    },
    /// The seed is not a finite number.
    #[error("autodiff seed_scale must be finite, got {0}")]
    InvalidSeed(f64),
    /// A node's rule does not apply to it.
    #[error("cannot differentiate `{op}` node {node} @{scope}: {reason}")]
    Rule {
        /// The forward node's printed name (as in the input graph's text IR).
        node: String,
        /// Its op.
        op: &'static str,
        /// Its scope.
        scope: String,
        /// Why.
        reason: String,
    },
    /// A rule built an ill-typed backward node (a bug in the rule).
    #[error("backward of `{op}` node {node} @{scope} failed to build: {source}")]
    Build {
        /// The forward node's printed name.
        node: String,
        /// Its op.
        op: &'static str,
        /// Its scope.
        scope: String,
        /// The graph error.
        #[source]
        source: Box<IrError>,
    },
    /// The differentiated graph failed verification (a bug in the pass; checked in debug
    /// builds).
    #[error("autodiff produced an invalid graph: {0}")]
    Verify(#[from] VerifyError),
}

pub(super) fn printed_name(graph: &Graph, id: NodeId) -> String {
    graph
        .value_names()
        .remove(&id)
        .unwrap_or_else(|| format!("%?{}", id.index()))
}

pub(super) fn build_error(graph: &Graph, id: NodeId, source: IrError) -> AutodiffError {
    let node = graph.node(id);
    AutodiffError::Build {
        node: printed_name(graph, id),
        op: node.op.name(),
        scope: node.scope.clone(),
        source: Box::new(source),
    }
}

pub(super) fn rule_error(graph: &Graph, id: NodeId, reason: String) -> AutodiffError {
    let node = graph.node(id);
    AutodiffError::Rule {
        node: printed_name(graph, id),
        op: node.op.name(),
        scope: node.scope.clone(),
        reason,
    }
}
