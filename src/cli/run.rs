//! `tessera run MODEL|PLAN --inputs in.safetensors --outputs out.safetensors [--weights W]
//! [--seed S] [--train] [--precision fp16 ...] [--engine reference|tiles] [--repeat N]`.
//!
//! MODEL runs on the reference evaluator (`--engine reference`, the default) or is compiled
//! with the compile flags and run on the emulated tiles (`--engine tiles`, [`tiles`]); a
//! plan file (recognised by its magic, whatever its name) runs on the tiles. `--repeat N`
//! runs the step N times in one process and writes the last run's outputs; the wall time
//! of the runs goes to stderr. A training plan compiled with the optimizer (`tessera compile
//! --train`) runs a whole training step, the weight update included ([`train_step`]).
//!
//! With `--precision fp16` the `mixed-precision` pass runs on the forward graph (before the
//! loss and autodiff with `--train`); the weights are cast to the graph's parameter types,
//! and outputs keep their f32 types. With loss scaling, gradients are computed scaled and
//! written unscaled, in f32.

mod tiles;
pub(crate) use tiles::{prepare_loaded_plan, scaled_feeds};
mod train_step;

use super::compile_flags::CompileFlags;
use super::precision::PrecisionArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera::execute::{is_plan_file, timing_line};
use tessera::train::precision::{mixed_gradient_graph, params_for_graph};
use tessera::{feeds, model};
use tessera_ir::eval::EvalOptions;
use tessera_ir::{Graph, Tensor, TensorData};
use tessera_lxmert::BuildOptions;
use tessera_passes::mixed_precision::{mixed_precision, PrecisionConfig, LOSS_SCALE_INPUT};

/// What executes the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// The reference evaluator (op by op on the host).
    Reference,
    /// Compile to a tile program and run it on the emulated IPU tiles.
    Tiles,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A preset, a config.json, a Hugging Face model directory, a text-IR file, or a plan
    /// written by `tessera compile` (recognised by its contents; it runs on the tiles).
    model: String,
    /// Input tensors (safetensors), named as transformers' forward arguments.
    #[arg(long)]
    inputs: PathBuf,
    /// Where to write the outputs (safetensors, written atomically).
    #[arg(long)]
    outputs: PathBuf,
    /// Parameter values (safetensors with Hugging Face state-dict names).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the random initialisation used when no weights are given [default: 0, or
    /// the seed a plan was compiled with].
    #[arg(long)]
    seed: Option<u64>,
    /// Compute the loss and its gradients: the inputs add `labels` (f32 [B,num_qa_labels]
    /// soft scores or i64 [B] class ids); the outputs hold `loss` and `grad.<parameter>`.
    #[arg(long)]
    train: bool,
    #[command(flatten)]
    precision: PrecisionArgs,
    /// What executes the graph [default: reference; plans always run on tiles].
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Run the step this many times (weights loaded once); the outputs are the last run's.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// How to compile for `--engine tiles` (as `tessera compile` takes them).
    #[command(flatten)]
    compile: CompileFlags,
}

impl RunArgs {
    /// Arguments of a tile run of `model` (a plan or a model) on `inputs`, for `profile`.
    pub(crate) fn for_tiles(
        model: String,
        inputs: PathBuf,
        weights: Option<PathBuf>,
        seed: Option<u64>,
        train: bool,
        precision: PrecisionArgs,
        compile: CompileFlags,
    ) -> Self {
        RunArgs {
            model,
            inputs,
            outputs: PathBuf::new(),
            weights,
            seed,
            train,
            precision,
            engine: Some(Engine::Tiles),
            repeat: 1,
            compile,
        }
    }
}

/// A plan (loaded, or compiled from a model) with its weights and inputs, for the tiles.
pub(crate) fn tiles_prepare(a: &RunArgs, is_plan: bool) -> Result<tiles::Prepared> {
    if is_plan {
        tiles::prepare_plan(a)
    } else {
        tiles::prepare_model(a)
    }
}

/// `graph` through the mixed-precision pass when `precision` is given.
fn forward_graph(graph: Graph, precision: Option<&PrecisionConfig>) -> Result<Graph> {
    match precision {
        Some(cfg) => Ok(mixed_precision(&graph, cfg)
            .context("mixed-precision pass")?
            .0),
        None => Ok(graph),
    }
}

