//! Tessera's compiled plan: what `tessera compile` writes and `tessera run` executes.
//!
//! A [`Plan`] holds the placed graph (every node with its pipeline stage, inter-chip
//! copies and stash restores), the tile program of forward plans
//! ([`tessera_passes::lower::program::TilePlan`]: what every tile holds and runs in each
//! superstep, with its memory and cost estimates), the model it was compiled from
//! ([`Source`]: so a run can initialise the same weights), the
//! [`tessera_target::Target`] it was compiled for, the optimum-graphcore IPU configuration
//! it was compiled with, and the compile report ([`CompileReport`]: the stage table and
//! the predicted throughput). The runtime never sees the mutable IR's passes, only this.
//!
//! The file format ([`format`]) is a fixed header — the magic `TSPLAN\0`, a format version,
//! the payload length and an FNV-1a 64-bit checksum of the payload — followed by the plan
//! serialised with postcard. Loading checks each in turn, so a file that is not a plan, is
//! truncated, was written by another format version, or was corrupted gets an error saying
//! which; [`Plan::save`] writes atomically (temporary file and rename).

#![warn(missing_docs)]

pub mod error;
pub mod format;
pub mod report;

mod plan;

pub use error::PlanError;
pub use format::{FORMAT_VERSION, MAGIC};
pub use plan::{Plan, Source};
pub use report::{
    Comparison, CompileReport, MemoryRow, PassTiming, RecomputeRow, RunSettings, StageRow,
};
