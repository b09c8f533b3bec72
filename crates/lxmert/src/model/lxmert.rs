//! The whole model as IR (transformers `modeling_lxmert.py`: `LxmertEncoder`,
//! `LxmertPooler`, `LxmertModel`, `LxmertVisualAnswerHead`, `LxmertForQuestionAnswering`).
//!
//! Order as upstream: embeddings and the visual feature encoder, then the language layers,
//! then the object-relationship layers, then the cross-modality layers; the pooler takes
//! the language output's first token; the answer head maps the pooled output to the QA
//! logits. Each 0/1 mask is turned into the additive `(1 - mask) * finfo(f32).min` once,
//! in scope `lxmert`, as `LxmertModel.forward` does.

use super::ctx::Ctx;
use super::embeddings::{LxmertEmbeddings, LxmertVisualFeatureEncoder};
use super::layer::{LxmertLayer, LxmertXLayer, Masks};
use super::nn::{LayerNorm, Linear};
use crate::config::LxmertConfig;
use crate::error::BuildError;
use crate::params::{join, ParamRegistry};
use tessera_ir::{BinaryOp, DType, NodeId, Op, UnaryOp};

/// Upstream: `class LxmertEncoder` (`visn_fc`, `layer`, `x_layers`, `r_layers`).
pub(crate) struct LxmertEncoder {
    visn_fc: LxmertVisualFeatureEncoder,
    layer: Vec<LxmertLayer>,
    x_layers: Vec<LxmertXLayer>,
    r_layers: Vec<LxmertLayer>,
}

/// The encoder's results: final states and the per-layer hidden states.
pub(crate) struct EncoderOutput {
    /// Output of the visual feature encoder (fixture tap `visual_embedding_output`).
    pub visual_embedding: NodeId,
    /// Language states after each language layer, then after each cross layer.
    pub language_hidden_states: Vec<NodeId>,
    /// Vision states after each relationship layer, then after each cross layer.
    pub vision_hidden_states: Vec<NodeId>,
    /// Final language states.
    pub lang: NodeId,
    /// Final vision states.
    pub visn: NodeId,
}

impl LxmertEncoder {
    /// Registers all encoder parameters under `path` in upstream `__init__` order.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let visn_fc = LxmertVisualFeatureEncoder::new(reg, &join(path, "visn_fc"), c);
        let layer = (0..c.l_layers)
            .map(|i| LxmertLayer::new(reg, &format!("{path}.layer.{i}"), c))
            .collect();
        let x_layers = (0..c.x_layers)
            .map(|i| LxmertXLayer::new(reg, &format!("{path}.x_layers.{i}"), c))
            .collect();
        let r_layers = (0..c.r_layers)
            .map(|i| LxmertLayer::new(reg, &format!("{path}.r_layers.{i}"), c))
            .collect();
        LxmertEncoder {
            visn_fc,
            layer,
            x_layers,
            r_layers,
        }
    }

    /// Runs the three encoders on the embedded text `lang` and the raw object features
    /// `feats` and boxes `pos`.
    pub fn forward(
        &self,
        cx: &mut Ctx,
        lang: NodeId,
        masks: Masks,
        feats: NodeId,
        pos: NodeId,
    ) -> Result<EncoderOutput, BuildError> {
        let visual_embedding = self.visn_fc.forward(cx, feats, pos)?;
        let (mut lang, mut visn) = (lang, visual_embedding);
        let mut language_hidden_states = Vec::new();
        let mut vision_hidden_states = Vec::new();
        for layer in &self.layer {
            lang = layer.forward(cx, lang, masks.lang)?;
            language_hidden_states.push(lang);
        }
        for layer in &self.r_layers {
            visn = layer.forward(cx, visn, masks.visn)?;
            vision_hidden_states.push(visn);
        }
        for layer in &self.x_layers {
            (lang, visn) = layer.forward(cx, lang, visn, masks)?;
            vision_hidden_states.push(visn);
            language_hidden_states.push(lang);
        }
        Ok(EncoderOutput {
            visual_embedding,
            language_hidden_states,
            vision_hidden_states,
            lang,
            visn,
        })
    }
}

/// Upstream: `class LxmertPooler`: `tanh(dense(h[:, 0]))`.
pub(crate) struct LxmertPooler {
    path: String,
    dense: Linear,
}

impl LxmertPooler {
    /// Registers `dense` (`Linear(H, H)`) under `path`.
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let h = c.hidden_size;
        LxmertPooler {
            path: path.to_string(),
            dense: Linear::new(reg, &join(path, "dense"), h, h),
        }
    }

    /// Pools `[B, S, H]` states to `[B, H]` from the first token.
    pub fn forward(&self, cx: &mut Ctx, h: NodeId) -> Result<NodeId, BuildError> {
        let p = self.path.as_str();
        let shape = cx.shape(h);
        let first = cx.op(
            Op::Slice {
                axis: 1,
                start: 0,
                end: 1,
            },
            &[h],
            p,
        )?;
        let (b, hid) = (
            shape.first().copied().unwrap_or(0),
            shape.get(2).copied().unwrap_or(0),
        );
        let first = cx.reshape(first, vec![b, hid], p)?;
        let pooled = self.dense.forward(cx, first)?;
        cx.op(Op::Unary(UnaryOp::Tanh), &[pooled], p)
    }
}

