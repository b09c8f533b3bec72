//! `tessera profile PLAN|MODEL [--inputs F] [compile flags] [--out DIR]` and
//! `tessera profile --compare A B`.
//!
//! Given a MODEL it compiles it for the tiles with the same flags as `tessera compile`
//! (`--ipus`, `--target`, `--placement`, `--precision`, ...); given a plan file it loads it.
//! Without `--inputs` it generates a batch (the synthetic VQA task's questions, objects and
//! boxes for LXMERT; written next to the report as `inputs.safetensors`). The plan then runs
//! `--runs` times (default 3) on the emulated tiles with tracing on (per-tile times included,
//! unless `--no-tile-times`), the fastest of each phase and tile kept, and `tessera-profile`
//! writes `summary.txt` (also printed), `profile.json`, `trace.json` (Chrome trace events)
//! and the SVG plots (with per-tile times also `heatmap_measured.svg`).
//!
//! A training plan (`--train`, or a plan compiled with it) is pipelined: it runs one
//! training step of `G` micro-batches through PopART's schedule ([`pipelined`]), and the
//! profile adds the pipeline figures and `pipeline.svg`.

mod pipelined;

use super::compile_flags::CompileFlags;
use super::precision::PrecisionArgs;
use super::run::{prepare_loaded_plan, tiles_prepare, RunArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use tessera::data::{DataSource, SyntheticShape};
use tessera::model;
use tessera_ir::Tensor;
use tessera_passes::lower::program::TileSession;
use tessera_profile::{compare, fastest_of, summary_text, write_all, Profile, ProfileMeta};
use tessera_runtime::TraceMode;

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// A plan written by `tessera compile`, or a model (preset, config.json, Hugging Face
    /// directory, text IR) to compile for the tiles.
    model: Option<String>,
    /// Input tensors (safetensors); generated when absent (LXMERT models only).
    #[arg(long)]
    inputs: Option<PathBuf>,
    /// Directory for the report (created; its report files are replaced).
    #[arg(long, default_value = "profile")]
    out: PathBuf,
    /// Print the differences between two profiles (report directories or profile.json files).
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    compare: Vec<PathBuf>,
    /// Parameter values (safetensors with Hugging Face state-dict names).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Profile the training step (loss and gradients; fp32) instead of the forward pass; the
    /// inputs then need `labels` (generated ones have them).
    #[arg(long)]
    train: bool,
    /// Seed of the weights' random initialisation and of generated inputs.
    #[arg(long)]
    seed: Option<u64>,
    /// Samples in a generated batch (default: a plan's micro-batch, else 1).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Question length of generated inputs (default: the plan's, else 20).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Objects per image of generated inputs (default: the plan's, else 36).
    #[arg(long)]
    num_objects: Option<usize>,
    /// Micro-batches of a pipelined training step (default: the plan's gradient
    /// accumulation); generated inputs draw a new batch for each.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    micro_batches: Option<u64>,
    /// Record per-superstep times only, not every tile's (no measured tile balance or
    /// measured heatmap; the run is then timed with fewer clock reads).
    #[arg(long)]
    no_tile_times: bool,
    /// Traced runs of a forward or one-program plan; the profile keeps each phase's and each
    /// tile's fastest time over them (a preempted host thread only adds time). A pipelined
    /// training step runs once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    #[command(flatten)]
    precision: PrecisionArgs,
    #[command(flatten)]
    compile: CompileFlags,
}

/// The synthetic data of generated inputs for `model_arg` (LXMERT models only).
/// The extents of generated inputs: the flags, else a plan's (`shapes` and micro-batch from
/// its report), else 1 sample, seq 20, 36 objects.
#[derive(Debug, Clone, Copy)]
struct Extents {
    batch_size: usize,
    seq_len: usize,
    num_objects: usize,
}

