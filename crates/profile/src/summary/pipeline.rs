//! The summary's pipeline section for pipelined training plans: the step's composition,
//! utilisation and where the idle chip-cycles go (fill/flush bubble, imbalance, sync), the
//! predicted samples/s, and tables per chip, per segment and per pipeline cycle (the cycle
//! table shortened to its first and last cycles when long).

use crate::fmt::{pct, seconds, thousands, Table};
use crate::model::{PipelineInfo, Profile};
use std::fmt::Write;

/// Pipeline cycles listed in full; longer schedules show the first and last half of this.
const MAX_CYCLE_ROWS: usize = 20;

/// Writes the pipeline section of `p` (nothing for a plan without a pipeline).
pub(super) fn section(p: &Profile, s: &mut String) {
    let Some(pl) = &p.pipeline else { return };
    let clock = p.machine.clock_hz;
    let time = |c: u64| seconds(if clock > 0.0 { c as f64 / clock } else { 0.0 });
    let _ = writeln!(
        s,
        "\nPipeline schedule (cost model): {} stage(s) x {} micro-batch(es) per step, {} replica(s); {} pipeline cycles",
        pl.stages,
        pl.micro_batches,
        pl.replicas,
        pl.pipeline_cycles
    );
    let _ = writeln!(
        s,
        "  step: accumulator reset {} + pipeline cycles {} + gradient read-out {} = {} cycles ({})",
        thousands(pl.zero_cycles),
        thousands(pl.schedule_cycles),
        thousands(pl.read_grads_cycles),
        thousands(pl.step_cycles),
        time(pl.step_cycles)
    );
    let _ = writeln!(
        s,
        "  utilisation {} (busy chip-cycles / ({} chips x pipeline cycles)); idle: fill/flush bubble {} (equal segments would give (P-1)/(G+P-1) = {}), imbalance {}, inter-chip sync {} ({} cycles per pipeline cycle)",
        pct(pl.utilisation),
        pl.stages,
        pct(pl.bubble_share),
        pct(pl.ideal_bubble_share),
        pct(pl.imbalance_share),
        pct(pl.sync_share),
        thousands(pl.sync_cycles_per_pipeline_cycle)
    );
    match pl.samples_per_second {
        Some(sps) => {
            let _ = writeln!(
                s,
                "  throughput: {} samples per step (micro-batch {} x {} micro-batches x {} replica(s)) of {} = {:.1} samples/s (predicted; {}; the replicas' all-reduce is not modelled)",
                thousands(pl.samples_per_step),
                pl.micro_batch_size,
                pl.micro_batches,
                pl.replicas,
                seconds(pl.step_seconds),
                sps,
                if pl.optimizer_cycles > 0 {
                    "the optimizer on the tiles included"
                } else {
                    "the optimizer runs on the host, not included"
                }
            );
        }
        None => {
            let _ = writeln!(s, "  throughput: no cycles in the step, no prediction");
        }
    }
    if let Some(m) = pl.measured_seconds {
        let runs: usize = pl.cycles.iter().map(|c| c.runs.len()).sum();
        let _ = writeln!(
            s,
            "  measured on the emulator: {runs} segment runs in {} (host wall time, not target time)",
            seconds(m)
        );
    }
    chips(pl, s);
    segments(pl, s);
    cycles(pl, s);
}

fn chips(pl: &PipelineInfo, s: &mut String) {
    let _ = writeln!(s, "\n  Chips over the pipeline cycles");
    let mut tab = Table::new(&["chip", "busy", "bubble", "imbalance", "utilisation"]);
    for c in &pl.chips {
        tab.row(vec![
            c.chip.to_string(),
            thousands(c.busy_cycles),
            thousands(c.bubble_cycles),
            thousands(c.imbalance_cycles),
            pct(c.utilisation),
        ]);
    }
    s.push_str(&tab.render());
}

fn segments(pl: &PipelineInfo, s: &mut String) {
    let _ = writeln!(
        s,
        "\n  Segments (cycles of one run; stash copies costed as slot 0's)"
    );
    let mut tab = Table::new(&[
        "segment",
        "chip",
        "supersteps",
        "restores",
        "run",
        "saves",
        "total",
        "stash slots",
        "first cycle",
    ]);
    for g in &pl.segments {
        tab.row(vec![
            g.name.clone(),
            g.stage.to_string(),
            thousands(g.supersteps),
            thousands(g.restore_cycles),
            thousands(g.run_cycles),
            thousands(g.save_cycles),
            thousands(g.cycles),
            g.stash_slots.to_string(),
            g.offset.to_string(),
        ]);
    }
    s.push_str(&tab.render());
}

fn cycles(pl: &PipelineInfo, s: &mut String) {
    let _ = writeln!(
        s,
        "\n  Pipeline cycles (busy cycles per chip; length = busiest chip + sync)"
    );
    let mut header = vec!["cycle".to_string(), "length".to_string()];
    header.extend((0..pl.stages).map(|c| format!("chip {c}")));
    header.push("runs".to_string());
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut tab = Table::new(&refs).left(header.len() - 1);
    let n = pl.cycles.len();
    let half = MAX_CYCLE_ROWS / 2;
    for (i, c) in pl.cycles.iter().enumerate() {
        if n > MAX_CYCLE_ROWS && i == half {
            let mut row = vec!["...".to_string()];
            row.resize(header.len() - 1, String::new());
            row.push(format!(
                "({} steady-state cycles: profile.json)",
                n - MAX_CYCLE_ROWS
            ));
            tab.row(row);
        }
        if n > MAX_CYCLE_ROWS && i >= half && i < n - half {
            continue;
        }
        let mut row = vec![
            c.index.to_string(),
            thousands(c.busy_cycles + c.sync_cycles),
        ];
        row.extend(c.chip_cycles.iter().map(|&b| thousands(b)));
        let runs: Vec<&str> = c.runs.iter().map(|r| r.label.as_str()).collect();
        row.push(runs.join(", "));
        tab.row(row);
    }
    s.push_str(&tab.render());
}
