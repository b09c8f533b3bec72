//! `--dump-dir`, `--stop-after`, `--timing`, pipeline errors, a failing pass, `--emit`.

use crate::helpers::*;

#[test]
fn dump_dir_writes_numbered_files_and_passes_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dump");
    let ds = d.to_str().unwrap();
    let out = tessera_ok(&args(&["--train", "--dump-dir", ds, "--emit", "text"]));
    assert_eq!(
        files(&d),
        [
            "00-input.tir",
            "01-loss.tir",
            "02-autodiff.tir",
            "passes.json"
        ]
    );
    // The input dump is the forward graph exactly as `--emit text` prints it.
    let forward = tessera_ok(&args(&["--emit", "text"]));
    assert_eq!(body(&d.join("00-input.tir")), forward);
    // The last dump is the final graph that --emit shows.
    assert_eq!(body(&d.join("02-autodiff.tir")), out);
    // Every dump file loads back as a model.
    let again = tessera_ok(&[
        "inspect",
        d.join("01-loss.tir").to_str().unwrap(),
        "--emit",
        "text",
    ]);
    assert_eq!(again, body(&d.join("01-loss.tir")));

    let v = json(&d.join("passes.json"));
    let p = v.as_array().unwrap();
    assert_eq!(p.len(), 2);
    let nodes = |file: &str| count_nodes(&body(&d.join(file)));
    for (i, (name, before, after)) in [
        ("loss", "00-input.tir", "01-loss.tir"),
        ("autodiff", "01-loss.tir", "02-autodiff.tir"),
    ]
    .into_iter()
    .enumerate()
    {
        let e = &p[i];
        assert_eq!(e["status"], "ok");
        assert_eq!(e["index"], i + 1);
        assert_eq!(e["name"], name);
        assert_eq!(e["nodes_before"], nodes(before), "{name}");
        assert_eq!(e["nodes_after"], nodes(after), "{name}");
        let (a, r) = (e["added"].as_i64().unwrap(), e["removed"].as_i64().unwrap());
        assert_eq!(a - r, nodes(after) as i64 - nodes(before) as i64, "{name}");
        assert_eq!(e["changed"], true);
        assert!(e["seconds"].as_f64().unwrap() >= 0.0);
        assert!(e["counters"].is_object());
    }
    // The soft-label loss adds the `labels` input and ten nodes:
    // 0, max, x·z, |x|, −|x|, exp, log1p, sub, add, mean.
    assert_eq!(p[0]["added"], 11);
    assert_eq!(p[0]["removed"], 0);
    // One gradient per parameter left in the differentiated graph (one `grad.` output each).
    let final_ir = body(&d.join("02-autodiff.tir"));
    let params = final_ir
        .lines()
        .filter(|l| l.contains(" = param \""))
        .count();
    let grads = final_ir.matches("%grad.").count();
    assert_eq!(p[1]["counters"]["gradients"], params as i64);
    assert_eq!(grads, params);
}

/// Nodes in printed IR: one line per non-input node plus one per graph input.
fn count_nodes(ir: &str) -> usize {
    let header = ir.lines().next().unwrap();
    let inputs = header.matches(": ").count();
    let others = ir
        .lines()
        .filter(|l| l.trim_start().starts_with('%'))
        .count();
    inputs + others
}

