//! The settings of the mixed-precision pass and of the training around it.
//!
//! The fields mirror the knobs of optimum-graphcore's IPU configuration and training
//! arguments (`enable_half_partials`, `enable_half_first_order_momentum`, `loss_scaling`,
//! `auto_loss_scaling`, stochastic rounding) so that a Graphcore user finds them under
//! familiar names; the driver fills them from an `ipu_config.json` and the command line.

use serde::{Deserialize, Serialize};

use super::MixedPrecisionError;

/// Where the weights live and in which precision the optimizer updates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterWeights {
    /// Parameters stay f32 (the optimizer updates f32 masters); each is cast to an f16
    /// working copy once, shared by all its fp16 users (PyTorch AMP's arrangement).
    F32,
    /// Parameters themselves are f16 (the seed run's `model.half()`): their type changes,
    /// the driver casts the loaded weights, gradients come out in f16, and the optimizer
    /// computes in f32 and rounds the new weights back to f16.
    F16,
}

/// Dynamic loss scaling as PyTorch's `GradScaler` does it, with its defaults: the scale is
/// halved (and the step skipped) on every step whose gradients hold an inf or NaN, and
/// doubled after `growth_interval` consecutive clean steps. Factors are fixed at 2 and 1/2
/// so the scale stays a power of two and scaling is exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicScaling {
    /// The first scale (default 65536 = 2^16, as `GradScaler`).
    pub init_scale: f64,
    /// Clean steps before the scale doubles (default 2000, as `GradScaler`).
    pub growth_interval: u32,
}

impl Default for DynamicScaling {
    fn default() -> Self {
        DynamicScaling {
            init_scale: 65536.0,
            growth_interval: 2000,
        }
    }
}

/// How the loss is scaled before differentiation (and the gradients unscaled before the
/// optimizer), so that small fp16 gradients do not underflow to zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossScaling {
    /// No scaling (scale 1).
    None,
    /// A fixed scale (the seed run: 16384).
    Static(f64),
    /// A scale adapted to overflows ([`DynamicScaling`]).
    Dynamic(DynamicScaling),
}

impl LossScaling {
    /// The scale of the first step (1 without scaling).
    pub fn initial_scale(&self) -> f64 {
        match self {
            LossScaling::None => 1.0,
            LossScaling::Static(s) => *s,
            LossScaling::Dynamic(d) => d.init_scale,
        }
    }

    /// True unless this is [`LossScaling::None`].
    pub fn is_enabled(&self) -> bool {
        !matches!(self, LossScaling::None)
    }
}

/// Configuration of the [`super::mixed_precision`] pass and of mixed-precision training.
///
/// `Default` is the seed run's configuration (`Graphcore/lxmert-vqa-uncased`): fp16
/// weights and activations, fp16 partials, fp16 first-order momentum, static loss scaling
/// 16384, stochastic rounding on. [`PrecisionConfig::plain_fp16`] is the conservative
/// alternative (PyTorch AMP: f32 master weights, f32 partials and state, no rounding tricks)
/// that the command line starts from before applying an IPU config and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrecisionConfig {
    /// Accumulate fp16 matmuls in fp16 (optimum's `enable_half_partials`): sets
    /// `half_partials` on every fp16 matmul, which the evaluator honours by rounding each
    /// partial sum to f16.
    pub half_partials: bool,
    /// f32 master weights with f16 working copies, or f16 weights.
    pub master_weights: MasterWeights,
    /// Keep Adam's first moment in fp16 (optimum's `enable_half_first_order_momentum`); the
    /// second moment always stays f32 (its squares underflow in fp16).
    pub half_first_order_momentum: bool,
    /// Loss scaling.
    pub loss_scaling: LossScaling,
    /// Round f16 results stochastically in training (the evaluator's option).
    pub stochastic_rounding: bool,
    /// Seed of stochastic rounding (the trainer derives one seed per step from it).
    pub seed: u64,
    /// Scopes computed in f32 whatever their ops: a node is in one when its scope equals an
    /// entry or starts with the entry and a dot (so `loss` covers `loss.backward`). Default:
    /// `loss` and `optimizer`.
    pub fp32_scopes: Vec<String>,
}

impl Default for PrecisionConfig {
    fn default() -> Self {
        PrecisionConfig::seed_run()
    }
}

impl PrecisionConfig {
    /// The seed run's settings (see the type's documentation); also `Default`.
    pub fn seed_run() -> Self {
        PrecisionConfig {
            half_partials: true,
            master_weights: MasterWeights::F16,
            half_first_order_momentum: true,
            loss_scaling: LossScaling::Static(16384.0),
            stochastic_rounding: true,
            seed: 42,
            fp32_scopes: default_fp32_scopes(),
        }
    }

    /// fp16 compute with f32 master weights, f32 partials and f32 optimizer state, no loss
    /// scaling and round-to-nearest: only the op policy applies.
    pub fn plain_fp16() -> Self {
        PrecisionConfig {
            half_partials: false,
            master_weights: MasterWeights::F32,
            half_first_order_momentum: false,
            loss_scaling: LossScaling::None,
            stochastic_rounding: false,
            seed: 0,
            fp32_scopes: default_fp32_scopes(),
        }
    }

    /// Checks the loss-scaling values; the error names the field.
    pub fn validate(&self) -> Result<(), MixedPrecisionError> {
        let bad = |field: &'static str, value: String, expected: &'static str| {
            Err(MixedPrecisionError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        match self.loss_scaling {
            LossScaling::None => {}
            LossScaling::Static(s) => {
                if !(s.is_finite() && s > 0.0) {
                    return bad("loss_scaling", s.to_string(), "a finite number > 0");
                }
            }
            LossScaling::Dynamic(d) => {
                if !(d.init_scale.is_finite() && d.init_scale >= 1.0) {
                    return bad(
                        "loss_scaling.init_scale",
                        d.init_scale.to_string(),
                        "a finite number >= 1",
                    );
                }
                if d.growth_interval == 0 {
                    return bad("loss_scaling.growth_interval", "0".into(), ">= 1");
                }
            }
        }
        if let Some(s) = self.fp32_scopes.iter().find(|s| s.is_empty()) {
            return bad(
                "fp32_scopes",
                format!("{s:?}"),
                "non-empty scope names (an empty one would match every node)",
            );
        }
        Ok(())
    }

    /// True when a node in `scope` must compute in f32 ([`PrecisionConfig::fp32_scopes`]).
    pub fn in_fp32_scope(&self, scope: &str) -> bool {
        self.fp32_scopes.iter().any(|s| {
            scope == s
                || scope
                    .strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

fn default_fp32_scopes() -> Vec<String> {
    vec!["loss".to_string(), "optimizer".to_string()]
}
