//! `--explain-precision`, `--precision fp16`, `--ipu-config`.

use crate::helpers::*;
use std::path::Path;

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
