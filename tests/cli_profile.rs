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
        "inputs.safetensors",
    ] {
        assert!(one.join(f).is_file(), "{f} missing");
    }
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
    profile_to(&four, &["--ipus", "4"]);
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
}

#[test]
fn profile_without_a_subject_is_an_error() {
    let out = tessera(&["profile"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--compare"), "{err}");
}
