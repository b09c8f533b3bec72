//! Graph-to-graph passes of Tessera that make a forward model trainable.
//!
//! - [`mod@autodiff`]: reverse-mode differentiation of a scalar loss with respect to every
//!   parameter, emitted as ordinary IR nodes (scoped `<forward scope>.backward`).
//! - [`loss`]: the VQA losses (soft-label binary cross-entropy as optimum-graphcore trains
//!   LXMERT, hard-label cross-entropy as transformers defines it) attached to a forward graph.
//! - [`manager`]: the pass manager: named passes, pipeline strings, verification after
//!   every pass, timing and statistics, instrumentation hooks for printing and dumping IR.
//! - [`mixed_precision`]: fp16 compute where it is safe and fp32 where it is not, from one
//!   policy table, with cast folding and loss scaling.
//! - [`optim`]: one AdamW optimizer step with transformers' linear warmup schedule, gradient
//!   accumulation and global-norm clipping, as a graph of its own.
//!
//! Every pass returns a new graph that passes [`tessera_ir::verify()`]; errors are typed and
//! name the node, output or configuration field they are about.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod autodiff;
mod emit;
pub mod loss;
pub mod manager;
pub mod mixed_precision;
pub mod optim;

pub use autodiff::{autodiff, is_backward_scope, AutodiffError, AutodiffOptions};
pub use loss::{attach_vqa_loss, LossError};
pub use optim::{build_optimizer_graph, trainer_optim_params, AdamWConfig, OptimError, OptimParam};
