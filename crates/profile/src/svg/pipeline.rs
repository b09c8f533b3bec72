//! `pipeline.svg`: a pipelined step on the chips at the cost model's times, one row per chip:
//! the accumulator reset, each segment run as a box labelled with its segment and
//! micro-batch (forward and backward in two colours), the inter-chip syncs, the gradient
//! read-out, and the fill/flush bubble (idle time the segment runs a chip misses in a cycle
//! would fill) hatched; idle time left blank is imbalance.
//! Pipeline cycle boundaries are marked along the top.

use super::{esc, open, text, ticks, x_axis, Area};
use crate::fmt::pct;
use crate::model::{PipelineInfo, Profile};
use std::fmt::Write;

const FORWARD: &str = "#4e79a7";
const BACKWARD: &str = "#f28e2b";
const STEP: &str = "#8c8c8c";
const SYNC: &str = "#d62728";
const ROW: f64 = 56.0;

/// The pipeline chart of `p`; `None` for a plan without a pipeline schedule.
pub fn pipeline_svg(p: &Profile) -> Option<String> {
    let pl = p.pipeline.as_ref()?;
    Some(chart(p, pl))
}

fn chart(p: &Profile, pl: &PipelineInfo) -> String {
    let stages = pl.stages.max(1);
    let a = Area {
        x: 150.0,
        y: 90.0,
        w: 1200.0 - 180.0,
        h: f64::from(stages) * ROW,
    };
    let title = format!(
        "Pipeline schedule per chip (cost model): {} stages, {} micro-batches, utilisation {}, fill/flush bubble {}",
        pl.stages,
        pl.micro_batches,
        pct(pl.utilisation),
        pct(pl.bubble_share)
    );
    let mut s = open(1200.0, a.y + a.h + 70.0, &title);
    s.push_str("<defs><pattern id=\"bubble\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#fbeaea\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#e3a3a3\" stroke-width=\"3\"/></pattern></defs>\n");
    for (i, (name, fill)) in [
        ("forward", FORWARD),
        ("backward", BACKWARD),
        ("reset / read-out", STEP),
        ("inter-chip sync", SYNC),
        ("fill/flush bubble (blank: imbalance)", "url(#bubble)"),
    ]
    .iter()
    .enumerate()
    {
        let x = a.x + i as f64 * 165.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"34\" width=\"12\" height=\"12\" fill=\"{fill}\" stroke=\"#999\" stroke-width=\"0.5\"/>"
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
    let total = us(pl.step_cycles).max(1e-9);
    let xs = |c: u64| a.x + us(c) / total * a.w;
    for chip in 0..stages {
        let y = a.y + f64::from(chip) * ROW;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{ROW:.1}\" fill=\"{}\"/>",
            a.x,
            a.w,
            if chip % 2 == 0 { "#f4f4f4" } else { "#ffffff" }
        );
        text(
            &mut s,
            a.x - 8.0,
            y + ROW / 2.0 + 4.0,
            "end",
            &format!("chip {chip} (stage {chip})"),
        );
    }
    let bar = |s: &mut String, chip: u32, from: u64, cycles: u64, fill: &str, tip: &str| {
        let y = a.y + f64::from(chip) * ROW + 8.0;
        let x = xs(from);
        let w = (xs(from + cycles) - x).max(0.3);
        let _ = writeln!(s, "<rect x=\"{x:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"white\" stroke-width=\"0.5\"><title>{}</title></rect>", ROW - 16.0, esc(tip));
        w
    };
    for chip in 0..stages {
        bar(
            &mut s,
            chip,
            0,
            pl.zero_cycles,
            STEP,
            "zero gradient accumulators",
        );
        let read = pl.zero_cycles + pl.schedule_cycles;
        bar(
            &mut s,
            chip,
            read,
            pl.read_grads_cycles,
            STEP,
            "stream gradients out",
        );
    }
    let top = a.y - 6.0;
    for c in &pl.cycles {
        let x = xs(c.start_cycle);
        let _ = writeln!(s, "<line x1=\"{x:.2}\" y1=\"{top:.1}\" x2=\"{x:.2}\" y2=\"{:.1}\" stroke=\"#bbb\" stroke-dasharray=\"2 2\"/>", a.y + a.h);
        let w = xs(c.start_cycle + c.busy_cycles + c.sync_cycles) - x;
        if w >= 14.0 {
            text(
                &mut s,
                x + w / 2.0,
                top - 4.0,
                "middle",
                &c.index.to_string(),
            );
        }
        for (chip, (&busy, &idle)) in c.chip_cycles.iter().zip(&c.bubble_cycles).enumerate() {
            if idle > 0 {
                let tip = format!(
                    "pipeline cycle {}: chip {chip} idle {idle} cycles (fill/flush)",
                    c.index
                );
                let at = c.start_cycle + busy;
                bar(&mut s, chip as u32, at, idle, "url(#bubble)", &tip);
            }
        }
        for r in &c.runs {
            let fill = match pl.segments.get(r.segment as usize).map(|g| g.kind.as_str()) {
                Some("backward") => BACKWARD,
                _ => FORWARD,
            };
            let tip = format!(
                "{} (pipeline cycle {}): {} cycles{}",
                r.label,
                c.index,
                r.cycles,
                r.measured_us
                    .map_or(String::new(), |m| format!(", {m:.1} µs on the emulator"))
            );
            let w = bar(&mut s, r.chip, r.start_cycle, r.cycles, fill, &tip);
            if w >= 7.5 * r.label.len() as f64 {
                let y = a.y + f64::from(r.chip) * ROW + ROW / 2.0 + 4.0;
                let x = xs(r.start_cycle) + w / 2.0;
                let _ = writeln!(s, "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" fill=\"white\" font-size=\"11\">{}</text>", esc(&r.label));
            }
        }
        if c.sync_cycles > 0 {
            for chip in 0..stages {
                let at = c.start_cycle + c.busy_cycles;
                bar(&mut s, chip, at, c.sync_cycles, SYNC, "inter-chip sync");
            }
        }
    }
    text(&mut s, a.x - 8.0, top - 4.0, "end", "pipeline cycle");
    let (cx, cy) = (a.x - 132.0, a.y + a.h / 2.0);
    let _ = writeln!(s, "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 {cx:.1} {cy:.1})\">chip (pipeline stage)</text>");
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
