//! `tessera run PLAN` of a training plan compiled with the optimizer (`tessera compile
//! --train`): one whole training step on the tiles.
//!
//! The micro-batch of `--inputs` goes through the pipelined step (as for a plan without
//! the optimizer: one micro-batch, not the plan's `G`), then the optimizer segment updates
//! the weights on the tiles. Its Adam moments are zero (a first step) unless the inputs file
//! holds `adam_m.<p>` / `adam_v.<p>` tensors, which are checked against the plan's types;
//! the optimizer step count is 0 and the loss scale the plan's. The optimizer divides the
//! gradient sum by the plan's replicas × gradient accumulation, so the one micro-batch's
//! gradient counts as that many micro-batches' sum would. The outputs are the loss, the
//! gradients (unscaled, f32), the updated weights `param.<p>`, the moments, `lr`,
//! `grad_norm`, `found_inf` and the device counters (`step_next`, ...). With `--repeat N`
//! every run is the next training step on the same micro-batch (the weights stay on the
//! tiles; the moments and the `<x>_next` counters are carried on the host), and the outputs
//! are the last step's.

use super::tiles::{scaled_feeds, unscaled, Prepared};
use super::{finish, repeat, RunArgs};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::time::Instant;
use tessera_ir::Tensor;
use tessera_passes::lower::program::pipeline::PipelineSession;
use tessera_passes::lower::program::TilePlan;
use tessera_passes::optim::counters::{
    CLEAN_STEPS_INPUT, LOSS_SCALE_INPUT, NEXT_SUFFIX, STEP_INPUT,
};
use tessera_runtime::TraceMode;

/// Whether `tiles` runs the optimizer after the flush.
pub(super) fn has_optimizer(tiles: &TilePlan) -> bool {
    tiles
        .pipeline
        .as_ref()
        .is_some_and(|p| p.optimizer.is_some())
}

/// Runs the training step (see the module documentation) and writes the outputs.
pub(super) fn execute(a: &RunArgs, p: &Prepared) -> Result<()> {
    let tiles = p.tiles()?;
    let pipeline = tiles
        .pipeline
        .as_ref()
        .context("the plan has no pipeline schedule")?;
    let settings = &p.plan.report.settings;
    let (scale, feeds) = scaled_feeds(&p.plan.graph, &p.inputs, &settings.precision);
    if let Some(extra) = p
        .state
        .keys()
        .find(|n| !pipeline.optimizer_state.iter().any(|h| &h.name == *n))
    {
        bail!(
            "{}: `{extra}` is not optimizer state of the plan (it keeps adam_m.<p> and \
             adam_v.<p> for its {} trained weights)",
            a.inputs.display(),
            pipeline.optimizer_state.len() / 2
        );
    }
    let mut opt: HashMap<String, Tensor> = pipeline
        .optimizer_state
        .iter()
        .map(|h| {
            let t = p
                .state
                .get(&h.name)
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(&h.ty));
            (h.name.clone(), t)
        })
        .collect();
    opt.insert(STEP_INPUT.into(), Tensor::scalar_f32(0.0));
    opt.insert(
        LOSS_SCALE_INPUT.into(),
        Tensor::scalar_f32(scale.unwrap_or(1.0) as f32),
    );
    opt.insert(CLEAN_STEPS_INPUT.into(), Tensor::scalar_f32(0.0));
    let mut session = PipelineSession::new(tiles)?;
    session
        .load(&p.weights())
        .context("loading the weights onto the tiles")?;
    let runs = repeat(a)?;
    let start = Instant::now();
    let mut outputs = HashMap::new();
    for _ in 0..runs {
        let step = session
            .step_full(&[std::slice::from_ref(&feeds)], Some(&opt), TraceMode::Off)
            .context("running the training step")?;
        // The next run is the next step: the moments and counters carried over.
        for (k, t) in &step.optimizer {
            if let Some(input) = k.strip_suffix(NEXT_SUFFIX) {
                opt.insert(input.to_string(), t.clone());
            } else if opt.contains_key(k) {
                opt.insert(k.clone(), t.clone());
            }
        }
        outputs = step.optimizer;
        outputs.extend(step.grads);
        for m in step.micro_batches {
            outputs.extend(m);
        }
    }
    let elapsed = start.elapsed();
    finish(
        a,
        unscaled(outputs, scale)?,
        "tile emulator (training step with the optimizer)",
        runs,
        elapsed,
    )
}
