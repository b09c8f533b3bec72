//! Errors of the reference evaluator.
//!
//! Kernels report what went wrong with a value ([`KernelError`]) without knowing which node
//! they run for; the driver wraps that with the node's printed name and scope
//! ([`NodeName`], `%k @scope` as in the text IR) into an [`EvalError`], so every message
//! points at a line of the printed graph.

use crate::op::TypeError;
use crate::types::TensorType;
use std::fmt;

/// A node as the text printer names it: `%k` (or `%feed_name` for inputs) and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName {
    /// The printed value name from [`crate::Graph::value_names`], e.g. `%12`.
    pub name: String,
    /// The node's scope (dotted module path; empty at top level).
    pub scope: String,
}

/// Formats as `%k @scope`, or just `%k` at top level.
impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scope.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{} @{}", self.name, self.scope)
        }
    }
}

/// What went wrong while computing one node's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// An index operand (of gather, scatter_add or one_hot) is negative or too large.
    #[error("index {index} at position {position:?} of the indices is out of range 0..{bound}")]
    IndexOutOfRange {
        /// The offending index value.
        index: i64,
        /// Its multi-index within the indices tensor.
        position: Vec<usize>,
        /// The exclusive upper bound (table rows, scatter rows or one-hot depth).
        bound: usize,
    },
    /// Integer arithmetic overflowed.
    #[error("i64 overflow in `{op}` of {lhs} and {rhs}")]
    IntegerOverflow {
        /// The op's name.
        op: &'static str,
        /// Left operand.
        lhs: i64,
        /// Right operand.
        rhs: i64,
    },
    /// Integer division by zero.
    #[error("i64 division of {lhs} by zero")]
    DivisionByZero {
        /// The dividend.
        lhs: i64,
    },
    /// A max-reduction over axes with no elements (it has no identity value).
    #[error("reduce_max over axes {axes:?} of shape {shape:?}, which have no elements")]
    EmptyReduction {
        /// The reduced axes.
        axes: Vec<usize>,
        /// The operand's shape.
        shape: Vec<usize>,
    },
    /// Operand data inconsistent with its type: a bug in the evaluator, not in the input.
    #[error("internal evaluator error: {0}")]
    Internal(String),
}

/// An error evaluating a graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// An input or parameter of the graph was not fed.
    #[error("no value fed for {kind} `{name}` (expected {expected})")]
    MissingFeed {
        /// `input` or `param`.
        kind: &'static str,
        /// The feed name (input name or checkpoint name).
        name: String,
        /// The type the graph declares.
        expected: TensorType,
    },
    /// An input or parameter was fed with a tensor of another type.
    #[error("{kind} `{name}` was fed a {actual} tensor, expected {expected}")]
    FeedType {
        /// `input` or `param`.
        kind: &'static str,
        /// The feed name.
        name: String,
        /// The type the graph declares.
        expected: TensorType,
        /// The type of the tensor fed.
        actual: TensorType,
    },
    /// A requested node id is not a node of the graph.
    #[error("node index {index} is not in graph `{graph}`")]
    UnknownNode {
        /// The node's index.
        index: usize,
        /// The graph's name.
        graph: String,
    },
    /// A requested node lies on a cycle or depends on one (the graph is not a DAG).
    #[error("`{node}` ({op}) is on or after a cycle and cannot be evaluated")]
    Cycle {
        /// The node.
        node: NodeName,
        /// The op's name.
        op: &'static str,
    },
    /// A node's operands do not fit its op, or its stored type is not the inferred one
    /// (a graph built with `add_unchecked` and not verified).
    #[error("`{node}` ({op}) is ill-typed: {source}")]
    IllTyped {
        /// The node.
        node: NodeName,
        /// The op's name.
        op: &'static str,
        /// Why.
        #[source]
        source: TypeError,
    },
    /// Computing a node's value failed.
    #[error("`{node}` ({op}): {source}")]
    Kernel {
        /// The node.
        node: NodeName,
        /// The op's name.
        op: &'static str,
        /// Why.
        #[source]
        source: KernelError,
    },
}
