//! `heatmap.svg`: compute cycles per tile (rows, chip-major global tile index) and superstep
//! (columns), as stored in the profile's downsampled heatmap (max over each cell's tiles and
//! supersteps), with chip boundaries and a colour-scale legend; and `heatmap_measured.svg`,
//! the same chart (same layout, axes and buckets) of the emulator's measured compute time per
//! tile and superstep, in µs.

use super::{colour, open, text, tick_label, ticks, x_axis, Area};
use crate::model::Profile;
use std::fmt::Write;

/// A downsampled tile × superstep grid and how to label its values.
struct Grid<'a> {
    cells: &'a [Vec<u64>],
    tiles: u64,
    supersteps: u64,
    max: u64,
    /// Legend value per cell unit (cycles: 1; ns shown in µs: 1e-3).
    scale: f64,
    /// Legend title.
    unit: &'a str,
}

/// The heatmap chart of `p`: the cost model's compute cycles.
pub fn heatmap_svg(p: &Profile) -> String {
    let h = &p.heatmap;
    let title = format!(
        "Compute cycles per tile and superstep (max over cells of {} tile(s) x {} superstep(s))",
        h.tiles_per_bucket, h.steps_per_bucket
    );
    let grid = Grid {
        cells: &h.cells,
        tiles: h.tiles,
        supersteps: h.supersteps,
        max: h.max_cycles,
        scale: 1.0,
        unit: "cycles",
    };
    render(p, &grid, &title)
}

/// The measured heatmap of `p` (emulator compute time per tile and superstep), when the
/// profile holds per-tile times.
pub fn measured_heatmap_svg(p: &Profile) -> Option<String> {
    let h = &p.measured_tiles.as_ref()?.heatmap;
    let title = format!(
        "Measured compute time per tile and superstep, emulator (max over cells of {} tile(s) x {} superstep(s))",
        h.tiles_per_bucket, h.steps_per_bucket
    );
    let grid = Grid {
        cells: &h.cells,
        tiles: h.tiles,
        supersteps: h.supersteps,
        max: h.max_ns,
        scale: 1e-3,
        unit: "µs",
    };
    Some(render(p, &grid, &title))
}

fn render(p: &Profile, h: &Grid<'_>, title: &str) -> String {
    let (width, height) = (1100.0, 700.0);
    let mut s = open(width, height, title);
    let a = Area {
        x: 110.0,
        y: 50.0,
        w: 840.0,
        h: 580.0,
    };
    let rows = h.cells.len().max(1) as f64;
    let cols = h.cells.first().map_or(0, Vec::len).max(1) as f64;
    let (cw, ch) = (a.w / cols, a.h / rows);
    let zero = colour(0.0);
    let _ = writeln!(
        s,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{zero}\"/>",
        a.x, a.y, a.w, a.h
    );
    let max = h.max.max(1) as f64;
    for (r, row) in h.cells.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            if v > 0 {
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                    a.x + c as f64 * cw,
                    a.y + r as f64 * ch,
                    cw,
                    ch,
                    colour(v as f64 / max)
                );
            }
        }
    }
    // Tile axis: chip boundaries, labelled.
    let tiles = h.tiles.max(1) as f64;
    let per_chip = f64::from(p.machine.tiles_per_chip.max(1));
    for chip in 0..p.machine.chips {
        let y0 = a.y + f64::from(chip) * per_chip / tiles * a.h;
        let y1 = a.y + (f64::from(chip) + 1.0) * per_chip / tiles * a.h;
        if chip > 0 {
            let _ = writeln!(s, "<line x1=\"{:.1}\" y1=\"{y0:.1}\" x2=\"{:.1}\" y2=\"{y0:.1}\" stroke=\"white\" stroke-width=\"1.5\"/>", a.x, a.x + a.w);
        }
        text(
            &mut s,
            a.x - 8.0,
            (y0 + y1) / 2.0 + 4.0,
            "end",
            &format!("chip {chip}"),
        );
        text(&mut s, a.x - 8.0, y0 + 12.0, "end", "tile 0");
    }
    let (cx, cy) = (a.x - 90.0, a.y + a.h / 2.0);
    let _ = writeln!(s, "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 {cx:.1} {cy:.1})\">tile (chip-major, {} tiles per chip)</text>", p.machine.tiles_per_chip);
    let steps = h.supersteps as f64;
    x_axis(
        &mut s,
        a,
        &ticks(steps.max(1.0), 10),
        steps.max(1.0),
        "superstep",
    );
    // Legend: vertical gradient, low at the bottom.
    let l = Area {
        x: a.x + a.w + 30.0,
        y: a.y,
        w: 18.0,
        h: a.h,
    };
    s.push_str("<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
    for i in 0..=10 {
        let t = f64::from(i) / 10.0;
        let _ = writeln!(s, "<stop offset=\"{t:.1}\" stop-color=\"{}\"/>", colour(t));
    }
    s.push_str("</linearGradient></defs>\n");
    let _ = writeln!(s, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"url(#scale)\" stroke=\"black\"/>", l.x, l.y, l.w, l.h);
    let top = max * h.scale;
    for t in ticks(top, 6).into_iter().filter(|&t| t <= top) {
        let y = l.y + l.h - t / top * l.h;
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>",
            l.x + l.w,
            l.x + l.w + 4.0
        );
        text(&mut s, l.x + l.w + 6.0, y + 4.0, "start", &tick_label(t));
    }
    text(&mut s, l.x + l.w / 2.0, l.y - 8.0, "middle", h.unit);
    s.push_str("</svg>\n");
    s
}
