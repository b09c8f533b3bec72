//! The training step's gradient graph on the emulated tiles (`tessera train --engine tiles`).
//!
//! The gradient graph (forward, loss, backward) is lowered once to a tile plan — on one chip,
//! or placed over `--ipus N` chips by the pipeline pass's automatic placement — and each
//! micro-batch runs on the emulated machine. The weights are streamed onto the tiles again after
//! every optimizer update (the optimizer itself runs on the host, as the reference engine's).
//! Not yet the pipelined, replicated schedule of the seed run: the chips run their stages one
//! after another for each micro-batch.

use anyhow::{Context, Result};
use std::collections::HashMap;
use tessera_ir::{Graph, Tensor};
use tessera_passes::lower::program::{lower_program, LowerOptions, TilePlan, TileSession};
use tessera_passes::{pipeline, LayerRule, PipelineConfig, Placement};
use tessera_runtime::TraceMode;
use tessera_target::{IpuConfig, Target};

/// A gradient graph lowered to tiles, with its machine.
pub struct TileStep {
    session: TileSession,
    plan: TilePlan,
    /// The optimizer step whose weights are on the tiles.
    loaded_at: Option<usize>,
}

impl std::fmt::Debug for TileStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileStep")
            .field("supersteps", &self.plan.step.supersteps.len())
            .field("chips", &self.plan.step.chips)
            .finish()
    }
}

impl TileStep {
    /// Lowers `grad_graph` for `target` on `chips` chips (placed by the pipeline pass when
    /// more than one).
    pub fn new(grad_graph: &Graph, target: &Target, chips: u32) -> Result<Self> {
        let graph = if chips > 1 {
            let ipu = IpuConfig {
                ipus_per_replica: chips as usize,
                ..IpuConfig::default()
            };
            let cost = tessera_cost::CostOptions::from_ipu_config(&ipu, 1)
                .context("IPU configuration for the placement")?;
            let cfg = PipelineConfig {
                rule: LayerRule::lxmert(),
                ..PipelineConfig::new(Placement::Auto, cost)
            };
            pipeline(grad_graph, &cfg, target)
                .context("placing the training step on the chips")?
                .0
        } else {
            grad_graph.clone()
        };
        let plan = lower_program(
            &graph,
            target,
            &LowerOptions {
                chips,
                ..LowerOptions::default()
            },
        )
        .context("lowering the training step to tiles")?;
        let session = TileSession::new(&plan)?;
        Ok(TileStep {
            session,
            plan,
            loaded_at: None,
        })
    }

    /// Supersteps of one micro-batch.
    pub fn supersteps(&self) -> usize {
        self.plan.step.supersteps.len()
    }

    /// Loss and gradient outputs of one micro-batch with the weights of optimizer step
    /// `step` (streamed onto the tiles when they changed).
    pub fn run(
        &mut self,
        step: usize,
        params: &HashMap<String, Tensor>,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<HashMap<String, Tensor>> {
        if self.loaded_at != Some(step) {
            self.session
                .load(params)
                .context("streaming the weights onto the tiles")?;
            self.loaded_at = Some(step);
        }
        Ok(self.session.run(inputs, TraceMode::Off)?.0)
    }
}
