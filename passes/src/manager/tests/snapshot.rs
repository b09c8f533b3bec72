//! The printed IR before and after `loss,autodiff` and `mixed-precision,loss,autodiff` on a
//! small answer head, as the command line's `--print-before`/`--print-after` shows it
//! (review changes with `cargo insta review`; snapshots in
//! `passes/src/manager/snapshots/`), plus a numeric check of the final graphs against
//! hand-derived gradients.

use super::builtin::qa_head;
use crate::manager::*;
use crate::mixed_precision::PrecisionConfig;
use std::collections::HashMap;
use tessera_ir::{text, Graph, Tensor};

/// Prints the IR before the first pass and after every pass, with wall times zeroed.
#[derive(Default)]
struct Printer(String);

impl Instrumentation for Printer {
    fn before_pass(&mut self, index: usize, name: &str, graph: &Graph) -> Result<(), HookError> {
        if index == 1 {
            self.0 += &banner_before(name);
            self.0.push('\n');
            self.0 += &text::print(graph);
        }
        Ok(())
    }
    fn after_pass(&mut self, r: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        let zeroed = PassRecord {
            seconds: 0.0,
            ..r.clone()
        };
        self.0 += &banner_after(&zeroed);
        self.0.push('\n');
        self.0 += &text::print(graph);
        Ok(())
    }
}

#[test]
fn loss_and_autodiff_dumps() {
    let pm = build_pipeline(&["loss", "autodiff"], &PassOptions::default()).unwrap();
    let mut p = Printer::default();
    let run = pm.run(qa_head(), &mut p).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("qa_head_loss_autodiff", p.0);
    });
    // Every dump parses back (banners are comments).
    for chunk in p.0.split("// -----//").skip(1) {
        let body = chunk.split_once('\n').unwrap().1;
        text::parse(body).unwrap();
    }
    check_gradients(&run.graph, None, 1e-6);
}

#[test]
fn mixed_precision_loss_and_autodiff_dumps() {
    let opts = PassOptions {
        precision: PrecisionConfig::plain_fp16(),
        scaled_loss: true,
        ..Default::default()
    };
    let pm = build_pipeline(&["mixed-precision", "loss", "autodiff"], &opts).unwrap();
    let mut p = Printer::default();
    let run = pm.run(qa_head(), &mut p).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("qa_head_mixed_precision", p.0);
    });
    // The matmul and the bias add run in f16 (the inputs cast once); the loss stays f32.
    let mp = &run.records[0];
    assert_eq!(mp.counters["half_partials_matmuls"], 0);
    assert!(mp.counters["casts_inserted"] >= 3, "{:?}", mp.counters);
    // Gradients come out multiplied by the fed scale; f16 products and sums give ~1e-3.
    check_gradients(&run.graph, Some(1024.0), 2e-2);
}

/// Loss and gradients of the final graph against the hand-derived formulas (f64):
/// `L = mean(softplus(l) − l·z)`, `dL/dl = (σ(l) − z)/(B·C)`, `dL/dW = xᵀ·dL/dl`,
/// `dL/db = Σ_b dL/dl`.
fn check_gradients(g: &Graph, loss_scale: Option<f32>, tol: f64) {
    let x = [0.5f32, -1.0, 2.0, 1.5, 0.25, -0.75];
    let w: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 8.0).collect();
    let b = [0.1f32, -0.2, 0.3, 0.0];
    let z = [1.0f32, 0.0, 0.3, 0.0, 0.0, 1.0, 0.0, 0.6];
    let mut inputs: HashMap<String, Tensor> = [
        (
            "x".to_string(),
            Tensor::from_f32(vec![2, 3], x.to_vec()).unwrap(),
        ),
        (
            "labels".to_string(),
            Tensor::from_f32(vec![2, 4], z.to_vec()).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    if let Some(s) = loss_scale {
        inputs.insert("loss_scale".to_string(), Tensor::scalar_f32(s));
    }
    let scale = f64::from(loss_scale.unwrap_or(1.0));
    let params: HashMap<String, Tensor> = [
        (
            "head.w".to_string(),
            Tensor::from_f32(vec![3, 4], w.clone()).unwrap(),
        ),
        (
            "head.b".to_string(),
            Tensor::from_f32(vec![4], b.to_vec()).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let out = tessera_ir::eval::evaluate(g, &inputs, &params).unwrap();

    let (mut loss, mut dl) = (0.0f64, [0.0f64; 8]);
    for i in 0..2 {
        for c in 0..4 {
            let l = (0..3)
                .map(|k| f64::from(x[i * 3 + k]) * f64::from(w[k * 4 + c]))
                .sum::<f64>()
                + f64::from(b[c]);
            let zz = f64::from(z[i * 4 + c]);
            loss += (1.0 + l.exp()).ln() - l * zz;
            dl[i * 4 + c] = (1.0 / (1.0 + (-l).exp()) - zz) / 8.0;
        }
    }
    loss /= 8.0;
    let close = |a: f64, e: f64| (a - e).abs() <= tol * (1.0 + e.abs());
    let got = out["loss"].to_f64_vec();
    assert!(close(got[0], loss), "loss {} vs {loss}", got[0]);
    let unscale = |v: Vec<f64>| v.into_iter().map(|g| g / scale).collect::<Vec<_>>();
    let gw = unscale(out["grad.head.w"].to_f64_vec());
    for k in 0..3 {
        for c in 0..4 {
            let e: f64 = (0..2)
                .map(|i| f64::from(x[i * 3 + k]) * dl[i * 4 + c])
                .sum();
            assert!(
                close(gw[k * 4 + c], e),
                "dW[{k},{c}] {} vs {e}",
                gw[k * 4 + c]
            );
        }
    }
    let gb = unscale(out["grad.head.b"].to_f64_vec());
    for c in 0..4 {
        let e = dl[c] + dl[4 + c];
        assert!(close(gb[c], e), "db[{c}] {} vs {e}", gb[c]);
    }
}
