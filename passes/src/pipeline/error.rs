//! Errors of the pipeline pass; each names the stage, unit, node or setting it is about.

use crate::recompute::RecomputeError;
use tessera_cost::CostError;
use tessera_ir::{IrError, VerifyError};

/// Why the pipeline pass failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    /// Zero stages were asked for.
    #[error(
        "cannot pipeline over 0 IPUs: a replica needs at least one (ipus_per_replica / --ipus)"
    )]
    NoStages,
    /// More stages than there is anything to put on them.
    #[error("{stages} pipeline stages but the graph has only {available} {what}: every stage needs at least one")]
    TooManyStages {
        /// Stages asked for.
        stages: u32,
        /// Units or layers available.
        available: usize,
        /// `layers` or `units`.
        what: &'static str,
    },
    /// The layer rule finds no numbered layer for `layers_per_ipu` to count.
    #[error("manual placement needs numbered layers (scopes like `encoder.layer.3`), and the layer rule finds none in graph @{graph}")]
    NoLayers {
        /// The graph's name.
        graph: String,
    },
    /// `layers_per_ipu` does not fit the model (the IPU configuration's message).
    #[error("manual placement: {0}")]
    LayersPerIpu(String),
    /// The hand placement applies to LXMERT on 4 chips only.
    #[error("the optimum-graphcore placement is LXMERT's on 4 IPUs: {reason}")]
    NotApplicable {
        /// Why it does not apply.
        reason: String,
    },
    /// A unit named in an explicit placement does not exist.
    #[error("placement names unit `{name}`, which the graph does not have (units: {known})")]
    UnknownUnit {
        /// The name given.
        name: String,
        /// The graph's unit names, comma-separated (abridged).
        known: String,
    },
    /// An explicit placement leaves a unit out.
    #[error("placement gives no stage to unit `{name}`")]
    UnplacedUnit {
        /// The unit.
        name: String,
    },
    /// A stage number is not below the stage count.
    #[error("unit `{unit}` is placed on stage {stage}, but there are only {stages} stages")]
    StageOutOfRange {
        /// The unit.
        unit: String,
        /// Its stage.
        stage: u32,
        /// Stages.
        stages: u32,
    },
    /// A placement would send forward data to an earlier stage.
    #[error("placement sends forward data from `{from}` (stage {from_stage}) back to `{to}` (stage {to_stage}); stages must follow the data flow")]
    BackwardFlow {
        /// The producing unit.
        from: String,
        /// Its stage.
        from_stage: u32,
        /// The reading unit.
        to: String,
        /// Its stage.
        to_stage: u32,
    },
    /// A chip's memory is over its capacity.
    #[error("{placement} placement does not fit: stage {stage} (IPU {stage}) needs {needed} bytes, {over} over its capacity of {capacity} bytes ({detail})")]
    DoesNotFit {
        /// The placement mode.
        placement: String,
        /// The chip.
        stage: u32,
        /// Bytes needed on chip.
        needed: u64,
        /// Capacity in bytes.
        capacity: u64,
        /// `needed − capacity`.
        over: u64,
        /// The breakdown by kind.
        detail: String,
    },
    /// No partition fits every chip.
    #[error("no placement of {units} units on {stages} IPUs fits in memory: the best found still needs {needed} bytes on stage {stage}, {over} over its capacity of {capacity} bytes ({detail})")]
    NothingFits {
        /// Units partitioned.
        units: usize,
        /// Stages.
        stages: u32,
        /// The fullest chip of the best candidate.
        stage: u32,
        /// Its bytes.
        needed: u64,
        /// Capacity.
        capacity: u64,
        /// Excess.
        over: u64,
        /// Breakdown of that chip.
        detail: String,
    },
    /// Recomputation on the placed graph failed.
    #[error("recomputation: {0}")]
    Recompute(#[from] RecomputeError),
    /// A recomputed value is read on another stage than its own.
    #[error("recomputed {node} is read on stage {reader_stage}, not its own stage {stage}: a graph recomputed before placement must be placed by whole layers")]
    RecomputeAcrossStages {
        /// The recomputed node.
        node: String,
        /// Its stage.
        stage: u32,
        /// The reader's stage.
        reader_stage: u32,
    },
    /// The placed graph could not be scheduled (the input has a cycle).
    #[error("pipeline: {0}")]
    Schedule(#[from] crate::schedule::ScheduleError),
    /// Adding a copy or restore node failed (a bug).
    #[error("building pipeline copies: {0}")]
    Build(#[from] IrError),
    /// The cost model failed.
    #[error("cost model: {0}")]
    Cost(#[from] CostError),
    /// The result failed verification (a bug in the pass).
    #[error("pipeline produced an invalid graph: {0}")]
    Verify(#[from] VerifyError),
}
