//! Element types of the optimizer graph's inputs and state, and its guard against
//! non-finite gradients, for mixed-precision training.
//!
//! The seed run kept fp16 weights and an fp16 first moment (optimum-graphcore's
//! `enable_half_first_order_momentum`); the second moment stays f32 (squared gradients
//! underflow in fp16) and the arithmetic is f32 whatever the storage types. The guard
//! makes the graph itself safe to run on an overflowed step: with `skip_non_finite`, a
//! gradient holding inf or NaN sets the `found_inf` output and every weight and moment
//! output is its input unchanged, so the bad step never reaches the weights even if the
//! host forgets to skip it.

use crate::emit::Emitter;
use tessera_ir::{CmpOp, DType, IrError, NodeId};

/// Types and guard of [`super::build_optimizer_graph_with`]; `Default` reproduces
/// [`super::build_optimizer_graph`] (everything in the parameter's type, no guard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptimPrecision {
    /// Type of the `grad_sum.<p>` inputs (`None`: the parameter's).
    pub grad: Option<DType>,
    /// Type of the first moment `adam_m.<p>` (`None`: the parameter's).
    pub first_moment: Option<DType>,
    /// Type of the second moment `adam_v.<p>` (`None`: the parameter's).
    pub second_moment: Option<DType>,
    /// Add output `found_inf` and leave weights and moments unchanged when it is true.
    pub skip_non_finite: bool,
}

/// A bool scalar that is true when any element of `grads` is inf or NaN: `Σ (g · 0)` is
/// NaN exactly then (and 0 otherwise), and NaN is the only value unequal to itself.
pub(super) fn emit_found_inf(e: &mut Emitter, grads: &[NodeId]) -> Result<NodeId, IrError> {
    let mut acc: Option<NodeId> = None;
    for &g in grads {
        let g32 = e.cast(g, DType::F32)?;
        let zero = e.scale(g32, 0.0)?;
        let s = e.sum_all(zero)?;
        acc = Some(match acc {
            Some(a) => e.add(a, s)?,
            None => s,
        });
    }
    let acc = match acc {
        Some(a) => a,
        None => e.scalar(0.0, DType::F32)?,
    };
    e.cmp(CmpOp::Ne, acc, acc)
}

#[cfg(test)]
mod tests {
    use super::super::{
        build_optimizer_graph, build_optimizer_graph_with, AdamWConfig, OptimParam,
    };
    use super::*;
    use std::collections::HashMap;
    use tessera_ir::eval::evaluate;
    use tessera_ir::{verify, Tensor, TensorType};

    fn cfg() -> AdamWConfig {
        crate::testing::adamw_config()
    }

    fn param(name: &str, dtype: DType, n: usize) -> OptimParam {
        OptimParam {
            name: name.into(),
            ty: TensorType::new(dtype, vec![n]),
            weight_decay: true,
        }
    }

    fn f32s(v: &[f32]) -> Tensor {
        Tensor::from_f32(vec![v.len()], v.to_vec()).unwrap()
    }

    /// Feeds for one step at step 0 with loss scale `scale`.
    fn feeds(
        grads: &[(&str, Tensor)],
        moments: &[(&str, Tensor)],
        scale: f32,
    ) -> HashMap<String, Tensor> {
        let mut f = HashMap::from([
            ("step".to_string(), Tensor::scalar_f32(0.0)),
            ("loss_scale".to_string(), Tensor::scalar_f32(scale)),
        ]);
        for (n, t) in grads {
            f.insert(format!("grad_sum.{n}"), t.clone());
        }
        for (n, t) in moments {
            f.insert(n.to_string(), t.clone());
        }
        f
    }

