//! `tessera profile` of a pipelined training plan: one training step of `G` micro-batches
//! (the plan's gradient accumulation, or `--micro-batches`) run through PopART's schedule on
//! the emulated chips by a [`PipelineSession`] with tracing on (per-tile times unless
//! `--no-tile-times`), profiled with the plan's replicas ([`Profile::pipelined`]).
//! Generated inputs draw a new synthetic batch per
//! micro-batch (the first is the one written to `inputs.safetensors`); given `--inputs`,
//! every micro-batch is that batch. One replica's schedule runs: the replicas are identical.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tessera::data::DataSource;
use tessera::{feeds, model};
use tessera_ir::Tensor;
use tessera_passes::lower::program::pipeline::PipelineSession;
use tessera_plan::Plan;
use tessera_profile::{Parallelism, Profile};
use tessera_runtime::TraceMode;

/// Where the micro-batches after the first come from.
pub(super) struct MoreBatches {
    /// The synthetic data the first batch was drawn from (`None`: `--inputs` was given, and
    /// every micro-batch is the first).
    pub data: Option<DataSource>,
    /// The model the data is for.
    pub model: String,
    /// Samples per micro-batch.
    pub batch_size: usize,
    /// `--micro-batches`.
    pub micro_batches: Option<u64>,
}

/// Profiles the training step of `plan` (which has a pipeline), traced with `mode`: `weights`
/// cast to the plan's types, `first` the first micro-batch's inputs. The static profile is
/// taken first; then the plan's tile program moves into the emulator (it is gone from
/// `plan` afterwards), so that a large plan's copy lists are never held twice.
pub(super) fn profile(
    more: MoreBatches,
    plan: &mut Plan,
    weights: &HashMap<String, Tensor>,
    first: &HashMap<String, Tensor>,
    mode: TraceMode,
) -> Result<Profile> {
    let settings = &plan.report.settings;
    let g = more
        .micro_batches
        .unwrap_or_else(|| u64::from(settings.gradient_accumulation.max(1)));
    let r = u64::from(settings.replicas.max(1));
    // A loss-scaled plan takes its (static or initial) scale with every micro-batch.
    let micro = micro_batches(more, first, g)?
        .iter()
        .map(|m| super::super::run::scaled_feeds(&plan.graph, m, &settings.precision).1)
        .collect::<Vec<_>>();
    let mut meta = super::profile_meta(plan, first, true);
    meta.settings
        .insert("gradient_accumulation".into(), g.to_string());
    meta.settings.insert("replicas".into(), r.to_string());
    let par = Parallelism {
        micro_batches: g,
        replicas: r,
    };
    let tiles = plan.tiles.take().context("the plan has no tile program")?;
    let pending = Profile::pipelined_pending(&tiles, &plan.target, par, meta)?;
    let mut session = PipelineSession::from_plan(tiles)?;
    session
        .load(weights)
        .context("loading the weights onto the tiles")?;
    let step = session
        .step(&micro, mode)
        .context("running the pipelined training step")?;
    Ok(pending.finish(Some(&step.runs))?)
}

/// The `g` micro-batches' feeds: `first`, then new synthetic batches or copies of `first`.
fn micro_batches(
    more: MoreBatches,
    first: &HashMap<String, Tensor>,
    g: u64,
) -> Result<Vec<HashMap<String, Tensor>>> {
    let g = usize::try_from(g).context("--micro-batches is too large")?;
    let Some(mut data) = more.data else {
        return Ok(vec![first.clone(); g]);
    };
    let spec = model::resolve(&more.model)?;
    let config = spec.lxmert_config().with_context(|| {
        format!(
            "{}: generated inputs exist for LXMERT models only",
            more.model
        )
    })?;
    let mut out = Vec::with_capacity(g);
    out.push(first.clone());
    for _ in 1..g {
        let batch = data.next_batch(more.batch_size)?;
        let f = feeds::lxmert_feeds(batch, config, Path::new("<synthetic>"), true)?;
        let mut inputs = f.inputs;
        if let Some(labels) = f.labels {
            inputs.insert("labels".into(), labels);
        }
        out.push(inputs);
    }
    Ok(out)
}
