//! `tessera compile MODEL [--train] [--ipu-config F] [--ipus N] [--placement ...]
//! [--recompute ...] [--precision ...] [--matmul-proportion F] [--allow-oom] [--seed S]
//! [--seq-len S --num-objects N --micro-batch B] -o PLAN [--json]`: compile a model to a
//! plan and print its stage table and, for forward plans, its tile program's summary.
//!
//! The flags are [`CompileFlags`] (shared with `run --engine tiles`). `--precision fp16`
//! runs the mixed-precision pass on the forward graph (configured as `tessera train`
//! configures it). Forward plans are lowered to tiles; a tile out of memory fails the compile
//! and writes nothing, unless `--allow-oom`. Training plans have no tile program yet.

use super::compile_flags::{build_plan, CompileFlags, Subject};
use super::precision::PrecisionArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use tessera::compile::report_text;
use tessera::model;
use tessera::plan_info::{plan_info, tiles_text};
use tessera_lxmert::{BuildOptions, Shapes};

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
    /// Where to write the plan (atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
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
    let (plan, notes) = build_plan(&subject, a.seed, &opts, &tiles, || {
        spec.graph(&lxmert_shapes, &BuildOptions::default())
    })?;
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
