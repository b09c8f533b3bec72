//! Tessera's cost model: cycles, memory and training throughput of a graph on an
//! IPU-style target, predicted from the target's published figures.
//!
//! Three levels, each built on the one before:
//! - [`op_cost`]: one node on a number of tiles of one chip — FLOPs, cycles split into
//!   compute, exchange and sync (BSP supersteps), bytes in and out, temporaries. Matmuls
//!   are planned over tiles poplin-style and compute-bound at the target's MAC rate;
//!   elementwise ops, reductions and normalisations are memory-bound; data movement costs
//!   exchange ([`op`] documents every formula).
//! - [`graph_cost`]: every node of a (training) graph, summed per pipeline stage and
//!   phase (forward, backward with recomputation, optimizer), with a memory breakdown per
//!   chip: weights, gradients, optimizer state, stashed activations for the in-flight
//!   micro-batches, peak temporaries from a liveness scan, code ([`graph`]).
//! - [`predict_throughput`]: samples per second of a pipelined, replicated run with
//!   gradient accumulation, and where the time goes ([`throughput`]).
//!
//! Every hardware number comes from a [`tessera_target::Target`] (which cites its
//! sources); everything else is a documented modelling assumption in [`Assumptions`].
//! Nothing is fitted to a measured throughput: the model is meant to *explain* a
//! measurement (which stage is the bottleneck, what recomputation or off-chip optimizer
//! state costs), and to rank placements, not to reproduce one number.

#![warn(missing_docs)]

pub mod assumptions;
pub mod error;
pub mod graph;
pub mod op;
pub mod throughput;

pub use assumptions::Assumptions;
pub use error::CostError;
pub use graph::{
    graph_cost, CopyBytes, CostOptions, GraphCost, MemoryBreakdown, PhaseCost, StageCost,
};
pub use op::{op_cost, op_cost_with, Cycles, OpCost};
pub use throughput::{predict_throughput, PipelineConfig, StageTime, Throughput};
