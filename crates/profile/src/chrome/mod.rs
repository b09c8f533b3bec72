//! The Chrome trace-event export (`trace.json`, for `chrome://tracing` or ui.perfetto.dev).
//!
//! One process per chip (`pid` = chip index) with one thread, the cost model's timeline:
//! each superstep where the chip has work shows as consecutive complete events (`ph: "X"`)
//! for its compute, sync and exchange phases, at the cost model's times (cycles → µs at the
//! plan's clock), named after the superstep's label. Supersteps are global (bulk-synchronous),
//! so chips running pipeline stages one after another show their work one after another. A
//! superstep with work on no chip is drawn on chip 0. When the profile holds emulator
//! measurements, one more process (`pid` = number of chips) shows the measured wall time of
//! each superstep's phases, back to back.
//!
//! A pipelined plan's trace shows its pipelined step instead ([`pipeline`]).

mod pipeline;

use crate::model::Profile;
use serde_json::{json, Value};

fn meta(pid: u64, tid: u64, what: &str, name: &str) -> Value {
    json!({"name": what, "ph": "M", "pid": pid, "tid": tid, "ts": 0, "args": {"name": name}})
}

fn event(name: &str, cat: &str, ts: f64, dur: f64, pid: u64, args: Value) -> Value {
    json!({"name": name, "cat": cat, "ph": "X", "ts": ts, "dur": dur, "pid": pid, "tid": 0, "args": args})
}

/// The Chrome trace-event JSON object of `p` (`{"traceEvents": [...], "displayTimeUnit": "ns"}`).
pub fn chrome_trace(p: &Profile) -> Value {
    if let Some(pl) = &p.pipeline {
        return json!({"traceEvents": pipeline::events(p, pl), "displayTimeUnit": "ns"});
    }
    let clock = p.machine.clock_hz;
    let us = |c: u64| {
        if clock > 0.0 {
            c as f64 / clock * 1e6
        } else {
            0.0
        }
    };
    let mut events = Vec::new();
    for chip in 0..u64::from(p.machine.chips.max(1)) {
        events.push(meta(chip, 0, "process_name", &format!("chip {chip}")));
        events.push(json!({"name": "process_sort_index", "ph": "M", "pid": chip, "tid": 0, "ts": 0, "args": {"sort_index": chip}}));
        events.push(meta(chip, 0, "thread_name", "supersteps (cost model)"));
    }
    for s in &p.supersteps {
        let chips: Vec<u64> = if s.chips.is_empty() {
            vec![0]
        } else {
            s.chips.iter().map(|&c| u64::from(c)).collect()
        };
        let phases = [
            ("compute", s.compute_cycles),
            ("sync", s.sync_cycles),
            ("exchange", s.exchange_cycles),
        ];
        for &chip in &chips {
            let mut at = s.start_cycle;
            for (cat, cycles) in phases {
                if cycles > 0 {
                    let args = json!({
                        "superstep": s.index,
                        "cycles": cycles,
                        "vertices": s.vertices,
                        "exchange_bytes": s.exchange_bytes,
                        "balance": s.balance.efficiency_computing,
                    });
                    events.push(event(&s.label, cat, us(at), us(cycles), chip, args));
                }
                at += cycles;
            }
        }
    }
    if p.supersteps.iter().any(|s| s.measured.is_some()) {
        let pid = u64::from(p.machine.chips.max(1));
        events.push(meta(pid, 0, "process_name", "emulator (host wall time)"));
        events.push(meta(pid, 0, "thread_name", "supersteps (measured)"));
        let mut at = 0.0;
        for s in &p.supersteps {
            let Some(m) = s.measured else { continue };
            for (cat, dur) in [
                ("host_to_tile", m.host_to_tile_us),
                ("compute", m.compute_us),
                ("exchange", m.exchange_us),
                ("tile_to_host", m.tile_to_host_us),
            ] {
                if dur > 0.0 {
                    events.push(event(
                        &s.label,
                        cat,
                        at,
                        dur,
                        pid,
                        json!({"superstep": s.index}),
                    ));
                }
                at += dur.max(0.0);
            }
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ns"})
}
