//! Numerics of fp16 mixed precision end to end: logits against fp32 on `lxmert-tiny`
//! (Hugging Face fixture weights) and `lxmert-base` (seeded weights), fp16 partials against
//! fp32 partials, loss scaling against f16 gradient underflow, and the precision flags.
//! Training runs are in `mixed_precision_training.rs`.
//!
//! Tolerances, relative errors as max |Δ| / max |reference| (measured, then bounded with a
//! margin of 3-4×; the measurements are printed by the tests):
//! - `lxmert-tiny` logits against transformers: fp32 3.5e-7; fp16 with f32 master weights
//!   5.0e-4 (bound 2e-3); the seed run's settings (f16 weights, fp16 partials) 2.0e-3
//!   (bound 6e-3);
//! - `lxmert-base` logits against fp32 (seeded weights, 8 tokens, 4 objects): fp32 partials
//!   1.6e-3 (bound 5e-3), fp16 partials 1.5e-2 (9× worse; bound: at least 3× worse,
//!   below 5e-2);
//! - `run --train` with f16 weights: 2693 gradient elements non-zero in fp32 underflow to
//!   0 without loss scaling, 16 with scale 16384 (bound: at least 10× fewer); the unscaled
//!   gradients are within 2.6e-3 of the fp32 ones (bound 1e-2; `.key.bias` gradients,
//!   zero in exact arithmetic, excluded).

mod common;
use common::*;
use std::collections::{BTreeMap, HashMap};
use tessera_ir::eval::evaluate;
use tessera_ir::{DType, Tensor};
use tessera_passes::mixed_precision::{mixed_precision, PrecisionConfig};

const LOGITS: &str = "question_answering_score";

fn run_tiny(extra: &[&str]) -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let (model, inputs) = (tiny(), tiny_file("inputs.safetensors"));
    tessera_ok(&run_args(&model, &inputs, &out, extra));
    load(&out)
}

/// A file of `tests/fixtures`.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn tiny_fp16_logits_track_fp32_through_the_cli() {
    let want = load(&tiny_file("outputs.safetensors"));
    let fp32 = run_tiny(&[]);
    let plain = run_tiny(&["--precision", "fp16"]);
    let ipu_config = fixture("lxmert-vqa-uncased.ipu_config.json");
    let seed = run_tiny(&[
        "--precision",
        "fp16",
        "--master-weights",
        "f16",
        "--ipu-config",
        ipu_config.to_str().unwrap(),
    ]);
    let e32 = rel_err(&fp32[LOGITS], &want[LOGITS]);
    let e_plain = rel_err(&plain[LOGITS], &want[LOGITS]);
    let e_seed = rel_err(&seed[LOGITS], &want[LOGITS]);
    eprintln!(
        "tiny logits vs transformers: fp32 {e32:e}, fp16 {e_plain:e}, seed-run fp16 {e_seed:e}"
    );
    assert_eq!(plain[LOGITS].dtype(), DType::F32, "outputs keep their type");
    assert!(e32 < 1e-4);
    assert!(e_plain < 2e-3, "fp16: {e_plain:e}");
    assert!(e_seed < 6e-3, "seed-run fp16: {e_seed:e}");
    assert!(e_plain > 10.0 * e32, "fp16 must actually be fp16");
}

/// LXMERT-base with seeded weights on one sample of 8 tokens and 4 objects.
fn base_case() -> (
    tessera_ir::Graph,
    HashMap<String, Tensor>,
    HashMap<String, Tensor>,
) {
    use rand::{Rng, SeedableRng};
    let spec = tessera::model::resolve("lxmert-base").unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 1,
        seq_len: 8,
        num_objects: 4,
    };
    let graph = spec
        .graph(&shapes, &tessera_lxmert::BuildOptions::default())
        .unwrap();
    let params = spec.weights(None, 7).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let ids: Vec<i64> = (0..8).map(|_| rng.gen_range(1..30000)).collect();
    let feats: Vec<f32> = (0..4 * 2048).map(|_| rng.gen_range(0.0..2.0)).collect();
    let pos: Vec<f32> = (0..16).map(|_| rng.gen_range(0.0..1.0)).collect();
    let inputs = HashMap::from([
        (
            "input_ids".to_string(),
            Tensor::from_i64(vec![1, 8], ids).unwrap(),
        ),
        (
            "attention_mask".to_string(),
            Tensor::from_i64(vec![1, 8], vec![1; 8]).unwrap(),
        ),
        (
            "token_type_ids".to_string(),
            Tensor::from_i64(vec![1, 8], vec![0; 8]).unwrap(),
        ),
        (
            "visual_feats".to_string(),
            Tensor::from_f32(vec![1, 4, 2048], feats).unwrap(),
        ),
        (
            "visual_pos".to_string(),
            Tensor::from_f32(vec![1, 4, 4], pos).unwrap(),
        ),
    ]);
    (graph, inputs, params)
}

