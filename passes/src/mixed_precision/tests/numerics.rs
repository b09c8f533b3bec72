//! The rewritten graph computes what the f32 graph computes, to fp16 accuracy; fp16
//! partials and f16 weights cost accuracy measurably; the mask does not turn into NaN.

use super::*;
use tessera_ir::eval::{evaluate, evaluate_with, EvalOptions};

/// Outputs of `g` on the fragment's inputs with weights `w` cast to `g`'s parameter types.
fn run(g: &Graph, w: &HashMap<String, Tensor>, opts: &EvalOptions) -> Tensor {
    let mut out = evaluate_with(g, &inputs(), &weights_for(g, w), opts).unwrap();
    out.remove("question_answering_score").unwrap()
}

#[test]
fn fp16_fragment_tracks_f32() {
    let src = fragment();
    let plain = EvalOptions::default();
    for seed in 0..4 {
        let w = weights(&src, seed);
        let want = run(&src, &w, &plain);
        assert!(want.to_f32_vec().iter().all(|x| x.is_finite()));
        for (cfg, tol) in [
            (PrecisionConfig::plain_fp16(), 1e-2),
            (PrecisionConfig::seed_run(), 2e-2),
        ] {
            let (g, _) = mixed_precision(&src, &cfg).unwrap();
            let got = run(&g, &w, &plain);
            let e = rel_err(&got, &want);
            // fp16 has 11 significant bits (relative rounding 2^-11 = 4.9e-4 per op); a
            // dozen roundings in sequence stay well under 1e-2.
            assert!(
                e < tol,
                "seed {seed}, {:?}: relative error {e:e}",
                cfg.master_weights
            );
            assert!(e > 0.0, "fp16 must differ from f32 somewhere");
        }
    }
}

#[test]
fn masked_position_gets_no_attention_in_fp16() {
    // The mask constant finfo(f32).min saturates to -65504 in f16: masked keys get
    // probability exactly 0 and nothing is NaN (with -inf, `(1 - 1) * -inf` would be NaN).
    let src = fragment();
    let (g, _) = mixed_precision(&src, &PrecisionConfig::plain_fp16()).unwrap();
    let w = weights(&src, 9);
    let softmax = nodes_named(&g, "softmax")[0];
    let probs = tessera_ir::eval::evaluate_nodes(&g, &inputs(), &weights_for(&g, &w), &[softmax])
        .unwrap()
        .remove(0)
        .to_f64_vec();
    assert_eq!(probs.len(), B * L * L);
    assert!(probs.iter().all(|p| p.is_finite()), "{probs:?}");
    for q in 0..L {
        // Sample 1, query q, key 3 is masked.
        assert_eq!(probs[L * L + q * L + 3], 0.0, "query {q}");
        let row: f64 = probs[L * L + q * L..L * L + q * L + L].iter().sum();
        assert!((row - 1.0).abs() < 1e-6, "row {q} sums to {row}");
    }
}

/// `x[8, K] · w[K, 8]` for random x, w: the f32 graph and the pass's result with and
/// without fp16 partials.
#[test]
fn half_partials_cost_accuracy_on_long_sums() {
    const K: usize = 4096;
    let mut g = Graph::new("dot");
    let x = g.input("x", f32t(&[8, K])).unwrap();
    let w = g.param("w", f32t(&[K, 8])).unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
        half_partials: false,
    };
    let y = g.add(mm, &[x, w], "dense").unwrap();
    g.set_output("y", y).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut rand = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(0.0..1.0)).collect() };
    let xs = Tensor::from_f32(vec![8, K], rand(8 * K)).unwrap();
    let ws = Tensor::from_f32(vec![K, 8], rand(8 * K)).unwrap();
    // Exact (f64) products of the f16-rounded operands, summed in f64: what fp16 operands
    // with perfect accumulation would give.
    let (xh, wh) = (
        xs.cast(DType::F16).to_f64_vec(),
        ws.cast(DType::F16).to_f64_vec(),
    );
    let mut exact = vec![0f64; 64];
    for i in 0..8 {
        for j in 0..8 {
            exact[i * 8 + j] = (0..K).map(|k| xh[i * K + k] * wh[k * 8 + j]).sum();
        }
    }
    let exact = Tensor::from_f32(vec![8, 8], exact.iter().map(|&v| v as f32).collect()).unwrap();
    let feeds = HashMap::from([("x".to_string(), xs)]);
    let err = |half: bool| {
        let mut cfg = PrecisionConfig::plain_fp16();
        cfg.half_partials = half;
        let (r, _) = mixed_precision(&g, &cfg).unwrap();
        let params = HashMap::from([("w".to_string(), ws.clone())]);
        let out = evaluate(&r, &feeds, &params).unwrap();
        rel_err(&out["y"], &exact)
    };
    let (f32_partials, f16_partials) = (err(false), err(true));
    eprintln!("f32 partials {f32_partials:e}, f16 partials {f16_partials:e}");
    // f32 partials: one f16 rounding of the result (2^-11). fp16 partials: the running sum
    // (up to ~K/4 = 1024, f16 spacing 0.5 to 1 there) is rounded after every addition of
    // a term below 1, so late terms are partly swamped: a systematic error of several
    // percent (measured: 8.2e-2 against 4.7e-4 with f32 partials).
    assert!(f32_partials < 1e-3, "{f32_partials:e}");
    assert!(
        f16_partials > 20.0 * f32_partials,
        "{f16_partials:e} vs {f32_partials:e}"
    );
    assert!(f16_partials < 0.15, "{f16_partials:e}");
}

#[test]
fn stochastic_rounding_stays_within_fp16_accuracy() {
    let src = fragment();
    let w = weights(&src, 1);
    let want = run(&src, &w, &EvalOptions::default());
    let (g, _) = mixed_precision(&src, &PrecisionConfig::plain_fp16()).unwrap();
    let sr = |seed| EvalOptions {
        stochastic_rounding: Some(seed),
    };
    let a = run(&g, &w, &sr(1));
    let b = run(&g, &w, &sr(2));
    assert_ne!(a, b, "different seeds round differently");
    assert_eq!(a, run(&g, &w, &sr(1)), "same seed, same result");
    // Stochastic rounding errs by up to one f16 spacing per op (twice nearest's bound).
    assert!(rel_err(&a, &want) < 2e-2, "{:e}", rel_err(&a, &want));
}
