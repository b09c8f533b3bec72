//! `timeline.svg`: the cost model's step over time, one row per chip; each superstep where the
//! chip has work is drawn as its compute, sync and exchange phases (as in `trace.json`).

use super::{esc, open, text, ticks, x_axis, Area};
use crate::model::Profile;
use std::fmt::Write;

const PHASES: [(&str, &str); 3] = [
    ("compute", "#1f77b4"),
    ("sync", "#7f7f7f"),
    ("exchange", "#ff7f0e"),
];

/// The timeline chart of `p`.
pub fn timeline_svg(p: &Profile) -> String {
    let chips = p.machine.chips.max(1);
    let row = 50.0;
    let a = Area {
        x: 90.0,
        y: 60.0,
        w: 1000.0 - 120.0,
        h: f64::from(chips) * row,
    };
    let mut s = open(
        1000.0,
        a.y + a.h + 60.0,
        "Step timeline per chip (cost model)",
    );
    for (i, (name, fill)) in PHASES.iter().enumerate() {
        let x = 90.0 + i as f64 * 140.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"34\" width=\"12\" height=\"12\" fill=\"{fill}\"/>"
        );
        text(&mut s, x + 16.0, 44.0, "start", name);
    }
    let clock = p.machine.clock_hz;
    let us = |c: u64| {
        if clock > 0.0 {
            c as f64 / clock * 1e6
        } else {
            0.0
        }
    };
    let total = us(p.totals.total_cycles).max(1e-9);
    let xs = |t: f64| a.x + t / total * a.w;
    for chip in 0..chips {
        let y = a.y + f64::from(chip) * row;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{row:.1}\" fill=\"{}\"/>",
            a.x,
            a.w,
            if chip % 2 == 0 { "#f4f4f4" } else { "#ffffff" }
        );
        text(
            &mut s,
            a.x - 8.0,
            y + row / 2.0 + 4.0,
            "end",
            &format!("chip {chip}"),
        );
    }
    for st in &p.supersteps {
        let on: Vec<u32> = if st.chips.is_empty() {
            vec![0]
        } else {
            st.chips.clone()
        };
        for chip in on {
            let y = a.y + f64::from(chip) * row + 8.0;
            let mut at = st.start_cycle;
            for ((_, fill), cycles) in
                PHASES
                    .iter()
                    .zip([st.compute_cycles, st.sync_cycles, st.exchange_cycles])
            {
                if cycles > 0 {
                    let x = xs(us(at));
                    let w = (xs(us(at + cycles)) - x).max(0.2);
                    let _ = writeln!(s, "<rect x=\"{x:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"{fill}\"><title>{} {}: {} cycles</title></rect>", row - 16.0, st.index, esc(&st.label), cycles);
                }
                at += cycles;
            }
        }
    }
    x_axis(
        &mut s,
        a,
        &ticks(total, 10),
        total,
        "time (µs at the target clock)",
    );
    s.push_str("</svg>\n");
    s
}
