//! End-to-end tests of `tessera profile`: a model compiled and run on the tiles with tracing,
//! the report files, their formats, and `--compare`.

mod common;

use common::{tessera, tessera_ok};
use serde_json::Value;

fn profile_to(dir: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["profile", "lxmert-tiny", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    tessera_ok(&args)
}

#[test]
fn profile_writes_every_report_file_and_compares() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, four) = (tmp.path().join("one"), tmp.path().join("four"));
    let summary = profile_to(&one, &[]);
    assert!(summary.contains("Estimated step"), "{summary}");
    assert!(summary.contains("Measured on the emulator"), "{summary}");
    for f in [
        "summary.txt",
        "profile.json",
        "trace.json",
        "memory.svg",
        "heatmap.svg",
        "timeline.svg",
        "heatmap_measured.svg",
        "inputs.safetensors",
    ] {
        assert!(one.join(f).is_file(), "{f} missing");
    }
    // Per-tile times are recorded by default: the measured tile balance is shown.
    assert!(summary.contains("Measured tile balance"), "{summary}");
    assert_eq!(
        std::fs::read_to_string(one.join("summary.txt")).unwrap(),
        summary
    );
    // The trace opens as Chrome trace events: complete events with the required fields.
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("trace.json")).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    assert!(!events.is_empty());
    for e in events.iter().filter(|e| e["ph"] == "X") {
        for key in ["name", "ts", "dur", "pid", "tid"] {
            assert!(!e[key].is_null(), "{key} missing in {e}");
        }
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
    }
    // profile.json: the total is the sum of its supersteps' phases, and the trace's events on
    // chip 0 cover the same time (cycles at the clock, in µs).
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("profile.json")).unwrap()).unwrap();
    let steps = p["supersteps"].as_array().unwrap();
    assert_eq!(
        steps.len() as u64,
        p["totals"]["supersteps"].as_u64().unwrap()
    );
    let t = &p["totals"];
    let parts = ["compute_cycles", "exchange_cycles", "sync_cycles"]
        .iter()
        .map(|k| t[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(parts, t["total_cycles"].as_u64().unwrap());
    let traced_us: f64 = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == events[0]["pid"])
        .map(|e| e["dur"].as_f64().unwrap())
        .sum();
    let est_us = t["estimated_seconds"].as_f64().unwrap() * 1e6;
    assert!(
        (traced_us - est_us).abs() <= 1e-6 * est_us + 1e-3,
        "{traced_us} vs {est_us}"
    );

    // The same model on 4 chips differs; a profile compared with itself does not.
    // Without per-tile times: no tile balance, no measured heatmap.
    let summary4 = profile_to(&four, &["--ipus", "4", "--no-tile-times"]);
    assert!(summary4.contains("Measured on the emulator"), "{summary4}");
    assert!(!summary4.contains("Measured tile balance"), "{summary4}");
    assert!(!four.join("heatmap_measured.svg").exists());
    let same = tessera_ok(&[
        "profile",
        "--compare",
        one.to_str().unwrap(),
        one.to_str().unwrap(),
    ]);
    assert!(same.contains("No differences"), "{same}");
    let diff = tessera_ok(&[
        "profile",
        "--compare",
        one.to_str().unwrap(),
        four.to_str().unwrap(),
    ]);
    assert!(!diff.contains("No differences"), "{diff}");
}

#[test]
fn profile_of_the_training_step() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = profile_to(tmp.path(), &["--train", "--ipus", "2"]);
    assert!(summary.contains("step=training"), "{summary}");
    // The backward's vertex kinds appear (the embedding gradients are scatter-adds).
    assert!(summary.contains("scatter_add"), "{summary}");
    // A training plan is pipelined: one micro-batch by default (gradient accumulation 1).
    assert!(
        summary.contains("Pipeline schedule (cost model): 2 stage(s) x 1 micro-batch(es)"),
        "{summary}"
    );
}

/// The X events of a Chrome trace whose name is a segment run label (`F2 mb 5`), as
/// `(pid, name)`.
fn run_events(trace: &Value) -> Vec<(u64, String)> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .filter_map(|e| {
            let name = e["name"].as_str()?;
            let mut parts = name.split(' ');
            let seg = parts.next()?;
            let ok = (seg.starts_with('F') || seg.starts_with('B'))
                && seg[1..].parse::<u32>().is_ok()
                && parts.next() == Some("mb")
                && parts.next()?.parse::<u32>().is_ok();
            ok.then(|| (e["pid"].as_u64().unwrap(), name.to_string()))
        })
        .collect()
}

