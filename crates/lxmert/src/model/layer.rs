//! LXMERT's transformer layers as IR (transformers `modeling_lxmert.py`:
//! `LxmertIntermediate`, `LxmertOutput`, `LxmertLayer`, `LxmertXLayer`).
//!
//! `LxmertLayer` is a post-LN BERT layer, used for both the language and the
//! object-relationship encoders. `LxmertXLayer` is the cross-modality layer: one shared
//! `visual_attention` module serves both directions (language attends to vision with the
//! visual mask, vision attends to language with the text mask), each direction reading the
//! other modality's states from before the layer; then per-modality self-attention, then
//! per-modality feed-forward.

use super::attention::{LxmertCrossAttentionLayer, LxmertSelfAttentionLayer};
use super::ctx::Ctx;
use super::nn::{LayerNorm, Linear};
use crate::config::LxmertConfig;
use crate::error::BuildError;
use crate::params::{join, ParamRegistry};
use tessera_ir::{BinaryOp, NodeId, Op, UnaryOp};

/// Upstream: `class LxmertIntermediate`: `gelu(dense(h))` (exact erf GELU).
pub(crate) struct LxmertIntermediate {
    path: String,
    dense: Linear,
}

impl LxmertIntermediate {
    /// Registers `dense` (`Linear(H, intermediate_size)`) under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        LxmertIntermediate {
            path: path.to_string(),
            dense: Linear::new(
                reg,
                &join(path, "dense"),
                c.hidden_size,
                c.intermediate_size,
            ),
        }
    }

    /// Dense then activation (`hidden_act` = `gelu`, checked by config validation).
    pub fn forward(&self, cx: &mut Ctx, h: NodeId) -> Result<NodeId, BuildError> {
        let h = self.dense.forward(cx, h)?;
        cx.op(Op::Unary(UnaryOp::Gelu), &[h], &self.path)
    }
}

/// Upstream: `class LxmertOutput`: `LayerNorm(dense(h) + input)`.
pub(crate) struct LxmertOutput {
    path: String,
    dense: Linear,
    layer_norm: LayerNorm,
}

impl LxmertOutput {
    /// Registers `dense` (`Linear(intermediate_size, H)`) and `LayerNorm` under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        LxmertOutput {
            path: path.to_string(),
            dense: Linear::new(
                reg,
                &join(path, "dense"),
                c.intermediate_size,
                c.hidden_size,
            ),
            layer_norm: LayerNorm::new(reg, &join(path, "LayerNorm"), c.hidden_size),
        }
    }

    /// Projection, residual add of `input`, post-LayerNorm.
    pub fn forward(&self, cx: &mut Ctx, h: NodeId, input: NodeId) -> Result<NodeId, BuildError> {
        let h = self.dense.forward(cx, h)?;
        let h = cx.binary(BinaryOp::Add, h, input, &self.path)?;
        self.layer_norm.forward(cx, h)
    }
}

/// Upstream: `class LxmertLayer` (`attention`, `intermediate`, `output`).
pub(crate) struct LxmertLayer {
    attention: LxmertSelfAttentionLayer,
    intermediate: LxmertIntermediate,
    output: LxmertOutput,
}

impl LxmertLayer {
    /// Registers the layer's parameters under `path` (e.g. `lxmert.encoder.layer.0`).
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        LxmertLayer {
            attention: LxmertSelfAttentionLayer::new(reg, &join(path, "attention"), c),
            intermediate: LxmertIntermediate::new(reg, &join(path, "intermediate"), c),
            output: LxmertOutput::new(reg, &join(path, "output"), c),
        }
    }

    /// Self-attention with `mask`, then the feed-forward block.
    pub fn forward(
        &self,
        cx: &mut Ctx,
        h: NodeId,
        mask: Option<NodeId>,
    ) -> Result<NodeId, BuildError> {
        let att = self.attention.forward(cx, h, mask)?;
        let inter = self.intermediate.forward(cx, att)?;
        self.output.forward(cx, inter, att)
    }
}

/// Upstream: `class LxmertXLayer`, the cross-modality layer.
pub(crate) struct LxmertXLayer {
    visual_attention: LxmertCrossAttentionLayer,
    lang_self_att: LxmertSelfAttentionLayer,
    visn_self_att: LxmertSelfAttentionLayer,
    lang_inter: LxmertIntermediate,
    lang_output: LxmertOutput,
    visn_inter: LxmertIntermediate,
    visn_output: LxmertOutput,
}

/// The additive attention masks of the two modalities.
#[derive(Clone, Copy)]
pub(crate) struct Masks {
    /// Text mask `[B, 1, 1, S]`.
    pub lang: Option<NodeId>,
    /// Visual mask `[B, 1, 1, N]`, if the graph has that input.
    pub visn: Option<NodeId>,
}

impl LxmertXLayer {
    /// Registers the layer's parameters under `path` (e.g. `lxmert.encoder.x_layers.0`),
    /// in upstream `__init__` order.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let sub = |name: &str| join(path, name);
        LxmertXLayer {
            visual_attention: LxmertCrossAttentionLayer::new(reg, &sub("visual_attention"), c),
            lang_self_att: LxmertSelfAttentionLayer::new(reg, &sub("lang_self_att"), c),
            visn_self_att: LxmertSelfAttentionLayer::new(reg, &sub("visn_self_att"), c),
            lang_inter: LxmertIntermediate::new(reg, &sub("lang_inter"), c),
            lang_output: LxmertOutput::new(reg, &sub("lang_output"), c),
            visn_inter: LxmertIntermediate::new(reg, &sub("visn_inter"), c),
            visn_output: LxmertOutput::new(reg, &sub("visn_output"), c),
        }
    }

    /// Cross attention (both directions, from the layer's inputs `lang` `[B, S, H]` and
    /// `visn` `[B, N, H]`), self attention, FFNs. Returns the new `(lang, visn)` states.
    pub fn forward(
        &self,
        cx: &mut Ctx,
        lang_in: NodeId,
        visn_in: NodeId,
        masks: Masks,
    ) -> Result<(NodeId, NodeId), BuildError> {
        // cross_att: both directions read the states from before the layer
        let lang = self
            .visual_attention
            .forward(cx, lang_in, visn_in, masks.visn)?;
        let visn = self
            .visual_attention
            .forward(cx, visn_in, lang_in, masks.lang)?;
        // self_att
        let lang = self.lang_self_att.forward(cx, lang, masks.lang)?;
        let visn = self.visn_self_att.forward(cx, visn, masks.visn)?;
        // output_fc
        let lang_inter = self.lang_inter.forward(cx, lang)?;
        let visn_inter = self.visn_inter.forward(cx, visn)?;
        let lang = self.lang_output.forward(cx, lang_inter, lang)?;
        let visn = self.visn_output.forward(cx, visn_inter, visn)?;
        Ok((lang, visn))
    }
}
