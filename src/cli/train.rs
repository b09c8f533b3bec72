//! `tessera train MODEL [--weights W] --steps N --batch-size B --grad-accum K --lr LR
//! --warmup-ratio R --weight-decay WD [--data FILE] [--save DIR] [--log FILE]
//! [--precision fp16 [--half-partials] [--loss-scaling N|dynamic] [--stochastic-rounding]
//! [--master-weights f16] [--ipu-config F]]`.
//!
//! The log has one JSON line per step with `loss_scale` and `skipped` (a step whose
//! gradients overflowed is skipped and its weights left untouched).
//!
//! With `--engine tiles --device-iterations N` (N > 1) the steps run in device loops of N
//! ([`Trainer::steps_on_device`]; the last loop is shorter when `--steps` is not a multiple
//! of N), logged step by step from the loop's anchors exactly as host-driven steps are. The
//! reference engine ignores device iterations.

use super::compile::OptimizerOn;
use super::compile_flags::{CompileFlags, Subject};
use super::precision::{describe, PrecisionArgs};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use tessera::compile::{matmul_proportion, CompileOptions, TileOptions};
use tessera::data::{DataSource, SyntheticShape};
use tessera::train::tiles::TileSetup;
use tessera::train::{StepLog, TrainConfig, Trainer};
use tessera::{feeds, model};
use tessera_cost::CostOptions;
use tessera_lxmert::BuildOptions;
use tessera_passes::recompute::RecomputeConfig;
use tessera_passes::PipelineConfig;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A preset, a config.json, or a Hugging Face model directory.
    model: String,
    /// Initial weights (default: the model directory's, else seeded random initialisation).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Optimizer steps. With --engine tiles they run in device loops of --device-iterations
    /// steps each (the last loop shorter when --steps is not a multiple of it); the reference
    /// engine runs one step per host call whatever --device-iterations says.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Samples per micro-batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Fraction of steps with linear warmup.
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    /// Decoupled weight decay (not on biases and LayerNorm weights).
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm.
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// Training samples (safetensors with the `run --train` input tensors); default: synthetic VQA.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of the synthetic data and of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Question length of synthetic samples.
    #[arg(long, default_value_t = 12)]
    seq_len: usize,
    /// Objects per synthetic sample.
    #[arg(long, default_value_t = 10)]
    num_objects: usize,
    /// Write a Hugging Face model directory (config.json + model.safetensors) at the end.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Write one JSON line per step (step, loss, lr, loss_scale, samples_per_second).
    #[arg(long)]
    log: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    precision: PrecisionArgs,
    /// Where the training step runs: the reference evaluator, or the emulated IPU tiles as a
    /// pipeline over the replica's IPUs with the optimizer on the tiles (fp32, or fp16 without
    /// stochastic rounding). Only the tiles run device loops (--device-iterations N: N steps
    /// per host call; the reference engine ignores it).
    #[arg(long, value_enum, default_value_t = TrainEngine::Reference)]
    engine: TrainEngine,
    /// Where `--engine tiles` runs the optimizer step: `tiles` (a segment after the flush,
    /// Adam moments streamed from off-chip memory) or `host` (the reference evaluator's AdamW
    /// on the gradients the tiles sum; the weights are streamed onto the tiles every step,
    /// and device loops are not available).
    #[arg(long, value_enum, default_value_t = OptimizerOn::Tiles)]
    optimizer: OptimizerOn,
    /// Parallelism, placement, recomputation and target, as `tessera compile` takes them
    /// (flags over the IPU configuration). A step is `--replicas × --grad-accum`
    /// micro-batches on either engine.
    #[command(flatten)]
    compile: CompileFlags,
}

/// Where `train` runs the gradient graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainEngine {
    /// The reference evaluator.
    Reference,
    /// The emulated tiles.
    Tiles,
}

