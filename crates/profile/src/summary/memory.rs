//! The summary's memory tables: per-chip headroom (with the code and vertex state estimate
//! added to each tile's peak), live bytes by category at each tile's peak, and the fullest
//! tiles.

use crate::fmt::{pct, thousands, Table};
use crate::model::{ChipProfile, Profile};
use crate::{CODE_BYTES_PER_CODELET, VERTEX_STATE_BYTES_PER_REGION, VERTEX_STATE_BYTES_PER_SCALAR};
use std::fmt::Write;

fn signed_bytes(v: i64) -> String {
    if v < 0 {
        format!("-{}", thousands(v.unsigned_abs()))
    } else {
        thousands(v.unsigned_abs())
    }
}

/// Writes the memory tables of `p`.
pub(super) fn section(p: &Profile, s: &mut String) {
    let _ = writeln!(
        s,
        "\nMemory per chip (bytes; headroom = capacity - max over tiles of (peak + estimated code and vertex state))"
    );
    let mut tab = Table::new(&[
        "chip",
        "capacity",
        "max peak",
        "max code/state",
        "max total",
        "headroom",
        "mean peak",
        "used tiles",
        "always-live",
        "not always-live",
        "max live",
    ]);
    for c in &p.chips {
        tab.row(vec![
            c.chip.to_string(),
            thousands(c.capacity_bytes),
            thousands(c.max_peak_bytes),
            thousands(c.max_code_vertex_state_bytes),
            thousands(c.max_total_bytes),
            signed_bytes(c.headroom_bytes),
            thousands(c.mean_peak_bytes.round() as u64),
            thousands(c.used_tiles),
            thousands(c.always_live_bytes),
            thousands(c.not_always_live_bytes),
            thousands(c.max_live_bytes),
        ]);
    }
    s.push_str(&tab.render());
    let _ = writeln!(
        s,
        "  (peak: the lowering's allocator, data only; code/state: estimated here, {} bytes per vertex operand field, {} per scalar field, {} bytes of code per distinct codelet on a tile)",
        VERTEX_STATE_BYTES_PER_REGION,
        VERTEX_STATE_BYTES_PER_SCALAR,
        thousands(CODE_BYTES_PER_CODELET)
    );
    let over: u64 = p.chips.iter().map(|c| c.tiles_over_capacity).sum();
    if over > 0 && p.oom.is_none() {
        let _ = writeln!(
            s,
            "  WARNING: with the code and vertex state estimate, {over} tile(s) exceed their capacity (the lowering does not count code)"
        );
    }
    categories(&p.chips, s);
    fullest(&p.chips, s);
}

fn categories(chips: &[ChipProfile], s: &mut String) {
    let _ = writeln!(
        s,
        "\nLive bytes at each tile's peak, by category, summed over the chip's tiles"
    );
    let mut tab = Table::new(&[
        "chip",
        "weights",
        "inputs",
        "constants",
        "activations",
        "exchange bufs",
        "temporaries",
        "gradients",
        "stash",
        "optimizer state",
        "code/state (est.)",
    ]);
    for c in chips {
        let a = c.at_peak;
        tab.row(
            [
                a.weights,
                a.inputs,
                a.constants,
                a.activations,
                a.exchange_buffers,
                a.temporaries,
                a.gradients,
                a.stash,
                a.optimizer_state,
                a.code_vertex_state,
            ]
            .iter()
            .fold(vec![c.chip.to_string()], |mut r, &v| {
                r.push(thousands(v));
                r
            }),
        );
    }
    s.push_str(&tab.render());
}

fn fullest(chips: &[ChipProfile], s: &mut String) {
    let _ = writeln!(
        s,
        "\nFullest tiles (peak + estimated code and vertex state)"
    );
    let mut tab = Table::new(&[
        "chip",
        "tile",
        "peak",
        "always-live",
        "code/state",
        "of capacity",
        "vertices",
    ]);
    for c in chips {
        for t in c.fullest_tiles.iter().take(3) {
            let of = if c.capacity_bytes == 0 {
                0.0
            } else {
                (t.peak_bytes + t.code_vertex_state_bytes) as f64 / c.capacity_bytes as f64
            };
            tab.row(vec![
                c.chip.to_string(),
                t.tile.to_string(),
                thousands(t.peak_bytes),
                thousands(t.always_live_bytes),
                thousands(t.code_vertex_state_bytes),
                pct(of),
                thousands(t.vertices),
            ]);
        }
    }
    s.push_str(&tab.render());
}
