//! Per-superstep timing and traffic records, collected only when asked for (recording costs
//! two clock reads per phase, which matters next to µs-scale empty supersteps).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Whether [`crate::Machine::run`] records a [`Trace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceMode {
    /// Record nothing (the returned trace is empty).
    #[default]
    Off,
    /// Record one [`SuperstepTrace`] per superstep.
    On,
}

/// What one superstep did and how long each phase took (wall time on the host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuperstepTrace {
    /// Host → tile stream copies.
    pub host_to_tile: Duration,
    /// Compute phase.
    pub compute: Duration,
    /// Exchange phase.
    pub exchange: Duration,
    /// Tile → host stream copies.
    pub tile_to_host: Duration,
    /// Bytes moved by exchange.
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Vertices run.
    pub vertices: u64,
    /// Floating-point operations of the vertices.
    pub flops: u64,
}

/// The record of one run: one entry per superstep when tracing was on, none otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Per-superstep records, in order.
    pub supersteps: Vec<SuperstepTrace>,
}

impl Trace {
    /// Total compute-phase time.
    pub fn compute_time(&self) -> Duration {
        self.supersteps.iter().map(|s| s.compute).sum()
    }

    /// Total exchange-phase time.
    pub fn exchange_time(&self) -> Duration {
        self.supersteps.iter().map(|s| s.exchange).sum()
    }

    /// Total bytes exchanged.
    pub fn exchange_bytes(&self) -> u64 {
        self.supersteps.iter().map(|s| s.exchange_bytes).sum()
    }
}