#[test]
fn profile_of_a_pipelined_training_step_on_four_chips() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--train", "--ipus", "4", "--grad-accum", "8"];
    let summary = profile_to(tmp.path(), &args);
    for want in [
        "Pipeline schedule (cost model): 4 stage(s) x 8 micro-batch(es) per step, 1 replica(s); 14 pipeline cycles",
        "utilisation",
        "fill/flush bubble",
        "samples/s",
        "measured on the emulator: 64 segment runs",
        "gradients",
        "stash",
    ] {
        assert!(summary.contains(want), "{want} missing in\n{summary}");
    }
    assert!(tmp.path().join("pipeline.svg").is_file());
    // profile.json: the pipeline's figures add up (busy + bubble + imbalance + sync fill the
    // chips' pipeline cycles), and the throughput is the pipelined step's.
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("profile.json")).unwrap())
            .unwrap();
    let pl = &p["pipeline"];
    let u = |k: &str| pl[k].as_u64().unwrap();
    assert_eq!(u("pipeline_cycles"), 14);
    assert_eq!(
        u("busy_chip_cycles")
            + u("bubble_chip_cycles")
            + u("imbalance_chip_cycles")
            + u("sync_chip_cycles"),
        4 * u("schedule_cycles")
    );
    assert_eq!(
        u("step_cycles"),
        u("zero_cycles") + u("schedule_cycles") + u("read_grads_cycles")
    );
    assert_eq!(p["throughput"]["batch"].as_u64(), Some(8));
    let sps = p["throughput"]["samples_per_second"].as_f64().unwrap();
    let step_s = u("step_cycles") as f64 / p["machine"]["clock_hz"].as_f64().unwrap();
    assert!((sps - 8.0 / step_s).abs() < 1e-6 * sps, "{sps}");
    // trace.json: every (segment, micro-batch) once at cost-model times on the chips, once
    // measured in the emulator's process.
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("trace.json")).unwrap())
            .unwrap();
    let runs = run_events(&trace);
    let model: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter(|(pid, _)| *pid < 4)
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(model.len(), 64);
    assert_eq!(runs.iter().filter(|(pid, _)| *pid == 4).count(), 64);

    // The same step from a training plan file.
    let plan = tmp.path().join("train.tsp");
    tessera_ok(&[
        "compile",
        "lxmert-tiny",
        "--train",
        "--ipus",
        "4",
        "--grad-accum",
        "8",
        "--output",
        plan.to_str().unwrap(),
    ]);
    let from_plan = tmp.path().join("from-plan");
    let summary2 = tessera_ok(&[
        "profile",
        plan.to_str().unwrap(),
        "--micro-batches",
        "4",
        "--out",
        from_plan.to_str().unwrap(),
    ]);
    assert!(
        summary2.contains("4 stage(s) x 4 micro-batch(es) per step"),
        "{summary2}"
    );
}

#[test]
fn profile_without_a_subject_is_an_error() {
    let out = tessera(&["profile"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--compare"), "{err}");
}

#[test]
fn profile_of_a_loss_scaled_plan_file_takes_its_shapes_and_scale_from_the_plan() {
    // Compiled for seq 16 and fp16 with a static loss scale: the profile's generated inputs
    // have the plan's shapes and each micro-batch gets the plan's scale (before, the inputs
    // were seq 20 and the scale was missing: both were errors).
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("fp16.tsp");
    tessera_ok(&[
        "compile",
        "lxmert-tiny",
        "--train",
        "--ipus",
        "2",
        "--grad-accum",
        "4",
        "--seq-len",
        "16",
        "--precision",
        "fp16",
        "--loss-scaling",
        "1024",
        "--output",
        plan.to_str().unwrap(),
    ]);
    let out = tmp.path().join("out");
    let summary = tessera_ok(&[
        "profile",
        plan.to_str().unwrap(),
        "--no-tile-times",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        summary.contains("2 stage(s) x 4 micro-batch(es) per step"),
        "{summary}"
    );
    let inputs = tessera_ir::io::load_safetensors(&out.join("inputs.safetensors")).unwrap();
    assert_eq!(inputs["input_ids"].shape(), &[1, 16]);
}
