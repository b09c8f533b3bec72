//! `tessera inspect MODEL [--emit summary|text|dot|json] [--json]`, with pass pipelines:
//! `[--train] [--passes LIST] [--print-before|--print-after all|NAME[,NAME]]
//! [--print-changed] [--dump-dir DIR] [--stop-after NAME] [--timing]`, the precision flags
//! (`--precision fp16`, ...), and `--explain-precision`.
//!
//! The graph of MODEL goes through a pipeline of passes before it is shown: by default none,
//! `loss,autodiff` with `--train`, and `mixed-precision` first with `--precision fp16`;
//! `--emit` shows the final graph. See `tessera::pipeline` for the printing and dumping
//! conventions (MLIR's and XLA's).
//!
//! `tessera inspect PLAN [--json]` (a file written by `tessera compile`, recognised by its
//! contents) summarises the plan instead: model, target, and its tile program's supersteps,
//! vertices, exchange, estimated time and tile memory ([`tessera::plan_info`]).

use super::precision::PrecisionArgs;
use super::{emit, ShapeArgs};
use anyhow::{anyhow, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera::execute::is_plan_file;
use tessera::pipeline::{DumpDir, PassSelection, Printer};
use tessera::plan_info::plan_info;
use tessera::{model, summary};
use tessera_ir::Graph;
use tessera_lxmert::BuildOptions;
use tessera_passes::manager::{
    build_pipeline, check_name, default_pipeline, parse_pipeline, timing_table, Both, EntryLog,
    LabelsKind, PassManager, PassOptions, PipelineError,
};
use tessera_passes::mixed_precision::{explain_precision, PrecisionConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Emit {
    /// Op counts, parameters, FLOPs and a per-scope table.
    Summary,
    /// The text IR.
    Text,
    /// Graphviz DOT.
    Dot,
    /// The graph as JSON (serde).
    Json,
}

/// The labels the training loss (`loss` pass) is built for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Labels {
    /// f32[B, num_qa_labels] soft VQA scores: binary cross-entropy (optimum-graphcore).
    Soft,
    /// i64[B] class ids: cross-entropy (transformers).
    Hard,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A preset (lxmert-base, lxmert-tiny), a config.json, a Hugging Face model directory, a
    /// text-IR file, or a plan written by `tessera compile`.
    #[arg(required_unless_present = "explain_precision")]
    model: Option<String>,
    /// What to show of the final graph [default: summary, or nothing with --print-*].
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// Print the summary as JSON (keys: parameters, parameter_bytes, forward_flops, ops, nodes, ...).
    /// For a plan: model, seed, train, precision, target, chips, tiles_per_chip, tiles (null
    /// without a tile program) = {supersteps, vertices, vertices_by_kind, exchange_bytes,
    /// inter_chip_bytes, cycles, seconds, oom (the out-of-memory report or null), memory =
    /// {capacity, always_live_bytes, code_vertex_state_bytes, tiles_over_capacity, fullest_tile
    /// = {chip, tile, peak}, chips = [{chip, max_peak, mean_peak, fullest_tile}]} (peaks count
    /// the estimated code and vertex state, as the out-of-memory check does), top_supersteps = [{index, label,
    /// cycles, exchange_bytes}] (the 10 with the most estimated cycles)}.
    #[arg(long)]
    json: bool,
    /// Group the per-scope table at this many scope components (default: per module instance).
    #[arg(long)]
    scope_depth: Option<usize>,
    /// Write the --emit output to this file (atomically) instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    shapes: ShapeArgs,
    /// The training graph: default pipeline `loss,autodiff` (`mixed-precision,loss,autodiff` with --precision fp16).
    #[arg(long)]
    train: bool,
    /// Labels of the training loss.
    #[arg(long, value_enum, default_value_t = Labels::Soft)]
    labels: Labels,
    /// The passes to run, comma-separated (e.g. `loss,autodiff`; "" for none); overrides the default pipeline.
    /// Passes: mixed-precision, loss, autodiff, fold-casts, dce.
    #[arg(long, value_name = "LIST")]
    passes: Option<String>,
    /// Print the IR after these passes (`all` or NAME[,NAME]), each under a banner.
    #[arg(long, value_name = "all|NAME[,NAME]")]
    print_after: Option<String>,
    /// Print the IR before these passes (`all` or NAME[,NAME]).
    #[arg(long, value_name = "all|NAME[,NAME]")]
    print_before: Option<String>,
    /// Print the IR after a pass only when it changed the graph (alone: after every such pass).
    #[arg(long)]
    print_changed: bool,
    /// Write 00-input.tir, one NN-<pass>.tir per pass and passes.json (timings, statistics) into DIR
    /// (replacing the NN-*.tir and passes.json of an earlier run there).
    #[arg(long, value_name = "DIR")]
    dump_dir: Option<PathBuf>,
    /// Stop the pipeline after this pass.
    #[arg(long, value_name = "NAME")]
    stop_after: Option<String>,
    /// Print a pass-timing table to stderr.
    #[arg(long)]
    timing: bool,
    /// Print the mixed-precision policy table (which ops run in fp16 and which in fp32) and exit.
    #[arg(long)]
    explain_precision: bool,
    #[command(flatten)]
    precision: PrecisionArgs,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    if a.explain_precision {
        return emit(&explain_precision(), None);
    }
    let model_arg = a
        .model
        .as_deref()
        .ok_or_else(|| anyhow!("MODEL is required"))?;
    if is_plan_file(Path::new(model_arg)) {
        return inspect_plan(Path::new(model_arg), a.json);
    }
    let spec = model::resolve(model_arg)?;
    let opts = BuildOptions {
        visual_attention_mask: a.shapes.visual_attention_mask,
        ..Default::default()
    };
    let graph = spec.graph(&a.shapes.shapes(), &opts)?;
    let precision = a.precision.resolve(a.train)?;
    let pm = pipeline(&a, precision)?;
    let names = pm.names();
    let before = selection("--print-before", a.print_before.as_deref(), &names)?;
    let after = selection("--print-after", a.print_after.as_deref(), &names)?;
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let printer = Printer::new(out, before, after, a.print_changed);
    let printing = printer.is_active();
    let dump = match &a.dump_dir {
        Some(dir) => Some(DumpDir::create(dir, &pm.pipeline_string())?),
        None => None,
    };
    let mut hooks = Both(Both(printer, dump), EntryLog::default());
    let result = pm.run(graph, &mut hooks);
    let Both(Both(printer, dump), log) = hooks;
    drop(printer.finish()?);
    if a.timing {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(timing_table(&log.entries).as_bytes());
    }
    let run = result.map_err(|e| pipeline_error(e, &pm, dump.as_ref()))?;
    let show = match a.emit {
        Some(e) => Some(e),
        None if printing => None,
        None => Some(Emit::Summary),
    };
    match show {
        Some(e) => emit(&render(e, &a, &run.graph)?, a.output.as_deref()),
        None => Ok(()),
    }
}

/// The pipeline to run: `--passes`, else the default; cut at `--stop-after`. `precision`
/// is the resolved `--precision fp16` configuration (`None` for fp32); a `mixed-precision`
/// pass named in `--passes` without it uses the plain fp16 configuration.
fn pipeline(a: &InspectArgs, precision: Option<PrecisionConfig>) -> Result<PassManager> {
    let names: Vec<String> = match &a.passes {
        Some(s) => parse_pipeline(s).map_err(|e| anyhow!("--passes: {e}"))?,
        None => default_pipeline(a.train, precision.is_some())
            .into_iter()
            .map(String::from)
            .collect(),
    };
    let mut opts = PassOptions {
        labels: match a.labels {
            Labels::Soft => LabelsKind::Soft,
            Labels::Hard => LabelsKind::Hard,
        },
        ..Default::default()
    };
    if let Some(cfg) = precision {
        opts.scaled_loss = cfg.loss_scaling.is_enabled();
        opts.precision = cfg;
    }
    let mut pm = build_pipeline(&names, &opts)?;
    if let Some(stop) = &a.stop_after {
        check_name(stop).map_err(|e| anyhow!("--stop-after: {e}"))?;
        pm.stop_after(stop)
            .map_err(|e| anyhow!("--stop-after: {e}"))?;
    }
    Ok(pm)
}

fn selection(flag: &str, spec: Option<&str>, names: &[&str]) -> Result<PassSelection> {
    Ok(match spec {
        Some(s) => PassSelection::parse(flag, s, names)?,
        None => PassSelection::None,
    })
}

/// The error of a failed pipeline, with where to find the IR that reproduces it.
fn pipeline_error(e: PipelineError, pm: &PassManager, dump: Option<&DumpDir>) -> anyhow::Error {
    let mut msg = e.to_string();
    if let (Some((index, _)), Some(file)) = (e.pass(), dump.and_then(DumpDir::last_file)) {
        let rest = pm
            .names()
            .get(index.saturating_sub(1)..)
            .map(|r| r.join(","));
        msg += &format!(
            "\n  the IR before this pass is in {}; reproduce with `tessera inspect {} --passes {}`",
            file.display(),
            file.display(),
            rest.unwrap_or_default()
        );
    }
    anyhow!(msg)
}

fn render(e: Emit, a: &InspectArgs, graph: &Graph) -> Result<String> {
    Ok(match (e, a.json) {
        (Emit::Summary, false) => summary::summarize(graph, a.scope_depth).to_text(),
        (Emit::Summary, true) => {
            serde_json::to_string_pretty(&summary::summarize(graph, a.scope_depth))? + "\n"
        }
        (Emit::Text, _) => tessera_ir::text::print(graph),
        (Emit::Dot, _) => tessera_ir::dot::to_dot(graph),
        (Emit::Json, _) => serde_json::to_string(graph)? + "\n",
    })
}

/// `tessera inspect PLAN [--json]`.
fn inspect_plan(path: &Path, json: bool) -> Result<()> {
    let plan = tessera_plan::Plan::load(path)?;
    let info = plan_info(&plan);
    let text = if json {
        serde_json::to_string_pretty(&info)? + "\n"
    } else {
        info.to_text()
    };
    emit(&text, None)
}
