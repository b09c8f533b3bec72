//! Comparing two profiles (`tessera profile --compare A B`): totals, time, phase shares,
//! samples/s, the pipelined step's cycles, utilisation and bubble (when either profile has a
//! pipeline), memory headroom per chip, superstep counts, exchange bytes and the compute sets
//! whose cycles changed most, with signed deltas (B − A) and ratios (B / A).

use crate::fmt::{clip, ratio, seconds, signed, thousands, Table};
use crate::model::{PipelineInfo, Profile};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The text line [`compare`] prints when nothing it compares differs.
pub const NO_DIFFERENCE: &str = "No differences in the compared figures.";

fn name(p: &Profile) -> String {
    format!(
        "{} on {} ({} chip(s))",
        p.meta.model, p.machine.target, p.machine.chips
    )
}

/// Compute cycles summed per superstep label.
fn by_label(p: &Profile) -> BTreeMap<&str, u64> {
    let mut m = BTreeMap::new();
    for s in &p.supersteps {
        *m.entry(s.label.as_str()).or_default() += s.compute_cycles;
    }
    m
}

/// The differences between profile `a` and profile `b` (deltas are `b - a`), as text.
pub fn compare(a: &Profile, b: &Profile) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "A: {}\nB: {}", name(a), name(b));
    let mut changed = false;
    let (ta, tb) = (&a.totals, &b.totals);
    let mut tab = Table::new(&["figure", "A", "B", "B - A", "B / A"]);
    let counts = [
        ("total cycles", ta.total_cycles, tb.total_cycles),
        ("compute cycles", ta.compute_cycles, tb.compute_cycles),
        ("exchange cycles", ta.exchange_cycles, tb.exchange_cycles),
        ("sync cycles", ta.sync_cycles, tb.sync_cycles),
        ("supersteps", ta.supersteps, tb.supersteps),
        ("vertices", ta.vertices, tb.vertices),
        ("exchange bytes", ta.exchange_bytes, tb.exchange_bytes),
        ("inter-chip bytes", ta.inter_chip_bytes, tb.inter_chip_bytes),
    ];
    for (n, x, y) in counts {
        changed |= x != y;
        tab.row(vec![
            n.into(),
            thousands(x),
            thousands(y),
            signed(i128::from(y) - i128::from(x)),
            ratio(x as f64, y as f64),
        ]);
    }
    let (sa, sb) = (ta.estimated_seconds, tb.estimated_seconds);
    changed |= sa != sb;
    tab.row(vec![
        "estimated time".into(),
        seconds(sa),
        seconds(sb),
        signed_seconds(sb - sa),
        ratio(sa, sb),
    ]);
    for (n, x, y) in [
        ("compute share", ta.compute_share, tb.compute_share),
        ("exchange share", ta.exchange_share, tb.exchange_share),
        ("sync share", ta.sync_share, tb.sync_share),
    ] {
        changed |= x != y;
        tab.row(vec![
            n.into(),
            format!("{:.1}%", x * 100.0),
            format!("{:.1}%", y * 100.0),
            format!("{:+.1} pp", (y - x) * 100.0),
            ratio(x, y),
        ]);
    }
    let (pa, pb) = (
        a.throughput.samples_per_second,
        b.throughput.samples_per_second,
    );
    changed |= pa != pb;
    let sps = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    tab.row(vec![
        "samples/s".into(),
        sps(pa),
        sps(pb),
        match (pa, pb) {
            (Some(x), Some(y)) => format!("{:+.1}", y - x),
            _ => "-".into(),
        },
        match (pa, pb) {
            (Some(x), Some(y)) => ratio(x, y),
            _ => "-".into(),
        },
    ]);
    if a.pipeline.is_some() || b.pipeline.is_some() {
        changed |= pipeline_rows(a, b, &mut tab);
    }
    s.push_str(&tab.render());

    let _ = writeln!(
        s,
        "\nMemory headroom per chip (bytes; capacity - fullest tile's peak)"
    );
    let mut tab = Table::new(&["chip", "A", "B", "B - A"]);
    let chips = a.chips.len().max(b.chips.len());
    for c in 0..chips {
        let (x, y) = (
            a.chips.get(c).map(|c| c.headroom_bytes),
            b.chips.get(c).map(|c| c.headroom_bytes),
        );
        changed |= x != y;
        let show = |v: Option<i64>| {
            v.map_or("-".to_string(), |v| {
                signed(i128::from(v)).trim_start_matches('+').to_string()
            })
        };
        let delta = match (x, y) {
            (Some(x), Some(y)) => signed(i128::from(y) - i128::from(x)),
            _ => "-".into(),
        };
        tab.row(vec![c.to_string(), show(x), show(y), delta]);
    }
    s.push_str(&tab.render());

    let (la, lb) = (by_label(a), by_label(b));
    let mut diffs: Vec<(&str, u64, u64, i128)> = la
        .keys()
        .chain(lb.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|&l| {
            let (x, y) = (
                la.get(l).copied().unwrap_or(0),
                lb.get(l).copied().unwrap_or(0),
            );
            (l, x, y, i128::from(y) - i128::from(x))
        })
        .filter(|d| d.3 != 0)
        .collect();
    changed |= !diffs.is_empty();
    diffs.sort_by(|p, q| q.3.abs().cmp(&p.3.abs()).then(p.0.cmp(q.0)));
    let _ = writeln!(
        s,
        "\nCompute sets with the largest change (compute cycles summed per label)"
    );
    if diffs.is_empty() {
        s.push_str("  none\n");
    } else {
        let mut tab = Table::new(&["label", "A", "B", "B - A", "B / A"]);
        for (l, x, y, d) in diffs.into_iter().take(crate::TOP_N) {
            tab.row(vec![
                clip(l, 60),
                thousands(x),
                thousands(y),
                signed(d),
                ratio(x as f64, y as f64),
            ]);
        }
        s.push_str(&tab.render());
    }
    if !changed {
        let _ = writeln!(s, "\n{NO_DIFFERENCE}");
    }
    s
}

