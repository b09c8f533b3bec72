//! The pipeline part of the profile (`profile.json` → `pipeline`): a pipelined training
//! plan's step as PopART's schedule runs it on the chips, at the cost model's times.
//!
//! A step is the accumulator reset, `G + 2(P−1)` pipeline cycles and the gradient read-out
//! (`tessera_passes::lower::program::pipeline`). A *segment* is the forward or backward of
//! one stage (= chip): its stash restores, its supersteps and its stash saves, costed with the
//! plan's `costs` over those supersteps of `step` (the copies of stash slots other than slot 0
//! are not in `step`; they move the same bytes and are costed as slot 0's). In a pipeline
//! cycle every chip runs its segments of that cycle one after another (in the emulator's
//! order, `Schedule::cycle_order`), the chips in parallel; the cycle lasts as long as its
//! busiest chip, plus one inter-chip sync (`Target::inter_chip_sync_cycles(P)`; none for one
//! chip). A chip's *load* is one run of each of its segments (its work in a steady-state
//! cycle). In each cycle a chip's idle time (the busiest chip's cycles minus its own) is
//! *bubble* as far as the segment runs it misses in that cycle (the fill and flush) would
//! fill it, and *imbalance* beyond that (idle a full load would still leave); the syncs are
//! the rest: `busy + bubble + imbalance + sync = P × schedule_cycles` exactly. With equal
//! segments everywhere and no sync, the bubble share is PopART's `(P−1)/(G+P−1)`.

use serde::{Deserialize, Serialize};

/// Pipeline schedule figures of one training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineInfo {
    /// Pipeline stages `P` (one chip each).
    pub stages: u32,
    /// Micro-batches per step and replica `G` (the gradient accumulation).
    pub micro_batches: u64,
    /// Data-parallel replicas `R`, each running the same schedule on its own chips.
    pub replicas: u64,
    /// Samples per micro-batch (`meta.batch`).
    pub micro_batch_size: u64,
    /// Pipeline cycles of the step, `G + 2(P−1)`.
    pub pipeline_cycles: u64,
    /// Inter-chip sync cycles ending every pipeline cycle.
    pub sync_cycles_per_pipeline_cycle: u64,
    /// Cycles of the accumulator reset (once per step).
    pub zero_cycles: u64,
    /// Cycles of the pipeline cycles summed (each: busiest chip + sync).
    pub schedule_cycles: u64,
    /// Cycles of the gradient read-out (once per step, after the flush).
    pub read_grads_cycles: u64,
    /// Cycles of the optimizer segment on the tiles (streaming its state in and out
    /// included), 0 when the plan's optimizer runs on the host.
    #[serde(default)]
    pub optimizer_cycles: u64,
    /// `zero_cycles + schedule_cycles + read_grads_cycles + optimizer_cycles`.
    pub step_cycles: u64,
    /// `step_cycles / clock_hz`.
    pub step_seconds: f64,
    /// Chip-cycles spent running segments, summed over chips and pipeline cycles.
    pub busy_chip_cycles: u64,
    /// `busy_chip_cycles / (P × schedule_cycles)`.
    pub utilisation: f64,
    /// Idle chip-cycles the fill and flush cause: in each pipeline cycle, a chip's idle time
    /// up to the cycles of the segment runs it misses in that cycle.
    pub bubble_chip_cycles: u64,
    /// `bubble_chip_cycles / (P × schedule_cycles)`.
    pub bubble_share: f64,
    /// The other idle chip-cycles: what a chip's full load would still leave idle, waiting
    /// for the busiest chip of the cycle.
    pub imbalance_chip_cycles: u64,
    /// `imbalance_chip_cycles / (P × schedule_cycles)`.
    pub imbalance_share: f64,
    /// Chip-cycles of inter-chip syncs, `P × pipeline_cycles × sync_cycles_per_pipeline_cycle`.
    pub sync_chip_cycles: u64,
    /// `sync_chip_cycles / (P × schedule_cycles)`.
    pub sync_share: f64,
    /// The fill-and-flush fraction with equal segments and no sync, `(P−1) / (G+P−1)`
    /// (PopART's figure), to compare `bubble_share` with.
    pub ideal_bubble_share: f64,
    /// Samples per step, `micro_batch_size × G × R`.
    pub samples_per_step: u64,
    /// `samples_per_step / step_seconds`; `null` when the step has no cycles. The replicas'
    /// gradient all-reduce is not modelled; the optimizer is in the figure when the plan runs
    /// it on the tiles (`optimizer_cycles` > 0).
    pub samples_per_second: Option<f64>,
    /// Emulator wall time of every segment run of the step, summed (host time, not target
    /// time); `null` without measured runs.
    pub measured_seconds: Option<f64>,
    /// Per chip (stage), in chip order.
    pub chips: Vec<PipelineChip>,
    /// The segments, indexed as `Schedule::index` numbers them (`F0 … F(P−1), B(P−1) … B0`).
    pub segments: Vec<SegmentInfo>,
    /// The pipeline cycles, in order.
    pub cycles: Vec<PipelineCycle>,
}

