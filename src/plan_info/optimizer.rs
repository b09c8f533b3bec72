//! What `inspect` shows about a training plan's optimizer segment: where it runs, what it
//! costs, what state it streams in and out, which weights it updates, and which of its
//! scalars evolve on the device (the `<x>_next` outputs a device loop feeds back).

use serde::Serialize;
use tessera_passes::lower::program::pipeline::PipelineProgram;
use tessera_passes::lower::program::TilePlan;
use tessera_passes::lower::thousands;
use tessera_passes::optim::counters::NEXT_SUFFIX;

/// The optimizer segment of a pipelined training plan (run once per step, after the flush).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizerSummary {
    /// Its supersteps in the step program.
    pub supersteps: usize,
    /// Their estimated cycles.
    pub cycles: u64,
    /// Weights it updates in place (`param.*` outputs).
    pub updated_weights: usize,
    /// Optimizer-state tensors streamed in and back out each step (`adam_m.*`, `adam_v.*`).
    pub state_tensors: usize,
    /// Their bytes (each way).
    pub state_bytes: u64,
    /// Inputs only the optimizer reads (`step`, ...).
    pub inputs: Vec<String>,
    /// Outputs that are the next step's value of an input (`step_next`, ...).
    pub device_counters: Vec<String>,
}

/// The optimizer segment of `p` (a pipeline of `t`), if the plan has one.
pub fn optimizer_summary(t: &TilePlan, p: &PipelineProgram) -> Option<OptimizerSummary> {
    let run = p.optimizer.clone()?;
    let cycles = t
        .costs
        .get(run.clone())
        .unwrap_or_default()
        .iter()
        .map(|c| c.compute_cycles + c.exchange_cycles + c.sync_cycles)
        .sum();
    Some(OptimizerSummary {
        supersteps: run.len(),
        cycles,
        updated_weights: p
            .optimizer_outputs
            .iter()
            .filter(|o| o.starts_with("param."))
            .count(),
        state_tensors: p.optimizer_state.len(),
        state_bytes: p
            .optimizer_state
            .iter()
            .map(|h| h.ty.size_bytes() as u64)
            .sum(),
        inputs: p.optimizer_only.clone(),
        device_counters: p
            .optimizer_outputs
            .iter()
            .filter(|o| o.ends_with(NEXT_SUFFIX))
            .cloned()
            .collect(),
    })
}

/// The summary's line: `optimizer after the flush: …`.
pub fn optimizer_line(o: &OptimizerSummary) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "optimizer after the flush: {} supersteps, {} cycles; updates {} weights in place; \
         streams {} state tensors ({} bytes) in and out; reads {}; device counters {}",
        o.supersteps,
        thousands(o.cycles),
        o.updated_weights,
        o.state_tensors,
        thousands(o.state_bytes),
        list(&o.inputs),
        list(&o.device_counters)
    )
}
