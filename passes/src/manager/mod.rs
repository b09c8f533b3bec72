//! The pass manager: named passes composed into pipelines, verified after every pass,
//! timed, counted, and observable through instrumentation hooks.
//!
//! Users come to Tessera to see what each pass does to their model, so the manager follows
//! the conventions of MLIR's and XLA's pass infrastructure:
//!
//! - a [`Pass`] has a name and turns a graph into a new graph plus pass-specific
//!   [`Counters`]; pipelines are written as strings (`loss,autodiff`, [`parse_pipeline`])
//!   and built from [`PassOptions`] ([`build_pipeline`]);
//! - [`PassManager::run`] verifies the input and the result of every pass with
//!   [`tessera_ir::verify`]; an invalid result is blamed on the pass that produced it
//!   ("pass `X` produced an invalid graph: ..."), and a failing pass's error (which names
//!   the node) is wrapped with the pass's name ([`PipelineError`]);
//! - every pass gets a [`PassRecord`]: wall time, verification time, nodes before and
//!   after, nodes added and removed by node identity ([`diff()`]), a `changed` flag, and the
//!   counters; records serialise to the `passes.json` of `--dump-dir`;
//! - [`Instrumentation`] hooks run before and after every pass and on failure: the command
//!   line prints IR under MLIR-style banners ([`banner_after`]) and writes dump files
//!   through them; [`timing_table`] is the `--timing` report.

mod builtin;
mod diff;
mod error;
mod instrument;
mod pass;
mod placement;
mod record;
mod registry;
mod report;
mod runner;

#[cfg(test)]
mod tests;

pub use builtin::{AutodiffPass, DcePass, FoldCastsPass, LabelsKind, LossPass, MixedPrecisionPass};
pub use diff::{diff, GraphDiff};
pub use error::PipelineError;
pub use instrument::{Both, EntryLog, HookError, Instrumentation, NoInstrumentation};
pub use pass::{count, Counters, Pass, PassError, PassOutput};
pub use placement::{PipelinePass, RecomputePass};
pub use record::{FailureKind, PassEntry, PassFailure, PassRecord};
pub use registry::{
    build_pipeline, check_name, create_pass, default_pipeline, known_passes, parse_pipeline,
    PassInfo, PassOptions, PipelineParseError, PASSES,
};
pub use report::{banner_after, banner_before, change_summary, format_seconds, timing_table};
pub use runner::{PassManager, PipelineRun};
