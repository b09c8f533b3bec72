//! Gradients in mixed precision: the pass before autodiff (backward follows the forward's
//! types) and after it (backward nodes by the same table), and loss scaling against f16
//! underflow.

use super::*;
use crate::autodiff::{autodiff, AutodiffOptions};
use crate::loss::attach_vqa_loss;
use std::collections::BTreeMap;
use tessera_ir::eval::evaluate;

fn labels_ty() -> TensorType {
    f32t(&[B, C])
}

fn train_inputs() -> HashMap<String, Tensor> {
    let mut i = inputs();
    let labels = Tensor::from_f32(vec![B, C], vec![1.0, 0.0, 0.3, 0.0, 0.9, 0.0]).unwrap();
    i.insert("labels".into(), labels);
    i
}

fn grads(g: &Graph, w: &HashMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    evaluate(g, &train_inputs(), &weights_for(g, w)).unwrap()
}

/// The f32 reference: loss + autodiff of the fragment.
fn reference(w: &HashMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    let with_loss = attach_vqa_loss(&fragment(), &labels_ty()).unwrap();
    let g = autodiff(&with_loss, &AutodiffOptions::default()).unwrap();
    grads(&g, w)
}

fn compare(got: &BTreeMap<String, Tensor>, want: &BTreeMap<String, Tensor>, tol: f64) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in want {
        let e = rel_err(&got[k].cast(DType::F32), w);
        assert!(e < tol, "{k}: relative error {e:e}");
    }
}

#[test]
fn pass_before_autodiff_backward_follows_forward_types() {
    let w = weights(&fragment(), 4);
    let want = reference(&w);
    for (cfg, grad_dtype) in [
        (PrecisionConfig::plain_fp16(), DType::F32),
        (PrecisionConfig::seed_run(), DType::F16),
    ] {
        let (fwd, _) = mixed_precision(&fragment(), &cfg).unwrap();
        let with_loss = attach_vqa_loss(&fwd, &labels_ty()).unwrap();
        let g = autodiff(&with_loss, &AutodiffOptions::default()).unwrap();
        for o in g.outputs().iter().filter(|o| o.name.starts_with("grad.")) {
            assert_eq!(g.node(o.node).ty.dtype, grad_dtype, "{}", o.name);
        }
        // Backward matmuls run in f16 like their forward ones.
        let backward_mm: Vec<DType> = nodes_named(&g, "matmul")
            .into_iter()
            .filter(|&n| crate::is_backward_scope(&g.node(n).scope))
            .map(|n| g.node(n).ty.dtype)
            .collect();
        assert!(!backward_mm.is_empty());
        assert!(
            backward_mm.iter().all(|&d| d == DType::F16),
            "{backward_mm:?}"
        );
        // Measured max relative errors are a few 1e-3 (f16 weights: ~1e-2).
        compare(&grads(&g, &w), &want, 3e-2);
    }
}

#[test]
fn pass_after_autodiff_rewrites_backward_nodes_too() {
    let w = weights(&fragment(), 5);
    let want = reference(&w);
    let with_loss = attach_vqa_loss(&fragment(), &labels_ty()).unwrap();
    let d = autodiff(&with_loss, &AutodiffOptions::default()).unwrap();
    for (cfg, grad_dtype) in [
        (PrecisionConfig::plain_fp16(), DType::F32),
        (PrecisionConfig::seed_run(), DType::F16),
    ] {
        let (g, stats) = mixed_precision(&d, &cfg).unwrap();
        tessera_ir::verify(&g).unwrap();
        assert!(stats.nodes_in_fp16 > 0);
        for o in g.outputs() {
            let dt = g.node(o.node).ty.dtype;
            if o.name.starts_with("grad.") {
                assert_eq!(dt, grad_dtype, "{}", o.name);
            } else {
                assert_eq!(dt, DType::F32, "{}", o.name);
            }
        }
        // The loss and its backward stay f32 (scopes `loss`, `loss.backward`); only the
        // casts at the boundary (scoped like the value they convert) produce f16.
        for n in g.node_ids() {
            let node = g.node(n);
            let in_loss = node.scope == "loss" || node.scope == "loss.backward";
            if in_loss && !matches!(node.op, Op::Cast { .. }) {
                assert_ne!(
                    node.ty.dtype,
                    DType::F16,
                    "{} @{}",
                    node.op.name(),
                    node.scope
                );
            }
        }
        let backward_f16 = g
            .node_ids()
            .filter(|&n| crate::is_backward_scope(&g.node(n).scope))
            .filter(|&n| g.node(n).ty.dtype == DType::F16)
            .count();
        assert!(backward_f16 > 10, "{backward_f16}");
        compare(&grads(&g, &w), &want, 3e-2);
    }
}

