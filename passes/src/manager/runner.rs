//! [`PassManager`]: runs a list of passes, verifying after each one and recording time and
//! statistics, with instrumentation hooks around every pass.

use super::diff::diff;
use super::error::PipelineError;
use super::instrument::{HookError, Instrumentation};
use super::pass::Pass;
use super::record::{FailureKind, PassFailure, PassRecord};
use std::time::Instant;
use tessera_ir::{verify, Graph};

/// The result of a successful pipeline run.
#[derive(Debug, Clone)]
pub struct PipelineRun {
    /// The final graph.
    pub graph: Graph,
    /// One record per pass, in order.
    pub records: Vec<PassRecord>,
}

/// An ordered list of passes.
#[derive(Default)]
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
}

impl std::fmt::Debug for PassManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassManager")
            .field("passes", &self.names())
            .finish()
    }
}

impl PassManager {
    /// An empty pipeline.
    pub fn new() -> Self {
        PassManager::default()
    }

    /// Appends a pass.
    pub fn add(&mut self, pass: Box<dyn Pass>) {
        self.passes.push(pass);
    }

    /// Appends a pass (builder style).
    pub fn with(mut self, pass: impl Pass + 'static) -> Self {
        self.passes.push(Box::new(pass));
        self
    }

    /// The names of the passes, in order.
    pub fn names(&self) -> Vec<&str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Number of passes.
    pub fn len(&self) -> usize {
        self.passes.len()
    }

    /// True when the pipeline has no pass.
    pub fn is_empty(&self) -> bool {
        self.passes.is_empty()
    }

    /// Drops every pass after the first one called `name` (`--stop-after`); an error when
    /// no pass has that name.
    pub fn stop_after(&mut self, name: &str) -> Result<(), PipelineError> {
        match self.passes.iter().position(|p| p.name() == name) {
            Some(i) => {
                self.passes.truncate(i + 1);
                Ok(())
            }
            None => Err(PipelineError::NoSuchPass {
                name: name.to_string(),
                pipeline: self.pipeline_string(),
            }),
        }
    }

    /// The pipeline as a pipeline string (`loss,autodiff`), or `none` when empty.
    pub fn pipeline_string(&self) -> String {
        if self.passes.is_empty() {
            "none".to_string()
        } else {
            self.names().join(",")
        }
    }

    /// Runs every pass in order on `graph`. The input is verified first and every pass's
    /// result after it; the first failure stops the run with an error naming the pass.
    /// `hooks` sees the input, the graph before and after every pass, and a failure.
    pub fn run(
        &self,
        graph: Graph,
        hooks: &mut dyn Instrumentation,
    ) -> Result<PipelineRun, PipelineError> {
        verify(&graph).map_err(|error| PipelineError::InvalidInput { error })?;
        hooks
            .pipeline_start(&graph)
            .map_err(|error| hook_error(0, "input", error))?;
        let mut current = graph;
        let mut records = Vec::with_capacity(self.passes.len());
        for (i, pass) in self.passes.iter().enumerate() {
            let index = i + 1;
            let name = pass.name();
            hooks
                .before_pass(index, name, &current)
                .map_err(|error| hook_error(index, name, error))?;
            let (record, next) = run_one(index, pass.as_ref(), &current, hooks)?;
            hooks
                .after_pass(&record, &next)
                .map_err(|error| hook_error(index, name, error))?;
            records.push(record);
            current = next;
        }
        Ok(PipelineRun {
            graph: current,
            records,
        })
    }
}

/// Runs and verifies one pass; on failure, tells the hooks before returning the error.
fn run_one(
    index: usize,
    pass: &dyn Pass,
    input: &Graph,
    hooks: &mut dyn Instrumentation,
) -> Result<(PassRecord, Graph), PipelineError> {
    let name = pass.name();
    let start = Instant::now();
    let result = pass.run(input);
    let seconds = start.elapsed().as_secs_f64();
    let failure = |kind, seconds, error: String| PassFailure {
        index,
        name: name.to_string(),
        seconds,
        nodes_before: input.len(),
        kind,
        error,
    };
    let out = match result {
        Ok(out) => out,
        Err(error) => {
            let f = failure(FailureKind::Error, seconds, error.to_string());
            let err = PipelineError::PassFailed {
                index,
                pass: name.to_string(),
                error,
            };
            return Err(report_failure(hooks, &f, input, None, err));
        }
    };
    let start = Instant::now();
    let verified = verify(&out.graph);
    let verify_seconds = start.elapsed().as_secs_f64();
    if let Err(error) = verified {
        let f = failure(
            FailureKind::InvalidGraph,
            seconds + verify_seconds,
            error.to_string(),
        );
        let err = PipelineError::InvalidGraph {
            index,
            pass: name.to_string(),
            error,
        };
        return Err(report_failure(hooks, &f, input, Some(&out.graph), err));
    }
    let d = diff(input, &out.graph);
    let record = PassRecord {
        index,
        name: name.to_string(),
        seconds,
        verify_seconds,
        nodes_before: input.len(),
        nodes_after: out.graph.len(),
        added: d.added,
        removed: d.removed,
        changed: d.changed,
        counters: out.counters,
    };
    Ok((record, out.graph))
}

/// Gives a failure to the hooks; returns `err`, or the hook's error (mentioning `err`)
/// when the hook itself fails.
fn report_failure(
    hooks: &mut dyn Instrumentation,
    failure: &PassFailure,
    input: &Graph,
    invalid: Option<&Graph>,
    err: PipelineError,
) -> PipelineError {
    match hooks.pass_failed(failure, input, invalid) {
        Ok(()) => err,
        Err(hook) => hook_error(
            failure.index,
            &failure.name,
            format!("{hook} (while recording this failure: {err})").into(),
        ),
    }
}

fn hook_error(index: usize, pass: &str, error: HookError) -> PipelineError {
    PipelineError::Instrumentation {
        index,
        pass: pass.to_string(),
        error,
    }
}
