//! The Tessera driver: everything the `tessera` command line does, as a library.
//!
//! It resolves the MODEL a user names (a preset, a Hugging Face `config.json` or model
//! directory, or a text-IR file), instantiates the graph for concrete input shapes, prepares
//! the input feeds with transformers' defaults, and chains the stages (builder → passes →
//! evaluator) into the commands of the CLI. Reports are produced here too, so that tests can
//! check them without going through a process. Forward plans are lowered to tile programs
//! and run on the emulated machine ([`execute`]); [`plan_info`] summarises a plan.

pub mod compile;
pub mod data;
pub mod execute;
pub mod feeds;
pub mod model;
pub mod pipeline;
pub mod plan_info;
pub mod summary;
pub mod train;
