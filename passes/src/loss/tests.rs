//! Loss values against f64 formulas written out here (including logits large enough to
//! overflow a naive `exp`), their gradients against the closed forms
//! `(σ(x) − z)/(B·C)` and `(softmax(x) − onehot)/B`, and the error messages.

use super::*;
use crate::autodiff::{autodiff, AutodiffOptions};
use std::collections::HashMap;
use tessera_ir::eval::evaluate;
use tessera_ir::{verify, Tensor};

const LOGITS_VALUES: [f32; 8] = [0.3, -1.2, 95.0, -120.0, 0.0, 2.5, -30.0, 17.0];

/// A graph whose answer logits are a parameter `[2, 4]`.
fn head() -> Graph {
    let mut g = Graph::new("qa");
    let x = g
        .param("logits", TensorType::new(DType::F32, vec![2, 4]))
        .unwrap();
    let y = g.add(Op::Unary(UnaryOp::Neg), &[x], "answer_head").unwrap();
    let y = g.add(Op::Unary(UnaryOp::Neg), &[y], "answer_head").unwrap();
    g.set_output(LOGITS, y).unwrap();
    g
}

fn run(g: &Graph, labels: Tensor) -> std::collections::BTreeMap<String, Tensor> {
    let params = HashMap::from([(
        "logits".to_string(),
        Tensor::from_f32(vec![2, 4], LOGITS_VALUES.to_vec()).unwrap(),
    )]);
    let inputs = HashMap::from([(LABELS.to_string(), labels)]);
    evaluate(g, &inputs, &params).unwrap()
}

fn close(got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-12),
        "got {got}, want {want}"
    );
}

#[test]
fn bce_with_logits_mean_matches_f64_formula() {
    let z = [0.0f32, 0.3, 1.0, 0.0, 0.6, 1.0, 0.9, 0.1];
    let labels = Tensor::from_f32(vec![2, 4], z.to_vec()).unwrap();
    let g = attach_vqa_loss(&head(), &labels.ty()).unwrap();
    verify(&g).unwrap();
    let out = run(&g, labels.clone());
    // −[z ln σ(x) + (1−z) ln(1−σ(x))], with ln σ(x) = −ln(1+e^{−x}) evaluated stably.
    let ln_sigmoid = |x: f64| -> f64 {
        if x >= 0.0 {
            -(-x).exp().ln_1p()
        } else {
            x - x.exp().ln_1p()
        }
    };
    let want: f64 = LOGITS_VALUES
        .iter()
        .zip(&z)
        .map(|(&x, &z)| {
            let (x, z) = (x as f64, z as f64);
            -(z * ln_sigmoid(x) + (1.0 - z) * ln_sigmoid(-x))
        })
        .sum::<f64>()
        / 8.0;
    let got = out[LOSS].to_f64_vec();
    assert_eq!(out[LOSS].shape(), &[] as &[usize]);
    close(got[0], want, 1e-6);

    // Gradient: (σ(x) − z) / (B·C).
    let ad = autodiff(&g, &AutodiffOptions::default()).unwrap();
    let grads = run(&ad, labels)["grad.logits"].to_f64_vec();
    for ((&x, &z), gr) in LOGITS_VALUES.iter().zip(&z).zip(grads) {
        let s = 1.0 / (1.0 + (-(x as f64)).exp());
        let want = (s - z as f64) / 8.0;
        assert!((gr - want).abs() <= 1e-6, "x={x}: {gr} vs {want}");
    }
}

#[test]
fn cross_entropy_mean_matches_f64_formula() {
    // Row 0 picks -1.2 next to 95 (loss ≈ 96), row 1 picks 0 next to 17 (loss ≈ 17).
    let classes = [1i64, 0];
    let labels = Tensor::from_i64(vec![2], classes.to_vec()).unwrap();
    let g = attach_vqa_loss(&head(), &labels.ty()).unwrap();
    verify(&g).unwrap();
    let out = run(&g, labels.clone());
    let rows: Vec<Vec<f64>> = LOGITS_VALUES
        .chunks(4)
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let logsumexp = |r: &[f64]| {
        let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
    };
    let want = rows
        .iter()
        .zip(classes)
        .map(|(r, c)| logsumexp(r) - r[c as usize])
        .sum::<f64>()
        / 2.0;
    close(out[LOSS].to_f64_vec()[0], want, 1e-6);

    // Gradient: (softmax(x) − onehot) / B.
    let ad = autodiff(&g, &AutodiffOptions::default()).unwrap();
    let grads = run(&ad, labels)["grad.logits"].to_f64_vec();
    for (b, r) in rows.iter().enumerate() {
        let lse = logsumexp(r);
        for (c, &x) in r.iter().enumerate() {
            let onehot = if c as i64 == classes[b] { 1.0 } else { 0.0 };
            let want = ((x - lse).exp() - onehot) / 2.0;
            let got = grads[b * 4 + c];
            assert!((got - want).abs() <= 1e-6, "[{b},{c}]: {got} vs {want}");
        }
    }
}

#[test]
fn loss_nodes_are_scoped_and_typed() {
    let g0 = head();
    let g = attach_vqa_loss(&g0, &TensorType::new(DType::F32, vec![2, 4])).unwrap();
    assert_eq!(
        g.node(g.output(LOSS).unwrap()).ty,
        TensorType::scalar(DType::F32)
    );
    assert!(g.output(LOGITS).is_ok(), "existing outputs are kept");
    for id in g.node_ids().filter(|&id| !g0.contains(id)) {
        let n = g.node(id);
        match n.op {
            Op::Input { .. } => assert_eq!(n.scope, ""),
            _ => assert_eq!(n.scope, SCOPE, "{:?}", n.op),
        }
    }
}

#[test]
fn fp16_logits_are_cast_to_f32() {
    let mut g = Graph::new("h");
    let x = g
        .input("x", TensorType::new(DType::F16, vec![1, 3]))
        .unwrap();
    g.set_output(LOGITS, x).unwrap();
    let g = attach_vqa_loss(&g, &TensorType::new(DType::I64, vec![1])).unwrap();
    verify(&g).unwrap();
    let loss = g.output(LOSS).unwrap();
    assert_eq!(g.node(loss).ty, TensorType::scalar(DType::F32));
}

#[test]
fn errors_say_what_is_expected() {
    let mut g = Graph::new("bare");
    let x = g
        .input("x", TensorType::new(DType::F32, vec![2, 4]))
        .unwrap();
    g.set_output("pooled_output", x).unwrap();
    let e = attach_vqa_loss(&g, &TensorType::new(DType::I64, vec![2])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the graph @bare has no question-answering head (output `question_answering_score`)"
    );
    for bad in [
        TensorType::new(DType::F32, vec![2]),
        TensorType::new(DType::I64, vec![2, 4]),
        TensorType::new(DType::F16, vec![2, 4]),
        TensorType::new(DType::F32, vec![3, 4]),
    ] {
        let e = attach_vqa_loss(&head(), &bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "labels must be f32[2,4] (soft VQA scores, binary cross-entropy) or i64[2] \
                 (class ids, cross-entropy), got {bad}"
            )
        );
    }
    let with_labels = attach_vqa_loss(&head(), &TensorType::new(DType::I64, vec![2])).unwrap();
    let e = attach_vqa_loss(&with_labels, &TensorType::new(DType::I64, vec![2])).unwrap_err();
    assert!(
        e.to_string().contains("duplicate input name `labels`"),
        "{e}"
    );
}
