//! Typed errors of the profiler: a plan/trace/target mismatch when building a profile, and
//! I/O or JSON failures naming the file they are about when writing or loading one.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong while building, writing or loading a profile.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The trace does not have one record per superstep of the plan's `step` program.
    #[error(
        "trace has {trace} superstep record(s) but the plan's step program has {plan} superstep(s)"
    )]
    TraceMismatch {
        /// Supersteps in the trace.
        trace: usize,
        /// Supersteps in the plan.
        plan: usize,
    },
    /// The plan's cost list and its `step` program disagree on the number of supersteps.
    #[error("plan has {costs} superstep cost(s) but its step program has {steps} superstep(s)")]
    CostMismatch {
        /// Entries of `plan.costs`.
        costs: usize,
        /// Supersteps of `plan.step`.
        steps: usize,
    },
    /// The plan was lowered for a machine other than the target given.
    #[error(
        "plan was lowered for {plan_tiles} tiles per chip but target `{target}` has {target_tiles}"
    )]
    TargetMismatch {
        /// Target name.
        target: String,
        /// Tiles per chip of the plan.
        plan_tiles: u32,
        /// Tiles per chip of the target.
        target_tiles: u32,
    },
    /// A tile reference in the plan lies outside the plan's machine.
    #[error("superstep {superstep} refers to chip {chip} tile {tile}, outside the plan's {chips} chip(s) x {tiles} tiles")]
    TileOutOfRange {
        /// Superstep index.
        superstep: usize,
        /// Chip of the reference.
        chip: u32,
        /// Tile of the reference.
        tile: u32,
        /// Chips of the plan.
        chips: u32,
        /// Tiles per chip of the plan.
        tiles: u32,
    },
    /// Pipeline figures were asked of a plan without a pipeline schedule.
    #[error("the plan has no pipeline schedule (only pipelined training plans have one)")]
    NotPipelined,
    /// A pipelined step needs at least one micro-batch and one replica.
    #[error("a pipelined step needs at least one micro-batch and one replica, got {micro_batches} micro-batch(es) and {replicas} replica(s)")]
    EmptyStep {
        /// Micro-batches asked for.
        micro_batches: u64,
        /// Replicas asked for.
        replicas: u64,
    },
    /// The pipeline program does not match its schedule (segment count or stages).
    #[error("pipeline program: {problem}")]
    PipelineShape {
        /// What does not match, naming the segment.
        problem: String,
    },
    /// A piece of the pipeline program refers to supersteps outside the plan's `step`.
    #[error("pipeline {piece} refers to supersteps {start}..{end}, outside the step program's {steps} superstep(s)")]
    PipelineRange {
        /// The piece (`segment F2 run`, `zero`, ...).
        piece: String,
        /// First superstep.
        start: usize,
        /// End of the range (exclusive).
        end: usize,
        /// Supersteps of `step`.
        steps: usize,
    },
    /// The measured runs are not the schedule's runs for the micro-batches asked for.
    #[error("{runs} measured segment run(s) given, but {segments} segments x {micro_batches} micro-batch(es) make {expected}")]
    RunCount {
        /// Runs given.
        runs: usize,
        /// Segments of the plan.
        segments: usize,
        /// Micro-batches asked for.
        micro_batches: u64,
        /// Runs expected.
        expected: usize,
    },
    /// A measured run does not belong to the schedule, or its trace does not have one record
    /// per superstep of the segment's restores, run and saves.
    #[error("measured run of segment {segment} on micro-batch {micro_batch} (pipeline cycle {cycle}): {problem}")]
    RunMismatch {
        /// Segment index.
        segment: usize,
        /// Micro-batch.
        micro_batch: usize,
        /// Pipeline cycle.
        cycle: usize,
        /// What is wrong.
        problem: String,
    },
    /// Reading, writing, creating or renaming a file or directory failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, `creating directory`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A profile.json file is not a valid profile (or a profile could not be serialised).
    #[error("profile JSON {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A profile.json written by a newer or older, incompatible format version.
    #[error("{}: profile format version {found}, this build reads version {expected}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ProfileError>;
