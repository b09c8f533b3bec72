//! The `pipeline` pass: partition a (training) graph into pipeline stages, one per chip of
//! a replica, and make the data flow between chips explicit.
//!
//! What it does, in order:
//! 1. **Units.** The graph's computed nodes are grouped into units ([`crate::layers`]):
//!    layers, or their sub-modules when automatic placement may cut inside layers. The
//!    forward and backward nodes of a unit always share a stage (PopART's rule), and units
//!    are ordered topologically, so that a stage is a contiguous run of units and forward
//!    data only flows to the same or a later stage — for any DAG, LXMERT's two streams
//!    meeting in the cross layers included.
//! 2. **Placement** ([`Placement`]): `manual` from optimum-graphcore's `layers_per_ipu`
//!    (over the numbered layers; units before the first layer go to the first chip, those
//!    after the last to the last chip, as optimum places embeddings and heads),
//!    `optimum-graphcore` (the seed run's hand placement of LXMERT on 4 chips), `auto`
//!    (the partition with the best predicted throughput under every chip's memory
//!    capacity, [`search`]), or an explicit unit → stage list.
//! 3. **Annotation.** Every node gets `stage=N`: computed nodes from their unit, leaves
//!    the lowest stage that reads them (a weight, constant or input used on several
//!    chips is streamed to or materialised on each; the cost model charges each).
//!    With [`PipelineConfig::recompute`] set, the [`crate::recompute`] pass then runs on
//!    the placed graph, so that values read across stages become checkpoints and no
//!    recomputed value crosses a stage (placement itself was estimated on the graph
//!    recomputed without stages, see [`Planner`]). A graph that arrives already
//!    recomputed is placed by whole layers only.
//! 4. **Copies.** Each computed value read on another stage gets one inter-chip copy per
//!    receiving stage: an identity `reshape` on the receiving stage, scoped
//!    `<source scope>.ipu_copy` (a gradient's copy keeps its `backward` component), which
//!    the reading nodes use instead.
//! 5. **Stash.** Each forward value (or graph input) a backward or recomputed node reads
//!    is restored from the stage's stash through an identity `reshape` scoped
//!    `<source scope>.stash` on that stage: the values the stage must keep for every
//!    in-flight micro-batch, visible in the printed IR. The cost model counts them by
//!    storage root (views share their operand's storage), so copies and restores cost no
//!    memory of their own.
//! 6. **Costing.** `tessera-cost` costs the placed graph per stage and predicts the
//!    throughput; a placement that does not fit every chip is an error naming the chip
//!    and the excess. The report gives the bottleneck stage against the lower bound of a
//!    perfectly balanced pipeline (`Σ stage times / P`) and, for LXMERT on 4 chips,
//!    against the hand placement.
//!
//! Copies and restores are identities, so the placed graph computes exactly what its
//! input did (the tests check bit-identity on the reference evaluator).

mod annotate;
mod assign;
mod report;
mod search;
mod segments;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lxmert;

pub use annotate::insert_stashes;
pub use report::{describe_units, Comparison, PipelineReport, SearchStats, StageReport};

use crate::layers::{Granularity, LayerRule, Units};
use crate::recompute::{recompute, RecomputeConfig, RecomputeError, RecomputeMode, RecomputeStats};
use serde::{Deserialize, Serialize};
use tessera_cost::{graph_cost, predict_throughput, CostError, CostOptions, GraphCost, Throughput};
use tessera_ir::{Graph, IrError, VerifyError};
use tessera_target::Target;

/// How units are assigned to stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// optimum-graphcore's `layers_per_ipu` (with its `-1` wildcard rules) over the
    /// numbered layers.
    Manual {
        /// Layers per IPU, as in an `ipu_config.json`.
        layers_per_ipu: Vec<i64>,
    },
    /// The seed run's hand placement of LXMERT: embeddings and visual projection on chip
    /// 0, the language layers on 1, the object layers on 2, the cross layers, pooler,
    /// head and loss on 3.
    OptimumGraphcore,
    /// The partition with the best predicted throughput that fits in memory.
    Auto,
    /// An explicit stage for every unit, by unit name.
    Units(Vec<(String, u32)>),
}

impl Placement {
    /// The mode's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Placement::Manual { .. } => "manual",
            Placement::OptimumGraphcore => "optimum-graphcore",
            Placement::Auto => "auto",
            Placement::Units(_) => "units",
        }
    }
}

