//! The [`Pass`] trait: one named graph-to-graph transformation with statistics.
//!
//! A pass reads a graph and returns a new one, so the manager can keep the input of every
//! pass for dumps and for reproducing a failure. Besides the graph, a pass reports
//! pass-specific counters (casts inserted, bytes moved to fp16, gradients built, ...); the
//! manager adds the generic ones (wall time, nodes added and removed) itself.

use std::collections::BTreeMap;
use tessera_ir::Graph;

/// Pass-specific statistics: counter name → value, printed and dumped in name order.
pub type Counters = BTreeMap<String, i64>;

/// Why a pass failed: any error type; its message should name the node it is about.
pub type PassError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a successful pass returns: the new graph and its counters.
#[derive(Debug, Clone)]
pub struct PassOutput {
    /// The transformed graph (the manager verifies it).
    pub graph: Graph,
    /// Pass-specific statistics.
    pub counters: Counters,
}

impl PassOutput {
    /// A result without counters.
    pub fn new(graph: Graph) -> Self {
        PassOutput {
            graph,
            counters: Counters::new(),
        }
    }

    /// Adds (or replaces) the counter `name`.
    pub fn with_counter(mut self, name: &str, value: i64) -> Self {
        self.counters.insert(name.to_string(), value);
        self
    }
}

/// A named graph-to-graph transformation.
pub trait Pass {
    /// The name used in pipeline strings, banners and dump file names (`autodiff`).
    fn name(&self) -> &str;

    /// Transforms `graph`. The result need not be verified: the manager verifies it and
    /// blames this pass if it is invalid.
    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError>;
}

/// Saturating conversion of a count to a counter value.
pub fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
