//! The compile report: built from the pipeline pass's report, printed as a stage table.

use tessera_ir::Graph;
use tessera_passes::pipeline::PipelineReport;
use tessera_plan::{
    Comparison, CompileReport, MemoryRow, PassTiming, RecomputeRow, RunSettings, StageRow,
};

/// The stage rows of a pipeline report.
pub fn stage_rows(p: &PipelineReport) -> Vec<StageRow> {
    p.stages
        .iter()
        .map(|s| {
            let m = &s.memory;
            StageRow {
                stage: s.stage,
                contents: s.contents.clone(),
                flops: s.forward_flops.saturating_add(s.backward_flops),
                forward_flops: s.forward_flops,
                backward_flops: s.backward_flops,
                recompute_flops: s.recompute_flops,
                cycles: s.cycles,
                time_s: s.time_s,
                memory_bytes: m.total,
                capacity_bytes: m.capacity,
                fits: m.fits,
                memory: MemoryRow {
                    weights: m.weights,
                    gradients: m.gradients,
                    optimizer_state: m.optimizer_state,
                    optimizer_state_streaming: m.optimizer_state_streaming,
                    stash: m.stashed_activations,
                    stash_copies: m.stash_copies,
                    temporaries: m.temporaries_peak,
                    code: m.code_and_vertex_state,
                },
            }
        })
        .collect()
}

/// The report of a compile whose pipeline pass reported `p`.
pub(crate) fn compile_report(
    settings: RunSettings,
    p: &PipelineReport,
    passes: Vec<PassTiming>,
    placed: &Graph,
    warnings: Vec<String>,
    compile_seconds: f64,
) -> CompileReport {
    let tp = &p.throughput;
    CompileReport {
        settings,
        predicted_samples_per_second: p.samples_per_s,
        compile_seconds,
        passes,
        stages: stage_rows(p),
        bottleneck_stage: p.bottleneck_stage,
        bottleneck_s: p.bottleneck_s,
        lower_bound_s: p.lower_bound_s,
        optimizer_s: tp.optimizer_s,
        all_reduce_s: tp.all_reduce_s,
        step_s: tp.step_s,
        hand_placement: p.hand.as_ref().map(|h| Comparison {
            placement: h.placement.clone(),
            samples_per_second: h.samples_per_s,
            bottleneck_stage: h.bottleneck_stage,
            bottleneck_s: h.micro_batch_s,
            fits: h.fits,
            speedup: h.speedup,
        }),
        recompute: p.recompute.as_ref().map(|r| RecomputeRow {
            recomputed_nodes: r.recomputed_nodes,
            extra_flops: r.extra_flops,
            stash_bytes_before: r.stash_bytes_before,
            stash_bytes: r.stash_bytes,
        }),
        nodes: placed.len(),
        copies: p.copies,
        stashes: p.stashes,
        warnings,
    }
}

/// Bytes as MB (10⁶) with one decimal.
fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

/// The stage table and summary `tessera compile` prints.
pub fn report_text(r: &CompileReport) -> String {
    use std::fmt::Write as _;
    let s = &r.settings;
    let mut out = String::new();
    let shapes: Vec<String> = s.shapes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        out,
        "{} ({}{}, {}): {} IPU(s) per replica x {} replica(s), gradient accumulation {}, \
         device iterations {}, micro-batch {}, placement {}, recompute {}, target {}",
        s.model,
        if s.train { "training step" } else { "forward" },
        if shapes.is_empty() {
            String::new()
        } else {
            format!(", {}", shapes.join(", "))
        },
        s.precision,
        s.ipus_per_replica,
        s.replicas,
        s.gradient_accumulation,
        s.device_iterations,
        s.micro_batch,
        s.placement,
        s.recompute,
        s.target
    );
    let _ = writeln!(
        out,
        "\n{:>5}  {:>10} {:>12} {:>10}  {:>9} {:>9}  contents",
        "stage", "GFLOP/mb", "cycles/mb", "ms/mb", "mem MB", "cap MB"
    );
    for row in &r.stages {
        let mark = if row.stage == r.bottleneck_stage {
            "*"
        } else {
            " "
        };
        let over = if row.fits { "" } else { " OVER" };
        let _ = writeln!(
            out,
            "{:>4}{mark}  {:>10.2} {:>12} {:>10.3}  {:>9} {:>9}  {}{over}",
            row.stage,
            row.flops as f64 / 1e9,
            row.cycles,
            row.time_s * 1e3,
            mb(row.memory_bytes),
            mb(row.capacity_bytes),
            row.contents
        );
    }
    let _ = writeln!(
        out,
        "\nmemory by kind, MB: {:>5} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9} {:>9}",
        "stage", "weights", "grads", "opt", "stash(xN)", "temps", "code", "streamed"
    );
    for row in &r.stages {
        let m = &row.memory;
        let _ = writeln!(
            out,
            "                    {:>5} {:>9} {:>9} {:>9} {:>13} {:>9} {:>9} {:>9}",
            row.stage,
            mb(m.weights),
            mb(m.gradients),
            mb(m.optimizer_state),
            format!("{}(x{})", mb(m.stash), m.stash_copies),
            mb(m.temporaries),
            mb(m.code),
            mb(m.optimizer_state_streaming)
        );
    }
    let _ = writeln!(
        out,
        "\npredicted: {:.1} samples/s (step {:.2} ms: pipeline {} x {:.3} ms, optimizer {:.2} ms, all-reduce {:.2} ms)",
        r.predicted_samples_per_second,
        r.step_s * 1e3,
        s.gradient_accumulation + s.ipus_per_replica.saturating_sub(1),
        r.bottleneck_s * 1e3,
        r.optimizer_s * 1e3,
        r.all_reduce_s * 1e3
    );
    let ratio = if r.lower_bound_s > 0.0 {
        r.bottleneck_s / r.lower_bound_s
    } else {
        1.0
    };
    let _ = writeln!(
        out,
        "bottleneck: stage {} at {:.3} ms per micro-batch; balanced lower bound (total / P) {:.3} ms (x{ratio:.2})",
        r.bottleneck_stage,
        r.bottleneck_s * 1e3,
        r.lower_bound_s * 1e3
    );
    if let Some(h) = &r.hand_placement {
        let _ = writeln!(
            out,
            "hand placement ({}): {:.1} samples/s, bottleneck stage {} at {:.3} ms{}; this plan is {:.2}x",
            h.placement,
            h.samples_per_second,
            h.bottleneck_stage,
            h.bottleneck_s * 1e3,
            if h.fits { "" } else { " (does not fit)" },
            h.speedup
        );
    }
    if let Some(rc) = &r.recompute {
        let _ = writeln!(
            out,
            "recompute {}: {} nodes, +{:.2} GFLOP per micro-batch, stash {} MB -> {} MB per micro-batch",
            s.recompute,
            rc.recomputed_nodes,
            rc.extra_flops as f64 / 1e9,
            mb(rc.stash_bytes_before),
            mb(rc.stash_bytes)
        );
    }
    let steps: Vec<String> = r
        .passes
        .iter()
        .map(|p| format!("{} {:.3}", p.name, p.seconds))
        .collect();
    let _ = writeln!(
        out,
        "compile: {:.3} s ({}); {} nodes, {} inter-chip copies, {} stash restores",
        r.compile_seconds,
        steps.join(", "),
        r.nodes,
        r.copies,
        r.stashes
    );
    out
}
