//! One optimizer step as a graph: AdamW with transformers' linear warmup schedule,
//! gradient accumulation, loss-scale removal and global-norm gradient clipping.
//!
//! The optimizer is a graph of its own ([`build_optimizer_graph`]) rather than host code,
//! so that it is placed, lowered and profiled like the model (on the IPU the optimizer
//! step runs on the chips, next to the weights). Its inputs are the accumulated gradients
//! and the optimizer state; its outputs are the new weights and state. The numerics follow
//! torch's single-tensor `AdamW` and `clip_grad_norm_` and transformers'
//! `get_linear_schedule_with_warmup` step by step; see [`build_optimizer_graph`] and [`schedule`].
//!
//! [`counters`] adds the per-step scalars that a device loop evolves on the tiles (the step
//! count, the dynamic loss scale) as outputs of the same graph.
//!
//! [`trainer_optim_params`] derives the parameter list from a differentiated graph with
//! transformers Trainer's grouping (no weight decay for biases and normalisation weights).

mod adamw;
pub mod counters;
mod groups;
mod precision;
pub mod schedule;

pub use adamw::{
    build_optimizer_graph, build_optimizer_graph_sharded, build_optimizer_graph_with, shard_name,
    shard_rows, split_shard_name, SHARD_SEP,
};
pub use counters::{add_device_counters, ScaleRule};
pub use groups::{trainer_decays, trainer_optim_params};
pub use precision::OptimPrecision;

use tessera_ir::{IrError, TensorType};

/// One parameter the optimizer updates.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimParam {
    /// The parameter's checkpoint name.
    pub name: String,
    /// Its type (gradient and optimizer state have the same type).
    pub ty: TensorType,
    /// Whether decoupled weight decay applies to it.
    pub weight_decay: bool,
}

/// Hyper-parameters of the AdamW step.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    /// Peak learning rate (≥ 0, finite).
    pub lr: f64,
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Added to the denominator (> 0).
    pub eps: f64,
    /// Decoupled weight decay coefficient (≥ 0), for parameters in the decay group.
    pub weight_decay: f64,
    /// Linear warmup length in optimizer steps (≤ `total_steps`).
    pub warmup_steps: u64,
    /// Total optimizer steps of the run (≥ 1); the learning rate decays to 0 at the end.
    pub total_steps: u64,
    /// Micro-batches whose gradients are summed into one step (≥ 1).
    pub grad_accum: usize,
    /// Clip the global gradient norm to this value (> 0), as torch's `clip_grad_norm_`.
    pub max_grad_norm: Option<f64>,
}

impl AdamWConfig {
    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), OptimError> {
        let bad = |field: &'static str, value: String, expected: &'static str| {
            Err(OptimError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad("lr", self.lr.to_string(), "a finite number >= 0");
        }
        for (field, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(field, beta.to_string(), "in [0, 1)");
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", self.eps.to_string(), "a finite number > 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "a finite number >= 0",
            );
        }
        if self.grad_accum < 1 {
            return bad("grad_accum", self.grad_accum.to_string(), ">= 1");
        }
        if self.total_steps < 1 {
            return bad("total_steps", self.total_steps.to_string(), ">= 1");
        }
        if self.warmup_steps > self.total_steps {
            return bad(
                "warmup_steps",
                self.warmup_steps.to_string(),
                "<= total_steps",
            );
        }
        if let Some(n) = self.max_grad_norm {
            if !(n.is_finite() && n > 0.0) {
                return bad("max_grad_norm", n.to_string(), "a finite number > 0");
            }
        }
        Ok(())
    }

    /// The scheduled learning rate at 0-based optimizer step `step`, computed on the host
    /// (for logs; the graph computes the same from its `step` input).
    pub fn lr_at(&self, step: u64) -> f64 {
        schedule::linear_with_warmup(self.lr, self.warmup_steps, self.total_steps, step as f64)
    }
}

/// Why the optimizer graph could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A configuration field is out of range.
    #[error("invalid AdamW config: `{field}` = {value}, expected {expected}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: String,
        /// The valid range.
        expected: &'static str,
    },
    /// A parameter is not floating point.
    #[error(
        "parameter `{name}` has type {ty}; the optimizer updates floating-point parameters only"
    )]
    NotFloat {
        /// The parameter's name.
        name: String,
        /// Its type.
        ty: TensorType,
    },
    /// A gradient output names a parameter the graph does not have.
    #[error("gradient output `{output}` names no parameter of graph @{graph}")]
    UnknownParam {
        /// The output's name.
        output: String,
        /// The graph's name.
        graph: String,
    },
    /// The device counters cannot be added to an optimizer graph.
    #[error("device counters for optimizer graph @{graph}: {reason}")]
    Counters {
        /// The optimizer graph's name.
        graph: String,
        /// What is wrong.
        reason: String,
    },
    /// Building the graph failed (e.g. two parameters with the same name).
    #[error("building the optimizer graph: {0}")]
    Ir(#[from] IrError),
}

#[cfg(test)]
mod tests;
