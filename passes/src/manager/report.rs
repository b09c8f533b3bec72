//! Human-readable reports of a pipeline run: MLIR-style banners above IR dumps and the
//! `--timing` table.
//!
//! Banners are text-IR comments (`// -----// IR Dump After autodiff (3.1 ms, +1234 nodes) //----- //`),
//! so a dump of one pass can be fed back to the parser as it is.

use super::record::{PassEntry, PassRecord};
use std::fmt::Write;

/// A wall time for people: `0.42 ms`, `3.1 ms`, `120 ms`, `2.35 s`.
pub fn format_seconds(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{seconds:.2} s")
    }
}

/// What a pass did to the node count: `+12 nodes`, `-3 nodes`, `+5 -2 nodes`, `unchanged`,
/// or `changed` (outputs or name only).
pub fn change_summary(r: &PassRecord) -> String {
    match (r.changed, r.added, r.removed) {
        (false, _, _) => "unchanged".to_string(),
        (true, 0, 0) => "changed".to_string(),
        (true, a, 0) => format!("+{a} nodes"),
        (true, 0, d) => format!("-{d} nodes"),
        (true, a, d) => format!("+{a} -{d} nodes"),
    }
}

/// The banner printed above the IR after a pass.
pub fn banner_after(r: &PassRecord) -> String {
    format!(
        "// -----// IR Dump After {} ({}, {}) //----- //",
        r.name,
        format_seconds(r.seconds),
        change_summary(r)
    )
}

/// The banner printed above the IR before a pass.
pub fn banner_before(name: &str) -> String {
    format!("// -----// IR Dump Before {name} //----- //")
}

/// The `--timing` table: one row per pass (a failed pass included), with its share of the
/// total wall time, verification time, node counts and counters.
pub fn timing_table(entries: &[PassEntry]) -> String {
    let total: f64 = entries.iter().map(PassEntry::total_seconds).sum();
    let width = entries
        .iter()
        .map(|e| e.name().len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = String::new();
    let _ = writeln!(out, "===- pass timing report -===");
    let _ = writeln!(
        out,
        "  total: {} in {} pass(es), verification included",
        format_seconds(total),
        entries.len()
    );
    let _ = writeln!(
        out,
        "  {:>2}  {:<width$}  {:>9}  {:>6}  {:>9}  {:>17}  {:>8}  {:>8}  counters",
        "#", "pass", "wall", "%", "verify", "nodes", "added", "removed"
    );
    for e in entries {
        let share = if total > 0.0 {
            100.0 * e.total_seconds() / total
        } else {
            0.0
        };
        match e {
            PassEntry::Ok(r) => {
                let counters: Vec<String> =
                    r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let row = format!(
                    "  {:>2}  {:<width$}  {:>9}  {:>5.1}%  {:>9}  {:>17}  {:>8}  {:>8}  {}",
                    r.index,
                    r.name,
                    format_seconds(r.seconds),
                    share,
                    format_seconds(r.verify_seconds),
                    format!("{} -> {}", r.nodes_before, r.nodes_after),
                    format!("+{}", r.added),
                    format!("-{}", r.removed),
                    counters.join(" ")
                );
                let _ = writeln!(out, "{}", row.trim_end());
            }
            PassEntry::Failed(f) => {
                let _ = writeln!(
                    out,
                    "  {:>2}  {:<width$}  {:>9}  {:>5.1}%  FAILED ({})",
                    f.index,
                    f.name,
                    format_seconds(f.seconds),
                    share,
                    match f.kind {
                        super::FailureKind::Error => "error",
                        super::FailureKind::InvalidGraph => "invalid graph",
                    }
                );
            }
        }
    }
    out
}
