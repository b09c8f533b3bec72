//! Placing the input graph by a stage per unit: the [`Planner`] that holds the input, the
//! graph placement estimates costs on, and the settings.

use super::{annotate, insert_stashes, PipelineConfig, PipelineError};
use crate::layers::{Granularity, LayerRule, Units};
use crate::recompute::{recompute, RecomputeConfig, RecomputeMode, RecomputeStats};
use tessera_cost::{graph_cost, predict_throughput, GraphCost, Throughput};
use tessera_ir::Graph;
use tessera_target::Target;

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
pub(crate) fn estimate_mode(mode: &RecomputeMode) -> RecomputeMode {
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
    pub(crate) fn new(
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
