//! The compile driver: model → graph → passes → [`Plan`], with a report.
//!
//! [`compile`] chains the steps of `tessera compile`, timing each:
//! 1. **build** the forward graph (the caller's closure: the model builder);
//! 2. the [`Transform`]s registered at [`TransformPoint::Forward`] (where the
//!    mixed-precision pass belongs: before the loss, so the backward follows its types);
//! 3. with `train`: the VQA **loss** (soft labels, as optimum-graphcore trains LXMERT) and
//!    **autodiff**, then the transforms at [`TransformPoint::Training`];
//! 4. **pipeline**: placement on the replica's IPUs, recomputation on the placed graph,
//!    inter-chip copies and stash restores, costed by `tessera-cost`
//!    ([`tessera_passes::pipeline`]); a forward graph that the chip-level memory estimate
//!    says does not fit is placed without that bound (with a warning), since the tile
//!    lowering checks memory exactly;
//! 5. the [`tessera_plan::CompileReport`] (stage table, predicted samples/s, timings) and the [`Plan`];
//! 6. [`lower_tiles`] (called after [`compile`]) adds the tile program; for training plans
//!    [`lower_tiles_with`] can add the optimizer step to it.
//!
//! The transform list is how passes that are not part of this driver plug in: each is a
//! named function from graph to graph, verified after it runs.

mod report;
mod tiles;

pub use report::{report_text, stage_rows};
pub use tiles::{lower_tiles, lower_tiles_with, matmul_proportion, TileOptions};

use anyhow::{Context, Result};
use std::time::Instant;
use tessera_cost::CostOptions;
use tessera_ir::{DType, Graph, TensorType};
use tessera_passes::autodiff::{autodiff, AutodiffOptions};
use tessera_passes::loss::{attach_vqa_loss, LOGITS};
use tessera_passes::mixed_precision::{
    autodiff_scaled, mixed_precision, PrecisionConfig, NAME as MIXED_PRECISION,
};
use tessera_passes::recompute::{RecomputeConfig, RecomputeMode};
use tessera_passes::{LayerRule, PipelineConfig, PipelineError, Placement};
use tessera_plan::{PassTiming, Plan, RunSettings};
use tessera_target::{IpuConfig, Target};

/// Where in the chain a [`Transform`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformPoint {
    /// On the forward graph, before the loss and autodiff.
    Forward,
    /// On the training graph, after autodiff (with `train` only).
    Training,
}

/// The signature of a graph transform.
pub type TransformFn = dyn Fn(&Graph) -> Result<Graph> + Send + Sync;

/// A named graph-to-graph step plugged into the driver.
pub struct Transform {
    /// Its name in timings and errors.
    pub name: String,
    /// Where it runs.
    pub at: TransformPoint,
    /// The transform.
    pub run: Box<TransformFn>,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transform")
            .field("name", &self.name)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// Everything `tessera compile` decides before running the passes.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Run settings for the report (model, precision, shapes, ...); the parallelism
    /// fields are filled from `ipu_config` and `micro_batch`.
    pub settings: RunSettings,
    /// Compile the whole training step (else the forward graph).
    pub train: bool,
    /// The IPU configuration (with the command line's overrides applied).
    pub ipu_config: IpuConfig,
    /// Warnings to carry into the report (ignored configuration keys).
    pub warnings: Vec<String>,
    /// The chip.
    pub target: Target,
    /// Placement mode.
    pub placement: Placement,
    /// Recomputation mode (training only).
    pub recompute: RecomputeMode,
    /// What a layer is.
    pub rule: LayerRule,
    /// Automatic placement may cut inside layers.
    pub split_layers: bool,
    /// Samples per micro-batch.
    pub micro_batch: u32,
    /// Differentiate the loss scaled by a `loss_scale` input (loss scaling with fp16).
    pub scaled_loss: bool,
}

/// The transforms a precision configuration asks for: none for fp32 (`None`), else the
/// mixed-precision pass on the forward graph.
pub fn precision_transforms(cfg: Option<&PrecisionConfig>) -> Vec<Transform> {
    let Some(cfg) = cfg.cloned() else {
        return Vec::new();
    };
    vec![Transform {
        name: MIXED_PRECISION.to_string(),
        at: TransformPoint::Forward,
        run: Box::new(move |g: &Graph| Ok(mixed_precision(g, &cfg)?.0)),
    }]
}

/// `target` with room for any placement: the chip-level memory bound of the pipeline pass
/// lifted (tile memory ×1024), everything else as it is.
fn unbounded(target: &Target) -> Target {
    Target {
        bytes_per_tile: target.bytes_per_tile.saturating_mul(1024),
        ..target.clone()
    }
}

/// The warning for a training pipeline whose gradient accumulation `grad_accum` is below
/// its `2P − 1` forward and backward pipeline stages on `stages` chips (PopART's minimum):
/// the schedule still computes the right gradients, but never reaches its steady state.
pub fn short_pipeline_warning(train: bool, stages: u32, grad_accum: u32) -> Option<String> {
    let needed = 2 * stages.max(1) - 1;
    (train && stages > 1 && grad_accum < needed).then(|| {
        format!(
            "gradient accumulation {grad_accum} is below the {needed} pipeline stages of training on \
             {stages} IPUs (2P − 1, PopART's minimum): the pipeline never fills, so every pipeline \
             cycle leaves chips idle; use --grad-accum {needed} or more"
        )
    })
}

