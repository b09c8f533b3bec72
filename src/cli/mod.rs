//! Argument definitions (clap) and dispatch to the subcommands.

mod compile;
mod compile_flags;
mod inspect;
pub mod precision;
mod profile;
mod run;
mod train;

use clap::{Args, Parser, Subcommand};

/// Tessera: a compute-graph compiler and runtime for IPU-style many-core hardware.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's graph (summary, text IR, Graphviz DOT, or JSON) or summarise a plan.
    Inspect(inspect::InspectArgs),
    /// Execute a model (reference evaluator or emulated tiles) or a plan on inputs from a safetensors file.
    Run(run::RunArgs),
    /// Compile a model to a plan: pipeline placement, recomputation, stage table, predicted throughput.
    Compile(compile::CompileArgs),
    /// Train a model (AdamW, linear warmup, gradient accumulation) on a data file or synthetic VQA data.
    Train(train::TrainArgs),
    /// Profile a plan or model on the emulated tiles: summary, profile.json, Chrome trace, SVG plots.
    Profile(profile::ProfileArgs),
}

/// Input shapes for models whose graph depends on them (LXMERT).
#[derive(Debug, Clone, Args)]
pub struct ShapeArgs {
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Question length in tokens.
    #[arg(long, default_value_t = 20)]
    seq_len: usize,
    /// Number of visual objects.
    #[arg(long, default_value_t = 36)]
    num_objects: usize,
    /// Give the graph a `visual_attention_mask` input.
    #[arg(long)]
    visual_attention_mask: bool,
}

impl ShapeArgs {
    fn shapes(&self) -> tessera_lxmert::Shapes {
        tessera_lxmert::Shapes {
            batch: self.batch_size,
            seq_len: self.seq_len,
            num_objects: self.num_objects,
        }
    }
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(a) => inspect::inspect(a),
        Command::Run(a) => run::run(a),
        Command::Train(a) => train::train(a),
        Command::Compile(a) => compile::compile_cmd(a),
        Command::Profile(a) => profile::profile(a),
    }
}

/// Writes `text` to `path` atomically, or prints it to stdout when no path is given.
fn emit(text: &str, path: Option<&std::path::Path>) -> anyhow::Result<()> {
    match path {
        Some(p) => {
            tessera_ir::io::write_atomic(p, text.as_bytes())?;
            Ok(())
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}
