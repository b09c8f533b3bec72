//! Loss scaling: the loss multiplied by a scale before differentiation, so that small fp16
//! gradients are shifted out of the f16 underflow range; the optimizer divides it out.
//!
//! [`autodiff_scaled`] differentiates with the scale fed at run time through the f32 scalar
//! input `loss_scale` rather than baked into the gradient seed (autodiff's `seed_scale`),
//! so that a dynamic scale changes without recompiling: the loss output is replaced by
//! `loss · loss_scale` for autodiff (whose seed is then `1 · loss_scale`, exactly the
//! scale, in f32), and afterwards the `loss` output is pointed back at the unscaled loss.
//! Gradient outputs come out multiplied by the scale.
//!
//! [`LossScaler`] is the host-side state of static or dynamic scaling: it says whether a
//! step may be applied (never when a gradient is inf or NaN) and adapts a dynamic scale as
//! PyTorch's `GradScaler` does.

use super::config::LossScaling;
use super::MixedPrecisionError;
use crate::autodiff::{autodiff, AutodiffOptions};
use tessera_ir::{BinaryOp, DType, Graph, Op, Output, Tensor, TensorType};

/// The input through which the loss scale is fed (f32 scalar).
pub const LOSS_SCALE_INPUT: &str = "loss_scale";

/// The scope of the node multiplying the loss by the scale.
pub const SCOPE: &str = "loss.scale";

/// Differentiates the loss output `opts.loss` of `graph`, scaled by the `loss_scale` input
/// (see the module documentation). `opts.seed_scale` must be 1 (the scale is the input).
pub fn autodiff_scaled(
    graph: &Graph,
    opts: &AutodiffOptions,
) -> Result<Graph, MixedPrecisionError> {
    if opts.seed_scale != 1.0 {
        return Err(MixedPrecisionError::Loss(format!(
            "the scale is fed through `{LOSS_SCALE_INPUT}`; autodiff seed_scale must be 1, got {}",
            opts.seed_scale
        )));
    }
    let loss = graph.output(&opts.loss).map_err(|_| {
        MixedPrecisionError::Loss(format!(
            "graph @{} has no output `{}` to scale",
            graph.name, opts.loss
        ))
    })?;
    let loss_ty = graph.node(loss).ty.clone();
    if loss_ty.rank() != 0 || !loss_ty.dtype.is_float() {
        return Err(MixedPrecisionError::Loss(format!(
            "loss output `{}` must be a floating-point scalar, got {loss_ty}",
            opts.loss
        )));
    }
    let ir = |e: tessera_ir::IrError| MixedPrecisionError::Loss(e.to_string());
    let mut g = graph.clone();
    let scale = g
        .input(LOSS_SCALE_INPUT, TensorType::scalar(DType::F32))
        .map_err(ir)?;
    let scale = if loss_ty.dtype == DType::F32 {
        scale
    } else {
        g.add(Op::Cast { to: loss_ty.dtype }, &[scale], SCOPE)
            .map_err(ir)?
    };
    let scaled = g
        .add(Op::Binary(BinaryOp::Mul), &[loss, scale], SCOPE)
        .map_err(ir)?;
    let outputs: Vec<Output> = g
        .outputs()
        .iter()
        .map(|o| Output {
            name: o.name.clone(),
            node: if o.name == opts.loss { scaled } else { o.node },
        })
        .collect();
    g.set_outputs(outputs);
    let mut d = autodiff(&g, opts)?;
    // Forward nodes keep their ids through autodiff: point `loss` back at the unscaled loss.
    let outputs: Vec<Output> = d
        .outputs()
        .iter()
        .map(|o| Output {
            name: o.name.clone(),
            node: if o.node == scaled { loss } else { o.node },
        })
        .collect();
    d.set_outputs(outputs);
    d.remove_dead();
    #[cfg(debug_assertions)]
    tessera_ir::verify(&d)?;
    Ok(d)
}

