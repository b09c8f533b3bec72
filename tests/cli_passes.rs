//! End-to-end tests of pass pipelines in `tessera inspect`: banners of `--print-before`,
//! `--print-after` and `--print-changed`, the files of `--dump-dir` and their `passes.json`,
//! `--stop-after`, `--timing`, pipeline errors, and a failing pass whose input IR is kept.

mod common;
use common::*;
use std::path::Path;

/// lxmert-tiny with small shapes, so that every test runs in well under a second.
const TINY: [&str; 5] = ["lxmert-tiny", "--seq-len", "4", "--num-objects", "3"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["inspect"];
    v.extend_from_slice(&TINY);
    v.extend_from_slice(extra);
    v
}

/// Splits printed output into (banner, IR) chunks.
fn chunks(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if line.starts_with("// -----// IR Dump") {
            v.push((line.to_string(), String::new()));
        } else if let Some(last) = v.last_mut() {
            last.1 += line;
            last.1.push('\n');
        }
    }
    v
}

/// The text of a dump file without its header comment line.
fn body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    assert!(header.starts_with("// "), "{header}");
    rest.to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn print_after_all_prints_a_banner_and_the_ir_after_every_pass() {
    let out = tessera_ok(&args(&["--train", "--print-after", "all"]));
    let c = chunks(&out);
    assert_eq!(c.len(), 2, "{out:.2000}");
    assert!(
        c[0].0.starts_with("// -----// IR Dump After loss ("),
        "{}",
        c[0].0
    );
    assert!(c[0].0.ends_with(", +11 nodes) //----- //"), "{}", c[0].0);
    assert!(
        c[1].0.starts_with("// -----// IR Dump After autodiff ("),
        "{}",
        c[1].0
    );
    // Each dump is a whole graph in text IR; no summary follows (nothing asked --emit).
    for (_, ir) in &c {
        assert!(ir.starts_with("graph @lxmert("), "{ir:.200}");
        assert!(ir.trim_end().ends_with('}'));
    }
    // Soft labels [batch 1, lxmert-tiny's 10 answers].
    assert!(c[0].1.contains("%labels: f32[1,10]"));
    let ret = |ir: &str| {
        ir.lines()
            .find(|l| l.trim_start().starts_with("return"))
            .unwrap()
            .to_string()
    };
    assert!(ret(&c[0].1).contains("%loss:") && !ret(&c[0].1).contains("%grad."));
    assert!(ret(&c[1].1).contains("%grad.lxmert.embeddings.word_embeddings.weight:"));
    assert!(!out.contains("parameters"), "no summary expected");
}

#[test]
fn print_before_shows_the_input_of_the_pass() {
    let out = tessera_ok(&args(&[
        "--train",
        "--print-before",
        "autodiff",
        "--print-after",
        "loss",
    ]));
    let c = chunks(&out);
    assert_eq!(c.len(), 2);
    assert!(c[0].0.starts_with("// -----// IR Dump After loss"));
    assert_eq!(c[1].0, "// -----// IR Dump Before autodiff //----- //");
    assert_eq!(
        c[0].1, c[1].1,
        "the IR before autodiff is the IR after loss"
    );
}

#[test]
fn print_changed_skips_passes_that_change_nothing() {
    // `dce` after `loss` finds nothing dead in LXMERT's graph.
    let out = tessera_ok(&args(&["--passes", "loss,dce,autodiff", "--print-changed"]));
    let banners: Vec<String> = chunks(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(banners.len(), 2, "{banners:?}");
    assert!(banners[0].contains("After loss") && banners[1].contains("After autodiff"));
    let out = tessera_ok(&args(&[
        "--passes",
        "loss,dce,autodiff",
        "--print-after",
        "dce",
    ]));
    let c = chunks(&out);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].0.contains("After dce") && c[0].0.contains("unchanged"),
        "{}",
        c[0].0
    );
    let out = tessera_ok(&args(&[
        "--passes",
        "loss,dce",
        "--print-after",
        "dce",
        "--print-changed",
    ]));
    assert!(chunks(&out).is_empty(), "{out:.500}");
}

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
        err.contains("unknown pass `frobnicate`") && err.contains("loss, autodiff, dce"),
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