/// Runs `transform` and verifies its result.
fn run_transform(t: &Transform, graph: &Graph) -> Result<Graph> {
    let out = (t.run)(graph).with_context(|| format!("pass `{}`", t.name))?;
    tessera_ir::verify(&out).with_context(|| format!("graph after pass `{}`", t.name))?;
    Ok(out)
}

/// Compiles the graph `build` makes (see the module documentation).
pub fn compile(
    build: impl FnOnce() -> Result<Graph>,
    opts: &CompileOptions,
    transforms: &[Transform],
) -> Result<Plan> {
    let start = Instant::now();
    let mut passes: Vec<PassTiming> = Vec::new();
    let mut timed = |name: &str, since: Instant, graph: &Graph| {
        passes.push(PassTiming {
            name: name.to_string(),
            seconds: since.elapsed().as_secs_f64(),
            nodes: graph.len(),
        });
    };
    let t = Instant::now();
    let mut graph = build()?;
    timed("build", t, &graph);
    for tr in transforms
        .iter()
        .filter(|t| t.at == TransformPoint::Forward)
    {
        let t = Instant::now();
        graph = run_transform(tr, &graph)?;
        timed(&tr.name, t, &graph);
    }
    if opts.train {
        let t = Instant::now();
        let logits = graph.output(LOGITS).with_context(|| {
            format!("--train needs the answer logits output `{LOGITS}` to attach the VQA loss")
        })?;
        let batch = graph.node(logits).ty.shape.first().copied().unwrap_or(1);
        let classes = graph.node(logits).ty.shape.last().copied().unwrap_or(1);
        let labels = TensorType::new(DType::F32, vec![batch, classes]);
        let with_loss = attach_vqa_loss(&graph, &labels)?;
        graph = if opts.scaled_loss {
            autodiff_scaled(&with_loss, &AutodiffOptions::default())?
        } else {
            autodiff(&with_loss, &AutodiffOptions::default())?
        };
        timed("loss+autodiff", t, &graph);
        for tr in transforms
            .iter()
            .filter(|t| t.at == TransformPoint::Training)
        {
            let t = Instant::now();
            graph = run_transform(tr, &graph)?;
            timed(&tr.name, t, &graph);
        }
    }
    let t = Instant::now();
    let cost = CostOptions::from_ipu_config(&opts.ipu_config, opts.micro_batch)
        .context("IPU configuration for the cost model")?;
    let grad_accum = cost.pipeline.grad_accum;
    let cfg = PipelineConfig {
        rule: opts.rule.clone(),
        split_layers: opts.split_layers,
        recompute: opts.train.then(|| RecomputeConfig {
            mode: opts.recompute.clone(),
            rule: opts.rule.clone(),
            grad_accum,
        }),
        ..PipelineConfig::new(opts.placement.clone(), cost)
    };
    let mut warnings = opts.warnings.clone();
    if let Some(w) = short_pipeline_warning(opts.train, cfg.cost.pipeline.stages, grad_accum) {
        warnings.push(w);
    }
    let (placed, pipeline) = match tessera_passes::pipeline(&graph, &cfg, &opts.target) {
        Ok(r) => r,
        Err(e @ (PipelineError::NothingFits { .. } | PipelineError::DoesNotFit { .. }))
            if !opts.train =>
        {
            // A forward plan is lowered to tiles, whose allocation is exact: place it without
            // the chip-level estimate's bound and let the lowering decide (its out-of-memory
            // report names the tile and the tensors on it).
            warnings.push(format!(
                "{e}; placed without the chip-level memory bound (the tile lowering checks memory exactly)"
            ));
            let (placed, mut pipeline) =
                tessera_passes::pipeline(&graph, &cfg, &unbounded(&opts.target))?;
            let capacity = opts.target.bytes_per_chip();
            for s in &mut pipeline.stages {
                s.memory.capacity = capacity;
                s.memory.fits = s.memory.total <= capacity;
            }
            (placed, pipeline)
        }
        Err(e) => return Err(e.into()),
    };
    timed("recompute+pipeline", t, &placed);
    let mut settings = opts.settings.clone();
    settings.train = opts.train;
    settings.placement = opts.placement.name().to_string();
    settings.recompute = if opts.train {
        opts.recompute.name().to_string()
    } else {
        "none".to_string()
    };
    settings.target = opts.target.name.clone();
    settings.ipus_per_replica = cfg.cost.pipeline.stages;
    settings.replicas = cfg.cost.pipeline.replicas;
    settings.gradient_accumulation = cfg.cost.pipeline.grad_accum;
    settings.device_iterations = cfg.cost.pipeline.device_iterations;
    settings.micro_batch = opts.micro_batch;
    let report = report::compile_report(
        settings,
        &pipeline,
        passes,
        &placed,
        warnings,
        start.elapsed().as_secs_f64(),
    );
    Ok(Plan::new(
        placed,
        opts.target.clone(),
        &opts.ipu_config,
        report,
    )?)
}
