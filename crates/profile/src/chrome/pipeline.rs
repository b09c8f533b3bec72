//! Chrome trace events of a pipelined step.
//!
//! One process per chip (`pid` = chip) with one thread, the cost model's step: the
//! accumulator reset, each pipeline cycle's segment runs on their chip (named `F2 mb 5`:
//! segment and micro-batch; category `forward` or `backward`), the inter-chip sync ending
//! every cycle (category `sync`) and the gradient read-out, at the cost model's times (cycles
//! → µs at the plan's clock). With measured runs, one more process (`pid` = number of
//! stages) has a thread per chip with the runs' emulator wall times, back to back in the order
//! the emulator ran them (one after another: it emulates the chips in turn).

use super::{event, meta};
use crate::model::{PipelineInfo, Profile};
use serde_json::{json, Value};

fn kind(p: &PipelineInfo, segment: u64) -> &str {
    p.segments
        .get(segment as usize)
        .map_or("segment", |s| s.kind.as_str())
}

/// The trace events of `pl` (the pipeline of `p`).
pub(super) fn events(p: &Profile, pl: &PipelineInfo) -> Vec<Value> {
    let clock = p.machine.clock_hz;
    let us = |c: u64| {
        if clock > 0.0 {
            c as f64 / clock * 1e6
        } else {
            0.0
        }
    };
    let stages = u64::from(pl.stages.max(1));
    let mut ev = Vec::new();
    for chip in 0..stages {
        ev.push(meta(chip, 0, "process_name", &format!("chip {chip}")));
        ev.push(json!({"name": "process_sort_index", "ph": "M", "pid": chip, "tid": 0, "ts": 0, "args": {"sort_index": chip}}));
        ev.push(meta(chip, 0, "thread_name", "pipeline (cost model)"));
        if pl.zero_cycles > 0 {
            let args = json!({"cycles": pl.zero_cycles});
            ev.push(event(
                "zero gradient accumulators",
                "step",
                0.0,
                us(pl.zero_cycles),
                chip,
                args,
            ));
        }
        let read_at = pl.zero_cycles + pl.schedule_cycles;
        if pl.read_grads_cycles > 0 {
            let args = json!({"cycles": pl.read_grads_cycles});
            ev.push(event(
                "stream gradients out",
                "step",
                us(read_at),
                us(pl.read_grads_cycles),
                chip,
                args,
            ));
        }
    }
    for c in &pl.cycles {
        for r in &c.runs {
            let args = json!({
                "segment": r.segment,
                "micro_batch": r.micro_batch,
                "pipeline_cycle": c.index,
                "cycles": r.cycles,
            });
            ev.push(event(
                &r.label,
                kind(pl, r.segment),
                us(r.start_cycle),
                us(r.cycles),
                u64::from(r.chip),
                args,
            ));
        }
        if c.sync_cycles > 0 {
            for chip in 0..stages {
                let args = json!({"pipeline_cycle": c.index, "cycles": c.sync_cycles});
                ev.push(event(
                    "inter-chip sync",
                    "sync",
                    us(c.start_cycle + c.busy_cycles),
                    us(c.sync_cycles),
                    chip,
                    args,
                ));
            }
        }
    }
    if pl.measured_seconds.is_some() {
        let pid = stages;
        ev.push(meta(pid, 0, "process_name", "emulator (host wall time)"));
        ev.push(json!({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "ts": 0, "args": {"sort_index": pid}}));
        for chip in 0..stages {
            ev.push(meta(
                pid,
                chip,
                "thread_name",
                &format!("chip {chip} (measured)"),
            ));
        }
        let mut at = 0.0;
        for c in &pl.cycles {
            for r in &c.runs {
                let Some(dur) = r.measured_us else { continue };
                let mut e = event(
                    &r.label,
                    kind(pl, r.segment),
                    at,
                    dur,
                    pid,
                    json!({"segment": r.segment, "micro_batch": r.micro_batch, "pipeline_cycle": c.index}),
                );
                e["tid"] = json!(r.chip);
                ev.push(e);
                at += dur.max(0.0);
            }
        }
    }
    ev
}