pub fn run(a: RunArgs) -> Result<()> {
    if is_plan_file(Path::new(&a.model)) {
        return tiles::run_plan(&a);
    }
    match a.engine.unwrap_or(Engine::Reference) {
        Engine::Tiles => tiles::run_model(&a),
        Engine::Reference => reference(a),
    }
}

/// Writes `outputs` atomically and reports it, with the wall time of `runs` runs.
fn finish(
    a: &RunArgs,
    outputs: BTreeMap<String, Tensor>,
    what: &str,
    runs: usize,
    elapsed: std::time::Duration,
) -> Result<()> {
    if outputs.is_empty() {
        bail!("the graph has no outputs");
    }
    tessera_ir::io::save_safetensors(&a.outputs, &outputs)?;
    eprintln!("{}", timing_line(what, runs, elapsed));
    eprintln!("wrote {} outputs to {}", outputs.len(), a.outputs.display());
    Ok(())
}

/// `--repeat` as a count.
fn repeat(a: &RunArgs) -> Result<usize> {
    usize::try_from(a.repeat).context("--repeat is too large")
}

/// The reference evaluator's run.
fn reference(a: RunArgs) -> Result<()> {
    let seed = a.seed.unwrap_or(0);
    let precision = a.precision.resolve(a.train)?;
    let spec = model::resolve(&a.model)?;
    let tensors = tessera_ir::io::load_safetensors(&a.inputs)?;
    let params = spec.weights(a.weights.as_deref(), seed)?;
    let mut loss_scale = 1.0;
    let (graph, inputs) = match spec.lxmert_config() {
        Some(config) => {
            let f = feeds::lxmert_feeds(tensors, config, &a.inputs, a.train)?;
            let opts = BuildOptions {
                visual_attention_mask: f.visual_attention_mask,
                ..Default::default()
            };
            let forward = spec.graph(&f.shapes, &opts)?;
            let mut inputs = f.inputs;
            match f.labels {
                Some(labels) if a.train => {
                    let (graph, _) =
                        mixed_gradient_graph(&forward, &labels.ty(), precision.as_ref())?;
                    inputs.insert("labels".into(), labels);
                    if graph.input_by_name(LOSS_SCALE_INPUT).is_ok() {
                        loss_scale = precision
                            .as_ref()
                            .map_or(1.0, |c| c.loss_scaling.initial_scale());
                        inputs.insert(
                            LOSS_SCALE_INPUT.into(),
                            Tensor::scalar_f32(loss_scale as f32),
                        );
                    }
                    (graph, inputs)
                }
                _ => (forward_graph(forward, precision.as_ref())?, inputs),
            }
        }
        None => {
            if a.train {
                bail!("--train needs an LXMERT model (its loss is the VQA loss)");
            }
            let graph = spec.graph(
                &tessera_lxmert::Shapes {
                    batch: 1,
                    seq_len: 1,
                    num_objects: 1,
                },
                &BuildOptions::default(),
            )?;
            let inputs = feeds::ir_feeds(&graph, tensors, &a.inputs)?;
            (forward_graph(graph, precision.as_ref())?, inputs)
        }
    };
    let params = params_for_graph(&graph, &params);
    let opts = EvalOptions {
        stochastic_rounding: precision
            .as_ref()
            .filter(|c| c.stochastic_rounding)
            .map(|c| c.seed),
    };
    let runs = repeat(&a)?;
    let start = Instant::now();
    let mut outputs = BTreeMap::new();
    for _ in 0..runs {
        outputs = tessera_ir::eval::evaluate_with(&graph, &inputs, &params, &opts)
            .with_context(|| format!("evaluating graph @{}", graph.name))?;
    }
    let elapsed = start.elapsed();
    let outputs = outputs
        .into_iter()
        .map(|(k, t)| {
            let t = if loss_scale != 1.0 && k.starts_with("grad.") {
                unscale(&t, loss_scale)?
            } else {
                t
            };
            Ok((k, t))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    finish(&a, outputs, "reference evaluator", runs, elapsed)
}

/// A gradient computed with loss scale `scale`, divided by it in f32.
fn unscale(t: &Tensor, scale: f64) -> Result<Tensor> {
    let v: Vec<f32> = t
        .to_f32_vec()
        .into_iter()
        .map(|x| (f64::from(x) / scale) as f32)
        .collect();
    Ok(Tensor::new(t.shape().to_vec(), TensorData::F32(v))?)
}