/// Options of the [`pipeline`] pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// How to place units.
    pub placement: Placement,
    /// What a layer is.
    pub rule: LayerRule,
    /// `auto` and `units` work on sub-layer units, so stages may end inside a layer.
    pub split_layers: bool,
    /// Stages (`cost.pipeline.stages`), replicas, accumulation, optimizer placement and
    /// modelling assumptions for the cost model.
    pub cost: CostOptions,
    /// Recomputation to apply once stages are known (placement estimates its costs
    /// with it first, see [`Planner`]); `None` leaves the graph's recomputation as it is.
    pub recompute: Option<RecomputeConfig>,
    /// Insert stash restores (step 5).
    pub insert_stash: bool,
    /// Also cost the optimum-graphcore hand placement, when it applies, for comparison.
    pub compare_hand: bool,
}

impl PipelineConfig {
    /// `placement` with cost options `cost`, the numbered layer rule, sub-layer splits,
    /// stash restores and the hand-placement comparison.
    pub fn new(placement: Placement, cost: CostOptions) -> Self {
        PipelineConfig {
            placement,
            rule: LayerRule::numbered(),
            split_layers: true,
            cost,
            recompute: None,
            insert_stash: true,
            compare_hand: true,
        }
    }

    /// Pipeline stages (chips per replica).
    pub fn stages(&self) -> u32 {
        self.cost.pipeline.stages
    }
}

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

/// A placed graph with its costs.
pub(crate) struct Placed {
    /// The annotated graph with copies (and restores).
    pub graph: Graph,
    /// Its per-stage costs.
    pub cost: GraphCost,
    /// Its predicted throughput.
    pub throughput: Throughput,
    /// Inter-chip copies inserted.
    pub copies: usize,
    /// Bytes those copies move per micro-batch.
    pub copy_bytes: u64,
    /// Stash restores inserted.
    pub stashes: usize,
    /// What recomputation did on the placed graph.
    pub recompute: Option<RecomputeStats>,
    /// The stage of every unit of the units it was placed by.
    pub assignment: Vec<u32>,
}

/// The recomputation mode placement estimates costs with: the stage-dependent modes
/// (`pipeline`, `auto`) are estimated per layer, the others are themselves.
fn estimate_mode(mode: &RecomputeMode) -> RecomputeMode {
    match mode {
        RecomputeMode::Pipeline | RecomputeMode::Auto(_) => RecomputeMode::Layer,
        m => m.clone(),
    }
}

/// The input graph, the graph placement costs are estimated on, and the settings.
pub(crate) struct Planner<'a> {
    /// The graph to place.
    pub graph: &'a Graph,
    /// `graph` recomputed without stages (see [`estimate_mode`]), or `graph` itself.
    /// Units of `est` and of `graph` made the same way have the same names.
    pub est: Graph,
    /// Unit granularity of `auto` and `units` placements.
    pub fine: Granularity,
    /// Settings.
    pub cfg: &'a PipelineConfig,
    /// The chip.
    pub target: &'a Target,
}

