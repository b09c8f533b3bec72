//! The VQA losses, attached to a forward graph as nodes scoped `loss`.
//!
//! [`attach_vqa_loss`] reads the answer logits `question_answering_score` `[B, C]`, adds a
//! graph input `labels` and an f32 scalar output `loss`. The label type picks the loss:
//!
//! - `labels: f32[B, C]` (soft VQA scores in `[0, 1]`): binary cross-entropy with logits,
//!   mean over all `B·C` elements, as optimum-graphcore trains LXMERT on VQA; in the stable
//!   form `max(x, 0) − x·z + log1p(exp(−|x|))`, which never overflows.
//! - `labels: i64[B]` (class ids in `[0, C)`): cross-entropy mean over `B`, as transformers'
//!   `LxmertForQuestionAnswering` (`CrossEntropyLoss()`), with a stable log-softmax
//!   (`x − max − log Σ exp(x − max)`) and a one-hot of the labels. torch's
//!   `ignore_index = -100` is not supported: every label must be a valid class.
//!
//! Logits of another floating-point type (fp16) are cast to f32 first, so the loss and its
//! reduction are always computed in f32.

use crate::emit::Emitter;
use tessera_ir::{BinaryOp, DType, Graph, IrError, NodeId, Op, ReduceKind, TensorType, UnaryOp};

/// The output holding the answer logits.
pub const LOGITS: &str = "question_answering_score";
/// The input the labels are fed through.
pub const LABELS: &str = "labels";
/// The loss output.
pub const LOSS: &str = "loss";
/// The scope of the loss nodes.
pub const SCOPE: &str = "loss";

/// Why a loss could not be attached.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// The graph has no answer logits output.
    #[error("the graph @{graph} has no question-answering head (output `{LOGITS}`)")]
    NoQaHead {
        /// The graph's name.
        graph: String,
    },
    /// The logits are not a floating-point `[B, C]` matrix.
    #[error("output `{LOGITS}` must be a floating-point [batch, answers] matrix, got {0}")]
    BadLogits(TensorType),
    /// The labels type matches neither form.
    #[error(
        "labels must be f32[{batch},{classes}] (soft VQA scores, binary cross-entropy) or \
         i64[{batch}] (class ids, cross-entropy), got {given}"
    )]
    BadLabels {
        /// The batch size `B` of the logits.
        batch: usize,
        /// The number of answers `C`.
        classes: usize,
        /// The given labels type.
        given: TensorType,
    },
    /// Building the loss nodes failed (a name clash with an existing `labels` input or
    /// `loss` output, or a bug).
    #[error("attaching the VQA loss: {0}")]
    Ir(#[from] IrError),
}

/// Returns `graph` with input `labels` of type `labels` and output `loss` (f32 scalar)
/// added; see the module documentation for the two forms.
pub fn attach_vqa_loss(graph: &Graph, labels: &TensorType) -> Result<Graph, LossError> {
    let logits = graph.output(LOGITS).map_err(|_| LossError::NoQaHead {
        graph: graph.name.clone(),
    })?;
    let logits_ty = graph
        .petgraph()
        .node_weight(logits)
        .map(|n| n.ty.clone())
        .ok_or_else(|| LossError::NoQaHead {
            graph: graph.name.clone(),
        })?;
    let [batch, classes] = logits_ty.shape[..] else {
        return Err(LossError::BadLogits(logits_ty));
    };
    if !logits_ty.dtype.is_float() {
        return Err(LossError::BadLogits(logits_ty));
    }
    let soft = TensorType::new(DType::F32, vec![batch, classes]);
    let hard = TensorType::new(DType::I64, vec![batch]);
    if *labels != soft && *labels != hard {
        return Err(LossError::BadLabels {
            batch,
            classes,
            given: labels.clone(),
        });
    }
    let mut g = graph.clone();
    let z = g.input(LABELS, labels.clone())?;
    let mut e = Emitter::new(&mut g, SCOPE);
    let x = e.cast(logits, DType::F32)?;
    let loss = if *labels == soft {
        bce_with_logits_mean(&mut e, x, z)?
    } else {
        cross_entropy_mean(&mut e, x, z, classes)?
    };
    g.set_output(LOSS, loss)?;
    Ok(g)
}

/// `mean(max(x, 0) − x·z + log1p(exp(−|x|)))` over every element.
fn bce_with_logits_mean(e: &mut Emitter, x: NodeId, z: NodeId) -> Result<NodeId, IrError> {
    let zero = e.scalar(0.0, DType::F32)?;
    let relu = e.binary(BinaryOp::Max, x, zero)?;
    let xz = e.mul(x, z)?;
    let abs = e.unary(UnaryOp::Abs, x)?;
    let nabs = e.neg(abs)?;
    let ex = e.unary(UnaryOp::Exp, nabs)?;
    let softplus = e.unary(UnaryOp::Log1p, ex)?;
    let d = e.sub(relu, xz)?;
    let per_element = e.add(d, softplus)?;
    e.reduce(ReduceKind::Mean, per_element, vec![0, 1], false)
}

/// `−mean_b log_softmax(x)[b, labels[b]]`.
fn cross_entropy_mean(
    e: &mut Emitter,
    x: NodeId,
    labels: NodeId,
    classes: usize,
) -> Result<NodeId, IrError> {
    let max = e.reduce(ReduceKind::Max, x, vec![1], true)?;
    let shifted = e.sub(x, max)?;
    let ex = e.unary(UnaryOp::Exp, shifted)?;
    let sum = e.sum(ex, vec![1], true)?;
    let lse = e.unary(UnaryOp::Log, sum)?;
    let log_probs = e.sub(shifted, lse)?;
    let one_hot = e.op(
        Op::OneHot {
            depth: classes,
            dtype: DType::F32,
        },
        &[labels],
    )?;
    let picked = e.mul(one_hot, log_probs)?;
    let per_example = e.sum(picked, vec![1], false)?;
    let mean = e.mean(per_example, vec![0], false)?;
    e.neg(mean)
}

#[cfg(test)]
mod tests;
