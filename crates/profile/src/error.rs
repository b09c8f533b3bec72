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
