//! Hyper-parameters of a training run and their checking (errors name the flag).

use anyhow::{bail, Result};
use tessera_passes::mixed_precision::{LossScaling, PrecisionConfig};
use tessera_passes::optim::{AdamWConfig, ScaleRule};

/// The smallest loss scale dynamic scaling backs off to (the host
/// [`tessera_passes::mixed_precision::LossScaler`]'s).
pub const SCALE_FLOOR: f64 = 1.0;

/// Hyper-parameters of a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Fraction of the steps spent warming the learning rate up (rounded up, as transformers).
    pub warmup_ratio: f64,
    /// Decoupled weight decay (not applied to biases and LayerNorm weights).
    pub weight_decay: f64,
    /// Adam beta1.
    pub beta1: f64,
    /// Adam beta2.
    pub beta2: f64,
    /// Adam epsilon.
    pub eps: f64,
    /// Clip the global gradient norm to this value.
    pub max_grad_norm: Option<f64>,
    /// Mixed precision (`None`: f32 training).
    pub precision: Option<PrecisionConfig>,
}

impl TrainConfig {
    /// Checks the values a user can get wrong, naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        if self.grad_accum == 0 {
            bail!("--grad-accum must be at least 1 (micro-batches per optimizer step)");
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            bail!("--lr must be a finite non-negative number, got {}", self.lr);
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            bail!(
                "--warmup-ratio must be in [0, 1], got {}",
                self.warmup_ratio
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!(
                "--weight-decay must be a finite non-negative number, got {}",
                self.weight_decay
            );
        }
        if let Some(n) = self.max_grad_norm {
            if !(n.is_finite() && n > 0.0) {
                bail!("--max-grad-norm must be positive, got {n}");
            }
        }
        if let Some(p) = &self.precision {
            p.validate()?;
        }
        Ok(())
    }

    /// Warmup steps: `ceil(steps * warmup_ratio)`, as transformers' `get_warmup_steps`.
    pub fn warmup_steps(&self) -> usize {
        (self.steps as f64 * self.warmup_ratio).ceil() as usize
    }

    /// The optimizer's hyper-parameters.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            warmup_steps: self.warmup_steps() as u64,
            total_steps: self.steps as u64,
            grad_accum: self.grad_accum,
            max_grad_norm: self.max_grad_norm,
        }
    }

    /// How the loss scale moves from step to step (for the optimizer's device counters).
    pub fn scale_rule(&self) -> ScaleRule {
        match self.precision.as_ref().map(|c| c.loss_scaling) {
            Some(LossScaling::Dynamic(d)) => ScaleRule::Dynamic {
                growth_interval: d.growth_interval,
                floor: SCALE_FLOOR,
            },
            _ => ScaleRule::Fixed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_flag() {
        let cfg = TrainConfig {
            steps: 10,
            grad_accum: 0,
            lr: 5e-5,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: None,
            precision: None,
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--grad-accum"));
        let neg = TrainConfig {
            grad_accum: 1,
            lr: -1.0,
            ..cfg.clone()
        };
        assert!(neg.validate().unwrap_err().to_string().contains("--lr"));
        let ok = TrainConfig {
            grad_accum: 1,
            ..cfg
        };
        assert_eq!(ok.warmup_steps(), 1);
    }
}
