//! `tessera`: the command line of the Tessera compiler and runtime.
//!
//! Subcommands: `inspect` (summaries, text IR, DOT, JSON of a model's graph) and `run`
//! (execute a model on inputs from a safetensors file). Errors are printed with their
//! context chain and exit with status 1; clap's usage errors exit with 2.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::dispatch(args) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