    #[test]
    fn guard_leaves_everything_unchanged_on_inf_or_nan() {
        let params = [param("a", DType::F32, 2), param("b", DType::F32, 3)];
        let prec = OptimPrecision {
            skip_non_finite: true,
            ..Default::default()
        };
        let guarded = build_optimizer_graph_with(&params, &cfg(), &prec).unwrap();
        verify(&guarded).unwrap();
        let plain = build_optimizer_graph(&params, &cfg()).unwrap();
        let weights = HashMap::from([
            ("a".to_string(), f32s(&[0.5, -0.25])),
            ("b".to_string(), f32s(&[1.0, 2.0, 3.0])),
        ]);
        let moments = [
            ("adam_m.a", f32s(&[0.1, 0.2])),
            ("adam_v.a", f32s(&[0.01, 0.02])),
            ("adam_m.b", f32s(&[0.0, 0.1, 0.2])),
            ("adam_v.b", f32s(&[0.0, 0.01, 0.02])),
        ];
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let f = feeds(
                &[("a", f32s(&[1.0, 2.0])), ("b", f32s(&[0.5, bad, 0.25]))],
                &moments,
                1.0,
            );
            let out = evaluate(&guarded, &f, &weights).unwrap();
            assert_eq!(out["found_inf"].to_f64_vec(), vec![1.0], "{bad}");
            assert_eq!(out["param.a"], weights["a"]);
            assert_eq!(out["param.b"], weights["b"]);
            for (k, v) in &moments {
                assert_eq!(&out[*k], v, "{k} changed on a {bad} gradient");
            }
        }
        // Finite gradients: identical to the unguarded graph.
        let f = feeds(
            &[("a", f32s(&[1.0, 2.0])), ("b", f32s(&[0.5, -4.0, 0.25]))],
            &moments,
            1.0,
        );
        let out = evaluate(&guarded, &f, &weights).unwrap();
        let want = evaluate(&plain, &f, &weights).unwrap();
        assert_eq!(out["found_inf"].to_f64_vec(), vec![0.0]);
        for (k, v) in &want {
            assert_eq!(&out[k], v, "{k}");
        }
    }

    #[test]
    fn f16_weights_with_f16_momentum_update_like_f64_adamw() {
        let p = param("w", DType::F16, 4);
        let prec = OptimPrecision {
            grad: Some(DType::F32),
            first_moment: Some(DType::F16),
            second_moment: Some(DType::F32),
            skip_non_finite: true,
        };
        let g = build_optimizer_graph_with(std::slice::from_ref(&p), &cfg(), &prec).unwrap();
        verify(&g).unwrap();
        let ty = |n: &str| g.node(g.output(n).unwrap()).ty.dtype;
        assert_eq!(ty("param.w"), DType::F16);
        assert_eq!(ty("adam_m.w"), DType::F16);
        assert_eq!(ty("adam_v.w"), DType::F32);
        assert_eq!(
            g.node(g.input_by_name("grad_sum.w").unwrap()).ty.dtype,
            DType::F32
        );

        let w = [0.5f32, -1.25, 2.0, 0.0078125]; // exact in f16
        let scale = 16384.0f32;
        let grad = [0.3f32, -0.02, 1e-4, 0.0];
        let scaled: Vec<f32> = grad.iter().map(|x| x * scale).collect();
        let weights = HashMap::from([("w".to_string(), f32s(&w).cast(DType::F16))]);
        let moments = [
            (
                "adam_m.w",
                Tensor::zeros(&TensorType::new(DType::F16, vec![4])),
            ),
            (
                "adam_v.w",
                Tensor::zeros(&TensorType::new(DType::F32, vec![4])),
            ),
        ];
        let out = evaluate(
            &g,
            &feeds(&[("w", f32s(&scaled))], &moments, scale),
            &weights,
        )
        .unwrap();
        let c = cfg();
        let new_w = out["param.w"].to_f64_vec();
        let new_m = out["adam_m.w"].to_f64_vec();
        let new_v = out["adam_v.w"].to_f64_vec();
        for i in 0..4 {
            // torch AdamW, step 1, lr_t = lr (no warmup, total 1 step at step 0).
            let (wi, gi) = (f64::from(w[i]), f64::from(grad[i]));
            let m = (1.0 - c.beta1) * gi;
            let v = (1.0 - c.beta2) * gi * gi;
            let bc1 = 1.0 - c.beta1;
            let bc2 = 1.0 - c.beta2;
            let want_w = wi * (1.0 - c.lr * c.weight_decay)
                - (c.lr / bc1) * m / (v.sqrt() / bc2.sqrt() + c.eps);
            // One f16 rounding of the result (plus f32 arithmetic): within one f16 ulp.
            let ulp = 2f64.powi(want_w.abs().max(2f64.powi(-14)).log2().floor() as i32 - 10);
            assert!(
                (new_w[i] - want_w).abs() <= ulp,
                "w[{i}] {} vs {want_w}",
                new_w[i]
            );
            let m_ulp = 2f64.powi(m.abs().max(2f64.powi(-14)).log2().floor() as i32 - 10);
            assert!((new_m[i] - m).abs() <= m_ulp, "m[{i}] {} vs {m}", new_m[i]);
            assert!(
                (new_v[i] - v).abs() <= 1e-6 * v.abs() + 1e-30,
                "v[{i}] {} vs {v}",
                new_v[i]
            );
        }
    }
}
