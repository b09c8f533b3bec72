//! Graph → tile program: the lowering that says, for every tile of every chip, which bytes it
//! holds and which vertices it runs in each bulk-synchronous superstep.
//!
//! [`lower_program`] walks the graph in topological order and lowers each op to tile work:
//!
//! - **Values** get a [`Layout`]: linear pieces of whole rows spread over their chip's tiles
//!   (embedding tables: column blocks, see [`layout`]). Elementwise results reuse the pieces of
//!   a same-shaped operand, so most elementwise vertices need no exchange at all.
//! - **Elementwise ops** run one vertex per output piece; operands that are not already on the
//!   tile are brought there by exchange into scratch blocks (a suffix broadcast such as a bias
//!   only once per tile: the vertex reads it cyclically).
//! - **Data movement** (transpose, slice, broadcast) is exchange only; reshape aliases.
//! - **Softmax and layer norm** run per tile on whole rows.
//! - **MatMul** is split over batches, rows, columns and the contraction, choosing the split
//!   with the target's cycle model within `matmul_proportion` of tile memory ([`matmul`]);
//!   K-split partial sums are reduced on one tile. Weights are laid out for their products;
//!   sibling products reading one activation (attention's query, key and value) are fused
//!   into one, and a weight read by several products gets one block grid that all of them
//!   read in place ([`LowerOptions::fuse_matmuls`]).
//! - **Gather** runs a lookup vertex on every tile holding a column block of the table.
//!
//! Every allocation goes through per-tile first-fit allocators with liveness, so the plan
//! states each tile's peak memory; a tile whose peak plus its code and vertex state
//! ([`code_state`], always live) is over capacity is an [`LowerError::OutOfMemory`] in
//! Poplar's words with the largest tensors and vertices on it, unless `allow_oom`.
//!
//! Two programs come out: `load` (weights and constants into tile memory, once) and `step`
//! (inputs in, compute, outputs out), both for the same machine, run one after the other on
//! one [`tessera_runtime::Machine`]. Pipeline stages are chips: a node's `stage` annotation
//! picks its chip, and operands on another chip arrive by inter-chip copies.

mod access;
mod builder;
pub mod code_state;
mod columns;
mod gather;
mod landing;
pub mod layout;
mod lowering;
mod matmul;
mod ops;
pub mod pack;
mod pad;
pub mod pipeline;
mod reduce;
mod reduce_cols;
mod reduce_tree;
mod scatter;
pub mod session;
mod sources;
#[cfg(test)]
mod tests;
mod tests_fp16;
mod tests_fused;

use super::error::{LowerError, OutOfMemory};
use serde::{Deserialize, Serialize};
use tessera_ir::{Graph, TensorType};
use tessera_runtime::program::TileProgram;
use tessera_target::Target;

pub use code_state::{code_state, CodeState};
pub use layout::Layout;
pub use lowering::lower_program;
pub use pack::vertex_cycles;
pub use session::{tensor_bytes, SessionError, TileSession};

/// Options of [`lower_program`].
#[derive(Debug, Clone, PartialEq)]
pub struct LowerOptions {
    /// Chips of the machine (at least the number of pipeline stages; 0 = exactly that many).
    pub chips: u32,
    /// Return the plan with [`TilePlan::oom`] set instead of failing when a tile is out of
    /// memory (the CLI's `--allow-oom`).
    pub allow_oom: bool,
    /// Fraction of tile memory a matmul's blocks may use (optimum-graphcore's
    /// `matmul_proportion`; Poplar's `availableMemoryProportion`).
    pub matmul_proportion: f64,
    /// Fuse sibling products (`Linear` layers reading the same activation on one chip, such
    /// as attention's query, key and value) into one split, so that the activation is
    /// broadcast to the tiles once, and give a weight read by several products one layout
    /// that all of them read in place (on by default; the CLI's `--no-fuse-matmuls` turns
    /// both off).
    pub fuse_matmuls: bool,
}

impl Default for LowerOptions {
    /// As many chips as stages, no `allow_oom`, Poplar's default proportion 0.6, sibling
    /// products fused.
    fn default() -> Self {
        LowerOptions {
            chips: 0,
            allow_oom: false,
            matmul_proportion: 0.6,
            fuse_matmuls: true,
        }
    }
}

/// A tensor exchanged with the host through one of a program's host buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostTensor {
    /// Parameter name (Hugging Face state-dict name), input feed name, or output name.
    pub name: String,
    /// Its type; the host buffer holds its row-major little-endian bytes.
    pub ty: TensorType,
    /// Index of the host buffer in its program.
    pub buffer: u32,
}

