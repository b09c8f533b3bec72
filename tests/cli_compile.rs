//! End-to-end tests of `tessera compile`: the JSON report and the plan file, the stage
//! table, the seed run's IPU configuration, bad inputs, and the acceptance figures of
//! LXMERT-base in the seed run's configuration (auto placement against the hand placement).

mod common;
use common::*;
use std::path::Path;
use tessera_plan::Plan;

fn seed_config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lxmert-vqa-uncased.ipu_config.json")
        .display()
        .to_string()
}

/// `tessera compile ... --json -o <tmp>/plan.tsp`: the report and the loaded plan.
fn compile_json(args: &[&str]) -> (serde_json::Value, Plan) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.tsp");
    let mut all = vec!["compile"];
    all.extend_from_slice(args);
    all.extend(["--json", "-o", plan.to_str().unwrap()]);
    let out = tessera_ok(&all);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (v, Plan::load(&plan).unwrap())
}

#[test]
fn json_report_has_the_documented_keys_and_matches_the_plan() {
    let (v, plan) = compile_json(&["lxmert-tiny", "--train", "--ipus", "2", "--grad-accum", "4"]);
    assert!(v["predicted_samples_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["compile_seconds"].as_f64().unwrap() > 0.0);
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    for s in stages {
        for key in ["flops", "cycles", "memory_bytes", "capacity_bytes"] {
            assert!(s[key].as_u64().unwrap() > 0, "stage {s} lacks {key}");
        }
        // mk2: 1472 tiles of 638,976 bytes.
        assert_eq!(s["capacity_bytes"], 1472u64 * 638_976);
        assert!(s["memory_bytes"].as_u64() < s["capacity_bytes"].as_u64());
    }
    assert_eq!(v["settings"]["ipus_per_replica"], 2);
    assert_eq!(v["settings"]["gradient_accumulation"], 4);
    // The plan holds the same report and a graph placed on both stages.
    assert_eq!(serde_json::to_value(&plan.report).unwrap(), v);
    let g = &plan.graph;
    let mut used = [false; 2];
    for id in g.node_ids() {
        let s = g.node(id).annot.stage.expect("every node has a stage") as usize;
        used[s] = true;
    }
    assert_eq!(used, [true, true]);
    assert!(g
        .node_ids()
        .any(|id| g.node(id).scope.ends_with(".ipu_copy")));
    assert_eq!(plan.target.name, "mk2");
    assert_eq!(plan.ipu_config().unwrap().ipus_per_replica, 2);
}

#[test]
fn forward_compiles_too() {
    let (v, plan) = compile_json(&["lxmert-tiny", "--ipus", "2"]);
    assert_eq!(v["settings"]["train"], false);
    assert!(v["predicted_samples_per_second"].as_f64().unwrap() > 0.0);
    assert!(plan
        .graph
        .node_ids()
        .all(|id| !plan.graph.node(id).scope.contains("backward")));
}

#[test]
fn table_shows_stages_memory_and_the_hand_placement() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.tsp");
    let out = tessera_ok(&[
        "compile",
        "lxmert-tiny",
        "--train",
        "--ipus",
        "4",
        "--recompute",
        "layer",
        "-o",
        plan.to_str().unwrap(),
    ]);
    for want in [
        "stage",
        "GFLOP/mb",
        "cap MB",
        "memory by kind",
        "predicted:",
        "samples/s",
        "balanced lower bound",
        "hand placement (optimum-graphcore)",
        "recompute layer",
        "plan written to",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    assert!(plan.exists());
}

#[test]
fn seed_config_loads_and_its_layers_per_ipu_only_matters_for_manual_placement() {
    let cfg = seed_config();
    // `layers_per_ipu: [1]` on 4 IPUs is ignored by auto placement...
    let (v, _) = compile_json(&["lxmert-tiny", "--train", "--ipu-config", &cfg]);
    assert_eq!(v["settings"]["ipus_per_replica"], 4);
    assert_eq!(v["settings"]["replicas"], 4);
    assert_eq!(
        v["settings"]["recompute"], "layer",
        "recompute_checkpoint_every_layer"
    );
    // ...and an error when manual placement uses it.
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.tsp");
    let err = tessera_err(&[
        "compile",
        "lxmert-tiny",
        "--train",
        "--ipu-config",
        &cfg,
        "--placement",
        "manual",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(
        err.contains("layers_per_ipu") && err.contains("1 entries for 4"),
        "{err}"
    );
    assert!(!plan.exists(), "a failed compile writes no plan");
    // The flag wins over the file.
    let (v, _) = compile_json(&[
        "lxmert-tiny",
        "--train",
        "--ipu-config",
        &cfg,
        "--placement",
        "manual",
        "--layers-per-ipu",
        "1,1,1,1",
    ]);
    assert_eq!(v["settings"]["placement"], "manual");
}

#[test]
fn unknown_ipu_config_keys_are_warned_and_contradictions_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("odd.json");
    std::fs::write(
        &cfg,
        "{\n  \"ipus_per_replica\": 2,\n  \"frobnicate\": 1\n}\n",
    )
    .unwrap();
    let plan = dir.path().join("p.tsp");
    let out = tessera(&[
        "compile",
        "lxmert-tiny",
        "--ipu-config",
        cfg.to_str().unwrap(),
        "--json",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("odd.json:3") && err.contains("frobnicate"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["warnings"][0].as_str().unwrap().contains("frobnicate"),
        "{v}"
    );
    std::fs::write(
        &cfg,
        "{\"ipus_per_replica\": 4, \"matmul_proportion\": [0.1, 0.2]}",
    )
    .unwrap();
    let err = compile_err(&["lxmert-tiny", "--ipu-config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("contradictory values of `matmul_proportion`, `ipus_per_replica`"),
        "{err}"
    );
    // A flag contradicting the file's per-IPU list is rejected too.
    std::fs::write(
        &cfg,
        "{\"ipus_per_replica\": 2, \"matmul_proportion\": [0.1, 0.2]}",
    )
    .unwrap();
    let err = compile_err(&[
        "lxmert-tiny",
        "--ipu-config",
        cfg.to_str().unwrap(),
        "--ipus",
        "4",
    ]);
    assert!(
        err.contains("after applying the command-line flags"),
        "{err}"
    );
}

/// `tessera compile` with `args` must fail; returns stderr.
fn compile_err(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("p.tsp");
    let mut all = vec!["compile"];
    all.extend_from_slice(args);
    all.extend(["-o", plan.to_str().unwrap()]);
    let err = tessera_err(&all);
    assert!(!plan.exists(), "a failed compile writes no plan");
    err
}

#[test]
fn zero_ipus_is_an_error() {
    let err = compile_err(&["lxmert-tiny", "--train", "--ipus", "0"]);
    assert!(err.contains("--ipus must be at least 1"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zero.json");
    std::fs::write(&cfg, "{\n  \"ipus_per_replica\": 0\n}\n").unwrap();
    let err = compile_err(&["lxmert-tiny", "--ipu-config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("zero.json:2") && err.contains("`ipus_per_replica` must be an integer ≥ 1"),
        "{err}"
    );
}

#[test]
fn more_stages_than_layers_is_an_error() {
    // lxmert-tiny has 4 layers (2 language, 1 object, 1 cross).
    let err = compile_err(&[
        "lxmert-tiny",
        "--train",
        "--ipus",
        "5",
        "--placement",
        "manual",
    ]);
    assert!(
        err.contains("5 pipeline stages but the graph has only 4 layers"),
        "{err}"
    );
    let err = compile_err(&["lxmert-tiny", "--train", "--ipus", "500"]);
    assert!(
        err.contains("500 pipeline stages but the graph has only"),
        "{err}"
    );
}

#[test]
fn layers_per_ipu_that_does_not_sum_to_the_layers_is_an_error() {
    let err = compile_err(&[
        "lxmert-tiny",
        "--train",
        "--ipus",
        "2",
        "--placement",
        "manual",
        "--layers-per-ipu",
        "2,1",
    ]);
    assert!(
        err.contains("manual placement") && err.contains("places 3 layers, but the model has 4"),
        "{err}"
    );
}

#[test]
fn a_memory_nothing_fits_in_is_an_error_naming_the_chip() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tiny-chip.json");
    let mk2 = tessera_target::Target::preset("mk2").unwrap();
    let small = tessera_target::Target {
        name: "tiny-chip".into(),
        bytes_per_tile: 1024,
        ..mk2
    };
    std::fs::write(&target, small.to_json().unwrap()).unwrap();
    let t = target.to_str().unwrap();
    let err = compile_err(&["lxmert-tiny", "--train", "--ipus", "2", "--target", t]);
    assert!(
        err.contains("fits in memory") && err.contains("over its capacity of 1507328 bytes"),
        "{err}"
    );
    let err = compile_err(&[
        "lxmert-tiny",
        "--train",
        "--ipus",
        "4",
        "--placement",
        "optimum-graphcore",
        "--target",
        t,
    ]);
    assert!(
        err.contains("optimum-graphcore placement does not fit: stage"),
        "{err}"
    );
}

#[test]
fn recompute_auto_needs_a_budget() {
    let err = compile_err(&["lxmert-tiny", "--train", "--recompute", "auto"]);
    assert!(err.contains("--recompute-budget"), "{err}");
    let (v, _) = compile_json(&[
        "lxmert-tiny",
        "--train",
        "--ipus",
        "2",
        "--recompute",
        "auto",
        "--recompute-budget",
        "1GB",
    ]);
    assert_eq!(v["settings"]["recompute"], "auto");
    // A roomy budget needs no recomputation.
    assert_eq!(v["recompute"]["extra_flops"], 0);
}

/// The acceptance case: LXMERT-base with the seed run's configuration (training, seq 512,
/// 36 objects, micro-batch 1, fp16 with f16 weights, recompute per layer, 4 IPUs per
/// replica, 4 replicas, GA 8, device iterations 2, optimizer state off chip).
#[test]
fn lxmert_base_seed_config_auto_placement_beats_the_hand_placement() {
    let cfg = seed_config();
    let run = |placement: &str| {
        compile_json(&[
            "lxmert-base",
            "--train",
            "--ipu-config",
            &cfg,
            "--precision",
            "fp16",
            "--master-weights",
            "f16",
            "--loss-scaling",
            "16384",
            "--seq-len",
            "512",
            "--num-objects",
            "36",
            "--micro-batch",
            "1",
            "--placement",
            placement,
            "--no-tiles",
        ])
        .0
    };
    let auto = run("auto");
    let hand = run("optimum-graphcore");
    let s = &auto["settings"];
    assert_eq!(
        (
            s["ipus_per_replica"].as_u64(),
            s["replicas"].as_u64(),
            s["gradient_accumulation"].as_u64(),
            s["device_iterations"].as_u64()
        ),
        (Some(4), Some(4), Some(8), Some(2))
    );
    for r in [&auto, &hand] {
        for st in r["stages"].as_array().unwrap() {
            assert_eq!(st["fits"], true, "{st}");
        }
    }
    let a = auto["predicted_samples_per_second"].as_f64().unwrap();
    let h = hand["predicted_samples_per_second"].as_f64().unwrap();
    assert!(a >= 1.5 * h, "auto {a} samples/s vs hand {h}");
    // The auto report carries the same hand-placement figure.
    let cmp = auto["hand_placement"]["samples_per_second"]
        .as_f64()
        .unwrap();
    assert!((cmp - h).abs() <= 1e-9 * h, "{cmp} vs {h}");
    eprintln!(
        "predicted samples/s: auto {a:.1}, optimum-graphcore {h:.1} (measured on IPUs: 128.1)"
    );
}

#[test]
fn short_training_pipelines_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.tsp");
    let o = out.to_str().unwrap();
    let args = |ga: &'static str| {
        vec![
            "compile",
            "lxmert-tiny",
            "--train",
            "--ipus",
            "4",
            "--grad-accum",
            ga,
            "--no-tiles",
            "-o",
            o,
        ]
    };
    let short = common::tessera(&args("3"));
    assert!(short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains("gradient accumulation 3 is below the 7 pipeline stages"),
        "{stderr}"
    );
    let full = common::tessera(&args("7"));
    assert!(full.status.success());
    assert!(!String::from_utf8_lossy(&full.stderr).contains("pipeline stages"));
}

#[test]
fn a_tile_plan_with_stochastic_rounding_says_the_tiles_round_to_nearest() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("sr.tsp");
    let mut args = vec![
        "compile",
        "lxmert-tiny",
        "--train",
        "--ipus",
        "2",
        "--grad-accum",
        "4",
        "--precision",
        "fp16",
        "--loss-scaling",
        "1024",
        "--output",
        plan.to_str().unwrap(),
    ];
    let note = "rounds fp16 results to nearest even";
    let out = common::tessera(&[args.as_slice(), &["--stochastic-rounding"]].concat());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(note));
    args.push("--stochastic-rounding=false");
    let out = common::tessera(&args);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(note));
}
