//! Tessera's IR: a typed dataflow graph of tensor operations.
//!
//! A [`Graph`] holds [`Node`]s, each an [`Op`] with a static [`TensorType`] inferred when
//! the node is added, the scope of the model module that created it, and pass annotations.
//! The crate also holds the [`verify`] checker, the text format ([`text`]), Graphviz export
//! ([`dot`]), dense [`Tensor`]s with safetensors I/O ([`io`]), and the reference evaluator
//! ([`eval`]) that every pass and the tile runtime are checked against.

pub mod dot;
pub mod dtype;
pub mod error;
pub mod eval;
pub mod flops;
pub mod graph;
pub mod infer;
pub mod io;
pub mod op;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use dtype::DType;
pub use error::IrError;
pub use graph::{Annotations, Graph, Node, NodeId, Output};
pub use infer::TypeError;
pub use op::{BinaryOp, CmpOp, Op, ReduceKind, UnaryOp};
pub use tensor::{Tensor, TensorData};
pub use types::{Shape, TensorType};
pub use verify::{verify, VerifyError, Violation};
