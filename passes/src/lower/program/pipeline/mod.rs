//! Pipelined training plans: one micro-batch's gradient graph cut into the segments of a
//! pipeline schedule, with stashes and on-tile gradient accumulation.
//!
//! [`lower_pipelined`] lowers a training graph placed by the pipeline pass (every node has a
//! stage; stash restores and inter-chip copies are explicit) so that each *segment* — the
//! forward or the backward of one stage, see [`schedule`] — is a contiguous run of
//! supersteps on its own chip that only shares step-long buffers with the others:
//!
//! - **Boundary buffers and stashes.** A value read by a later segment is copied, at the end
//!   of the segment computing it, into a buffer allocated for the whole step (category
//!   `stash`): one buffer when the reader always runs before the producer's next run,
//!   otherwise a ring of slots, one per micro-batch in flight (PopART's stash). A reader of a
//!   ring first restores its micro-batch's slot into a buffer on its own chip (an exchange;
//!   between chips, an inter-chip copy). Every other byte a segment allocates is free again
//!   when it ends, so segments can run in any interleaving the schedule asks for.
//! - **Inputs** are streamed into each segment that reads them, per micro-batch.
//! - **Gradients** (`grad.*` outputs) are added, at the end of their backward segment, into
//!   f32 accumulators on the tiles (category `gradients`), zeroed once per step and streamed
//!   out after the flush; other outputs (the loss) stream out per micro-batch.
//!
//! The plan's `step` program runs one micro-batch through every segment in order, using
//! stash slot 0 (zero the accumulators, then per segment: restores, run, stash saves; then
//! stream the gradients out), so a pipelined plan run as one program computes exactly what
//! the unpipelined lowering computes. [`PipelineProgram`] says which supersteps of `step` are
//! which piece, and carries the copies of the other stash slots; [`PipelineSession`] runs
//! the schedule over `G` micro-batches, and [`PipelineSession::device_loop`] runs several
//! training steps (device iterations) in one call, the optimizer state kept in the
//! session's streaming memory.

mod analysis;
mod assemble;
mod boundary;
mod device_loop;
mod host_io;
mod lower;
mod opt_segment;
mod optimizer;
mod parts;
pub mod schedule;
mod session;
#[cfg(test)]
mod tests;

pub use analysis::segment_name;
pub use device_loop::{DeviceLoop, IterationAnchors, LoopError, LoopShape};
pub use lower::{lower_pipelined, lower_pipelined_with};
pub use schedule::{Schedule, SegmentKind};
pub use session::{MicroBatchRun, PipelineSession, PipelineStep};

use super::HostTensor;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use tessera_runtime::program::Superstep;

/// Copies between one segment's values and the stash slots of its producer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StashCopies {
    /// The segment whose values the slots hold.
    pub producer: usize,
    /// Slots in the ring (micro-batch `m` uses slot `m % slots`).
    pub slots: u32,
    /// The copies for slot 0: supersteps of the plan's `step` program.
    pub slot0: Range<usize>,
    /// The same copies for slots `1..slots`, one superstep each.
    pub others: Vec<Superstep>,
}

impl StashCopies {
    /// The slot of micro-batch `m`.
    pub fn slot(&self, m: usize) -> usize {
        m % (self.slots.max(1) as usize)
    }
}

/// One segment of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentProgram {
    /// Its stage (= chip).
    pub stage: u32,
    /// Forward or backward.
    pub kind: SegmentKind,
    /// Its supersteps in the plan's `step` program.
    pub run: Range<usize>,
    /// Restores of stashed values it reads, one entry per producing segment.
    pub restores: Vec<StashCopies>,
    /// Saves of its own values into their stash slots (run right after it), if any.
    pub save: Option<StashCopies>,
}

/// The pipeline schedule's pieces of a plan's `step` program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineProgram {
    /// The schedule (number of stages).
    pub schedule: Schedule,
    /// Zeroes the gradient accumulators (once per step).
    pub zero: Range<usize>,
    /// The segments, indexed as [`Schedule::index`] numbers them.
    pub segments: Vec<SegmentProgram>,
    /// Streams the accumulated gradients out (once per step, after the flush).
    pub read_grads: Range<usize>,
    /// Names of the outputs streamed per micro-batch (the loss); the other outputs of the
    /// plan are the accumulated gradients.
    pub per_micro_batch: Vec<String>,
    /// Host buffers of `step` that hold one micro-batch's data (the inputs, then the
    /// per-micro-batch outputs); the gradient buffers follow them.
    pub micro_buffers: u32,
    /// End of the gradient host buffers (`[micro_buffers, grad_buffers_end)`); the
    /// optimizer's streamed state and results follow.
    pub grad_buffers_end: u32,
    /// Streams the all-reduced gradients back into the accumulators (after every replica ran).
    pub write_grads: Range<usize>,
    /// The optimizer segment, when the optimizer runs on the tiles.
    pub optimizer: Option<Range<usize>>,
    /// The optimizer state streamed in for the optimizer segment (and out, updated, as the
    /// outputs of the same names).
    pub optimizer_state: Vec<HostTensor>,
    /// Names of the optimizer's outputs (updated weights `param.*`, state, `lr`,
    /// `grad_norm`, `found_inf`).
    pub optimizer_outputs: Vec<String>,
    /// Inputs only the optimizer reads (`step`): not part of a micro-batch's feeds.
    pub optimizer_only: Vec<String>,
}
