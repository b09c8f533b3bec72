//! The summary's "measured tile balance" section (only with per-tile times): the measured
//! max / mean compute time over tiles per superstep against the cost model's max / mean
//! cycles, for the supersteps whose slowest tile took longest, and the tiles with the most
//! measured time against the cost model's ranking.

use super::LABEL_WIDTH;
use crate::fmt::{clip, pct, Table};
use crate::model::{MeasuredBalance, Profile};
use crate::TOP_N;
use std::fmt::Write;

/// `chip:tile` of a global tile.
fn tile_name(p: &Profile, g: Option<u64>) -> String {
    let per_chip = u64::from(p.machine.tiles_per_chip.max(1));
    g.map_or_else(
        || "-".into(),
        |g| format!("{}:{}", g / per_chip, g % per_chip),
    )
}

/// Writes the section when `p` holds per-tile times.
pub(super) fn section(p: &Profile, s: &mut String) {
    let Some(m) = &p.measured_tiles else {
        return;
    };
    let runs = if m.runs == 1 {
        String::new()
    } else {
        format!(", means over {} segment runs", m.runs)
    };
    let _ = writeln!(
        s,
        "\nMeasured tile balance (emulator compute time per tile, host wall time{runs})"
    );
    let _ = writeln!(
        s,
        "  all supersteps: mean / max over the tiles that compute {} measured, {} in the cost model",
        pct(m.efficiency),
        pct(m.modelled_efficiency)
    );
    let mut order: Vec<&MeasuredBalance> = m.supersteps.iter().collect();
    order.sort_by(|a, b| {
        b.max_compute_us
            .total_cmp(&a.max_compute_us)
            .then(a.index.cmp(&b.index))
    });
    let mut tab = Table::new(&[
        "step",
        "label",
        "tiles",
        "max us",
        "mean us",
        "max/mean",
        "model max/mean",
        "slowest",
        "model busiest",
    ])
    .left(1);
    for b in order.into_iter().take(TOP_N) {
        let label = p
            .supersteps
            .get(b.index as usize)
            .map_or("", |st| st.label.as_str());
        tab.row(vec![
            b.index.to_string(),
            clip(label, LABEL_WIDTH),
            b.computing_tiles.to_string(),
            format!("{:.1}", b.max_compute_us),
            format!("{:.1}", b.mean_compute_us),
            format!("{:.2}", b.max_over_mean),
            format!("{:.2}", b.modelled_max_over_mean),
            tile_name(p, b.slowest_tile),
            tile_name(p, b.modelled_busiest_tile),
        ]);
    }
    s.push_str(&tab.render());
    s.push_str("  (supersteps whose slowest tile took longest; tiles as chip:tile)\n");
    let _ = writeln!(
        s,
        "\nTiles with the most measured time (compute + receiving exchange, summed over the step)"
    );
    let mut tab = Table::new(&[
        "chip",
        "tile",
        "compute us",
        "receive us",
        "of measured",
        "model cycles",
        "model rank",
    ]);
    for t in &m.busiest_tiles {
        tab.row(vec![
            t.chip.to_string(),
            t.tile.to_string(),
            format!("{:.1}", t.compute_us),
            format!("{:.1}", t.exchange_us),
            pct(t.share_of_measured),
            crate::fmt::thousands(t.compute_cycles),
            t.modelled_rank
                .map_or_else(|| "-".into(), |r| r.to_string()),
        ]);
    }
    s.push_str(&tab.render());
    let _ = writeln!(
        s,
        "  {} of these {} are among the cost model's {} busiest tiles; measured heatmap: heatmap_measured.svg",
        m.common_with_modelled,
        m.busiest_tiles.len(),
        p.busiest_tiles.len()
    );
}