/// A constant whose bytes the plan carries (e.g. position ids), streamed in by `load`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostConstant {
    /// Index of the host buffer in the `load` program.
    pub buffer: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Estimated cost of one superstep of the `step` program, from the target's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    /// What the superstep does (the ops it lowers, with scopes).
    pub label: String,
    /// Cycles of the busiest tile's vertices.
    pub compute_cycles: u64,
    /// Cycles of the exchange phase (busiest receiving tile, plus inter-chip transfers).
    pub exchange_cycles: u64,
    /// Synchronisation cycles.
    pub sync_cycles: u64,
    /// Bytes moved between tiles (including between chips).
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Vertices run.
    pub vertices: u64,
}

/// One tile's memory in the plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileMemory {
    /// Bytes of always-live values (weights, inputs, constants).
    pub always_live: u64,
    /// Peak bytes in use (always-live plus the high-water mark of everything else).
    pub peak: u64,
    /// Vertices placed on the tile (over all supersteps).
    pub vertices: u64,
    /// Live bytes by category when the tile reached its peak.
    pub at_peak: MemoryByCategory,
}

/// Bytes by what they hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryByCategory {
    /// Parameters (always-live).
    pub weights: u64,
    /// Graph inputs (always-live).
    pub inputs: u64,
    /// Constants (always-live).
    pub constants: u64,
    /// Op results.
    pub activations: u64,
    /// Scratch blocks that exchange fills with vertex operands (and K-split partial sums).
    pub exchange_buffers: u64,
    /// Vertex temporaries (matmul result blocks before they are exchanged, lookups).
    pub temporaries: u64,
    /// Gradient accumulators of a pipelined training step (always-live).
    pub gradients: u64,
    /// Pipeline boundary buffers and stash slots: values kept for later segments and
    /// in-flight micro-batches (always-live).
    pub stash: u64,
    /// Optimizer state streamed onto the tiles while the optimizer runs.
    pub optimizer_state: u64,
}

impl MemoryByCategory {
    /// The categories with bytes, named as reports print them, in declaration order.
    pub fn named(&self) -> Vec<(String, u64)> {
        [
            ("weights", self.weights),
            ("inputs", self.inputs),
            ("constants", self.constants),
            ("activations", self.activations),
            ("exchange buffers", self.exchange_buffers),
            ("temporaries", self.temporaries),
            ("gradients", self.gradients),
            ("stash", self.stash),
            ("optimizer state", self.optimizer_state),
        ]
        .into_iter()
        .filter(|&(_, b)| b > 0)
        .map(|(n, b)| (n.to_string(), b))
        .collect()
    }
}

/// The lowered plan: tile programs, host tensors, memory and cost per superstep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TilePlan {
    /// Streams weights and constants into tile memory (run once).
    pub load: TileProgram,
    /// Streams inputs in, computes, streams outputs out (run per execution).
    pub step: TileProgram,
    /// Parameters, in `load`'s host buffers.
    pub params: Vec<HostTensor>,
    /// Constants with their bytes, in `load`'s host buffers.
    pub constants: Vec<HostConstant>,
    /// Graph inputs, in `step`'s host buffers.
    pub inputs: Vec<HostTensor>,
    /// Graph outputs, in `step`'s host buffers.
    pub outputs: Vec<HostTensor>,
    /// Estimated cost of each superstep of `step`.
    pub costs: Vec<StepCost>,
    /// Memory of every tile, chip-major (`chip * tiles_per_chip + tile`).
    pub memory: Vec<TileMemory>,
    /// Live bytes per chip (summed over its tiles) at the end of each superstep of `step`.
    pub live_bytes: Vec<Vec<u64>>,
    /// The first tile over capacity, when lowered with `allow_oom`.
    pub oom: Option<OutOfMemory>,
    /// Clock of the target, for turning cycles into time.
    pub clock_hz: f64,
    /// The pipeline schedule's pieces of `step`, for pipelined training plans
    /// ([`pipeline::PipelineProgram`]); `None` for a plan run as one program.
    pub pipeline: Option<pipeline::PipelineProgram>,
}

impl TilePlan {
    /// Total estimated cycles of one execution of `step`.
    pub fn total_cycles(&self) -> u64 {
        self.costs
            .iter()
            .map(|c| c.compute_cycles + c.exchange_cycles + c.sync_cycles)
            .sum()
    }

    /// The tile with the largest peak: `(chip, tile, memory)`.
    pub fn fullest_tile(&self) -> Option<(u32, u32, TileMemory)> {
        let per_chip = self.step.tiles_per_chip.max(1) as usize;
        self.memory
            .iter()
            .enumerate()
            .max_by_key(|(i, m)| (m.peak, std::cmp::Reverse(*i)))
            .map(|(i, m)| ((i / per_chip) as u32, (i % per_chip) as u32, *m))
    }
}

/// Lowers `graph` for `target` with default options except `chips`.
pub fn lower_for(graph: &Graph, target: &Target, chips: u32) -> Result<TilePlan, LowerError> {
    lower_program(
        graph,
        target,
        &LowerOptions {
            chips,
            ..LowerOptions::default()
        },
    )
}
