//! `tessera compile MODEL [--train] [--ipu-config F] [--ipus N] [--placement ...]
//! [--recompute ...] [--precision ...] [--matmul-proportion F] [--allow-oom] [--seed S]
//! [--seq-len S --num-objects N --micro-batch B] [--optimizer tiles|host] [--lr LR
//! --weight-decay WD --warmup-ratio R --steps N] -o PLAN [--json]`: compile a model to a plan and print its stage table and its
//! tile program's summary.
//!
//! The flags are [`CompileFlags`] (shared with `run --engine tiles`). `--precision fp16`
//! runs the mixed-precision pass on the forward graph (configured as `tessera train`
//! configures it). Plans are lowered to tiles; a tile out of memory fails the compile and
//! writes nothing, unless `--allow-oom`. A training plan (`--train`) is lowered as a
//! pipeline with the optimizer as its last segment: AdamW as `tessera train` runs it on the
//! tiles (betas 0.9/0.999, eps 1e-8, no clipping, Trainer's weight-decay grouping, the
//! precision's moment types, the non-finite guard and the device counters), with `--lr`,
//! `--weight-decay`, `--warmup-ratio` and `--steps` (the schedule's length) defaulting to
//! `tessera train`'s, and gradients averaged over the plan's replicas × gradient
//! accumulation micro-batches. `--optimizer host` leaves the optimizer out (the plan's
//! gradients are streamed out; the host updates the weights).

use super::compile_flags::{build_plan, CompileFlags, Subject};
use super::precision::PrecisionArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use tessera::compile::{lower_tiles_with, report_text, TileOptions};
use tessera::model;
use tessera::plan_info::{plan_info, tiles_text};
use tessera::train::tiles::{optimizer_shards, tile_optimizer_graph};
use tessera::train::TrainConfig;
use tessera_lxmert::{BuildOptions, Shapes};
use tessera_passes::mixed_precision::PrecisionConfig;
use tessera_plan::Plan;

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A preset (lxmert-base, lxmert-tiny), a config.json, a Hugging Face model directory, or a text-IR file.
    model: String,
    /// Compile the whole training step (loss, backward, recomputation); default: the forward graph.
    #[arg(long)]
    train: bool,
    #[command(flatten)]
    flags: CompileFlags,
    /// Precision, and the optimum-graphcore ipu_config.json (`--ipu-config`) whose
    /// parallelism, recomputation and precision settings the other flags override.
    #[command(flatten)]
    precision: PrecisionArgs,
    /// Question length in tokens.
    #[arg(long, default_value_t = 20)]
    seq_len: usize,
    /// Number of visual objects.
    #[arg(long, default_value_t = 36)]
    num_objects: usize,
    /// Samples per micro-batch.
    #[arg(long, default_value_t = 1)]
    micro_batch: usize,
    /// Seed of the random initialisation `tessera run PLAN` uses when given no weights
    /// (recorded in the plan).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Peak learning rate of a training plan's optimizer step [default: 1e-3, as `train`].
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Decoupled weight decay of a training plan's optimizer (not on biases and LayerNorm
    /// weights) [default: 0.01, as `train`].
    #[arg(long, value_name = "WD")]
    weight_decay: Option<f64>,
    /// Fraction of the schedule's steps with linear warmup [default: 0.1, as `train`; the
    /// first step's learning rate is then 0].
    #[arg(long, value_name = "R")]
    warmup_ratio: Option<f64>,
    /// Optimizer steps of the run a training plan's learning-rate schedule is for (it decays
    /// to 0 at the end) [default: 100, as `train`].
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// Where a training plan's optimizer step runs: `tiles` (a segment after the flush,
    /// its state streamed in and out) or `host` (the plan holds the pipeline only; the
    /// gradients are streamed out and the host updates the weights).
    #[arg(long, value_enum, default_value_t = OptimizerOn::Tiles)]
    optimizer: OptimizerOn,
    /// Where to write the plan (atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where a training plan's optimizer step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerOn {
    /// On the tiles, after the pipeline's flush.
    Tiles,
    /// On the host (not in the plan).
    Host,
}

