//! The tile-schedule profiler: where the cycles and bytes of a lowered tile plan go.
//!
//! [`Profile::new`] turns a [`tessera_passes::lower::program::TilePlan`] (and optionally the
//! emulator's [`tessera_runtime::Trace`] of a run) into a [`Profile`]: totals, per-superstep
//! cycles and tile balance, top compute sets and vertex kinds, per-chip memory headroom,
//! busiest tiles, predicted samples/s and a downsampled tile × superstep heatmap. The
//! profile is plain serde data (its field docs in [`model`] are the `profile.json` format).
//!
//! Writers render it: [`summary_text`] (deterministic aligned tables), [`write_json`],
//! [`chrome_trace`] (Chrome trace-event JSON for `chrome://tracing` / Perfetto), three SVGs
//! ([`memory_svg`], [`heatmap_svg`], [`timeline_svg`]), for pipelined plans a fourth
//! ([`pipeline_svg`]), with per-tile times a measured heatmap ([`measured_heatmap_svg`]), and
//! [`write_all`] for a whole report directory. [`compare`] diffs two
//! profiles; [`Profile::load`] reads one back.
//!
//! Pipelined training plans (`TilePlan::pipeline`) are profiled with [`Profile::pipelined`]:
//! the step as PopART's schedule runs it over `G` micro-batches, with the measured segment
//! runs of a `PipelineSession` step when given. Memory adds a code and vertex state estimate
//! to every tile ([`CODE_BYTES_PER_CODELET`]; the lowering's own estimate, which its memory
//! check counts too).
//!
//! A trace recorded with `TraceMode::Tiles` adds measured per-tile times
//! ([`model::MeasuredTiles`]): per-superstep measured tile balance against the cost model's,
//! the tiles that took longest against the cost model's busiest, and a measured heatmap
//! ([`measured_heatmap_svg`]). [`fastest_of`] merges several runs' traces into their
//! element-wise fastest (host preemptions only add time).
//!
//! A CLI wires it as: lower the plan, optionally run it traced, then
//! `write_all(&Profile::new(&plan, &target, trace.as_ref(), meta)?, dir)?` and print
//! `summary_text`; `--compare A B` is `compare(&Profile::load(a)?, &Profile::load(b)?)`.

mod build;
mod chrome;
mod compare;
pub mod error;
mod fastest;
mod fmt;
mod io;
pub mod model;
mod summary;
mod svg;
#[cfg(test)]
mod tests;

pub use build::{
    Parallelism, PendingProfile, MAX_MEMORY_BUCKETS, MAX_STEP_BUCKETS, MAX_TILE_BUCKETS,
};
pub use chrome::chrome_trace;
pub use compare::{compare, NO_DIFFERENCE};
pub use error::{ProfileError, Result};
pub use fastest::fastest_of;
pub use io::{write_all, write_json, FILE_NAMES, MEASURED_HEATMAP_FILE, PIPELINE_FILE};
pub use model::{Profile, ProfileMeta, FORMAT_VERSION};
pub use summary::summary_text;
pub use svg::{heatmap_svg, measured_heatmap_svg, memory_svg, pipeline_svg, timeline_svg};
pub use tessera_passes::lower::program::code_state::{
    CODE_BYTES_PER_CODELET, VERTEX_STATE_BYTES_PER_REGION, VERTEX_STATE_BYTES_PER_SCALAR,
};

/// Length of the profile's top lists (compute sets, labels, busiest and fullest tiles).
pub const TOP_N: usize = 10;
