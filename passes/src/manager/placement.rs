//! The `recompute` and `pipeline` passes as manager [`Pass`]es: thin wrappers of
//! [`recompute()`] and [`pipeline()`] whose counters are the passes' statistics.
//!
//! In a pipeline string, `recompute` before `pipeline` recomputes the unplaced graph, which
//! the pipeline pass then places by whole layers; to recompute on the placed graph (so that
//! stages may end inside layers), leave `recompute` out and set
//! [`PipelineConfig::recompute`] instead, as `tessera compile` does.

use super::pass::{count, Pass, PassError, PassOutput};
use crate::pipeline::{pipeline, PipelineConfig};
use crate::recompute::{recompute, RecomputeConfig};
use tessera_ir::Graph;
use tessera_target::Target;

/// Saturating conversion of a byte or FLOP figure to a counter value.
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `recompute`: recomputation under a checkpoint policy ([`recompute()`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecomputePass {
    /// The pass's configuration.
    pub config: RecomputeConfig,
}

impl Pass for RecomputePass {
    fn name(&self) -> &str {
        "recompute"
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let (out, s) = recompute(graph, &self.config)?;
        Ok(PassOutput::new(out)
            .with_counter("recomputed_nodes", count(s.recomputed_nodes))
            .with_counter("extra_flops", big(s.extra_flops))
            .with_counter("stash_bytes_before", big(s.stash_bytes_before))
            .with_counter("stash_bytes", big(s.stash_bytes)))
    }
}

/// `pipeline`: stage placement, inter-chip copies and stash restores ([`pipeline()`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelinePass {
    /// The pass's configuration.
    pub config: PipelineConfig,
    /// The chip to place and cost for.
    pub target: Target,
}

impl Pass for PipelinePass {
    fn name(&self) -> &str {
        "pipeline"
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let (out, r) = pipeline(graph, &self.config, &self.target)?;
        // Counters are integers: the throughput in samples per second, rounded.
        let samples = r.samples_per_s.round();
        let samples = if samples.is_finite() && samples < i64::MAX as f64 {
            samples as i64
        } else {
            i64::MAX
        };
        Ok(PassOutput::new(out)
            .with_counter("stages", count(r.stages.len()))
            .with_counter("copies", count(r.copies))
            .with_counter("copy_bytes", big(r.copy_bytes))
            .with_counter("stash_restores", count(r.stashes))
            .with_counter("bottleneck_stage", i64::from(r.bottleneck_stage))
            .with_counter("predicted_samples_per_s", samples))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{build_pipeline, NoInstrumentation, PassOptions};
    use crate::layers::LayerRule;
    use crate::pipeline::Placement;
    use tessera_cost::CostOptions;
    use tessera_lxmert::{BuildOptions, LxmertConfig, Shapes};

    #[test]
    fn recompute_and_pipeline_run_in_a_pass_pipeline() {
        let config = LxmertConfig::preset("lxmert-tiny").unwrap();
        let shapes = Shapes {
            batch: 2,
            seq_len: 7,
            num_objects: 5,
        };
        let forward = tessera_lxmert::build(&config, &shapes, &BuildOptions::default()).unwrap();
        let mut opts = PassOptions::default();
        opts.recompute.rule = LayerRule::lxmert();
        opts.pipeline = crate::PipelineConfig {
            rule: LayerRule::lxmert(),
            ..crate::PipelineConfig::new(
                Placement::Auto,
                CostOptions::new(tessera_cost::PipelineConfig {
                    stages: 3,
                    ..tessera_cost::PipelineConfig::default()
                }),
            )
        };
        let pm = build_pipeline(&["loss", "autodiff", "recompute", "pipeline"], &opts).unwrap();
        let run = pm.run(forward, &mut NoInstrumentation).unwrap();
        let rec = &run.records[2];
        assert_eq!(rec.name, "recompute");
        assert!(rec.counters["recomputed_nodes"] > 0);
        assert!(rec.counters["stash_bytes"] < rec.counters["stash_bytes_before"]);
        let pipe = &run.records[3];
        assert_eq!(pipe.counters["stages"], 3);
        assert!(pipe.counters["copies"] > 0 && pipe.counters["predicted_samples_per_s"] > 0);
        assert!(run.graph.node_ids().all(|id| run
            .graph
            .node(id)
            .annot
            .stage
            .is_some_and(|s| s < 3)));
    }
}
