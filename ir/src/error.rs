//! Errors of graph construction and verification.
//!
//! Every error names the node it is about by its scope and op, so that a user can find it
//! in the printed IR.

use crate::op::TypeError;

/// An error building or editing a graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IrError {
    /// A node's operands do not fit its op.
    #[error("ill-typed `{op}` node at `{scope}`: {source}")]
    IllTyped {
        /// The op's name.
        op: &'static str,
        /// The scope the node was created in.
        scope: String,
        /// Why.
        #[source]
        source: TypeError,
    },
    /// An operand refers to a node that is not in the graph.
    #[error("`{op}` node at `{scope}` uses a node that is not in the graph")]
    DanglingOperand {
        /// The op's name.
        op: &'static str,
        /// The scope.
        scope: String,
    },
    /// Two inputs, parameters or outputs share a name.
    #[error("duplicate {kind} name `{name}`")]
    DuplicateName {
        /// `input`, `param` or `output`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A lookup by name found nothing.
    #[error("no {kind} named `{name}` in graph `{graph}`")]
    NotFound {
        /// `input`, `param` or `output`.
        kind: &'static str,
        /// The name looked for.
        name: String,
        /// The graph's name.
        graph: String,
    },
}
