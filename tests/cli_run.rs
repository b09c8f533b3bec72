//! End-to-end tests of `tessera run` against Hugging Face transformers' outputs, and of its
//! handling of bad input (clear error, exit 1, no output file left behind).

mod common;
use common::*;
use std::collections::BTreeMap;
use tessera_ir::Tensor;

fn run_tiny(inputs: &str) -> BTreeMap<String, Tensor> {
    run_model(&tiny(), inputs)
}

fn run_model(model: &std::path::Path, inputs: &str) -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    tessera_ok(&[
        "run",
        model.to_str().unwrap(),
        "--inputs",
        model.join(inputs).to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    load(&out)
}

const OUTPUTS: [&str; 4] = [
    "question_answering_score",
    "language_output",
    "vision_output",
    "pooled_output",
];

#[test]
fn tiny_forward_matches_transformers_f64() {
    let got = run_tiny("inputs.safetensors");
    let want64 = load(&tiny_file("outputs_f64.safetensors"));
    for name in OUTPUTS {
        let e64 = rel_err(&got[name], &want64[name]);
        assert!(
            e64 < 1e-4,
            "{name}: relative error {e64:e} vs transformers f64"
        );
    }
}

#[test]
fn forward_matches_transformers_for_every_fixture_config() {
    for model in fixtures() {
        let got = run_model(&model, "inputs.safetensors");
        let want = load(&model.join("outputs.safetensors"));
        for name in OUTPUTS {
            let e = rel_err(&got[name], &want[name]);
            assert!(
                e < 1e-4,
                "{}: {name}: relative error {e:e}",
                model.display()
            );
        }
    }
}

#[test]
fn forward_with_visual_mask_matches_transformers_for_every_fixture_config() {
    for model in fixtures() {
        let got = run_model(&model, "inputs_vmask.safetensors");
        let want = load(&model.join("outputs.safetensors"));
        for name in OUTPUTS {
            let e = rel_err(&got[name], &want[&format!("vmask.{name}")]);
            assert!(
                e < 1e-4,
                "{}: vmask.{name}: relative error {e:e}",
                model.display()
            );
        }
    }
}

#[test]
fn defaults_for_optional_inputs_are_transformers_defaults() {
    // Omitting attention_mask and token_type_ids must equal giving ones and zeros, as in
    // transformers' LxmertModel.forward.
    let dir = tempfile::tempdir().unwrap();
    let base = load(&tiny_file("inputs.safetensors"));
    let mut explicit = base.clone();
    explicit.insert(
        "attention_mask".into(),
        Tensor::from_i64(vec![2, 7], vec![1; 14]).unwrap(),
    );
    explicit.insert(
        "token_type_ids".into(),
        Tensor::from_i64(vec![2, 7], vec![0; 14]).unwrap(),
    );
    let mut omitted = base;
    omitted.remove("attention_mask");
    omitted.remove("token_type_ids");
    let mut results = Vec::new();
    for (tag, inputs) in [("explicit", explicit), ("omitted", omitted)] {
        let path = dir.path().join(format!("{tag}.safetensors"));
        tessera_ir::io::save_safetensors(&path, &inputs).unwrap();
        let out = dir.path().join(format!("{tag}.out.safetensors"));
        tessera_ok(&[
            "run",
            tiny().to_str().unwrap(),
            "--inputs",
            path.to_str().unwrap(),
            "--outputs",
            out.to_str().unwrap(),
        ]);
        results.push(load(&out));
    }
    assert_eq!(results[0], results[1]);
    // And the defaults matter: the fixture's own mask and token types give other scores.
    let fixture = run_tiny("inputs.safetensors");
    assert_ne!(
        fixture["question_answering_score"],
        results[0]["question_answering_score"]
    );
}

fn expect_failure_without_output(args: &[&str], out: &std::path::Path, needle: &str) {
    let err = tessera_err(args);
    assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let o = out.to_str().unwrap();
    let model = tiny();
    let m = model.to_str().unwrap();

    // Wrong shape: visual_feats with the wrong feature size.
    let mut inputs = load(&tiny_file("inputs.safetensors"));
    inputs.insert(
        "visual_feats".into(),
        Tensor::from_f32(vec![2, 5, 3], vec![0.0; 30]).unwrap(),
    );
    let p = dir.path().join("wrong_shape.safetensors");
    tessera_ir::io::save_safetensors(&p, &inputs).unwrap();
    expect_failure_without_output(
        &["run", m, "--inputs", p.to_str().unwrap(), "--outputs", o],
        &out,
        "visual_feats",
    );

    // Wrong dtype: float token ids with fractions.
    let mut inputs = load(&tiny_file("inputs.safetensors"));
    inputs.insert(
        "input_ids".into(),
        Tensor::from_f32(vec![2, 7], vec![0.5; 14]).unwrap(),
    );
    let p = dir.path().join("wrong_dtype.safetensors");
    tessera_ir::io::save_safetensors(&p, &inputs).unwrap();
    expect_failure_without_output(
        &["run", m, "--inputs", p.to_str().unwrap(), "--outputs", o],
        &out,
        "input_ids",
    );

    // Missing required input.
    let mut inputs = load(&tiny_file("inputs.safetensors"));
    inputs.remove("visual_pos");
    let p = dir.path().join("missing.safetensors");
    tessera_ir::io::save_safetensors(&p, &inputs).unwrap();
    expect_failure_without_output(
        &["run", m, "--inputs", p.to_str().unwrap(), "--outputs", o],
        &out,
        "visual_pos",
    );

    // Truncated safetensors.
    let bytes = std::fs::read(tiny_file("inputs.safetensors")).unwrap();
    let p = dir.path().join("truncated.safetensors");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    expect_failure_without_output(
        &["run", m, "--inputs", p.to_str().unwrap(), "--outputs", o],
        &out,
        "truncated.safetensors",
    );

    // Truncated weights.
    let bytes = std::fs::read(tiny_file("model.safetensors")).unwrap();
    let w = dir.path().join("weights.safetensors");
    std::fs::write(&w, &bytes[..bytes.len() - 100]).unwrap();
    let inp = tiny_file("inputs.safetensors");
    expect_failure_without_output(
        &[
            "run",
            m,
            "--weights",
            w.to_str().unwrap(),
            "--inputs",
            inp.to_str().unwrap(),
            "--outputs",
            o,
        ],
        &out,
        "weights.safetensors",
    );

    // Token id outside the vocabulary.
    let mut inputs = load(&tiny_file("inputs.safetensors"));
    inputs.insert(
        "input_ids".into(),
        Tensor::from_i64(vec![2, 7], vec![1000; 14]).unwrap(),
    );
    let p = dir.path().join("oov.safetensors");
    tessera_ir::io::save_safetensors(&p, &inputs).unwrap();
    expect_failure_without_output(
        &["run", m, "--inputs", p.to_str().unwrap(), "--outputs", o],
        &out,
        "vocabulary",
    );
}

#[test]
fn an_existing_output_survives_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    std::fs::write(&out, b"previous results").unwrap();
    let p = dir.path().join("garbage.safetensors");
    std::fs::write(&p, b"not a safetensors file").unwrap();
    tessera_err(&[
        "run",
        "lxmert-tiny",
        "--inputs",
        p.to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"previous results");
}
