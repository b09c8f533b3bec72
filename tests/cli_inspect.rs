//! End-to-end tests of `tessera inspect`: summaries against independently published figures,
//! every emit format, and bad MODEL arguments.

mod common;
use common::*;

#[test]
fn base_summary_matches_transformers_parameter_count_and_flops() {
    let out = tessera_ok(&["inspect", "lxmert-base", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // LxmertForQuestionAnswering(LxmertConfig(num_qa_labels=3129)) in transformers: 213,930,297.
    assert_eq!(v["parameters"], 213_930_297u64);
    assert_eq!(v["parameter_bytes"], 4 * 213_930_297u64);
    // Measured with PyTorch for seq 20 / 36 objects: 10.587 GFLOP of matmuls per sample.
    let mm = v["matmul_flops"].as_f64().unwrap();
    assert!((mm / 10.587e9 - 1.0).abs() < 2e-3, "matmul flops {mm}");
    assert!(v["forward_flops"].as_f64().unwrap() >= mm);
    assert!(v["nodes"].as_u64().unwrap() > 1000);
    assert!(v["ops"]["matmul"].as_u64().unwrap() > 100);
}

#[test]
fn tiny_summary_text_has_scope_table() {
    let out = tessera_ok(&["inspect", "lxmert-tiny"]);
    assert!(out.contains("57,162"), "{out}");
    for scope in [
        "lxmert.embeddings",
        "lxmert.encoder.layer.1",
        "lxmert.encoder.x_layers.0",
        "answer_head",
    ] {
        assert!(out.contains(scope), "missing {scope} in\n{out}");
    }
}

#[test]
fn text_ir_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.tir");
    let p = path.to_str().unwrap();
    tessera_ok(&[
        "inspect",
        "lxmert-tiny",
        "--emit",
        "text",
        "--seq-len",
        "7",
        "--num-objects",
        "5",
        "-o",
        p,
    ]);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.contains("\"lxmert.embeddings.word_embeddings.weight\""));
    let again = tessera_ok(&["inspect", p, "--emit", "text"]);
    assert_eq!(first, again);
    let dot = tessera_ok(&["inspect", p, "--emit", "dot"]);
    assert!(dot.starts_with("digraph"));
    let json = tessera_ok(&["inspect", p, "--emit", "json"]);
    serde_json::from_str::<serde_json::Value>(&json).unwrap();
}

#[test]
fn hf_config_and_model_dir_resolve() {
    let cfg = tiny_file("config.json");
    let out = tessera_ok(&["inspect", cfg.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["parameters"], 57_162u64);
    let out = tessera_ok(&["inspect", tiny().to_str().unwrap(), "--json"]);
    assert!(out.contains("\"parameters\": 57162"));
}

#[test]
fn bad_models_are_clear_errors() {
    let err = tessera_err(&["inspect", "lxmert-huge"]);
    assert!(
        err.contains("lxmert-base") && err.contains("lxmert-tiny"),
        "{err}"
    );
    let err = tessera_err(&["inspect", "no/such/file.json"]);
    assert!(err.contains("no/such/file.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.json");
    std::fs::write(&bad, "{\"hidden_size\": 32,\n \"num_attention_heads\": }").unwrap();
    let err = tessera_err(&["inspect", bad.to_str().unwrap()]);
    assert!(err.contains("config.json:2:"), "{err}");

    std::fs::write(&bad, "{\"hidden_size\": 30, \"num_attention_heads\": 4}").unwrap();
    let err = tessera_err(&["inspect", bad.to_str().unwrap()]);
    assert!(err.contains("hidden_size"), "{err}");

    let ir = dir.path().join("bad.tir");
    std::fs::write(
        &ir,
        "graph @g(%x: f32[2]) {\n  %0 = exp(%y) : f32[2]\n  return %out: %0\n}\n",
    )
    .unwrap();
    let err = tessera_err(&["inspect", ir.to_str().unwrap()]);
    assert!(err.contains("bad.tir:2:"), "{err}");
}
