//! End-to-end tests of the tile path: `compile` lowering forward plans to tiles, `run PLAN`,
//! `run MODEL --engine tiles`, `inspect PLAN`, and their errors.
//!
//! Expected values are independent of the tile lowering: the reference evaluator's outputs
//! and the Hugging Face fixture's (transformers) logits, compared here as max |Δ| / max |ref|.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera_ir::Tensor;

const OUTPUTS: [&str; 4] = [
    "question_answering_score",
    "language_output",
    "vision_output",
    "pooled_output",
];
const LOGITS: &str = "question_answering_score";

/// Runs `tessera run MODEL --inputs I --outputs DIR/name` with `extra`; returns the outputs file.
fn run_to(dir: &Path, name: &str, model: &Path, inputs: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    tessera_ok(&run_args(model, inputs, &out, extra));
    out
}

fn assert_close(got: &BTreeMap<String, Tensor>, want: &BTreeMap<String, Tensor>, bound: f64) {
    for name in OUTPUTS {
        let e = rel_err(&got[name], &want[name]);
        assert!(e < bound, "{name}: relative error {e:e} (bound {bound:e})");
    }
}

#[test]
fn tiny_on_tiles_matches_reference_and_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let (model, inputs) = (tiny(), tiny_file("inputs.safetensors"));
    let reference = load(&run_to(dir.path(), "ref.st", &model, &inputs, &[]));
    let hf = load(&tiny_file("outputs.safetensors"));
    for (name, extra) in [
        ("one.st", &["--engine", "tiles"][..]),
        ("four.st", &["--engine", "tiles", "--ipus", "4"][..]),
    ] {
        let tiles = load(&run_to(dir.path(), name, &model, &inputs, extra));
        assert_close(&tiles, &reference, 1e-5);
        let e = rel_err(&tiles[LOGITS], &hf[LOGITS]);
        assert!(e < 1e-5, "{name}: logits vs transformers {e:e}");
    }
}

#[test]
fn fused_and_separate_matmuls_agree_and_fusion_exchanges_less() {
    // Attention's query, key and value read one activation: fused (the default), it is
    // broadcast to the tiles once; `--no-fuse-matmuls` lowers the products one by one.
    let dir = tempfile::tempdir().unwrap();
    let (model, inputs) = (tiny(), tiny_file("inputs.safetensors"));
    let reference = load(&run_to(dir.path(), "ref.st", &model, &inputs, &[]));
    let apart = load(&run_to(
        dir.path(),
        "apart.st",
        &model,
        &inputs,
        &["--engine", "tiles", "--no-fuse-matmuls"],
    ));
    assert_close(&apart, &reference, 1e-5);
    let mut bytes = Vec::new();
    for (name, extra) in [
        ("fused.tsp", None),
        ("apart.tsp", Some("--no-fuse-matmuls")),
    ] {
        let plan = dir.path().join(name);
        let mut args = vec![
            "compile",
            model.to_str().unwrap(),
            "-o",
            plan.to_str().unwrap(),
        ];
        args.extend(extra);
        tessera_ok(&args);
        let json: serde_json::Value =
            serde_json::from_str(&tessera_ok(&["inspect", plan.to_str().unwrap(), "--json"]))
                .unwrap();
        bytes.push(json["tiles"]["exchange_bytes"].as_u64().unwrap());
    }
    assert!(
        bytes[0] < bytes[1],
        "fused {} bytes, apart {}",
        bytes[0],
        bytes[1]
    );
}

