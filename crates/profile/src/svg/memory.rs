//! `memory.svg`: one panel per chip, peak bytes per tile (bars, max over each bucket of
//! tiles) with the always-live part drawn over it and the code and vertex state estimate
//! stacked on top (the bar of peak + estimate behind the peak bar), and the tile capacity as
//! a red dashed line.

use super::{open, text, ticks, x_axis, y_axis, Area};
use crate::model::Profile;
use std::fmt::Write;

const WIDTH: f64 = 1100.0;
const PANEL: f64 = 250.0;
const TOP: f64 = 60.0;
/// Colour of the code and vertex state estimate.
const CODE: &str = "#fdae6b";

/// The memory chart of `p`.
pub fn memory_svg(p: &Profile) -> String {
    let chips = p.chips.len().max(1) as f64;
    let height = TOP + chips * PANEL + 10.0;
    let mut s = open(
        WIDTH,
        height,
        "Memory per tile (peak, always-live, estimated code and vertex state; per chip)",
    );
    // Legend, laid out left to right (about 6.6 px per character at the chart's font).
    let mut x = 90.0;
    for (fill, label) in [
        ("#9ecae1", "peak (not always-live part)"),
        (
            "#3182bd",
            "always-live (weights, inputs, constants, gradients, stash)",
        ),
        (CODE, "code and vertex state (estimate)"),
    ] {
        let _ = writeln!(
            s,
            "<rect x=\"{x:.0}\" y=\"36\" width=\"12\" height=\"12\" fill=\"{fill}\"/>"
        );
        text(&mut s, x + 16.0, 46.0, "start", label);
        x += 16.0 + 6.6 * label.len() as f64 + 20.0;
    }
    let _ = writeln!(s, "<line x1=\"{x:.0}\" y1=\"42\" x2=\"{:.0}\" y2=\"42\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>", x + 25.0);
    text(&mut s, x + 30.0, 46.0, "start", "capacity per tile");
    let kib = 1024.0;
    let tiles = f64::from(p.machine.tiles_per_chip.max(1));
    for (i, c) in p.chips.iter().enumerate() {
        let a = Area {
            x: 90.0,
            y: TOP + i as f64 * PANEL + 20.0,
            w: WIDTH - 120.0,
            h: PANEL - 80.0,
        };
        // A chip using under a quarter of its tiles' memory is drawn zoomed to its fullest tile
        // (the capacity line is then off the scale, and the panel title says so).
        let zoomed = c.max_total_bytes.saturating_mul(4) < c.capacity_bytes;
        let top_bytes = if zoomed {
            (c.max_total_bytes as f64 * 1.1).max(1.0)
        } else {
            (c.capacity_bytes.max(c.max_total_bytes) as f64 * 1.05).max(1.0)
        };
        let ts = ticks(top_bytes / kib, 5);
        let top = ts.last().copied().unwrap_or(1.0).max(top_bytes / kib);
        text(
            &mut s,
            a.x + a.w / 2.0,
            a.y - 6.0,
            "middle",
            &format!(
                "chip {}: fullest tile {:.1} KiB with code and vertex state, of {:.1} KiB (headroom {:.1} KiB){}",
                c.chip,
                c.max_total_bytes as f64 / kib,
                c.capacity_bytes as f64 / kib,
                c.headroom_bytes as f64 / kib,
                if zoomed {
                    "; zoomed, capacity off scale"
                } else {
                    ""
                }
            ),
        );
        y_axis(&mut s, a, &ts, top, "memory per tile (KiB)");
        let xs = |t: f64| a.x + t / tiles * a.w;
        let ys = |b: u64| a.y + a.h - (b as f64 / kib) / top * a.h;
        for b in &c.memory_buckets {
            let x = xs(f64::from(b.first_tile));
            let w = (xs(f64::from(b.first_tile + b.tiles)) - x).max(0.5);
            for (v, fill) in [
                (b.max_total_bytes, CODE),
                (b.max_peak_bytes, "#9ecae1"),
                (b.max_always_live_bytes, "#3182bd"),
            ] {
                if v > 0 {
                    let y = ys(v);
                    let _ = writeln!(s, "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{:.2}\" fill=\"{fill}\"/>", a.y + a.h - y);
                }
            }
        }
        if !zoomed {
            let cy = ys(c.capacity_bytes);
            let _ = writeln!(s, "<line x1=\"{:.1}\" y1=\"{cy:.1}\" x2=\"{:.1}\" y2=\"{cy:.1}\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>", a.x, a.x + a.w);
        }
        x_axis(&mut s, a, &ticks(tiles, 8), tiles, "tile (within chip)");
    }
    s.push_str("</svg>\n");
    s
}