#[test]
fn stop_after_cuts_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().to_str().unwrap();
    let out = tessera_ok(&args(&[
        "--train",
        "--stop-after",
        "loss",
        "--dump-dir",
        ds,
        "--emit",
        "text",
    ]));
    assert_eq!(
        files(dir.path()),
        ["00-input.tir", "01-loss.tir", "passes.json"]
    );
    assert!(out.contains("%loss:") && !out.contains("%grad."));
    assert_eq!(
        json(&dir.path().join("passes.json"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A second run into the same directory replaces the first run's dumps.
    tessera_ok(&args(&["--passes", "dce", "--dump-dir", ds]));
    assert_eq!(
        files(dir.path()),
        ["00-input.tir", "01-dce.tir", "passes.json"]
    );

    let err = tessera_err(&args(&["--train", "--stop-after", "dce"]));
    assert!(
        err.contains("--stop-after") && err.contains("(loss,autodiff)"),
        "{err}"
    );
    let err = tessera_err(&args(&["--train", "--stop-after", "autodif"]));
    assert!(err.contains("did you mean `autodiff`"), "{err}");
}

#[test]
fn timing_table_goes_to_stderr() {
    let out = tessera(&args(&["--train", "--timing", "--emit", "text"]));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("pass timing report"), "{err}");
    let rows: Vec<&str> = err.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(rows.len(), 2, "{err}");
    assert!(
        rows[0].contains("loss") && rows[1].contains("autodiff") && rows[1].contains("gradients=")
    );
    assert!(!stdout.contains("timing"));
}

#[test]
fn pipeline_errors_are_clear() {
    let err = tessera_err(&args(&["--passes", "loss,,autodiff"]));
    assert!(err.contains("empty pass name at position 2"), "{err}");
    let err = tessera_err(&args(&["--passes", "frobnicate"]));
    assert!(
        err.contains("unknown pass `frobnicate`")
            && err.contains("(known passes: mixed-precision, loss, autodiff, fold-casts, dce, recompute, pipeline)"),
        "{err}"
    );
    let err = tessera_err(&args(&["--train", "--print-after", "dce"]));
    assert!(
        err.contains("--print-after: pass `dce` is not in the pipeline"),
        "{err}"
    );
    // autodiff without a loss: the error names the pass and the missing output.
    let err = tessera_err(&args(&["--passes", "autodiff"]));
    assert!(
        err.contains("pass `autodiff` (#1) failed") && err.contains("no output `loss`"),
        "{err}"
    );
}

#[test]
fn a_failing_pass_keeps_the_ir_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("vector_loss.tir");
    let ir = "graph @g(%x: f32[2]) {\n  %0 = param \"m.w\" : f32[2]  @m\n  %1 = mul(%x, %0) : f32[2]  @m\n  return %loss: %1\n}\n";
    std::fs::write(&model, ir).unwrap();
    let d = dir.path().join("dump");
    let (m, ds) = (model.to_str().unwrap(), d.to_str().unwrap());
    let err = tessera_err(&["inspect", m, "--passes", "dce,autodiff", "--dump-dir", ds]);
    // The error names the pass and the node (%1 @m), and where the input IR is.
    assert!(err.contains("pass `autodiff` (#2) failed"), "{err}");
    assert!(
        err.contains("(%1 @m) must be a floating-point scalar"),
        "{err}"
    );
    let kept = d.join("01-dce.tir");
    assert!(err.contains(kept.to_str().unwrap()), "{err}");
    assert_eq!(files(&d), ["00-input.tir", "01-dce.tir", "passes.json"]);
    assert_eq!(body(&kept), ir, "dce leaves this graph as it is");
    let v = json(&d.join("passes.json"));
    let p = v.as_array().unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["status"], "ok");
    assert_eq!(p[1]["status"], "failed");
    assert_eq!(p[1]["name"], "autodiff");
    assert_eq!(p[1]["kind"], "error");
    assert!(p[1]["error"].as_str().unwrap().contains("%1 @m"));
    // The kept file reproduces the failure.
    let again = tessera_err(&["inspect", kept.to_str().unwrap(), "--passes", "autodiff"]);
    assert!(
        again.contains("pass `autodiff` (#1) failed") && again.contains("%1 @m"),
        "{again}"
    );
}

#[test]
fn emit_works_on_the_final_graph() {
    let out = tessera_ok(&args(&["--train", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fwd: serde_json::Value = serde_json::from_str(&tessera_ok(&args(&["--json"]))).unwrap();
    assert!(v["nodes"].as_u64().unwrap() > fwd["nodes"].as_u64().unwrap());
    // autodiff drops what the loss does not depend on: the last cross layer's visual
    // stream only feeds `vision_output`, never the pooled [CLS] the answer head reads.
    let (train_p, fwd_p) = (
        v["parameters"].as_u64().unwrap(),
        fwd["parameters"].as_u64().unwrap(),
    );
    assert!(train_p > 0 && train_p < fwd_p, "{train_p} vs {fwd_p}");
    let dot = tessera_ok(&args(&["--train", "--emit", "dot"]));
    assert!(dot.starts_with("digraph") && dot.contains("backward"));
    let hard = tessera_ok(&args(&[
        "--train",
        "--labels",
        "hard",
        "--stop-after",
        "loss",
        "--emit",
        "text",
    ]));
    assert!(hard.contains("%labels: i64[1]"), "{hard:.300}");
}