/// `loss = 1e-6 · Σ (x · w)` with `x ≈ 0.01`: the true gradient `1e-6 · x ≈ 1e-8` is below
/// half the smallest f16 subnormal (2^-25 ≈ 3e-8), so the f16 gradient of the working copy
/// of `w` is exactly 0 without loss scaling.
fn tiny_gradient_graph() -> (Graph, HashMap<String, Tensor>, HashMap<String, Tensor>) {
    const N: usize = 64;
    let mut g = Graph::new("tiny");
    let x = g.input("x", f32t(&[N])).unwrap();
    let w = g.param("w", f32t(&[N])).unwrap();
    let xw = g.add(Op::Binary(BinaryOp::Mul), &[x, w], "layer").unwrap();
    let s = g
        .add(
            Op::Reduce {
                kind: tessera_ir::ReduceKind::Sum,
                axes: vec![0],
                keep_dims: false,
            },
            &[xw],
            "layer",
        )
        .unwrap();
    let k = g
        .add(
            Op::Full {
                value: 1e-6,
                ty: f32t(&[]),
            },
            &[],
            "loss",
        )
        .unwrap();
    let loss = g.add(Op::Binary(BinaryOp::Mul), &[s, k], "loss").unwrap();
    g.set_output("loss", loss).unwrap();
    let xs: Vec<f32> = (0..N).map(|i| 0.008 + 0.0001 * i as f32).collect();
    let ws: Vec<f32> = (0..N).map(|i| 0.5 - 0.01 * i as f32).collect();
    let inputs = HashMap::from([("x".to_string(), Tensor::from_f32(vec![N], xs).unwrap())]);
    let params = HashMap::from([("w".to_string(), Tensor::from_f32(vec![N], ws).unwrap())]);
    (g, inputs, params)
}

#[test]
fn loss_scaling_rescues_gradients_from_f16_underflow() {
    let (g, mut inputs, params) = tiny_gradient_graph();
    // f32 reference: d loss / d w = 1e-6 · x, about 1e-8.
    let f32_grad = evaluate(
        &autodiff(&g, &AutodiffOptions::default()).unwrap(),
        &inputs,
        &params,
    )
    .unwrap()
    .remove("grad.w")
    .unwrap()
    .to_f64_vec();
    let x = inputs["x"].to_f64_vec();
    for (gv, xv) in f32_grad.iter().zip(&x) {
        assert!(
            (gv - 1e-6 * xv).abs() < 1e-6 * xv * 1e-5,
            "{gv} vs {}",
            1e-6 * xv
        );
    }

    let (fwd, _) = mixed_precision(&g, &PrecisionConfig::plain_fp16()).unwrap();
    // The multiply runs in f16: the gradient of the f16 working copy of w is f16.
    let unscaled = autodiff(&fwd, &AutodiffOptions::default()).unwrap();
    let grad = evaluate(&unscaled, &inputs, &params).unwrap()["grad.w"].to_f64_vec();
    assert!(grad.iter().all(|&v| v == 0.0), "without scaling: {grad:?}");

    let scaled = autodiff_scaled(&fwd, &AutodiffOptions::default()).unwrap();
    let scale = 16384.0;
    inputs.insert(LOSS_SCALE_INPUT.into(), Tensor::scalar_f32(scale as f32));
    let out = evaluate(&scaled, &inputs, &params).unwrap();
    let grad = out["grad.w"].to_f64_vec();
    assert!(grad.iter().all(|&v| v != 0.0), "with scaling: {grad:?}");
    for (gv, want) in grad.iter().zip(&f32_grad) {
        // Unscaled: within f16 rounding: x, the scaled upstream gradient 1e-6 · 16384 and
        // their product are each rounded to f16 (relative 2^-11 each), all normal numbers.
        let e = (gv / scale - want).abs() / want.abs();
        assert!(e < 2e-3, "{} vs {want}: {e:e}", gv / scale);
    }
    // The loss output is the unscaled loss.
    let loss = out["loss"].to_f64_vec()[0];
    let want_loss: f64 = 1e-6
        * x.iter()
            .zip(params["w"].to_f64_vec())
            .map(|(a, b)| a * b)
            .sum::<f64>();
    assert!(
        (loss - want_loss).abs() < 2e-3 * want_loss.abs(),
        "{loss} vs {want_loss}"
    );
}

#[test]
fn scaled_autodiff_checks_its_arguments() {
    let (g, _, _) = tiny_gradient_graph();
    let opts = AutodiffOptions {
        seed_scale: 2.0,
        ..Default::default()
    };
    assert!(autodiff_scaled(&g, &opts)
        .unwrap_err()
        .to_string()
        .contains("seed_scale"));
    let opts = AutodiffOptions {
        loss: "nope".into(),
        ..Default::default()
    };
    assert!(autodiff_scaled(&g, &opts)
        .unwrap_err()
        .to_string()
        .contains("nope"));
}
