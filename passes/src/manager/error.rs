//! Errors of a pipeline run; every one names the pass it is about.

use super::instrument::HookError;
use super::pass::PassError;
use tessera_ir::VerifyError;

/// Why a pipeline run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The graph given to the pipeline does not verify.
    #[error("the input graph is invalid: {error}")]
    InvalidInput {
        /// The verifier's report.
        #[source]
        error: VerifyError,
    },
    /// A pass returned an error.
    #[error("pass `{pass}` (#{index}) failed: {error}")]
    PassFailed {
        /// 1-based position of the pass.
        index: usize,
        /// The pass's name.
        pass: String,
        /// The pass's error (it names the node).
        #[source]
        error: PassError,
    },
    /// A pass returned a graph the verifier rejects.
    #[error("pass `{pass}` (#{index}) produced an invalid graph: {error}")]
    InvalidGraph {
        /// 1-based position of the pass.
        index: usize,
        /// The pass's name.
        pass: String,
        /// The verifier's report (every violation with its node).
        #[source]
        error: VerifyError,
    },
    /// An instrumentation hook (printing, dumping) failed.
    #[error("instrumentation of pass `{pass}` (#{index}) failed: {error}")]
    Instrumentation {
        /// 1-based position of the pass (0: before the first pass).
        index: usize,
        /// The pass's name (`input` before the first pass).
        pass: String,
        /// The hook's error.
        #[source]
        error: HookError,
    },
    /// `stop_after` names a pass that is not in the pipeline.
    #[error("cannot stop after `{name}`: the pipeline ({pipeline}) has no such pass")]
    NoSuchPass {
        /// The name asked for.
        name: String,
        /// The pipeline's pass names, comma-separated (`none` when empty).
        pipeline: String,
    },
}

impl PipelineError {
    /// The 1-based index and name of the pass the error is about, if any.
    pub fn pass(&self) -> Option<(usize, &str)> {
        match self {
            PipelineError::PassFailed { index, pass, .. }
            | PipelineError::InvalidGraph { index, pass, .. }
            | PipelineError::Instrumentation { index, pass, .. } => Some((*index, pass)),
            PipelineError::InvalidInput { .. } | PipelineError::NoSuchPass { .. } => None,
        }
    }
}
