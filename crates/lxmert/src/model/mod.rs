//! Builds Hugging Face `LxmertForQuestionAnswering` as a Tessera IR graph.
//!
//! Written candle-style: one Rust struct per PyTorch module (files `nn`, `attention`,
//! `layer`, `embeddings`, `lxmert`), each registering its parameters under its dotted
//! module path so that names equal the checkpoint's state-dict names, and emitting its
//! nodes in that same scope. [`build`] declares the graph inputs (transformers' forward
//! argument names), runs the modules and names the outputs: the four model outputs, then
//! (with [`BuildOptions::taps`]) the per-layer states the HF fixtures record.
//! The graph is the eval-mode forward: no dropout.

mod attention;
mod ctx;
mod embeddings;
mod layer;
mod lxmert;
mod nn;

#[cfg(test)]
mod tests;

pub(crate) use lxmert::LxmertForQuestionAnswering;

use crate::config::LxmertConfig;
use crate::error::BuildError;
use crate::params::ParamRegistry;
use ctx::Ctx;
use lxmert::ModelInputs;
use tessera_ir::{DType, Graph, NodeId, TensorType};

/// Static input extents of a built graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shapes {
    /// Batch size B.
    pub batch: usize,
    /// Text length S (at most `max_position_embeddings`).
    pub seq_len: usize,
    /// Objects per image N.
    pub num_objects: usize,
}

/// What the graph contains besides the model itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Declare the `visual_attention_mask` input and apply it where transformers does
    /// (object-relationship layers, the language→vision cross-attention, the cross layers'
    /// vision self-attention). Without it no visual mask is applied, as in transformers
    /// when the argument is `None`.
    pub visual_attention_mask: bool,
    /// Also output the per-layer states of the fixtures (see [`tap_names`]).
    pub taps: bool,
}

/// Names of the model outputs, in graph output order.
pub const OUTPUT_NAMES: [&str; 4] = [
    "question_answering_score",
    "language_output",
    "vision_output",
    "pooled_output",
];

/// Names of the per-layer taps for `config`, in graph output order (after
/// [`OUTPUT_NAMES`]): `embedding_output`, `visual_embedding_output`,
/// `language_hidden_states.{0..l_layers+x_layers}`,
/// `vision_hidden_states.{0..r_layers+x_layers}`, as transformers'
/// `output_hidden_states=True` numbers them.
pub fn tap_names(config: &LxmertConfig) -> Vec<String> {
    let mut names = vec![
        "embedding_output".to_string(),
        "visual_embedding_output".to_string(),
    ];
    names.extend(
        (0..config.l_layers + config.x_layers).map(|i| format!("language_hidden_states.{i}")),
    );
    names.extend(
        (0..config.r_layers + config.x_layers).map(|i| format!("vision_hidden_states.{i}")),
    );
    names
}

fn check_shapes(config: &LxmertConfig, shapes: &Shapes) -> Result<(), BuildError> {
    for (field, v) in [
        ("batch", shapes.batch),
        ("seq_len", shapes.seq_len),
        ("num_objects", shapes.num_objects),
    ] {
        if v == 0 {
            return Err(BuildError::Shapes {
                field,
                message: "must be > 0".into(),
            });
        }
    }
    if shapes.seq_len > config.max_position_embeddings {
        return Err(BuildError::Shapes {
            field: "seq_len",
            message: format!(
                "{} exceeds max_position_embeddings ({})",
                shapes.seq_len, config.max_position_embeddings
            ),
        });
    }
    Ok(())
}

/// Builds the eval-mode forward graph of `LxmertForQuestionAnswering` for `config` and
/// the static `shapes`.
///
/// Inputs: `input_ids`, `attention_mask`, `token_type_ids` (i64 `[B,S]`), `visual_feats`
/// (f32 `[B,N,visual_feat_dim]`), `visual_pos` (f32 `[B,N,visual_pos_dim]`) and, with
/// [`BuildOptions::visual_attention_mask`], `visual_attention_mask` (i64 `[B,N]`).
/// Outputs: [`OUTPUT_NAMES`], then with [`BuildOptions::taps`] the [`tap_names`].
/// Every parameter of [`crate::param_specs`] appears exactly once, under its state-dict name.
pub fn build(
    config: &LxmertConfig,
    shapes: &Shapes,
    opts: &BuildOptions,
) -> Result<Graph, BuildError> {
    config.validate("config")?;
    check_shapes(config, shapes)?;
    let mut reg = ParamRegistry::default();
    let model = LxmertForQuestionAnswering::new(&mut reg, config);
    let mut cx = Ctx::new("lxmert", reg.into_specs());

    let (b, s, n) = (shapes.batch, shapes.seq_len, shapes.num_objects);
    let text = TensorType::new(DType::I64, vec![b, s]);
    let inputs = ModelInputs {
        input_ids: cx.graph.input("input_ids", text.clone())?,
        attention_mask: cx.graph.input("attention_mask", text.clone())?,
        token_type_ids: cx.graph.input("token_type_ids", text)?,
        visual_feats: cx.graph.input(
            "visual_feats",
            TensorType::new(DType::F32, vec![b, n, config.visual_feat_dim]),
        )?,
        visual_pos: cx.graph.input(
            "visual_pos",
            TensorType::new(DType::F32, vec![b, n, config.visual_pos_dim]),
        )?,
        visual_attention_mask: if opts.visual_attention_mask {
            Some(cx.graph.input(
                "visual_attention_mask",
                TensorType::new(DType::I64, vec![b, n]),
            )?)
        } else {
            None
        },
    };

    let out = model.lxmert.forward(&mut cx, &inputs)?;
    let logits = model.answer_head.forward(&mut cx, out.pooled_output)?;
    let enc = &out.encoder;
    let mut named: Vec<(String, NodeId)> = [logits, enc.lang, enc.visn, out.pooled_output]
        .into_iter()
        .zip(OUTPUT_NAMES)
        .map(|(node, name)| (name.to_string(), node))
        .collect();
    if opts.taps {
        let nodes = [out.embedding_output, enc.visual_embedding]
            .into_iter()
            .chain(enc.language_hidden_states.iter().copied())
            .chain(enc.vision_hidden_states.iter().copied());
        named.extend(tap_names(config).into_iter().zip(nodes));
    }
    for (name, node) in named {
        cx.graph.set_output(&name, node)?;
    }
    if let Some(name) = cx.unused_params().first() {
        return Err(BuildError::UnusedParam {
            name: name.to_string(),
        });
    }
    Ok(cx.graph)
}