/// The placement and lowering of the training step on tiles, from the compile options.
fn tile_setup(
    copts: &CompileOptions,
    topts: &TileOptions,
    host_optimizer: bool,
) -> Result<TileSetup> {
    let cost = CostOptions::from_ipu_config(&copts.ipu_config, copts.micro_batch)
        .context("IPU configuration for the cost model")?;
    let grad_accum = cost.pipeline.grad_accum;
    let (matmul_proportion, note) = matmul_proportion(&copts.ipu_config, topts.matmul_proportion)?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    Ok(TileSetup {
        target: copts.target.clone(),
        pipeline: PipelineConfig {
            rule: copts.rule.clone(),
            split_layers: copts.split_layers,
            recompute: Some(RecomputeConfig {
                mode: copts.recompute.clone(),
                rule: copts.rule.clone(),
                grad_accum,
            }),
            ..PipelineConfig::new(copts.placement.clone(), cost)
        },
        matmul_proportion,
        fuse_matmuls: !topts.no_fuse_matmuls,
        host_optimizer,
    })
}

/// Shows a finished step on the progress bar, in the JSON log and (under `--quiet`) as a
/// `step N  loss L ...` line.
fn report_step(
    s: &StepLog,
    bar: &ProgressBar,
    log: Option<&mut std::io::BufWriter<std::fs::File>>,
    quiet: bool,
) -> Result<()> {
    let skipped = if s.skipped {
        "  skipped (inf/NaN gradients)"
    } else {
        ""
    };
    bar.set_message(format!(
        "loss {:.4}  lr {:.2e}  scale {}  {:.1} samples/s{skipped}",
        s.loss, s.lr, s.loss_scale, s.samples_per_second
    ));
    bar.inc(1);
    if let Some(w) = log {
        writeln!(w, "{}", serde_json::to_string(s)?)?;
    }
    if quiet {
        eprintln!(
            "step {:>5}  loss {:.6}  lr {:.3e}  loss_scale {}{skipped}",
            s.step, s.loss, s.lr, s.loss_scale
        );
    }
    Ok(())
}