#[test]
fn tiny_fp16_on_tiles_matches_reference_fp16() {
    let dir = tempfile::tempdir().unwrap();
    let (model, inputs) = (tiny(), tiny_file("inputs.safetensors"));
    // Both weight settings: f16 weights, and f32 master weights with fp16 working copies (the
    // embedding tables are then cast before their gather, in column blocks on the tiles).
    for weights in ["f16", "f32"] {
        let fp16 = ["--precision", "fp16", "--master-weights", weights];
        let reference = load(&run_to(dir.path(), "ref.st", &model, &inputs, &fp16));
        let mut args = fp16.to_vec();
        args.extend(["--engine", "tiles"]);
        let tiles = load(&run_to(dir.path(), "tiles.st", &model, &inputs, &args));
        // The bound tests/mixed_precision.rs puts on fp16 logits against transformers.
        assert_close(&tiles, &reference, 2e-3);
        // And it is fp16: far from the fp32 reference's agreement with transformers.
        let hf = load(&tiny_file("outputs.safetensors"));
        assert!(rel_err(&tiles[LOGITS], &hf[LOGITS]) > 1e-5, "{weights}");
    }
}

#[test]
fn compiled_plan_runs_like_engine_tiles_and_inspects() {
    let dir = tempfile::tempdir().unwrap();
    let (model, inputs) = (tiny(), tiny_file("inputs.safetensors"));
    let plan = dir.path().join("p.bin"); // detected by its magic, not its extension
    let summary = tessera_ok(&[
        "compile",
        model.to_str().unwrap(),
        "--seq-len",
        "7",
        "--num-objects",
        "5",
        "--micro-batch",
        "2",
        "-o",
        plan.to_str().unwrap(),
    ]);
    for key in [
        "supersteps",
        "vertices",
        "exchange bytes",
        "cycles =",
        "fullest tile",
    ] {
        assert!(
            summary.contains(key),
            "compile summary lacks `{key}`:\n{summary}"
        );
    }
    let engine = std::fs::read(run_to(
        dir.path(),
        "e.st",
        &model,
        &inputs,
        &["--engine", "tiles"],
    ))
    .unwrap();
    let from_plan = std::fs::read(run_to(dir.path(), "p.st", &plan, &inputs, &[])).unwrap();
    assert_eq!(
        engine, from_plan,
        "run PLAN differs from run --engine tiles"
    );
    let repeated = std::fs::read(run_to(
        dir.path(),
        "r.st",
        &plan,
        &inputs,
        &["--repeat", "3"],
    ))
    .unwrap();
    assert_eq!(engine, repeated, "--repeat 3 differs from one run");

    let text = tessera_ok(&["inspect", plan.to_str().unwrap()]);
    for key in [
        "model:",
        "chip(s) x 1472 tiles",
        "supersteps",
        "vertices by kind: ",
        "matmul",
        "always-live",
        "over capacity",
        "fullest tile",
        "costliest supersteps",
    ] {
        assert!(text.contains(key), "inspect lacks `{key}`:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&tessera_ok(&["inspect", plan.to_str().unwrap(), "--json"])).unwrap();
    let tiles = &json["tiles"];
    for key in [
        "supersteps",
        "vertices",
        "vertices_by_kind",
        "exchange_bytes",
        "inter_chip_bytes",
        "cycles",
        "seconds",
        "memory",
        "oom",
        "top_supersteps",
    ] {
        assert!(tiles.get(key).is_some(), "inspect --json lacks tiles.{key}");
    }
    assert_eq!(json["chips"], 1);
    assert!(json["model"].as_str().unwrap().ends_with("lxmert-tiny"));
    // The per-kind counts add up to the total; at most 10 supersteps, costliest first.
    let by_kind: u64 = tiles["vertices_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_kind, tiles["vertices"].as_u64().unwrap());
    let top: Vec<u64> = tiles["top_supersteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cycles"].as_u64().unwrap())
        .collect();
    assert_eq!(top.len(), 10);
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "{top:?}");
    assert!(tiles["oom"].is_null());
    assert_eq!(tiles["memory"]["tiles_over_capacity"], 0);
}

#[test]
fn tile_outputs_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (model, inputs) = (tiny(), tiny_file("inputs.safetensors"));
    let files: Vec<Vec<u8>> = ["1", "2", "8"]
        .iter()
        .map(|threads| {
            let out = dir.path().join(format!("t{threads}.st"));
            let status = Command::new(env!("CARGO_BIN_EXE_tessera"))
                .env("RAYON_NUM_THREADS", threads)
                .args([
                    "run",
                    model.to_str().unwrap(),
                    "--engine",
                    "tiles",
                    "--ipus",
                    "2",
                ])
                .args(["--inputs", inputs.to_str().unwrap()])
                .args(["--outputs", out.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success(), "RAYON_NUM_THREADS={threads}");
            std::fs::read(out).unwrap()
        })
        .collect();
    assert_eq!(files[0], files[1], "1 vs 2 threads");
    assert_eq!(files[0], files[2], "1 vs 8 threads");
}

/// LXMERT-base inputs of one sample, 20 tokens and 36 objects (deterministic values).
fn base_inputs(dir: &Path) -> PathBuf {
    let (seq, obj) = (20, 36);
    let ids: Vec<i64> = (0..seq).map(|i| 101 + 37 * i as i64).collect();
    let feats: Vec<f32> = (0..obj * 2048)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let pos: Vec<f32> = (0..obj * 4).map(|i| (i % 10) as f32 / 10.0).collect();
    let mut t = BTreeMap::new();
    t.insert(
        "input_ids".into(),
        Tensor::from_i64(vec![1, seq], ids).unwrap(),
    );
    t.insert(
        "visual_feats".into(),
        Tensor::from_f32(vec![1, obj, 2048], feats).unwrap(),
    );
    t.insert(
        "visual_pos".into(),
        Tensor::from_f32(vec![1, obj, 4], pos).unwrap(),
    );
    let path = dir.join("base_in.safetensors");
    tessera_ir::io::save_safetensors(&path, &t).unwrap();
    path
}

#[test]
fn base_needs_more_than_one_ipu_and_runs_on_four() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("base1.tsp");
    let err = tessera_err(&["compile", "lxmert-base", "-o", plan.to_str().unwrap()]);
    assert!(err.contains("Out of memory on tile"), "{err}");
    assert!(err.contains("largest tensors on tile"), "{err}");
    assert!(
        !plan.exists(),
        "a plan that does not fit must not be written"
    );

    let inputs = base_inputs(dir.path());
    let base = Path::new("lxmert-base");
    let started = std::time::Instant::now();
    let reference = load(&run_to(dir.path(), "ref.st", base, &inputs, &[]));
    let tiles = load(&run_to(
        dir.path(),
        "tiles.st",
        base,
        &inputs,
        &["--engine", "tiles", "--ipus", "4"],
    ));
    eprintln!(
        "lxmert-base reference + tiles on 4 IPUs: {:?}",
        started.elapsed()
    );
    assert_close(&tiles, &reference, 1e-5);
}

