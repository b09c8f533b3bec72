//! The mixed-precision side of training: the gradient graph under a [`PrecisionConfig`],
//! weights cast to the graph's parameter types, the optimizer's storage types, and the
//! seeds of stochastic rounding.
//!
//! Order of the passes: the `mixed-precision` pass runs on the forward graph, then the
//! VQA loss is attached (it casts fp16 logits to f32) and `autodiff` differentiates; the
//! backward follows the forward's types. With loss scaling the scale is the gradient
//! graph's `loss_scale` input ([`tessera_passes::mixed_precision::autodiff_scaled`]), so a
//! dynamic scale changes without recompiling.

use anyhow::{Context, Result};
use std::collections::HashMap;
use tessera_ir::{DType, Graph, Op, Tensor, TensorType};
use tessera_passes::autodiff::{autodiff, AutodiffOptions};
use tessera_passes::mixed_precision::{
    autodiff_scaled, mixed_precision, MixedPrecisionStats, PrecisionConfig,
};
use tessera_passes::optim::OptimPrecision;

/// The gradient graph of `forward` for labels of type `labels`: the mixed-precision pass
/// (when `precision` is given), the VQA loss, and autodiff, with the loss scale fed through
/// the `loss_scale` input when loss scaling is on. Returns the pass's statistics too.
pub fn mixed_gradient_graph(
    forward: &Graph,
    labels: &TensorType,
    precision: Option<&PrecisionConfig>,
) -> Result<(Graph, Option<MixedPrecisionStats>)> {
    let (forward, stats) = match precision {
        Some(cfg) => {
            let (g, stats) = mixed_precision(forward, cfg).context("mixed-precision pass")?;
            (g, Some(stats))
        }
        None => (forward.clone(), None),
    };
    let with_loss = tessera_passes::loss::attach_vqa_loss(&forward, labels)?;
    let opts = AutodiffOptions::default();
    let graph = match precision {
        Some(cfg) if cfg.loss_scaling.is_enabled() => autodiff_scaled(&with_loss, &opts)?,
        _ => autodiff(&with_loss, &opts)?,
    };
    Ok((graph, stats))
}

/// `params` with the values of `graph`'s parameters cast to their floating-point type (f16
/// weights under `master_weights = f16`); other values (parameters the graph does not use,
/// such as those autodiff drops because the loss does not depend on them) are kept as
/// they are, and missing or non-float values are left for the evaluator to report.
pub fn params_for_graph(
    graph: &Graph,
    params: &HashMap<String, Tensor>,
) -> HashMap<String, Tensor> {
    let mut out = params.clone();
    for p in graph.params() {
        let Op::Param { name, ty } = &graph.node(p).op else {
            continue;
        };
        if let Some(t) = out.get_mut(name) {
            if t.dtype().is_float() && ty.dtype.is_float() && t.dtype() != ty.dtype {
                *t = t.cast(ty.dtype);
            }
        }
    }
    out
}

/// The optimizer's storage types: f32 gradient sums (the host accumulates in f32), the
/// first moment in f16 with `half_first_order_momentum`, the second moment in f32, and the
/// guard against non-finite gradients (always on).
pub fn optim_precision(precision: Option<&PrecisionConfig>) -> OptimPrecision {
    let half_m = precision.is_some_and(|c| c.half_first_order_momentum);
    OptimPrecision {
        grad: Some(DType::F32),
        first_moment: Some(if half_m { DType::F16 } else { DType::F32 }),
        second_moment: Some(DType::F32),
        skip_non_finite: true,
    }
}

/// The stochastic-rounding seed of micro-batch `micro` of iteration `iteration`: distinct
/// per micro-batch and step so that rounding decisions are independent between them.
pub fn rounding_seed(base: u64, iteration: u64, micro: u64) -> u64 {
    tessera_ir::eval::sround::uniform(base, iteration, micro).to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_seeds_differ_per_step_and_micro_batch() {
        let a = rounding_seed(42, 0, 0);
        assert_eq!(a, rounding_seed(42, 0, 0));
        assert_ne!(a, rounding_seed(42, 1, 0));
        assert_ne!(a, rounding_seed(42, 0, 1));
        assert_ne!(a, rounding_seed(43, 0, 0));
    }

    #[test]
    fn optimizer_types_follow_the_config() {
        let seed = PrecisionConfig::seed_run();
        assert_eq!(optim_precision(Some(&seed)).first_moment, Some(DType::F16));
        assert_eq!(optim_precision(Some(&seed)).second_moment, Some(DType::F32));
        assert_eq!(optim_precision(None).first_moment, Some(DType::F32));
        assert!(optim_precision(None).skip_non_finite);
    }
}
