//! Instrumentation hooks: code run before and after every pass, used by the command line to
//! print IR (`--print-before`, `--print-after`) and to dump it (`--dump-dir`).
//!
//! Hooks may fail (a dump that cannot be written); the manager stops the pipeline and
//! reports the hook's error with the pass it was about.

use super::record::{PassEntry, PassFailure, PassRecord};
use tessera_ir::Graph;

/// Why a hook failed.
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Callbacks around the passes of a pipeline run. Every method defaults to doing nothing.
pub trait Instrumentation {
    /// Called once with the (verified) input graph, before any pass.
    fn pipeline_start(&mut self, _input: &Graph) -> Result<(), HookError> {
        Ok(())
    }

    /// Called before pass number `index` (1-based) runs on `graph`.
    fn before_pass(&mut self, _index: usize, _name: &str, _graph: &Graph) -> Result<(), HookError> {
        Ok(())
    }

    /// Called after a pass succeeded and its result `graph` verified.
    fn after_pass(&mut self, _record: &PassRecord, _graph: &Graph) -> Result<(), HookError> {
        Ok(())
    }

    /// Called when a pass failed: `input` is the graph it was given, `invalid` the graph
    /// it produced when the verifier rejected it.
    fn pass_failed(
        &mut self,
        _failure: &PassFailure,
        _input: &Graph,
        _invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        Ok(())
    }
}

/// Instrumentation that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInstrumentation;

impl Instrumentation for NoInstrumentation {}

/// Runs two instrumentations, `0` first.
pub struct Both<A, B>(pub A, pub B);

impl<A: Instrumentation, B: Instrumentation> Instrumentation for Both<A, B> {
    fn pipeline_start(&mut self, input: &Graph) -> Result<(), HookError> {
        self.0.pipeline_start(input)?;
        self.1.pipeline_start(input)
    }

    fn before_pass(&mut self, index: usize, name: &str, graph: &Graph) -> Result<(), HookError> {
        self.0.before_pass(index, name, graph)?;
        self.1.before_pass(index, name, graph)
    }

    fn after_pass(&mut self, record: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        self.0.after_pass(record, graph)?;
        self.1.after_pass(record, graph)
    }

    fn pass_failed(
        &mut self,
        failure: &PassFailure,
        input: &Graph,
        invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        let first = self.0.pass_failed(failure, input, invalid);
        let second = self.1.pass_failed(failure, input, invalid);
        first.and(second)
    }
}

impl<T: Instrumentation + ?Sized> Instrumentation for &mut T {
    fn pipeline_start(&mut self, input: &Graph) -> Result<(), HookError> {
        (**self).pipeline_start(input)
    }

    fn before_pass(&mut self, index: usize, name: &str, graph: &Graph) -> Result<(), HookError> {
        (**self).before_pass(index, name, graph)
    }

    fn after_pass(&mut self, record: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        (**self).after_pass(record, graph)
    }

    fn pass_failed(
        &mut self,
        failure: &PassFailure,
        input: &Graph,
        invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        (**self).pass_failed(failure, input, invalid)
    }
}

impl<T: Instrumentation> Instrumentation for Option<T> {
    fn pipeline_start(&mut self, input: &Graph) -> Result<(), HookError> {
        self.as_mut().map_or(Ok(()), |t| t.pipeline_start(input))
    }

    fn before_pass(&mut self, index: usize, name: &str, graph: &Graph) -> Result<(), HookError> {
        self.as_mut()
            .map_or(Ok(()), |t| t.before_pass(index, name, graph))
    }

    fn after_pass(&mut self, record: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        self.as_mut()
            .map_or(Ok(()), |t| t.after_pass(record, graph))
    }

    fn pass_failed(
        &mut self,
        failure: &PassFailure,
        input: &Graph,
        invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        self.as_mut()
            .map_or(Ok(()), |t| t.pass_failed(failure, input, invalid))
    }
}

/// Collects an entry per pass, completed or failed (for the timing table after a failure).
#[derive(Debug, Clone, Default)]
pub struct EntryLog {
    /// The entries, in pipeline order.
    pub entries: Vec<PassEntry>,
}

impl Instrumentation for EntryLog {
    fn after_pass(&mut self, record: &PassRecord, _graph: &Graph) -> Result<(), HookError> {
        self.entries.push(PassEntry::Ok(record.clone()));
        Ok(())
    }

    fn pass_failed(
        &mut self,
        failure: &PassFailure,
        _input: &Graph,
        _invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        self.entries.push(PassEntry::Failed(failure.clone()));
        Ok(())
    }
}
