//! `--print-after`, `--print-before`, `--print-changed`.

use crate::helpers::*;

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
