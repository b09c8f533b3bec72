//! The text IR: a readable, exact, round-tripping form of a [`Graph`] (in the spirit of
//! MLIR and XLA HLO), for dumps between passes, golden tests and hand-written test graphs.
//!
//! ```text
//! graph @lxmert_tiny(%input_ids: i64[2,7], %visual_feats: f32[2,5,16]) {
//!   %0 = param "lxmert.embeddings.word_embeddings.weight" : f32[100,32]  @lxmert.embeddings.word_embeddings
//!   %1 = gather(%0, %input_ids) : f32[2,7,32]  @lxmert.embeddings
//!   %2 = full {value=-3.4028234663852886e38} : f32[]
//!   %3 = matmul(%1, %0) {transpose_b} : f32[2,7,100]  @lxmert.head  stage=1 recompute
//!   return %logits: %3
//! }
//! ```
//!
//! - The header lists the graph inputs ([`crate::Op::Input`] nodes, in creation order) with
//!   their types (and scope/annotations when they have any). Then every other node follows
//!   in [`Graph::topo_order`], named as [`Graph::value_names`] names it, and finally
//!   `return` with the named outputs in order.
//! - A node line is `%k = op(operands) {attributes} : type  @scope  stage=N recompute`.
//!   Leaf ops (`param`, `full`, `iota`) have no operand list; `param` is followed by its
//!   checkpoint name as a string. The attribute syntax of every op is listed in `attrs.rs`.
//!   Floats print bit-exactly (shortest round-trip decimal, `inf`, `-inf`, `nan`, or raw
//!   bits `0x...` for other NaNs).
//! - Names (graph, inputs, outputs, scopes) that are not bare words (`[A-Za-z_][A-Za-z0-9_.-]*`)
//!   are quoted: `%"attention mask"`. Strings use `\"`, `\\`, `\n`, `\r`, `\t`, `\u{..}`.
//! - `//` starts a comment; blank lines are ignored.
//!
//! [`parse()`] rebuilds the graph through the checked API, creating nodes in textual order
//! and checking each declared type against the inferred one, so
//! `print(&parse(&print(&g))?) == print(&g)` for every well-typed graph. Errors carry a
//! 1-based line and column. To keep all shape arithmetic safe on hostile input, the parser
//! accepts extents up to 2^32 and at most 2^48 elements per tensor.

mod ast;
mod attrs;
mod build;
mod lex;
pub(crate) mod names;
mod parse;
mod print;

#[cfg(test)]
mod tests;

pub use print::print;

use crate::graph::Graph;

/// A syntax or semantic error in text IR, with the 1-based position it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses text IR into a graph, checking every node as [`Graph::add`] does and every
/// declared result type against the inferred one.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    let decl = parse::parse_syntax(text)?;
    build::build(&decl)
}

/// The attributes of `op` as the text IR prints them (`transpose_b`, `axes=[2]`, ...),
/// in print order; empty for ops without attributes. Used by DOT export and reports.
pub fn op_attributes(op: &crate::Op) -> Vec<String> {
    attrs::attr_strings(op)
}