/// One chip's share of the pipeline cycles (`busy + bubble + imbalance + P-th of the sync =
/// schedule_cycles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineChip {
    /// Chip (= stage).
    pub chip: u32,
    /// Cycles it runs segments.
    pub busy_cycles: u64,
    /// Idle cycles the fill and flush cause (see [`PipelineInfo::bubble_chip_cycles`]).
    pub bubble_cycles: u64,
    /// Other idle cycles, waiting for a busier chip.
    pub imbalance_cycles: u64,
    /// `busy_cycles / schedule_cycles`.
    pub utilisation: f64,
}

/// One segment: a stage's forward or backward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Segment index.
    pub index: u64,
    /// `F<stage>` or `B<stage>`.
    pub name: String,
    /// Its stage (= chip).
    pub stage: u32,
    /// `forward` or `backward`.
    pub kind: String,
    /// First superstep of its run in `step`.
    pub first_superstep: u64,
    /// Supersteps of its run (restores and saves not included).
    pub supersteps: u64,
    /// Cycles of its stash restores (slot 0's copies).
    pub restore_cycles: u64,
    /// Cycles of its run.
    pub run_cycles: u64,
    /// Cycles of its stash saves (slot 0's copies); 0 without a stash ring.
    pub save_cycles: u64,
    /// `restore_cycles + run_cycles + save_cycles`: one run of the segment.
    pub cycles: u64,
    /// Slots of the stash ring its saves fill (0: no ring).
    pub stash_slots: u32,
    /// The pipeline cycle in which it runs micro-batch 0 (micro-batch `m`: `m` later).
    pub offset: u64,
}

/// One pipeline cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineCycle {
    /// Cycle index.
    pub index: u64,
    /// Cycle (clock) at which it starts, counted from the start of the step (which begins
    /// with the accumulator reset).
    pub start_cycle: u64,
    /// Cycles of its busiest chip.
    pub busy_cycles: u64,
    /// Inter-chip sync cycles ending it.
    pub sync_cycles: u64,
    /// Busy cycles of each chip (stage), in chip order.
    pub chip_cycles: Vec<u64>,
    /// Fill/flush bubble cycles of each chip in this cycle (its idle time up to the cycles of
    /// the segment runs it misses), in chip order.
    pub bubble_cycles: Vec<u64>,
    /// Its segment runs, in emulation order.
    pub runs: Vec<SegmentRun>,
}

/// One run of a segment on one micro-batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRun {
    /// Segment index.
    pub segment: u64,
    /// Micro-batch.
    pub micro_batch: u64,
    /// Chip (the segment's stage).
    pub chip: u32,
    /// `F2 mb 5`: segment name and micro-batch.
    pub label: String,
    /// Cycle (clock) at which it starts on its chip, from the start of the step.
    pub start_cycle: u64,
    /// Its cycles (the segment's `cycles`).
    pub cycles: u64,
    /// Emulator wall time of the run (restores, run, saves), microseconds; `null` without
    /// measured runs.
    pub measured_us: Option<f64>,
}
