//! Tessera's tile runtime: a bulk-synchronous emulation of IPU-style chips on the host CPU.
//!
//! A [`TileProgram`] (plain serialisable data, the output of lowering) is checked once by
//! [`LoadedProgram::load`], which rejects any vertex or copy reaching outside its tile and any
//! overlapping exchange destinations with a [`ProgramError`] naming superstep, tile and range.
//! A [`Machine`] owns one memory of exactly `bytes_per_tile` bytes per tile;
//! [`Machine::run_in`] executes the supersteps (compute on all tiles in parallel on rayon, then
//! exchange, planned at load: direct, staged, or fused with the next compute) inside a single
//! entry into the thread pool, bit-identically for any thread count, optionally recording a
//! per-superstep [`Trace`] (with per-tile times in [`TraceMode::Tiles`]).
//!
//! Vertices ([`Vertex`]) cover what lowering a transformer forward needs: matmul (operands
//! optionally stored transposed), elementwise unary/binary (binary with cyclic broadcast of a
//! shorter operand), partial-sum reduction, casts (including i64 → float and bool → float),
//! fill, copy, row softmax, row layer norm and row gather by i64 indices; for training graphs
//! also comparison (bool result), select (bool condition), row sum / mean / max and
//! scatter-add by i64 indices. Their arithmetic is bit-identical to the reference evaluator
//! `tessera_ir::eval` except matmul's f32 summation order. Host
//! streams may read 2-D strided host ranges ([`StreamCopy::strided`]). A machine's memory
//! persists between runs, so a program that streams weights in once can be followed by any
//! number of runs of a step program on the same [`Machine`].

pub mod error;
mod exchange;
mod exec;
mod kernels;
pub mod loaded;
pub mod machine;
pub mod program;
pub mod trace;
mod validate;
pub mod vertex;

pub use error::{Problem, ProgramError, RunError, Site};
pub use loaded::LoadedProgram;
pub use machine::Machine;
pub use program::{
    Exchange, HostBuffer, Region, StreamCopy, Superstep, TileCompute, TileProgram, TileRef,
    TileRegion,
};
pub use trace::{SuperstepTrace, TileTime, Trace, TraceMode};
pub use vertex::{Elem, MatMul, Vertex};

#[cfg(test)]
mod tests;
