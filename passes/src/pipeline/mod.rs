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
mod error;
mod planner;
mod report;
mod search;
mod segments;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lxmert;
mod traffic;

pub use annotate::insert_stashes;
pub use error::PipelineError;
pub(crate) use planner::{Placed, Planner};
pub use report::{describe_units, Comparison, PipelineReport, SearchStats, StageReport};

use crate::layers::{Granularity, LayerRule, Units};
use crate::recompute::RecomputeConfig;
use serde::{Deserialize, Serialize};
use tessera_cost::{CostOptions, GraphCost};
use tessera_ir::Graph;
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