impl<'a> Planner<'a> {
    fn new(
        graph: &'a Graph,
        cfg: &'a PipelineConfig,
        target: &'a Target,
    ) -> Result<Planner<'a>, PipelineError> {
        let est = match &cfg.recompute {
            Some(rc) => {
                let mode = estimate_mode(&rc.mode);
                recompute(graph, &RecomputeConfig { mode, ..rc.clone() })?.0
            }
            None => graph.clone(),
        };
        // A graph recomputed before placement cannot be cut inside a layer: the copies
        // of one layer must stay on one stage.
        let pre_recomputed =
            cfg.recompute.is_none() && graph.node_ids().any(|id| graph.node(id).annot.recompute);
        let fine = if cfg.split_layers && !pre_recomputed {
            Granularity::SubLayer
        } else {
            Granularity::Layer
        };
        Ok(Planner {
            graph,
            est,
            fine,
            cfg,
            target,
        })
    }

    /// Units of the estimate graph.
    pub fn units(&self, rule: &LayerRule, granularity: Granularity) -> Units {
        Units::new(&self.est, rule, granularity)
    }

    /// Places the input graph with a stage per unit of `units` (units of the estimate
    /// graph, matched to the input's by name), recomputes it (when asked) on its stages,
    /// inserts copies and restores, schedules them just in time, and costs it.
    pub fn place(
        &self,
        units: &Units,
        assignment: &[u32],
        insert_stash: bool,
    ) -> Result<Placed, PipelineError> {
        let stage_of: std::collections::HashMap<&str, u32> = units
            .units()
            .iter()
            .zip(assignment)
            .map(|(u, &s)| (u.name.as_str(), s))
            .collect();
        let own = units.same_on(self.graph);
        let own_assignment =
            own.units()
                .iter()
                .map(|u| {
                    stage_of.get(u.name.as_str()).copied().ok_or_else(|| {
                        PipelineError::UnplacedUnit {
                            name: u.name.clone(),
                        }
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?;
        let mut g = annotate::annotate(self.graph, &own, &own_assignment);
        let recompute_stats = match &self.cfg.recompute {
            Some(rc) => {
                let (r, stats) = recompute(&g, rc)?;
                g = r;
                Some(stats)
            }
            None => None,
        };
        annotate::check_recompute_local(&g)?;
        let (copies, copy_bytes) = annotate::insert_copies(&mut g)?;
        let stashes = if insert_stash {
            insert_stashes(&mut g)?
        } else {
            0
        };
        let off = crate::schedule::off_chain_backward(&g);
        let g = crate::schedule::rebuild_lazy(&g, &|n| {
            annotate::is_helper(g.node(n)) || off.get(n.index()).copied().unwrap_or(false)
        })?;
        #[cfg(debug_assertions)]
        tessera_ir::verify(&g)?;
        let cost = graph_cost(&g, self.target, &self.cfg.cost)?;
        let throughput = predict_throughput(&cost, self.target, &self.cfg.cost.pipeline)?;
        Ok(Placed {
            graph: g,
            cost,
            throughput,
            copies,
            copy_bytes,
            stashes,
            recompute: recompute_stats,
            assignment: assignment.to_vec(),
        })
    }
}

/// Partitions `graph` into `cfg.stages()` pipeline stages (see the module documentation).
pub fn pipeline(
    graph: &Graph,
    cfg: &PipelineConfig,
    target: &Target,
) -> Result<(Graph, PipelineReport), PipelineError> {
    let p = cfg.stages();
    if p == 0 {
        return Err(PipelineError::NoStages);
    }
    let planner = Planner::new(graph, cfg, target)?;
    let (units, placed, search) = match &cfg.placement {
        Placement::Auto => {
            let units = planner.units(&cfg.rule, planner.fine);
            let (placed, stats) = search::auto(&planner, &units)?;
            (units, placed, Some(stats))
        }
        Placement::Manual { layers_per_ipu } => {
            let units = planner.units(&cfg.rule, Granularity::Layer);
            let assignment = assign::manual(graph, &units, layers_per_ipu, p)?;
            fixed(&planner, units, &assignment)?
        }
        Placement::OptimumGraphcore => {
            let units = planner.units(&LayerRule::lxmert(), Granularity::Layer);
            let assignment = assign::optimum_graphcore(&units, p)?;
            fixed(&planner, units, &assignment)?
        }
        Placement::Units(map) => {
            let units = planner.units(&cfg.rule, planner.fine);
            let assignment = assign::by_name(&units, map, p)?;
            fixed(&planner, units, &assignment)?
        }
    };
    let hand = if cfg.compare_hand && cfg.placement != Placement::OptimumGraphcore {
        report::hand_comparison(&planner, &placed.throughput)
    } else {
        None
    };
    let report = report::build(&placed, &units, cfg, hand, search);
    Ok((placed.graph, report))
}

/// Places by a fixed assignment, which must follow the data flow and fit.
fn fixed(
    planner: &Planner<'_>,
    units: Units,
    assignment: &[u32],
) -> Result<(Units, Placed, Option<SearchStats>), PipelineError> {
    assign::check_monotone(&planner.est, &units, assignment)?;
    let placed = planner.place(&units, assignment, planner.cfg.insert_stash)?;
    check_fits(&placed.cost, planner.cfg.placement.name())?;
    Ok((units, placed, None))
}

/// The error for the fullest chip over capacity, if any.
pub(crate) fn check_fits(cost: &GraphCost, placement: &str) -> Result<(), PipelineError> {
    match worst_stage(cost) {
        Some((stage, m)) if !m.fits => Err(PipelineError::DoesNotFit {
            placement: placement.to_string(),
            stage,
            needed: m.total,
            capacity: m.capacity,
            over: m.total.saturating_sub(m.capacity),
            detail: report::memory_detail(&m),
        }),
        _ => Ok(()),
    }
}

/// The stage whose memory is the largest share of its capacity.
pub(crate) fn worst_stage(cost: &GraphCost) -> Option<(u32, tessera_cost::MemoryBreakdown)> {
    cost.stages
        .iter()
        .max_by(|a, b| {
            let ra = a.memory.total as f64 / a.memory.capacity.max(1) as f64;
            let rb = b.memory.total as f64 / b.memory.capacity.max(1) as f64;
            ra.total_cmp(&rb)
        })
        .map(|s| (s.stage, s.memory))
}
