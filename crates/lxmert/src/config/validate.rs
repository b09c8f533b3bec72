//! Semantic checks of a parsed [`LxmertConfig`]: sizes that must be positive, the head
//! split, the activation, probabilities and the layer counts the model needs.
//!
//! transformers accepts some of these configs and fails later inside `forward`; checking
//! them here turns such failures into an error that names the field.

use super::LxmertConfig;
use crate::error::ConfigProblem;

/// Activations the builder supports, as `hidden_act` spells them.
pub const SUPPORTED_ACTIVATIONS: [&str; 1] = ["gelu"];

/// Every problem of `c`, in field order (empty when the config is usable).
pub(crate) fn problems(c: &LxmertConfig) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let mut bad = |field: &'static str, message: String| out.push(ConfigProblem { field, message });

    let positive = [
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.hidden_size),
        ("num_attention_heads", c.num_attention_heads),
        ("num_qa_labels", c.num_qa_labels),
        ("intermediate_size", c.intermediate_size),
        ("max_position_embeddings", c.max_position_embeddings),
        ("type_vocab_size", c.type_vocab_size),
        ("visual_feat_dim", c.visual_feat_dim),
        ("visual_pos_dim", c.visual_pos_dim),
    ];
    for (field, value) in positive {
        if value == 0 {
            bad(field, "must be > 0, got 0".into());
        }
    }
    if c.hidden_size
        .checked_rem(c.num_attention_heads)
        .is_some_and(|r| r != 0)
    {
        bad(
            "hidden_size",
            format!(
                "{} is not a multiple of num_attention_heads ({})",
                c.hidden_size, c.num_attention_heads
            ),
        );
    }
    if !SUPPORTED_ACTIVATIONS.contains(&c.hidden_act.as_str()) {
        bad(
            "hidden_act",
            format!(
                "`{}` is not supported (supported: {})",
                c.hidden_act,
                SUPPORTED_ACTIVATIONS.join(", ")
            ),
        );
    }
    for (field, p) in [
        ("hidden_dropout_prob", c.hidden_dropout_prob),
        (
            "attention_probs_dropout_prob",
            c.attention_probs_dropout_prob,
        ),
    ] {
        if !(0.0..=1.0).contains(&p) {
            bad(field, format!("must be a probability in [0, 1], got {p}"));
        }
    }
    if !(c.initializer_range.is_finite() && c.initializer_range >= 0.0) {
        bad(
            "initializer_range",
            format!("must be finite and >= 0, got {}", c.initializer_range),
        );
    }
    if c.l_layers + c.x_layers == 0 {
        bad(
            "l_layers",
            "l_layers + x_layers must be > 0 (the language output is the last language or cross layer's)".into(),
        );
    }
    if c.r_layers + c.x_layers == 0 {
        bad(
            "r_layers",
            "r_layers + x_layers must be > 0 (the vision output is the last vision or cross layer's)".into(),
        );
    }
    out
}