impl Extents {
    fn of(a: &ProfileArgs, plan: Option<&tessera_plan::RunSettings>) -> Extents {
        let shape = |name: &str| {
            plan.and_then(|s| s.shapes.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
        };
        let micro = plan.map(|s| s.micro_batch as usize).filter(|&m| m > 0);
        Extents {
            batch_size: a.batch_size.or(micro).unwrap_or(1),
            seq_len: a.seq_len.or(shape("seq_len")).unwrap_or(20),
            num_objects: a.num_objects.or(shape("num_objects")).unwrap_or(36),
        }
    }
}

fn synthetic(a: &ProfileArgs, x: Extents, model_arg: &str) -> Result<DataSource> {
    let spec = model::resolve(model_arg)?;
    let Some(config) = spec.lxmert_config() else {
        bail!("{model_arg}: generated inputs exist for LXMERT models only; give --inputs");
    };
    let shape = SyntheticShape {
        seq_len: x.seq_len,
        num_objects: x.num_objects,
    };
    Ok(DataSource::synthetic(config, shape, a.seed.unwrap_or(0)))
}

/// Writes a generated LXMERT batch (with labels when `train`) to `out/inputs.safetensors`:
/// the first batch of [`synthetic`]'s data, which is returned for the next batches.
fn generate_inputs(
    a: &ProfileArgs,
    x: Extents,
    model_arg: &str,
    train: bool,
) -> Result<(PathBuf, DataSource)> {
    let mut data = synthetic(a, x, model_arg)?;
    let mut batch: BTreeMap<String, _> = data.next_batch(x.batch_size)?;
    if !train {
        batch.remove("labels");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join("inputs.safetensors");
    tessera_ir::io::save_safetensors(&path, &batch)?;
    Ok((path, data))
}

pub fn profile(a: ProfileArgs) -> Result<()> {
    if let [x, y] = a.compare.as_slice() {
        let (pa, pb) = (Profile::load(x)?, Profile::load(y)?);
        print!("{}", compare(&pa, &pb));
        return Ok(());
    }
    let Some(model_arg) = a.model.clone() else {
        bail!("give a plan or a model to profile, or --compare A B");
    };
    let is_plan = tessera::execute::is_plan_file(std::path::Path::new(&model_arg));
    // The model generated inputs come from, and whether the step trains (a training plan
    // trains whether or not --train is given).
    // A plan is read once: for its source model, settings and shapes, then to run.
    let loaded = if is_plan {
        Some(tessera_plan::Plan::load(std::path::Path::new(&model_arg))?)
    } else {
        None
    };
    let (source_model, train, extents) = match &loaded {
        Some(plan) => (
            plan.source.model.clone(),
            a.train || plan.report.settings.train,
            Extents::of(&a, Some(&plan.report.settings)),
        ),
        None => (model_arg.clone(), a.train, Extents::of(&a, None)),
    };
    let (inputs, data) = match &a.inputs {
        Some(p) => (p.clone(), None),
        None => {
            let (path, data) = generate_inputs(&a, extents, &source_model, train)?;
            (path, Some(data))
        }
    };
    let mode = if a.no_tile_times {
        TraceMode::On
    } else {
        TraceMode::Tiles
    };
    let more = pipelined::MoreBatches {
        data,
        model: source_model.clone(),
        batch_size: extents.batch_size,
        micro_batches: a.micro_batches,
    };
    let run = RunArgs::for_tiles(
        model_arg.clone(),
        inputs,
        a.weights.clone(),
        a.seed,
        a.train,
        a.precision,
        a.compile,
    );
    let mut prepared = match loaded {
        Some(plan) => prepare_loaded_plan(&run, plan)?,
        None => tiles_prepare(&run, false)?,
    };
    if prepared.tiles()?.pipeline.is_some() {
        let weights = prepared.weights();
        let profile =
            pipelined::profile(more, &mut prepared.plan, &weights, &prepared.inputs, mode)?;
        return write_report(&profile, &a.out);
    }
    let tiles = prepared.tiles()?;
    let mut session = TileSession::new(tiles)?;
    session
        .load(&prepared.weights())
        .context("loading the weights onto the tiles")?;
    let mut traces = Vec::new();
    for _ in 0..a.runs {
        traces.push(session.run(&prepared.inputs, mode)?.1);
    }
    let trace = fastest_of(&traces).context("the traced runs differ in their supersteps")?;
    let mut meta = profile_meta(&prepared.plan, &prepared.inputs, train);
    meta.settings
        .insert("traced_runs".into(), format!("{} (fastest kept)", a.runs));
    let profile = Profile::new(tiles, &prepared.plan.target, Some(&trace), meta)?;
    write_report(&profile, &a.out)
}

/// The profile's description of the run: model, samples per execution of `step` (the
/// batch of `input_ids`) and settings.
fn profile_meta(
    plan: &tessera_plan::Plan,
    inputs: &HashMap<String, Tensor>,
    train: bool,
) -> ProfileMeta {
    let batch = inputs
        .get("input_ids")
        .and_then(|t| t.shape().first().copied())
        .unwrap_or(1) as u64;
    let chips = plan
        .tiles
        .as_ref()
        .map_or(plan.report.settings.ipus_per_replica, |t| t.step.chips);
    let mut settings = BTreeMap::new();
    settings.insert("chips".to_string(), chips.to_string());
    settings.insert(
        "step".to_string(),
        if train { "training" } else { "forward" }.to_string(),
    );
    settings.insert("target".to_string(), plan.target.name.clone());
    settings.insert(
        "precision".to_string(),
        plan.report.settings.precision.clone(),
    );
    ProfileMeta {
        model: plan.source.model.clone(),
        batch,
        settings,
    }
}

/// Writes the report directory and prints the summary.
fn write_report(profile: &Profile, out: &std::path::Path) -> Result<()> {
    let files = write_all(profile, out)?;
    print!("{}", summary_text(profile));
    eprintln!(
        "wrote {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
