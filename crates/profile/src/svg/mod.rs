//! Hand-written SVG charts of a profile (no dependencies): memory per tile per chip, a tile ×
//! superstep compute-cycle heatmap (and its measured counterpart), a per-chip timeline and,
//! for pipelined plans, the pipeline schedule. This module holds the shared pieces: XML escaping, "nice" axis ticks,
//! the colour scale and axis drawing.

mod heatmap;
mod memory;
mod pipeline;
mod timeline;

pub use heatmap::{heatmap_svg, measured_heatmap_svg};
pub use memory::memory_svg;
pub use pipeline::pipeline_svg;
pub use timeline::timeline_svg;

use std::fmt::Write;

/// Font used by every chart.
const FONT: &str = "font-family=\"sans-serif\" font-size=\"12\"";

/// Escapes text for XML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Opens an SVG document of the given size, with a white background and a title line.
pub(crate) fn open(w: f64, h: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" {FONT}>"
    );
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{w:.0}\" height=\"{h:.0}\" fill=\"white\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        w / 2.0,
        esc(title)
    );
    s
}

/// Text at `(x, y)` with an anchor (`start`, `middle`, `end`).
pub(crate) fn text(s: &mut String, x: f64, y: f64, anchor: &str, t: &str) {
    let _ = writeln!(
        s,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
        esc(t)
    );
}

/// Up to about `n` tick values from 0 to at least `max`, at steps of 1, 2 or 5 × 10^k.
pub(crate) fn ticks(max: f64, n: usize) -> Vec<f64> {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A tick label: integers with thousands separators, otherwise up to 3 decimals.
pub(crate) fn tick_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        crate::fmt::thousands(v.abs() as u64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A plot area in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Area {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// Draws the left (value) axis of `area` for values 0..=`top`, with tick labels, grid lines
/// and a rotated axis title.
pub(crate) fn y_axis(s: &mut String, a: Area, ticks: &[f64], top: f64, title: &str) {
    for &t in ticks {
        let y = a.y + a.h - t / top * a.h;
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            a.x,
            a.x + a.w
        );
        text(s, a.x - 6.0, y + 4.0, "end", &tick_label(t));
    }
    let (cx, cy) = (a.x - 62.0, a.y + a.h / 2.0);
    let _ = writeln!(s, "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 {cx:.1} {cy:.1})\">{}</text>", esc(title));
    let _ = writeln!(
        s,
        "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"black\"/>",
        a.x,
        a.y,
        a.y + a.h
    );
}

/// Draws the bottom axis of `area` for values 0..=`right`, with tick labels and a title.
pub(crate) fn x_axis(s: &mut String, a: Area, ticks: &[f64], right: f64, title: &str) {
    let base = a.y + a.h;
    let _ = writeln!(
        s,
        "<line x1=\"{:.1}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"black\"/>",
        a.x,
        a.x + a.w
    );
    for &t in ticks.iter().filter(|&&t| t <= right) {
        let x = a.x + if right > 0.0 { t / right * a.w } else { 0.0 };
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{base:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
            base + 4.0
        );
        text(s, x, base + 17.0, "middle", &tick_label(t));
    }
    text(s, a.x + a.w / 2.0, base + 34.0, "middle", title);
}

/// Colour for `t` in `[0, 1]` on a viridis-like scale (dark purple → yellow).
pub(crate) fn colour(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_maximum() {
        assert_eq!(ticks(100.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(ticks(7.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(ticks(0.0, 5), vec![0.0, 1.0]);
        assert_eq!(tick_label(2500.0), "2,500");
        assert_eq!(tick_label(0.25), "0.25");
    }

    #[test]
    fn colour_scale_ends() {
        assert_eq!(colour(0.0), "#440154");
        assert_eq!(colour(1.0), "#fde725");
        assert_eq!(colour(f64::NAN), "#440154");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