#[test]
fn bad_plans_and_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = d.join("tiny.tsp");
    // Compiled for the fixture's shapes: batch 2, 7 tokens, 5 objects.
    tessera_ok(&[
        "compile",
        tiny().to_str().unwrap(),
        "--seq-len",
        "7",
        "--num-objects",
        "5",
        "--micro-batch",
        "2",
        "-o",
        plan.to_str().unwrap(),
    ]);
    let out = d.join("out.st");
    let run = |plan: &Path, inputs: &Path, extra: &[&str]| {
        let err = tessera_err(&run_args(plan, inputs, &out, extra));
        assert!(!out.exists(), "no output after an error: {err}");
        err
    };
    // Inputs of another shape (batch 1, 3 tokens, 5 objects): the leading rows of the fixture's.
    let fixture = load(&tiny_file("inputs.safetensors"));
    let mut small = BTreeMap::new();
    for name in ["input_ids", "visual_feats", "visual_pos"] {
        let t = &fixture[name];
        let mut shape = t.shape().to_vec();
        shape[0] = 1;
        if name == "input_ids" {
            shape[1] = 3;
        }
        let n: usize = shape.iter().product();
        let small_t = match t.as_i64() {
            Some(v) => Tensor::from_i64(shape, v[..n].to_vec()).unwrap(),
            None => Tensor::from_f32(shape, t.to_f32_vec()[..n].to_vec()).unwrap(),
        };
        small.insert(name.to_string(), small_t);
    }
    let small_path = d.join("small.safetensors");
    tessera_ir::io::save_safetensors(&small_path, &small).unwrap();
    let err = run(&plan, &small_path, &[]);
    assert!(
        err.contains("input `") && err.contains("compiled for"),
        "{err}"
    );

    // Inputs of another model (LXMERT-base's 2048 visual features).
    let err = run(&plan, &base_inputs(d), &[]);
    assert!(err.contains("base_in.safetensors"), "{err}");

    // A corrupt plan.
    let mut bytes = std::fs::read(&plan).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let corrupt = d.join("corrupt.tsp");
    std::fs::write(&corrupt, &bytes).unwrap();
    let err = run(&corrupt, &tiny_file("inputs.safetensors"), &[]);
    assert!(err.contains("corrupt"), "{err}");

    // Training: a forward plan refuses --train; a training plan runs the pipelined step for
    // one micro-batch (loss and gradients), as the reference engine computes them.
    let err = run(&plan, &tiny_file("inputs.safetensors"), &["--train"]);
    assert!(err.contains("a forward plan"), "{err}");
    let train_plan = d.join("train.tsp");
    let tiny_dir = tiny();
    tessera_ok(&[
        "compile",
        tiny_dir.to_str().unwrap(),
        "--train",
        "--ipus",
        "2",
        "--seq-len",
        "7",
        "--num-objects",
        "5",
        "--micro-batch",
        "2",
        "-o",
        train_plan.to_str().unwrap(),
    ]);
    let got = run_to(
        d,
        "train-tiles",
        &train_plan,
        &tiny_file("train_soft.safetensors"),
        &[],
    );
    let want = run_to(
        d,
        "train-ref",
        &tiny(),
        &tiny_file("train_soft.safetensors"),
        &["--train", "--engine", "reference"],
    );
    let (got, want) = (load(&got), load(&want));
    assert!(rel_err(&got["loss"], &want["loss"]) < 1e-5);
    // The plan carries the optimizer: the updated weights and its state come with the
    // reference's loss and gradients.
    assert!(want.keys().all(|k| got.contains_key(k)));
    assert!(got.keys().any(|k| k.starts_with("param.")));
    let info = tessera_ok(&["inspect", train_plan.to_str().unwrap()]);
    assert!(info.contains("supersteps"), "{info}");
    let graph_only = d.join("graph-only.tsp");
    tessera_ok(&[
        "compile",
        "lxmert-tiny",
        "--train",
        "--no-tiles",
        "-o",
        graph_only.to_str().unwrap(),
    ]);
    let err = run(&graph_only, &tiny_file("inputs.safetensors"), &[]);
    assert!(err.contains("no tile program"), "{err}");
}

#[test]
fn allow_oom_plans_are_written_and_refused_by_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("oom.tsp");
    let said = tessera_ok(&[
        "compile",
        "lxmert-base",
        "--allow-oom",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(said.contains("Out of memory on tile"), "{said}");
    assert!(said.contains("over capacity"), "{said}");
    let json: serde_json::Value =
        serde_json::from_str(&tessera_ok(&["inspect", plan.to_str().unwrap(), "--json"])).unwrap();
    assert!(json["tiles"]["oom"]
        .as_str()
        .unwrap()
        .contains("Out of memory on tile"));
    assert!(
        json["tiles"]["memory"]["tiles_over_capacity"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let out = dir.path().join("out.st");
    let err = tessera_err(&[
        "run",
        plan.to_str().unwrap(),
        "--inputs",
        base_inputs(dir.path()).to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("does not fit") && err.contains("Out of memory on tile"),
        "{err}"
    );
    assert!(!out.exists());
}
