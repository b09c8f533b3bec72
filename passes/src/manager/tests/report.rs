//! Banners and the timing table.

use crate::manager::*;

fn record(seconds: f64, added: usize, removed: usize, changed: bool) -> PassRecord {
    PassRecord {
        index: 1,
        name: "autodiff".into(),
        seconds,
        verify_seconds: 0.001,
        nodes_before: 10,
        nodes_after: 10 + added - removed,
        added,
        removed,
        changed,
        counters: [("gradients".to_string(), 4)].into_iter().collect(),
    }
}

#[test]
fn banners_follow_mlir() {
    assert_eq!(
        banner_after(&record(0.003, 1234, 0, true)),
        "// -----// IR Dump After autodiff (3.0 ms, +1234 nodes) //----- //"
    );
    assert_eq!(
        banner_after(&record(0.25, 2, 3, true)),
        "// -----// IR Dump After autodiff (250 ms, +2 -3 nodes) //----- //"
    );
    assert_eq!(
        banner_after(&record(0.0004, 0, 0, false)),
        "// -----// IR Dump After autodiff (0.40 ms, unchanged) //----- //"
    );
    assert_eq!(change_summary(&record(1.0, 0, 0, true)), "changed");
    assert_eq!(change_summary(&record(1.0, 0, 5, true)), "-5 nodes");
    assert_eq!(
        banner_before("loss"),
        "// -----// IR Dump Before loss //----- //"
    );
    assert_eq!(format_seconds(2.345), "2.35 s");
}

#[test]
fn timing_table_has_a_row_per_pass_and_shares_sum_to_100() {
    let mut second = record(0.003, 0, 0, false);
    second.index = 2;
    second.name = "dce".into();
    let failed = PassFailure {
        index: 3,
        name: "mixed".into(),
        seconds: 0.004,
        nodes_before: 10,
        kind: FailureKind::Error,
        error: "boom".into(),
    };
    // total = (0.003 + 0.001) * 2 + 0.004 = 0.012 s
    let entries = [
        PassEntry::Ok(record(0.003, 5, 1, true)),
        PassEntry::Ok(second),
        PassEntry::Failed(failed),
    ];
    let t = timing_table(&entries);
    assert!(t.contains("total: 12 ms in 3 pass(es)"), "{t}");
    let rows: Vec<&str> = t.lines().skip(3).collect();
    assert_eq!(rows.len(), 3, "{t}");
    assert!(
        rows[0].contains("autodiff") && rows[0].contains("33.3%"),
        "{t}"
    );
    assert!(rows[0].contains("10 -> 14") && rows[0].contains("+5") && rows[0].contains("-1"));
    assert!(rows[0].ends_with("gradients=4"), "{t}");
    assert!(
        rows[2].contains("mixed") && rows[2].contains("FAILED (error)"),
        "{t}"
    );
}

#[test]
fn entries_serialise_with_a_status_tag() {
    let v = serde_json::to_value(PassEntry::Ok(record(0.5, 1, 0, true))).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["name"], "autodiff");
    assert_eq!(v["added"], 1);
    assert_eq!(v["counters"]["gradients"], 4);
    let f = PassEntry::Failed(PassFailure {
        index: 2,
        name: "x".into(),
        seconds: 0.0,
        nodes_before: 3,
        kind: FailureKind::InvalidGraph,
        error: "bad".into(),
    });
    let v = serde_json::to_value(f).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["kind"], "invalid-graph");
    assert_eq!(v["error"], "bad");
}