/// The graph inputs `LxmertModel` reads.
pub(crate) struct ModelInputs {
    /// `input_ids` i64 `[B, S]`.
    pub input_ids: NodeId,
    /// `attention_mask` i64 `[B, S]`.
    pub attention_mask: NodeId,
    /// `token_type_ids` i64 `[B, S]`.
    pub token_type_ids: NodeId,
    /// `visual_feats` f32 `[B, N, F]`.
    pub visual_feats: NodeId,
    /// `visual_pos` f32 `[B, N, P]`.
    pub visual_pos: NodeId,
    /// `visual_attention_mask` i64 `[B, N]`, when the graph has it.
    pub visual_attention_mask: Option<NodeId>,
}

/// `LxmertModel`'s results plus the fixture's taps.
pub(crate) struct ModelOutput {
    /// Output of the embeddings (tap `embedding_output`).
    pub embedding_output: NodeId,
    /// The encoder's results (final states are `language_output` and `vision_output`).
    pub encoder: EncoderOutput,
    /// `pooled_output` `[B, H]`.
    pub pooled_output: NodeId,
}

/// Upstream: `class LxmertModel` (`embeddings`, `encoder`, `pooler`).
pub(crate) struct LxmertModel {
    path: String,
    embeddings: LxmertEmbeddings,
    encoder: LxmertEncoder,
    pooler: LxmertPooler,
}

impl LxmertModel {
    /// Registers all backbone parameters under `path` (`lxmert`).
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        LxmertModel {
            path: path.to_string(),
            embeddings: LxmertEmbeddings::new(reg, &join(path, "embeddings"), c),
            encoder: LxmertEncoder::new(reg, &join(path, "encoder"), c),
            pooler: LxmertPooler::new(reg, &join(path, "pooler"), c),
        }
    }

    /// `[B, L]` 0/1 mask to the additive `(1 - mask) * finfo(f32).min` of shape
    /// `[B, 1, 1, L]` (upstream: `extended_attention_mask`).
    fn extended_mask(&self, cx: &mut Ctx, mask: NodeId) -> Result<NodeId, BuildError> {
        let p = self.path.as_str();
        let shape = cx.shape(mask);
        let (b, l) = (
            shape.first().copied().unwrap_or(0),
            shape.get(1).copied().unwrap_or(0),
        );
        let m = cx.reshape(mask, vec![b, 1, 1, l], p)?;
        let m = cx.op(Op::Cast { to: DType::F32 }, &[m], p)?;
        let one = cx.scalar(1.0, p)?;
        let inverted = cx.binary(BinaryOp::Sub, one, m, p)?;
        let min = cx.scalar(f64::from(f32::MIN), p)?;
        cx.binary(BinaryOp::Mul, inverted, min, p)
    }

    /// The backbone's forward.
    pub fn forward(&self, cx: &mut Ctx, x: &ModelInputs) -> Result<ModelOutput, BuildError> {
        let masks = Masks {
            lang: Some(self.extended_mask(cx, x.attention_mask)?),
            visn: match x.visual_attention_mask {
                Some(m) => Some(self.extended_mask(cx, m)?),
                None => None,
            },
        };
        let embedding_output = self.embeddings.forward(cx, x.input_ids, x.token_type_ids)?;
        let encoder =
            self.encoder
                .forward(cx, embedding_output, masks, x.visual_feats, x.visual_pos)?;
        let pooled_output = self.pooler.forward(cx, encoder.lang)?;
        Ok(ModelOutput {
            embedding_output,
            encoder,
            pooled_output,
        })
    }
}

/// Upstream: `class LxmertVisualAnswerHead`: `logit_fc` = Linear(H, 2H), GeLU,
/// LayerNorm(2H), Linear(2H, num_qa_labels).
pub(crate) struct LxmertVisualAnswerHead {
    gelu_path: String,
    fc0: Linear,
    layer_norm: LayerNorm,
    fc3: Linear,
}

impl LxmertVisualAnswerHead {
    /// Registers `logit_fc.{0,2,3}` under `path` (`logit_fc.1` is the parameter-free GeLU).
    pub fn new(reg: &mut ParamRegistry, path: &str, c: &LxmertConfig) -> Self {
        let h = c.hidden_size;
        let fc = join(path, "logit_fc");
        LxmertVisualAnswerHead {
            gelu_path: join(&fc, "1"),
            fc0: Linear::new(reg, &join(&fc, "0"), h, 2 * h),
            layer_norm: LayerNorm::new(reg, &join(&fc, "2"), 2 * h),
            fc3: Linear::new(reg, &join(&fc, "3"), 2 * h, c.num_qa_labels),
        }
    }

    /// QA logits `[B, num_qa_labels]` of the pooled output.
    pub fn forward(&self, cx: &mut Ctx, pooled: NodeId) -> Result<NodeId, BuildError> {
        let h = self.fc0.forward(cx, pooled)?;
        let h = cx.op(Op::Unary(UnaryOp::Gelu), &[h], &self.gelu_path)?;
        let h = self.layer_norm.forward(cx, h)?;
        self.fc3.forward(cx, h)
    }
}

/// Upstream: `class LxmertForQuestionAnswering` (`lxmert`, `answer_head`).
pub(crate) struct LxmertForQuestionAnswering {
    /// The backbone.
    pub lxmert: LxmertModel,
    /// The VQA head.
    pub answer_head: LxmertVisualAnswerHead,
}

impl LxmertForQuestionAnswering {
    /// Registers every parameter, in `state_dict()` order.
    pub fn new(reg: &mut ParamRegistry, c: &LxmertConfig) -> Self {
        LxmertForQuestionAnswering {
            lxmert: LxmertModel::new(reg, "lxmert", c),
            answer_head: LxmertVisualAnswerHead::new(reg, "answer_head", c),
        }
    }
}