pub fn train(a: TrainArgs) -> Result<()> {
    let spec = model::resolve(&a.model)?;
    let config = spec
        .lxmert_config()
        .context("`train` needs an LXMERT model (preset, config.json or model directory)")?
        .clone();
    let precision = a.precision.resolve(true)?;
    let subject = Subject {
        model: &a.model,
        spec: &spec,
        train: true,
        seq_len: a.seq_len,
        num_objects: a.num_objects,
        micro_batch: a.batch_size,
        precision: precision.as_ref(),
    };
    let (copts, topts) = a
        .compile
        .options(&subject, a.precision.ipu_config.as_deref())?;
    let ipu = copts.ipu_config.clone();
    let (grad_accum, replicas) = (ipu.gradient_accumulation_steps, ipu.replication_factor);
    if ipu.device_iterations == 0 {
        anyhow::bail!("--device-iterations must be at least 1, got 0");
    }
    // Steps per host call: device loops on the tiles only.
    let loop_len = match a.engine {
        TrainEngine::Tiles => ipu.device_iterations,
        TrainEngine::Reference => 1,
    };
    let cfg = TrainConfig {
        steps: a.steps,
        grad_accum: grad_accum * replicas,
        lr: a.lr,
        warmup_ratio: a.warmup_ratio,
        weight_decay: a.weight_decay,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        max_grad_norm: a.max_grad_norm,
        precision,
    };
    cfg.validate()?;
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be at least 1");
    }
    let data_name = a.data.as_ref().map(|p| p.display().to_string());
    let mut source = match &a.data {
        Some(p) => DataSource::from_tensors(
            tessera_ir::io::load_safetensors(p)?,
            &p.display().to_string(),
        )?,
        None => DataSource::synthetic(
            &config,
            SyntheticShape {
                seq_len: a.seq_len,
                num_objects: a.num_objects,
            },
            a.seed,
        ),
    };
    let data_path = a
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("<synthetic>"));
    let mut next = move || -> Result<feeds::LxmertFeeds> {
        let batch = source.next_batch(a.batch_size)?;
        feeds::lxmert_feeds(batch, &config, &data_path, true)
    };
    let first = next()?;
    let labels = first.labels.clone().context("no labels")?;
    let opts = BuildOptions {
        visual_attention_mask: first.visual_attention_mask,
        ..Default::default()
    };
    let forward = spec.graph(&first.shapes, &opts)?;
    let params = spec.weights(a.weights.as_deref(), a.seed)?;
    let trainer_precision = cfg.precision.clone();
    let mut trainer = Trainer::new(&forward, &labels.ty(), params, cfg)?;
    if a.engine == TrainEngine::Tiles {
        let host_optimizer = a.optimizer == OptimizerOn::Host;
        if host_optimizer && loop_len > 1 {
            anyhow::bail!(
                "--device-iterations {loop_len} runs device loops, which need the optimizer on \
                 the tiles: drop --optimizer host, or pass --device-iterations 1"
            );
        }
        let setup = tile_setup(&copts, &topts, host_optimizer)?;
        let steps = trainer.use_tiles(&setup)?;
        let predicted = trainer
            .tile_step()
            .map_or(f64::NAN, |t| t.predicted_samples_per_s());
        let p = &setup.pipeline.cost.pipeline;
        if let Some(w) = tessera::compile::short_pipeline_warning(true, p.stages, p.grad_accum) {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "training step on {} emulated {} chip(s) per replica × {} replica(s), {} \
             micro-batches per replica and step, recompute {}, optimizer on the {}: {steps} supersteps in the step program; {}",
            p.stages,
            setup.target.name,
            p.replicas,
            p.grad_accum,
            copts.recompute.name(),
            if host_optimizer { "host" } else { "tiles" },
            if loop_len > 1 {
                format!("device loops of {loop_len} steps (moments in streaming memory, step count and loss scale on the device)")
            } else {
                "one step per host call".to_string()
            },
        );
        eprintln!(
            "cost model: {predicted:.1} samples/s predicted on {} hardware ({} replica(s) × {} chip(s)); \
             the log's samples_per_second is the emulator's",
            setup.target.name, p.replicas, p.stages
        );
    }
    let mut log = match &a.log {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(a.steps as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    eprintln!(
        "training {} on {} ({} samples/micro-batch × {} micro-batches/step; {})",
        a.model,
        data_name.as_deref().unwrap_or("synthetic VQA data"),
        a.batch_size,
        grad_accum * replicas,
        describe(trainer_precision.as_ref()),
    );
    let mut pending = Some(first);
    let mut skipped_steps = 0usize;
    let mut batch = || {
        let f = match pending.take() {
            Some(f) => f,
            None => next()?,
        };
        let mut inputs = f.inputs;
        inputs.insert("labels".into(), f.labels.context("batch without labels")?);
        Ok(inputs)
    };
    let mut done = 0;
    while done < a.steps {
        let logs = if loop_len > 1 {
            trainer.steps_on_device(loop_len.min(a.steps - done), &mut batch)?
        } else {
            vec![trainer.step(&mut batch)?]
        };
        done += logs.len().max(1);
        for s in logs {
            skipped_steps += usize::from(s.skipped);
            report_step(&s, &bar, log.as_mut(), a.quiet)?;
        }
    }
    bar.finish();
    if skipped_steps > 0 {
        eprintln!(
            "{skipped_steps} of {} steps skipped (inf/NaN gradients: weights and optimizer state \
             kept); loss scale now {}",
            a.steps,
            trainer.loss_scale()
        );
    }
    if let Some(mut w) = log {
        w.flush()?;
    }
    if let Some(dir) = &a.save {
        let cfg = spec.lxmert_config().context("no config")?;
        // Checkpoints are f32, whatever precision the weights were trained in.
        let weights = trainer
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.cast(tessera_ir::DType::F32)))
            .collect();
        tessera_lxmert::save_hf_dir(dir, cfg, &weights)?;
        eprintln!("saved {}", dir.display());
    }
    Ok(())
}