fn signed_seconds(d: f64) -> String {
    if d > 0.0 {
        format!("+{}", seconds(d))
    } else {
        seconds(d)
    }
}

/// The pipeline rows (`-` for a profile without a pipeline); whether any differs.
fn pipeline_rows(a: &Profile, b: &Profile, tab: &mut Table) -> bool {
    let mut changed = false;
    let (pa, pb) = (a.pipeline.as_ref(), b.pipeline.as_ref());
    let count = |p: Option<&PipelineInfo>| p.map_or("-".to_string(), |p| thousands(p.step_cycles));
    changed |= pa.map(|p| p.step_cycles) != pb.map(|p| p.step_cycles);
    tab.row(vec![
        "pipelined step cycles".into(),
        count(pa),
        count(pb),
        match (pa, pb) {
            (Some(x), Some(y)) => signed(i128::from(y.step_cycles) - i128::from(x.step_cycles)),
            _ => "-".into(),
        },
        match (pa, pb) {
            (Some(x), Some(y)) => ratio(x.step_cycles as f64, y.step_cycles as f64),
            _ => "-".into(),
        },
    ]);
    for (n, f) in [
        (
            "pipeline utilisation",
            (|p: &PipelineInfo| p.utilisation) as fn(&PipelineInfo) -> f64,
        ),
        ("fill/flush bubble", |p: &PipelineInfo| p.bubble_share),
    ] {
        let (x, y) = (pa.map(f), pb.map(f));
        changed |= x != y;
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        tab.row(vec![
            n.into(),
            show(x),
            show(y),
            match (x, y) {
                (Some(x), Some(y)) => format!("{:+.1} pp", (y - x) * 100.0),
                _ => "-".into(),
            },
            match (x, y) {
                (Some(x), Some(y)) => ratio(x, y),
                _ => "-".into(),
            },
        ]);
    }
    changed
}
