//! The options of [`super::graph_cost`] and the per-stage report it returns (serde data,
//! so that `tessera compile` can write it and later passes can read it back).

use serde::{Deserialize, Serialize};
use tessera_target::IpuConfig;

use crate::op::{Cycles, OpCost};
use crate::{Assumptions, CostError, PipelineConfig};

/// Options of [`super::graph_cost`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostOptions {
    /// Stages, replicas, gradient accumulation and optimizer-state placement.
    pub pipeline: PipelineConfig,
    /// The first optimizer moment is `f16` (optimum's `enable_half_first_order_momentum`).
    pub half_first_order_momentum: bool,
    /// Tiles each op may use; `None`: all the tiles of the chip.
    pub tiles_per_stage: Option<u32>,
    /// Modelling assumptions.
    pub assumptions: Assumptions,
}

impl CostOptions {
    /// Options for `pipeline` with fp32 moments, whole chips and default assumptions.
    pub fn new(pipeline: PipelineConfig) -> Self {
        CostOptions {
            pipeline,
            half_first_order_momentum: false,
            tiles_per_stage: None,
            assumptions: Assumptions::default(),
        }
    }

    /// Options for an optimum-graphcore IPU configuration and a micro-batch size.
    pub fn from_ipu_config(config: &IpuConfig, micro_batch: u32) -> Result<Self, CostError> {
        Ok(CostOptions {
            half_first_order_momentum: config.enable_half_first_order_momentum,
            ..CostOptions::new(PipelineConfig::from_ipu_config(config, micro_batch)?)
        })
    }
}

/// FLOPs and cycles of one phase of one stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseCost {
    /// Nodes (or analytic per-parameter ops) in the phase.
    pub nodes: usize,
    /// FLOPs.
    pub flops: u64,
    /// FLOPs of matrix products.
    pub matmul_flops: u64,
    /// Cycles by phase of the BSP supersteps.
    pub cycles: Cycles,
    /// BSP supersteps.
    pub supersteps: u64,
}

impl PhaseCost {
    /// Adds one op's cost.
    pub(crate) fn add(&mut self, c: &OpCost) {
        self.nodes += 1;
        self.flops = self.flops.saturating_add(c.flops);
        self.matmul_flops = self.matmul_flops.saturating_add(c.matmul_flops);
        self.cycles += c.cycles;
        self.supersteps += u64::from(c.supersteps);
    }

    /// Adds another phase's totals.
    pub(crate) fn merge(&mut self, other: &PhaseCost) {
        self.nodes += other.nodes;
        self.flops = self.flops.saturating_add(other.flops);
        self.matmul_flops = self.matmul_flops.saturating_add(other.matmul_flops);
        self.cycles += other.cycles;
        self.supersteps += other.supersteps;
    }
}

/// Bytes one stage sends and receives over IPU-Links per micro-batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyBytes {
    /// Activations sent to later stages.
    pub forward_sent: u64,
    /// Activations received from earlier stages.
    pub forward_received: u64,
    /// Gradients (and backward inputs) sent to other stages.
    pub backward_sent: u64,
    /// Gradients (and backward inputs) received from other stages.
    pub backward_received: u64,
}

/// Memory of one stage's chip by kind, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryBreakdown {
    /// Parameters (always live).
    pub weights: u64,
    /// Gradient accumulators / gradients of the trained parameters.
    pub gradients: u64,
    /// Optimizer state held on chip (0 when it is off chip).
    pub optimizer_state: u64,
    /// Optimizer state held in streaming memory (0 when it is on chip).
    pub optimizer_state_streaming: u64,
    /// Stash of one micro-batch.
    pub stash_per_micro_batch: u64,
    /// Micro-batches whose stash is kept at once.
    pub stash_copies: u64,
    /// `stash_per_micro_batch × stash_copies`.
    pub stashed_activations: u64,
    /// Peak of the other live values and op temporaries within one micro-batch.
    pub temporaries_peak: u64,
    /// Code and vertex state.
    pub code_and_vertex_state: u64,
    /// Sum of the on-chip kinds.
    pub total: u64,
    /// `tiles_per_chip × bytes_per_tile`.
    pub capacity: u64,
    /// `total ≤ capacity`.
    pub fits: bool,
}

/// Costs of one pipeline stage (one chip of a replica).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageCost {
    /// The stage index.
    pub stage: u32,
    /// Forward pass of one micro-batch.
    pub forward: PhaseCost,
    /// Backward pass of one micro-batch: gradient nodes, recomputation and accumulation.
    pub backward: PhaseCost,
    /// The recomputation part of `backward`.
    pub recompute: PhaseCost,
    /// The gradient-accumulation part of `backward` (zero when `G = 1`).
    pub accumulation: PhaseCost,
    /// One optimizer step over the stage's trained parameters (unsharded).
    pub optimizer: PhaseCost,
    /// `optimizer` comes from optimizer nodes of the graph (else: the analytic AdamW).
    pub optimizer_from_graph: bool,
    /// Inter-chip copies per micro-batch.
    pub copies: CopyBytes,
    /// Trained parameter elements on the stage.
    pub trained_elements: u64,
    /// Bytes of the stage's trained parameters.
    pub trained_weight_bytes: u64,
    /// Gradient bytes of the stage's trained parameters (what the replicas all-reduce).
    pub gradient_bytes: u64,
    /// Optimizer-state bytes of the stage before any sharding.
    pub optimizer_state_bytes: u64,
    /// Memory by kind.
    pub memory: MemoryBreakdown,
}

/// Costs of a graph per pipeline stage, with the settings they were computed for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphCost {
    /// The graph's name.
    pub graph: String,
    /// The target's name.
    pub target: String,
    /// Tiles each op could use.
    pub tiles_per_stage: u32,
    /// The graph has backward nodes.
    pub training: bool,
    /// The options used.
    pub options: CostOptions,
    /// One entry per stage `0..P`.
    pub stages: Vec<StageCost>,
}
