//! The two input encoders as IR (transformers `modeling_lxmert.py`: `LxmertEmbeddings`,
//! `LxmertVisualFeatureEncoder`).
//!
//! Text: `LayerNorm(word[input_ids] + position[0..S) + token_type[token_type_ids])`; the
//! position ids are an `iota` of length S whose gathered rows broadcast over the batch.
//! Vision: `(LayerNorm(visn_fc(feats)) + LayerNorm(box_fc(pos))) / 2`.

use super::ctx::Ctx;
use super::nn::{Embedding, LayerNorm, Linear};
use crate::config::LxmertConfig;
use crate::error::BuildError;
use crate::params::{join, ParamRegistry};
use tessera_ir::{BinaryOp, DType, NodeId, Op, TensorType};

/// Upstream: `class LxmertEmbeddings`.
pub(crate) struct LxmertEmbeddings {
    path: String,
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

impl LxmertEmbeddings {
    /// Registers the three tables (all with `padding_idx=0`) and `LayerNorm` under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let h = c.hidden_size;
        LxmertEmbeddings {
            path: path.to_string(),
            word_embeddings: Embedding::new(reg, &join(path, "word_embeddings"), c.vocab_size, h),
            position_embeddings: Embedding::new(
                reg,
                &join(path, "position_embeddings"),
                c.max_position_embeddings,
                h,
            ),
            token_type_embeddings: Embedding::new(
                reg,
                &join(path, "token_type_embeddings"),
                c.type_vocab_size,
                h,
            ),
            layer_norm: LayerNorm::new(reg, &join(path, "LayerNorm"), h),
        }
    }

    /// The embedding output `[B, S, H]` of `input_ids` and `token_type_ids` (i64 `[B, S]`).
    pub fn forward(
        &self,
        cx: &mut Ctx,
        input_ids: NodeId,
        token_type_ids: NodeId,
    ) -> Result<NodeId, BuildError> {
        let p = self.path.as_str();
        let seq_len = cx.shape(input_ids).get(1).copied().unwrap_or(0);
        let words = self.word_embeddings.forward(cx, input_ids)?;
        let position_ids = cx.op(
            Op::Iota {
                axis: 0,
                ty: TensorType::new(DType::I64, vec![seq_len]),
            },
            &[],
            p,
        )?;
        let positions = self.position_embeddings.forward(cx, position_ids)?;
        let types = self.token_type_embeddings.forward(cx, token_type_ids)?;
        let sum = cx.binary(BinaryOp::Add, words, positions, p)?;
        let sum = cx.binary(BinaryOp::Add, sum, types, p)?;
        self.layer_norm.forward(cx, sum)
    }
}

/// Upstream: `class LxmertVisualFeatureEncoder` (registered as `encoder.visn_fc`).
pub(crate) struct LxmertVisualFeatureEncoder {
    path: String,
    visn_fc: Linear,
    visn_layer_norm: LayerNorm,
    box_fc: Linear,
    box_layer_norm: LayerNorm,
}

impl LxmertVisualFeatureEncoder {
    /// Registers `visn_fc`, `visn_layer_norm`, `box_fc`, `box_layer_norm` under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let h = c.hidden_size;
        LxmertVisualFeatureEncoder {
            path: path.to_string(),
            visn_fc: Linear::new(reg, &join(path, "visn_fc"), c.visual_feat_dim, h),
            visn_layer_norm: LayerNorm::new(reg, &join(path, "visn_layer_norm"), h),
            box_fc: Linear::new(reg, &join(path, "box_fc"), c.visual_pos_dim, h),
            box_layer_norm: LayerNorm::new(reg, &join(path, "box_layer_norm"), h),
        }
    }

    /// The visual embedding `[B, N, H]` of `feats` `[B, N, F]` and boxes `pos` `[B, N, P]`.
    pub fn forward(&self, cx: &mut Ctx, feats: NodeId, pos: NodeId) -> Result<NodeId, BuildError> {
        let x = self.visn_fc.forward(cx, feats)?;
        let x = self.visn_layer_norm.forward(cx, x)?;
        let y = self.box_fc.forward(cx, pos)?;
        let y = self.box_layer_norm.forward(cx, y)?;
        let sum = cx.binary(BinaryOp::Add, x, y, &self.path)?;
        let two = cx.scalar(2.0, &self.path)?;
        cx.binary(BinaryOp::Div, sum, two, &self.path)
    }
}
