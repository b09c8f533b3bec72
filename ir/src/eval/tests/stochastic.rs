//! Stochastic rounding through the driver: which nodes round stochastically, determinism,
//! independence from what else is evaluated, and unbiasedness on a whole tensor.

use super::*;
use crate::eval::{evaluate_with, EvalOptions, Evaluator};
use crate::op::BinaryOp;
use crate::types::TensorType;

const N: usize = 4096;

/// `h = cast(x -> f16)`, `p = h * h` (f16), `m = matmul(hm, hm^T)` with half partials.
fn graph() -> (Graph, [crate::NodeId; 3]) {
    let mut g = Graph::new("sr");
    let x = g.input("x", TensorType::new(DType::F32, vec![N])).unwrap();
    let h = g.add(Op::Cast { to: DType::F16 }, &[x], "m").unwrap();
    let p = g.add(Op::Binary(BinaryOp::Mul), &[h, h], "m").unwrap();
    let hm = g
        .add(
            Op::Reshape {
                shape: vec![64, 64],
            },
            &[h],
            "m",
        )
        .unwrap();
    let mm = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: true,
            },
            &[hm, hm],
            "m",
        )
        .unwrap();
    g.set_output("h", h).unwrap();
    g.set_output("p", p).unwrap();
    g.set_output("mm", mm).unwrap();
    (g, [h, p, mm])
}

/// Values in (1, 2) off the f16 grid (spacing 2^-10 there).
fn input() -> HashMap<String, Tensor> {
    let v: Vec<f32> = (0..N)
        .map(|i| 1.0 + (i as f32 + 0.3) / N as f32 * 0.999)
        .collect();
    HashMap::from([("x".to_string(), f32s(&[N], &v))])
}

fn sr(seed: u64) -> EvalOptions {
    EvalOptions {
        stochastic_rounding: Some(seed),
    }
}

#[test]
fn default_options_round_to_nearest() {
    let (g, _) = graph();
    let a = evaluate(&g, &input(), &HashMap::new()).unwrap();
    let b = evaluate_with(&g, &input(), &HashMap::new(), &EvalOptions::default()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn stochastic_cast_is_unbiased_and_deterministic() {
    let (g, _) = graph();
    let inputs = input();
    let x = inputs["x"].to_f64_vec();
    let a = evaluate_with(&g, &inputs, &HashMap::new(), &sr(11)).unwrap();
    let again = evaluate_with(&g, &inputs, &HashMap::new(), &sr(11)).unwrap();
    assert_eq!(a, again, "same seed, same bits");
    let other = evaluate_with(&g, &inputs, &HashMap::new(), &sr(12)).unwrap();
    assert_ne!(a["h"], other["h"], "another seed rounds differently");

    let nearest = evaluate(&g, &inputs, &HashMap::new()).unwrap();
    let h = a["h"].to_f64_vec();
    let h_rne = nearest["h"].to_f64_vec();
    let step = 2f64.powi(-10);
    let (mut bias_sr, mut bias_rne, mut differ) = (0.0, 0.0, 0);
    for i in 0..N {
        let (lo, hi) = (
            (x[i] / step).floor() * step,
            (x[i] / step).floor() * step + step,
        );
        assert!(
            h[i] == lo || h[i] == hi,
            "element {i}: {} not a neighbour of {}",
            h[i],
            x[i]
        );
        bias_sr += h[i] - x[i];
        bias_rne += h_rne[i] - x[i];
        differ += usize::from(h[i] != h_rne[i]);
    }
    // Each element errs by less than one step, independently, with mean 0: the mean error
    // is within a few step / sqrt(12 N) of 0. (The input is evenly spread over the grid
    // cells, so nearest rounding is nearly unbiased too; the count of differences shows
    // the rounding is not nearest.)
    let sigma = step / (12.0 * N as f64).sqrt();
    assert!(
        (bias_sr / N as f64).abs() < 5.0 * sigma,
        "mean error {}",
        bias_sr / N as f64
    );
    assert!((bias_rne / N as f64).abs() < step / 2.0);
    assert!(
        differ > N / 8,
        "only {differ} of {N} elements differ from nearest rounding"
    );
}

#[test]
fn results_do_not_depend_on_what_else_is_evaluated() {
    let (g, [h, p, _]) = graph();
    let ev = Evaluator::with_options(&g, sr(5));
    let both = ev.run_nodes(&input(), &HashMap::new(), &[p, h]).unwrap();
    let h_only = ev.run_nodes(&input(), &HashMap::new(), &[h]).unwrap();
    assert_eq!(both[1], h_only[0]);
    // p rounds h*h (exact in f32 for f16 h) stochastically: each element is a neighbour.
    let hv = both[1].to_f64_vec();
    let pv = both[0].to_f64_vec();
    for (hh, pp) in hv.iter().zip(&pv) {
        let exact = hh * hh;
        let step = 2f64.powi(exact.log2().floor() as i32 - 10);
        let lo = (exact / step).floor() * step;
        assert!(*pp == lo || *pp == lo + step, "{pp} vs {exact}");
    }
}

#[test]
fn half_partial_matmuls_keep_nearest_rounding() {
    let (g, [h, _, mm]) = graph();
    let ev = Evaluator::with_options(&g, sr(5));
    let vals = ev.run_nodes(&input(), &HashMap::new(), &[h, mm]).unwrap();
    // The same matmul on the same (stochastically rounded) h without the option.
    let mut g2 = Graph::new("mm");
    let hin = g2
        .input("h", TensorType::new(DType::F16, vec![64, 64]))
        .unwrap();
    let mm2 = g2
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: true,
            },
            &[hin, hin],
            "m",
        )
        .unwrap();
    g2.set_output("mm", mm2).unwrap();
    let h = vals[0].clone().reshape(vec![64, 64]).unwrap();
    let want = evaluate(&g2, &HashMap::from([("h".to_string(), h)]), &HashMap::new()).unwrap();
    assert_eq!(vals[1], want["mm"]);
}
