//! Graph-to-graph passes of Tessera that make a forward model trainable and place it on
//! a multi-chip machine.
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
//! - [`layers`]: the layers, units and phases recomputation and placement work on.
//! - [`recompute`]: recomputation of forward values in the backward pass under a
//!   checkpoint policy (none, per layer, per pipeline stage, or automatic under a budget).
//! - [`pipeline`]: placement on pipeline stages (manual, the seed run's hand placement,
//!   or automatic by predicted throughput), inter-chip copies and stash restores.
//!
//! Every pass returns a new graph that passes [`tessera_ir::verify()`]; errors are typed and
//! name the node, output or configuration field they are about.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod autodiff;
mod emit;
pub mod layers;
pub mod loss;
pub mod lower;
pub mod manager;
pub mod mixed_precision;
pub mod optim;
pub mod pipeline;
pub mod recompute;
pub mod schedule;

pub use autodiff::{autodiff, is_backward_scope, AutodiffError, AutodiffOptions};
pub use layers::{Granularity, LayerRule, Units};
pub use loss::{attach_vqa_loss, LossError};
pub use optim::{build_optimizer_graph, trainer_optim_params, AdamWConfig, OptimError, OptimParam};
pub use pipeline::{pipeline, PipelineConfig, PipelineError, PipelineReport, Placement};
pub use recompute::{
    recompute, Budget, RecomputeConfig, RecomputeError, RecomputeMode, RecomputeStats,
};
#[cfg(test)]
pub(crate) mod testing;