#[test]
fn explain_precision_prints_the_policy_without_a_model() {
    let out = tessera_ok(&["inspect", "--explain-precision"]);
    let row = |op: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(op))
            .unwrap_or_else(|| panic!("no row for {op} in\n{out}"))
            .to_string()
    };
    assert!(row("matmul").contains("fp16"), "{}", row("matmul"));
    assert!(row("softmax").contains("fp32"), "{}", row("softmax"));
    assert!(row("layer_norm").contains("fp32"), "{}", row("layer_norm"));
    let err = tessera(&["inspect"]);
    assert_eq!(err.status.code(), Some(2), "MODEL is required otherwise");
}

#[test]
fn fp16_runs_mixed_precision_first_and_dumps_its_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().to_str().unwrap();
    let out = tessera_ok(&args(&[
        "--train",
        "--precision",
        "fp16",
        "--loss-scaling",
        "16384",
        "--dump-dir",
        ds,
        "--print-after",
        "mixed-precision",
    ]));
    assert_eq!(
        files(dir.path()),
        [
            "00-input.tir",
            "01-mixed-precision.tir",
            "02-loss.tir",
            "03-autodiff.tir",
            "passes.json"
        ]
    );
    let c = chunks(&out);
    assert_eq!(c.len(), 1);
    assert!(c[0]
        .0
        .starts_with("// -----// IR Dump After mixed-precision ("));
    assert_eq!(c[0].1, body(&dir.path().join("01-mixed-precision.tir")));
    // fp16 matmuls (f32 partials unless asked), casts at the precision boundaries.
    let mixed = &c[0].1;
    let f16_matmuls = mixed
        .lines()
        .filter(|l| l.contains("= matmul(") && l.contains(": f16["))
        .count();
    assert!(f16_matmuls > 0 && !mixed.contains("half_partials"));
    let casts = |ir: &str| ir.matches("= cast(").count() as i64;
    let v = json(&dir.path().join("passes.json"));
    let counters = &v[0]["counters"];
    assert_eq!(v[0]["name"], "mixed-precision");
    // LXMERT's forward graph has no redundant cast to fold, so the casts of the rewritten
    // graph are the input's (the attention-mask conversion) plus the inserted ones.
    assert_eq!(counters["casts_folded"], 0);
    let input = body(&dir.path().join("00-input.tir"));
    assert_eq!(
        counters["casts_inserted"].as_i64().unwrap(),
        casts(mixed) - casts(&input)
    );
    assert!(counters["bytes_moved_to_fp16"].as_i64().unwrap() > 0);
    // Loss scaling: the scale is an input of the gradient graph.
    let grad = body(&dir.path().join("03-autodiff.tir"));
    assert!(grad.lines().next().unwrap().contains("%loss_scale: f32[]"));
}

#[test]
fn ipu_config_half_partials_reach_the_graph() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lxmert-vqa-uncased.ipu_config.json");
    let c = cfg.to_str().unwrap();
    let ir = tessera_ok(&args(&[
        "--precision",
        "fp16",
        "--ipu-config",
        c,
        "--emit",
        "text",
    ]));
    let matmuls: Vec<&str> = ir.lines().filter(|l| l.contains("= matmul(")).collect();
    assert!(!matmuls.is_empty());
    assert!(matmuls
        .iter()
        .all(|l| !l.contains(": f16[") || l.contains("half_partials")));
    // The command line wins over the file.
    let ir = tessera_ok(&args(&[
        "--precision",
        "fp16",
        "--ipu-config",
        c,
        "--half-partials=false",
        "--emit",
        "text",
    ]));
    assert!(!ir.contains("half_partials"));
}