#[test]
fn base_fp16_logits_and_half_partials() {
    let (graph, inputs, params) = base_case();
    let want = evaluate(&graph, &inputs, &params)
        .unwrap()
        .remove(LOGITS)
        .unwrap();
    let err = |half_partials: bool| {
        let cfg = PrecisionConfig {
            half_partials,
            ..PrecisionConfig::plain_fp16()
        };
        let (g, _) = mixed_precision(&graph, &cfg).unwrap();
        let got = evaluate(&g, &inputs, &params)
            .unwrap()
            .remove(LOGITS)
            .unwrap();
        rel_err(&got, &want)
    };
    let (f32_partials, f16_partials) = (err(false), err(true));
    eprintln!(
        "base logits vs fp32: fp32 partials {f32_partials:e}, fp16 partials {f16_partials:e}"
    );
    assert!(f32_partials < 5e-3, "fp32 partials: {f32_partials:e}");
    assert!(f16_partials < 5e-2, "fp16 partials: {f16_partials:e}");
    assert!(
        f16_partials > 3.0 * f32_partials,
        "fp16 partials {f16_partials:e} should be measurably worse than fp32 partials {f32_partials:e}"
    );
}

#[test]
fn loss_scaling_keeps_small_fp16_gradients_from_underflowing() {
    // f16 weights, no loss scaling: some gradient elements that are non-zero in fp32
    // underflow to exactly zero; with the seed run's scale 16384 far fewer do.
    let fp32 = tessera_ok_train(&[]);
    // Gradient elements non-zero in fp32 and exactly zero here, and the largest relative
    // error of a gradient tensor (max |Δ| / max |fp32|) once unscaled.
    let compare = |extra: &[&str]| {
        let got = tessera_ok_train(extra);
        let (mut lost, mut worst) = (0, 0f64);
        for (k, g) in got.iter().filter(|(k, _)| k.starts_with("grad.")) {
            let want = fp32[k].to_f64_vec();
            lost += g
                .to_f64_vec()
                .iter()
                .zip(&want)
                .filter(|(a, b)| **a == 0.0 && **b != 0.0)
                .count();
            // `.key.bias` gradients are 0 in exact arithmetic (softmax is shift-invariant):
            // rounding noise on both sides, no relative accuracy to compare.
            if !k.contains(".key.bias") {
                worst = worst.max(rel_err(&g.cast(DType::F32), &fp32[k]));
            }
        }
        (lost, worst)
    };
    let (unscaled, _) = compare(&["--precision", "fp16", "--master-weights", "f16"]);
    let (scaled, worst) = compare(&[
        "--precision",
        "fp16",
        "--master-weights",
        "f16",
        "--loss-scaling",
        "16384",
    ]);
    eprintln!(
        "gradient elements lost to underflow: {unscaled} unscaled, {scaled} with scale 16384; \
         worst relative error of the unscaled gradients {worst:e}"
    );
    assert!(unscaled > 0, "expected underflow without loss scaling");
    assert!(scaled * 10 < unscaled, "{scaled} vs {unscaled}");
    // `run --train` divides the scale back out: the gradients are the fp32 ones to fp16
    // accuracy.
    assert!(worst < 1e-2, "{worst:e}");
}

/// `tessera run --train` on the fixture's soft-label batch.
fn tessera_ok_train(extra: &[&str]) -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.safetensors");
    let tiny_dir = tiny();
    let inputs = tiny_file("train_soft.safetensors");
    let mut args = vec![
        "run",
        tiny_dir.to_str().unwrap(),
        "--train",
        "--inputs",
        inputs.to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    tessera_ok(&args);
    load(&out)
}

#[test]
fn precision_flags_are_checked() {
    let err = tessera_err(&["train", "lxmert-tiny", "--steps", "1", "--half-partials"]);
    assert!(err.contains("--precision fp16"), "{err}");
    let err = tessera_err(&[
        "train",
        "lxmert-tiny",
        "--steps",
        "1",
        "--precision",
        "fp16",
        "--ipu-config",
        "/nonexistent/ipu_config.json",
    ]);
    assert!(err.contains("/nonexistent/ipu_config.json"), "{err}");
    let out = tessera(&[
        "train",
        "lxmert-tiny",
        "--precision",
        "fp16",
        "--loss-scaling",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap rejects the value");
}
