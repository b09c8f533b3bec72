//! What the manager records about each pass, as written to `passes.json`.

use super::pass::Counters;
use serde::Serialize;

/// Statistics of one successful pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassRecord {
    /// 1-based position in the pipeline (0 is the input graph in dumps).
    pub index: usize,
    /// The pass's name.
    pub name: String,
    /// Wall time of the pass itself.
    pub seconds: f64,
    /// Wall time of verifying its result.
    pub verify_seconds: f64,
    /// Nodes of the input graph.
    pub nodes_before: usize,
    /// Nodes of the output graph.
    pub nodes_after: usize,
    /// Nodes added (see [`super::diff`]).
    pub added: usize,
    /// Nodes removed.
    pub removed: usize,
    /// Whether the graph changed at all.
    pub changed: bool,
    /// Pass-specific statistics.
    pub counters: Counters,
}

/// How a pass failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The pass returned an error.
    Error,
    /// The pass returned a graph the verifier rejects.
    InvalidGraph,
}

/// A pass that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassFailure {
    /// 1-based position in the pipeline.
    pub index: usize,
    /// The pass's name.
    pub name: String,
    /// Wall time until the failure (pass, and verification for an invalid graph).
    pub seconds: f64,
    /// Nodes of the input graph.
    pub nodes_before: usize,
    /// Whether the pass erred or produced an invalid graph.
    pub kind: FailureKind,
    /// The error message (it names the node).
    pub error: String,
}

/// One line of `passes.json`: a completed or a failed pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum PassEntry {
    /// The pass completed.
    Ok(PassRecord),
    /// The pass failed.
    Failed(PassFailure),
}

impl PassEntry {
    /// The pass's 1-based position.
    pub fn index(&self) -> usize {
        match self {
            PassEntry::Ok(r) => r.index,
            PassEntry::Failed(f) => f.index,
        }
    }

    /// The pass's name.
    pub fn name(&self) -> &str {
        match self {
            PassEntry::Ok(r) => &r.name,
            PassEntry::Failed(f) => &f.name,
        }
    }

    /// Wall time spent in the pass (and its verification).
    pub fn total_seconds(&self) -> f64 {
        match self {
            PassEntry::Ok(r) => r.seconds + r.verify_seconds,
            PassEntry::Failed(f) => f.seconds,
        }
    }
}