/// True when every element of every tensor is finite (integer tensors always are).
pub fn all_finite<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> bool {
    tensors.into_iter().all(|t| match t.dtype() {
        DType::F32 | DType::F16 => t.to_f32_vec().iter().all(|x| x.is_finite()),
        DType::I64 | DType::Bool => true,
    })
}

/// The host-side state of loss scaling (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    scaling: LossScaling,
    scale: f64,
    clean_steps: u32,
    skipped: u64,
}

/// What [`LossScaler::update`] decided about a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleUpdate {
    /// Whether the step's update may be applied (false when a gradient was inf or NaN).
    pub apply: bool,
    /// The scale the step used.
    pub used_scale: f64,
    /// The scale of the next step.
    pub next_scale: f64,
}

impl LossScaler {
    /// The scaler of a run (scale 1 without scaling).
    pub fn new(scaling: LossScaling) -> Self {
        LossScaler {
            scaling,
            scale: scaling.initial_scale(),
            clean_steps: 0,
            skipped: 0,
        }
    }

    /// The current scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Steps skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Records a step whose gradients were (`found_inf`) or were not all finite. A step
    /// with non-finite gradients is never applied, whatever the scaling; dynamic scaling
    /// halves the scale then (never below 1) and doubles it after `growth_interval`
    /// consecutive clean steps.
    pub fn update(&mut self, found_inf: bool) -> ScaleUpdate {
        let used_scale = self.scale;
        if found_inf {
            self.skipped += 1;
        }
        if let LossScaling::Dynamic(d) = self.scaling {
            if found_inf {
                self.scale = (self.scale * 0.5).max(1.0);
                self.clean_steps = 0;
            } else {
                self.clean_steps += 1;
                if self.clean_steps >= d.growth_interval {
                    self.scale *= 2.0;
                    self.clean_steps = 0;
                }
            }
        }
        ScaleUpdate {
            apply: !found_inf,
            used_scale,
            next_scale: self.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::DynamicScaling;
    use super::*;

    #[test]
    fn dynamic_scale_halves_on_overflow_and_grows_after_clean_steps() {
        let mut s = LossScaler::new(LossScaling::Dynamic(DynamicScaling {
            init_scale: 1024.0,
            growth_interval: 3,
        }));
        let u = s.update(true);
        assert!(!u.apply);
        assert_eq!((u.used_scale, u.next_scale), (1024.0, 512.0));
        for _ in 0..2 {
            assert!(s.update(false).apply);
            assert_eq!(s.scale(), 512.0);
        }
        assert_eq!(s.update(false).next_scale, 1024.0);
        // An overflow resets the clean count.
        s.update(false);
        s.update(true);
        assert_eq!(s.scale(), 512.0);
        s.update(false);
        s.update(false);
        assert_eq!(s.scale(), 512.0);
        assert_eq!(s.skipped(), 2);
        // Never below 1.
        let mut low = LossScaler::new(LossScaling::Dynamic(DynamicScaling {
            init_scale: 2.0,
            growth_interval: 100,
        }));
        for _ in 0..5 {
            low.update(true);
        }
        assert_eq!(low.scale(), 1.0);
    }

    #[test]
    fn static_and_no_scaling_never_change_but_still_skip() {
        let mut s = LossScaler::new(LossScaling::Static(16384.0));
        assert!(!s.update(true).apply);
        assert_eq!(s.scale(), 16384.0);
        for _ in 0..5000 {
            s.update(false);
        }
        assert_eq!(s.scale(), 16384.0);
        let mut none = LossScaler::new(LossScaling::None);
        assert_eq!(none.scale(), 1.0);
        assert!(!none.update(true).apply);
    }

    #[test]
    fn finiteness() {
        let ok = Tensor::from_f32(vec![2], vec![1.0, -1e30]).unwrap();
        let inf = Tensor::from_f32(vec![2], vec![1.0, f32::INFINITY]).unwrap();
        let nan = Tensor::from_f32(vec![1], vec![f32::NAN])
            .unwrap()
            .cast(DType::F16);
        assert!(all_finite([&ok]));
        assert!(!all_finite([&ok, &inf]));
        assert!(!all_finite([&nan]));
    }
}