/// The hyper-parameters of a training plan's optimizer (`None` for a forward plan, whose
/// optimizer flags are warned about, and with `--optimizer host`).
fn optimizer_config(
    a: &CompileArgs,
    plan: &Plan,
    precision: Option<&PrecisionConfig>,
) -> Result<Option<TrainConfig>> {
    if !a.train || a.optimizer == OptimizerOn::Host {
        let given = [
            ("--lr", a.lr.is_some()),
            ("--weight-decay", a.weight_decay.is_some()),
            ("--warmup-ratio", a.warmup_ratio.is_some()),
            ("--steps", a.steps.is_some()),
        ];
        for (flag, _) in given.iter().filter(|(_, g)| *g) {
            eprintln!(
                "warning: {flag} sets the optimizer of a training plan (--train) that runs it \
                 on the tiles; ignored"
            );
        }
        return Ok(None);
    }
    let ipu = plan.ipu_config()?;
    // `tessera train`'s defaults.
    let cfg = TrainConfig {
        steps: a.steps.unwrap_or(100),
        grad_accum: ipu.gradient_accumulation_steps * ipu.replication_factor,
        lr: a.lr.unwrap_or(1e-3),
        warmup_ratio: a.warmup_ratio.unwrap_or(0.1),
        weight_decay: a.weight_decay.unwrap_or(0.01),
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        max_grad_norm: None,
        precision: precision.cloned(),
    };
    cfg.validate()?;
    Ok(Some(cfg))
}

pub fn compile_cmd(a: CompileArgs) -> Result<()> {
    let spec = model::resolve(&a.model)?;
    // Resolving the precision flags reads the IPU config too, and prints its warnings.
    let precision = a.precision.resolve(a.train)?;
    let subject = Subject {
        model: &a.model,
        spec: &spec,
        train: a.train,
        seq_len: a.seq_len,
        num_objects: a.num_objects,
        micro_batch: a.micro_batch,
        precision: precision.as_ref(),
    };
    let (opts, tiles) = a
        .flags
        .options(&subject, a.precision.ipu_config.as_deref())?;
    let lxmert_shapes = Shapes {
        batch: a.micro_batch,
        seq_len: a.seq_len,
        num_objects: a.num_objects,
    };
    // `build_plan` (shared with `run`) stops before the tiles: a training plan is lowered here,
    // with the optimizer.
    let graph_only = TileOptions {
        skip: true,
        ..tiles
    };
    let (mut plan, mut notes) = build_plan(&subject, a.seed, &opts, &graph_only, || {
        spec.graph(&lxmert_shapes, &BuildOptions::default())
    })?;
    let optimizer = optimizer_config(&a, &plan, precision.as_ref())?;
    let shards = optimizer_shards(
        opts.ipu_config.replicated_tensor_sharding,
        opts.ipu_config.replication_factor,
    );
    if !tiles.skip {
        let graph = match &optimizer {
            Some(cfg) => Some(tile_optimizer_graph(&plan.graph, cfg, shards)?),
            None => None,
        };
        notes.extend(lower_tiles_with(&mut plan, &tiles, graph.as_ref())?);
        if precision.as_ref().is_some_and(|c| c.stochastic_rounding) {
            notes.push(
                "the tile program rounds fp16 results to nearest even: stochastic rounding is \
                 in the graph-level plan and the reference engine only (pass \
                 --stochastic-rounding=false for a plan that says what the tiles do)"
                    .to_string(),
            );
        }
        if optimizer.is_some() && shards > 1 {
            notes.push(format!(
                "replicated tensor sharding: each weight's update and optimizer state split \
                 into {shards} row slices, one per replica; the plan runs every replica's \
                 slice in turn (the emulated replicas share one set of chips), so its \
                 optimizer cycles are {shards} replicas' worth"
            ));
        }
        if let Some(cfg) = &optimizer {
            notes.push(format!(
                "optimizer on the tiles after the flush: AdamW, lr {:e}, weight decay {}, \
                 warmup {} of {} steps, gradients averaged over {} micro-batches",
                cfg.lr,
                cfg.weight_decay,
                cfg.warmup_steps(),
                cfg.steps,
                cfg.grad_accum
            ));
        }
    }
    plan.save(&a.output)?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    for w in &plan.report.warnings {
        eprintln!("warning: {w}");
    }
    let text = if a.json {
        serde_json::to_string_pretty(&plan.report)? + "\n"
    } else {
        let tiles = match &plan_info(&plan).tiles {
            Some(t) => tiles_text(t),
            None => "no tile program (--no-tiles)\n".to_string(),
        };
        format!(
            "{}{tiles}plan written to {}\n",
            report_text(&plan.report),
            a.output.display()
        )
    };
    super::emit(&text, None)
}
