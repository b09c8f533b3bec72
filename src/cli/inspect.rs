//! `tessera inspect MODEL [--emit summary|text|dot|json] [--json]`.

use super::{emit, ShapeArgs};
use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tessera::{model, summary};
use tessera_lxmert::BuildOptions;

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

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A preset (lxmert-base, lxmert-tiny), a config.json, a Hugging Face model directory, or a text-IR file.
    model: String,
    /// What to show.
    #[arg(long, value_enum, default_value_t = Emit::Summary)]
    emit: Emit,
    /// Print the summary as JSON (keys: parameters, parameter_bytes, forward_flops, ops, nodes, ...).
    #[arg(long)]
    json: bool,
    /// Group the per-scope table at this many scope components (default: per module instance).
    #[arg(long)]
    scope_depth: Option<usize>,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    shapes: ShapeArgs,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let spec = model::resolve(&a.model)?;
    let opts = BuildOptions {
        visual_attention_mask: a.shapes.visual_attention_mask,
        ..Default::default()
    };
    let graph = spec.graph(&a.shapes.shapes(), &opts)?;
    let text = match (a.emit, a.json) {
        (Emit::Summary, false) => summary::summarize(&graph, a.scope_depth).to_text(),
        (Emit::Summary, true) => {
            serde_json::to_string_pretty(&summary::summarize(&graph, a.scope_depth))? + "\n"
        }
        (Emit::Text, _) => tessera_ir::text::print(&graph),
        (Emit::Dot, _) => tessera_ir::dot::to_dot(&graph),
        (Emit::Json, _) => serde_json::to_string(&graph)? + "\n",
    };
    emit(&text, a.output.as_deref())
}
