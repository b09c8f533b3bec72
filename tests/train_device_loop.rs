//! `tessera train --engine tiles --device-iterations N`: steps run in device loops of N (the
//! optimizer state in streaming memory, the step count and loss scale evolved on the device)
//! log exactly what one step per host call logs (the host feeding the state and scalars),
//! bit for bit, and follow the reference engine.

mod common;

use serde_json::Value;

/// The JSON log of `tessera train lxmert-tiny --batch-size 2 --quiet` with `args`, one value
/// per step, without the wall-time figure.
fn log(args: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let mut all = vec![
        "train",
        "lxmert-tiny",
        "--batch-size",
        "2",
        "--quiet",
        "--log",
        path.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = common::tessera(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tessera {all:?} failed:\n{stderr}");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("samples_per_second");
            v
        })
        .collect()
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// Every step's loss within `tol` (relative) of the reference's, the same loss scale and the
/// same steps skipped.
fn assert_follows(what: &str, tiles: &[Value], reference: &[Value], tol: f64) {
    assert_eq!(tiles.len(), reference.len(), "{what}");
    for (i, (t, r)) in tiles.iter().zip(reference).enumerate() {
        let (lt, lr) = (f(t, "loss"), f(r, "loss"));
        assert!(
            ((lt - lr) / lr).abs() < tol,
            "{what}, step {}: {lt} vs {lr}",
            i + 1
        );
        assert_eq!(t["loss_scale"], r["loss_scale"], "{what}, step {}", i + 1);
        assert_eq!(t["skipped"], r["skipped"], "{what}, step {}", i + 1);
    }
}

/// f32, 1 IPU, gradient accumulation 2: 7 steps in loops of 3 (3 + 3 + 1) log exactly what
/// 7 host-driven steps log, and follow the reference engine, which ignores
/// `--device-iterations`.
#[test]
fn device_loops_log_what_host_driven_steps_log() {
    let base = ["--steps", "7", "--grad-accum", "2"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        log(&a)
    };
    let host = with(&["--engine", "tiles"]);
    let looped = with(&["--engine", "tiles", "--device-iterations", "3"]);
    assert_eq!(host.len(), 7);
    assert_eq!(looped, host);
    let reference = with(&["--device-iterations", "3"]);
    assert_eq!(
        reference,
        with(&[]),
        "the reference engine ignores device iterations"
    );
    assert_follows("f32 loops of 3", &looped, &reference, 1e-5);
}

/// The scaled-down seed run (4 stages × 2 replicas, gradient accumulation 8, recomputation
/// per layer) in loops of 3: 6 steps as 6 host-driven steps and as the reference.
#[test]
fn scaled_down_seed_run_in_device_loops() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ipu_config.json");
    std::fs::write(
        &cfg,
        r#"{"ipus_per_replica": 4, "replication_factor": 2, "gradient_accumulation_steps": 8,
            "device_iterations": 3, "layers_per_ipu": [-1], "matmul_proportion": [0.25],
            "recompute_checkpoint_every_layer": true, "enable_half_partials": false}"#,
    )
    .unwrap();
    let base = ["--steps", "6", "--ipu-config", cfg.to_str().unwrap()];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        log(&a)
    };
    // The configuration's device_iterations (3), then the flag overriding it.
    let looped = with(&["--engine", "tiles"]);
    let host = with(&["--engine", "tiles", "--device-iterations", "1"]);
    assert_eq!(looped.len(), 6);
    assert_eq!(looped, host);
    assert_follows("seed run, loops of 3", &looped, &with(&[]), 1e-5);
}

/// fp16 with fp16 partials, f16 weights and dynamic loss scaling growing every 2 clean
/// steps, from 65536 where lxmert-tiny's gradients overflow: the device loops skip, halve
/// and double exactly as the host's scaler does, step for step (step 1 skipped at 65536,
/// 32768 for steps 2–3, 65536 for 4–5, step 6 skipped at 131072), so the loops' logs equal
/// the host-driven ones bit for bit and the reference's within the fp16-partials bound of
/// `train_tiles.rs` (2e-4).
#[test]
fn fp16_dynamic_loss_scaling_evolves_on_the_device() {
    let base = [
        "--steps",
        "6",
        "--grad-accum",
        "2",
        "--precision",
        "fp16",
        "--half-partials",
        "--master-weights",
        "f16",
        "--loss-scaling",
        "dynamic:2",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        log(&a)
    };
    let looped = with(&["--engine", "tiles", "--device-iterations", "3"]);
    let host = with(&["--engine", "tiles"]);
    assert_eq!(looped, host);
    let reference = with(&[]);
    let scales: Vec<f64> = reference.iter().map(|v| f(v, "loss_scale")).collect();
    let skipped: Vec<bool> = reference
        .iter()
        .map(|v| v["skipped"].as_bool().unwrap())
        .collect();
    // PyTorch's rule (halve on overflow, double after 2 clean steps) by hand.
    assert_eq!(
        scales,
        [65536.0, 32768.0, 32768.0, 65536.0, 65536.0, 131072.0]
    );
    assert_eq!(skipped, [true, false, false, false, false, true]);
    assert_follows("fp16, dynamic:2, loops of 3", &looped, &reference, 2e-4);
}

/// Bad input: no device iterations; stochastic rounding stays refused on the tiles.
#[test]
fn zero_device_iterations_and_stochastic_rounding_are_errors() {
    let out = common::tessera(&[
        "train",
        "lxmert-tiny",
        "--steps",
        "1",
        "--quiet",
        "--engine",
        "tiles",
        "--device-iterations",
        "0",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--device-iterations must be at least 1"),
        "{stderr}"
    );
    let out = common::tessera(&[
        "train",
        "lxmert-tiny",
        "--steps",
        "3",
        "--quiet",
        "--engine",
        "tiles",
        "--device-iterations",
        "3",
        "--precision",
        "fp16",
        "--stochastic-rounding",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stochastic rounding is not supported on tiles"),
        "{stderr}"
    );
}
