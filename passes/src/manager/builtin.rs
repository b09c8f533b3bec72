//! The passes the pipeline strings name, as [`Pass`] wrappers of the library functions:
//! `loss` ([`attach_vqa_loss`]), `autodiff` ([`autodiff`], or [`autodiff_scaled`] under
//! loss scaling), `mixed-precision` ([`mixed_precision`]), `fold-casts` ([`fold_casts`])
//! and `dce` (dead-code elimination).

use super::pass::{count, Pass, PassError, PassOutput};
use crate::autodiff::{autodiff, is_backward_scope, AutodiffOptions, GRAD_PREFIX};
use crate::loss::{attach_vqa_loss, LOGITS};
use crate::mixed_precision::{autodiff_scaled, fold_casts, mixed_precision, PrecisionConfig};
use tessera_ir::{DType, Graph, Op, TensorType};

/// Which VQA labels the `loss` pass expects, and so which loss it builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LabelsKind {
    /// `f32[B, C]` soft VQA scores: binary cross-entropy (optimum-graphcore's training).
    #[default]
    Soft,
    /// `i64[B]` class ids: cross-entropy (transformers' `LxmertForQuestionAnswering`).
    Hard,
}

impl LabelsKind {
    /// The labels type for `graph`, from the shape `[B, C]` of its answer logits; `None`
    /// when the graph has no such output (the loss pass then reports why).
    pub fn labels_type(self, graph: &Graph) -> Option<TensorType> {
        let logits = graph.output(LOGITS).ok()?;
        let [batch, classes] = graph.node(logits).ty.shape[..] else {
            return None;
        };
        Some(match self {
            LabelsKind::Soft => TensorType::new(DType::F32, vec![batch, classes]),
            LabelsKind::Hard => TensorType::new(DType::I64, vec![batch]),
        })
    }
}

/// `loss`: attaches the VQA loss to the answer logits (input `labels`, output `loss`).
#[derive(Debug, Clone, Default)]
pub struct LossPass {
    /// The labels form.
    pub labels: LabelsKind,
}

impl Pass for LossPass {
    fn name(&self) -> &str {
        "loss"
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        // Without `[B, C]` logits any type will do: `attach_vqa_loss` reports the logits.
        let labels = self
            .labels
            .labels_type(graph)
            .unwrap_or_else(|| TensorType::scalar(DType::F32));
        Ok(PassOutput::new(attach_vqa_loss(graph, &labels)?))
    }
}

/// `autodiff`: differentiates the `loss` output with respect to every parameter.
#[derive(Debug, Clone, Default)]
pub struct AutodiffPass {
    /// The autodiff options (loss name, seed scale).
    pub options: AutodiffOptions,
    /// Loss scaling: differentiate `loss · loss_scale`, the scale being the new f32 scalar
    /// input `loss_scale` ([`autodiff_scaled`]); gradients come out scaled.
    pub scaled: bool,
}

impl Pass for AutodiffPass {
    fn name(&self) -> &str {
        "autodiff"
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let out = if self.scaled {
            autodiff_scaled(graph, &self.options)?
        } else {
            autodiff(graph, &self.options)?
        };
        let gradients = out
            .outputs()
            .iter()
            .filter(|o| o.name.starts_with(GRAD_PREFIX))
            .count();
        let backward = out
            .node_ids()
            .filter(|&n| is_backward_scope(&out.node(n).scope))
            .count();
        Ok(PassOutput::new(out)
            .with_counter("gradients", count(gradients))
            .with_counter("backward_nodes", count(backward)))
    }
}

/// `dce`: removes every node no output depends on, except graph inputs (they are the
/// graph's signature: feeds stay valid).
#[derive(Debug, Clone, Copy, Default)]
pub struct DcePass;

impl Pass for DcePass {
    fn name(&self) -> &str {
        "dce"
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let live = graph.live_set();
        let dead: Vec<_> = graph
            .node_ids()
            .filter(|n| !live.contains(n) && !matches!(graph.node(*n).op, Op::Input { .. }))
            .collect();
        let mut out = graph.clone();
        let params = dead
            .iter()
            .filter(|&&n| matches!(graph.node(n).op, Op::Param { .. }))
            .count();
        for &n in &dead {
            out.remove(n);
        }
        Ok(PassOutput::new(out).with_counter("dead_params", count(params)))
    }
}

/// `mixed-precision`: fp16 where safe, fp32 where not ([`mixed_precision`]); its counters
/// are the pass's statistics (casts inserted and folded, bytes moved to fp16, ...).
#[derive(Debug, Clone, Default)]
pub struct MixedPrecisionPass {
    /// The pass's configuration.
    pub config: PrecisionConfig,
}

impl Pass for MixedPrecisionPass {
    fn name(&self) -> &str {
        crate::mixed_precision::NAME
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let (out, stats) = mixed_precision(graph, &self.config)?;
        Ok(PassOutput {
            graph: out,
            counters: stats.counters(),
        })
    }
}

/// `fold-casts`: removes redundant casts (to the type a value already has, and
/// `cast(cast(x))` through an exact widening), exactly as the mixed-precision pass folds
/// its own ([`fold_casts`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldCastsPass;

impl Pass for FoldCastsPass {
    fn name(&self) -> &str {
        "fold-casts"
    }

    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let mut out = graph.clone();
        let folded = fold_casts(&mut out);
        Ok(PassOutput::new(out)
            .with_counter("casts_folded", i64::try_from(folded).unwrap_or(i64::MAX)))
    }
}
