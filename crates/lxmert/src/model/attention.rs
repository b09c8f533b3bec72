//! LXMERT's attention modules as IR (transformers `modeling_lxmert.py`: `LxmertAttention`,
//! `LxmertAttentionOutput`, `LxmertSelfAttentionLayer`, `LxmertCrossAttentionLayer`).
//!
//! Heads are split with reshape + transpose exactly as `transpose_for_scores` does; the
//! scores `q k^T` are divided by `sqrt(head_dim)` after the matmul (where transformers
//! divides), the additive mask (if any) is added, softmax runs over the last axis, and the
//! heads are merged back with transpose + reshape. Dropout is absent (eval mode).

use super::ctx::Ctx;
use super::nn::{LayerNorm, Linear};
use crate::config::LxmertConfig;
use crate::error::BuildError;
use crate::params::{join, ParamRegistry};
use tessera_ir::{BinaryOp, NodeId, Op};

/// Upstream: `class LxmertAttention` (multi-head attention of `hidden` over `context`).
pub(crate) struct LxmertAttention {
    path: String,
    heads: usize,
    head_dim: usize,
    query: Linear,
    key: Linear,
    value: Linear,
}

impl LxmertAttention {
    /// Registers `query`, `key`, `value` (all `Linear(H, H)`) under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let h = c.hidden_size;
        LxmertAttention {
            path: path.to_string(),
            heads: c.num_attention_heads,
            head_dim: c.head_dim(),
            query: Linear::new(reg, &join(path, "query"), h, h),
            key: Linear::new(reg, &join(path, "key"), h, h),
            value: Linear::new(reg, &join(path, "value"), h, h),
        }
    }

    /// `[B, L, H] -> [B, heads, L, head_dim]` (upstream `transpose_for_scores`).
    fn split_heads(&self, cx: &mut Ctx, x: NodeId) -> Result<NodeId, BuildError> {
        let (b, l) = batch_and_len(cx, x);
        let x = cx.reshape(x, vec![b, l, self.heads, self.head_dim], &self.path)?;
        cx.op(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[x],
            &self.path,
        )
    }

    /// The context layer `[B, Lq, H]` of `hidden` `[B, Lq, H]` attending over `context`
    /// `[B, Lk, H]`, with the additive `mask` `[B, 1, 1, Lk]` if given.
    pub fn forward(
        &self,
        cx: &mut Ctx,
        hidden: NodeId,
        context: NodeId,
        mask: Option<NodeId>,
    ) -> Result<NodeId, BuildError> {
        let p = self.path.as_str();
        let q = self.query.forward(cx, hidden)?;
        let k = self.key.forward(cx, context)?;
        let v = self.value.forward(cx, context)?;
        let q = self.split_heads(cx, q)?;
        let k = self.split_heads(cx, k)?;
        let v = self.split_heads(cx, v)?;
        let scores = cx.op(matmul(false, true), &[q, k], p)?;
        let scale = cx.scalar((self.head_dim as f64).sqrt(), p)?;
        let mut scores = cx.binary(BinaryOp::Div, scores, scale, p)?;
        if let Some(mask) = mask {
            scores = cx.binary(BinaryOp::Add, scores, mask, p)?;
        }
        let probs = cx.op(Op::Softmax, &[scores], p)?;
        let ctx = cx.op(matmul(false, false), &[probs, v], p)?;
        let ctx = cx.op(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[ctx],
            p,
        )?;
        let (b, l) = batch_and_len(cx, ctx);
        cx.reshape(ctx, vec![b, l, self.heads * self.head_dim], p)
    }
}

/// Leading two extents of `x` (batch and sequence length); 0 for missing axes, which
/// makes the following node ill-typed rather than panicking.
fn batch_and_len(cx: &Ctx, x: NodeId) -> (usize, usize) {
    let s = cx.shape(x);
    (
        s.first().copied().unwrap_or(0),
        s.get(1).copied().unwrap_or(0),
    )
}

fn matmul(transpose_a: bool, transpose_b: bool) -> Op {
    Op::MatMul {
        transpose_a,
        transpose_b,
        half_partials: false,
    }
}

/// Upstream: `class LxmertAttentionOutput`: `LayerNorm(dense(h) + input)`.
pub(crate) struct LxmertAttentionOutput {
    path: String,
    dense: Linear,
    layer_norm: LayerNorm,
}

impl LxmertAttentionOutput {
    /// Registers `dense` (`Linear(H, H)`) and `LayerNorm` under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let h = c.hidden_size;
        LxmertAttentionOutput {
            path: path.to_string(),
            dense: Linear::new(reg, &join(path, "dense"), h, h),
            layer_norm: LayerNorm::new(reg, &join(path, "LayerNorm"), h),
        }
    }

    /// Projection, residual add of `input`, post-LayerNorm.
    pub fn forward(&self, cx: &mut Ctx, h: NodeId, input: NodeId) -> Result<NodeId, BuildError> {
        let h = self.dense.forward(cx, h)?;
        let h = cx.binary(BinaryOp::Add, h, input, &self.path)?;
        self.layer_norm.forward(cx, h)
    }
}

/// Upstream: `class LxmertSelfAttentionLayer` (`self` + `output`).
pub(crate) struct LxmertSelfAttentionLayer {
    attention: LxmertAttention,
    output: LxmertAttentionOutput,
}

impl LxmertSelfAttentionLayer {
    /// Registers `self.*` and `output.*` under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        LxmertSelfAttentionLayer {
            attention: LxmertAttention::new(reg, &join(path, "self"), c),
            output: LxmertAttentionOutput::new(reg, &join(path, "output"), c),
        }
    }

    /// `input` attending over itself with `mask`.
    pub fn forward(
        &self,
        cx: &mut Ctx,
        input: NodeId,
        mask: Option<NodeId>,
    ) -> Result<NodeId, BuildError> {
        let ctx = self.attention.forward(cx, input, input, mask)?;
        self.output.forward(cx, ctx, input)
    }
}

/// Upstream: `class LxmertCrossAttentionLayer` (`att` + `output`).
pub(crate) struct LxmertCrossAttentionLayer {
    att: LxmertAttention,
    output: LxmertAttentionOutput,
}

impl LxmertCrossAttentionLayer {
    /// Registers `att.*` and `output.*` under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        LxmertCrossAttentionLayer {
            att: LxmertAttention::new(reg, &join(path, "att"), c),
            output: LxmertAttentionOutput::new(reg, &join(path, "output"), c),
        }
    }

    /// `input` attending over `context` with the context's `mask`.
    pub fn forward(
        &self,
        cx: &mut Ctx,
        input: NodeId,
        context: NodeId,
        mask: Option<NodeId>,
    ) -> Result<NodeId, BuildError> {
        let ctx = self.att.forward(cx, input, context, mask)?;
        self.output.forward(cx, ctx, input)
    }
}
