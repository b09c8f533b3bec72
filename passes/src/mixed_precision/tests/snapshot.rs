//! Snapshots of the printed IR before and after the pass on the fragment (review changes
//! with `cargo insta review`; the snapshots live in `tests/snapshots/` beside this file).

use super::*;

#[test]
fn printed_ir_before_and_after() {
    let src = fragment();
    insta::assert_snapshot!("fragment_before", tessera_ir::text::print(&src));
    let (plain, _) = mixed_precision(&src, &PrecisionConfig::plain_fp16()).unwrap();
    insta::assert_snapshot!("fragment_after_plain_fp16", tessera_ir::text::print(&plain));
    let (seed, stats) = mixed_precision(&src, &PrecisionConfig::seed_run()).unwrap();
    insta::assert_snapshot!("fragment_after_seed_run", tessera_ir::text::print(&seed));
    insta::assert_snapshot!(
        "fragment_seed_run_stats",
        format!("{:#?}", stats.counters())
    );
    // The printed form parses back to the same graph.
    let reparsed = tessera_ir::text::parse(&tessera_ir::text::print(&seed)).unwrap();
    assert_eq!(
        tessera_ir::text::print(&reparsed),
        tessera_ir::text::print(&seed)
    );
}
