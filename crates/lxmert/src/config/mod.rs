//! The LXMERT configuration, read from and written to a Hugging Face `config.json`.
//!
//! Mirrors transformers' `LxmertConfig` (`configuration_lxmert.py`): every field has the
//! same name and the same default, so a config written by transformers 3, 4 or 5 loads
//! and absent fields take transformers' values. Unknown keys are ignored, as is
//! transformers 5's `num_hidden_layers` dict: `l_layers`, `x_layers` and `r_layers` are
//! authoritative. Errors name the file and either the line/column (malformed JSON) or the
//! field (wrong type, invalid value).

mod presets;
mod validate;

#[cfg(test)]
mod tests;

pub use presets::PRESETS;
pub use validate::SUPPORTED_ACTIVATIONS;

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// The LayerNorm epsilon of every LayerNorm in LXMERT: transformers hard-codes `1e-12`
/// (it does not read `layer_norm_eps` from the config).
pub const LAYER_NORM_EPS: f64 = 1e-12;

/// Hugging Face `LxmertConfig`: field names and defaults as in transformers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LxmertConfig {
    /// Size of the word-piece vocabulary (default 30522).
    pub vocab_size: usize,
    /// Width of every hidden state (default 768).
    pub hidden_size: usize,
    /// Attention heads per attention module (default 12).
    pub num_attention_heads: usize,
    /// Number of answers of the VQA head (default 9500; the VQA fine-tune uses 3129).
    pub num_qa_labels: usize,
    /// Object classes of the pre-training object head (default 1600; unused by QA).
    pub num_object_labels: usize,
    /// Attribute classes of the pre-training head (default 400; unused by QA).
    pub num_attr_labels: usize,
    /// Width of the feed-forward layers (default 3072).
    pub intermediate_size: usize,
    /// Feed-forward activation; only `gelu` (exact erf form) is supported.
    pub hidden_act: String,
    /// Dropout after dense layers (default 0.1; the graph is built in eval mode).
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (default 0.1; eval mode).
    pub attention_probs_dropout_prob: f64,
    /// Maximum text length (default 512).
    pub max_position_embeddings: usize,
    /// Number of token types (default 2).
    pub type_vocab_size: usize,
    /// Standard deviation of the normal weight initialisation (default 0.02).
    pub initializer_range: f64,
    /// Language (text-only) layers (default 9).
    pub l_layers: usize,
    /// Cross-modality layers (default 5).
    pub x_layers: usize,
    /// Object-relationship (vision-only) layers (default 5).
    pub r_layers: usize,
    /// Width of an object's region feature (default 2048).
    pub visual_feat_dim: usize,
    /// Width of an object's box position (default 4).
    pub visual_pos_dim: usize,
    /// Weight of the visual pre-training losses (default 6.67; unused by QA).
    pub visual_loss_normalizer: f64,
    /// Pre-training task flag (default true; unused by QA).
    pub task_matched: bool,
    /// Pre-training task flag (default true; unused by QA).
    pub task_mask_lm: bool,
    /// Pre-training task flag (default true; unused by QA).
    pub task_obj_predict: bool,
    /// Pre-training task flag (default true; unused by QA).
    pub task_qa: bool,
    /// Pre-training loss flag (default true; unused by QA).
    pub visual_obj_loss: bool,
    /// Pre-training loss flag (default true; unused by QA).
    pub visual_attr_loss: bool,
    /// Pre-training loss flag (default true; unused by QA).
    pub visual_feat_loss: bool,
    /// Kept when present for round trips; the model always uses [`LAYER_NORM_EPS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_norm_eps: Option<f64>,
    /// Padding token id (default none).
    pub pad_token_id: Option<i64>,
    /// Beginning-of-sequence token id (default none).
    pub bos_token_id: Option<i64>,
    /// End-of-sequence token id (default none).
    pub eos_token_id: Option<i64>,
    /// Whether the (pre-training) LM head shares the word embeddings (default true).
    pub tie_word_embeddings: bool,
}

/// transformers' `LxmertConfig()` defaults.
impl Default for LxmertConfig {
    fn default() -> Self {
        LxmertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_attention_heads: 12,
            num_qa_labels: 9500,
            num_object_labels: 1600,
            num_attr_labels: 400,
            intermediate_size: 3072,
            hidden_act: "gelu".to_string(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            l_layers: 9,
            x_layers: 5,
            r_layers: 5,
            visual_feat_dim: 2048,
            visual_pos_dim: 4,
            visual_loss_normalizer: 6.67,
            task_matched: true,
            task_mask_lm: true,
            task_obj_predict: true,
            task_qa: true,
            visual_obj_loss: true,
            visual_attr_loss: true,
            visual_feat_loss: true,
            layer_norm_eps: None,
            pad_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            tie_word_embeddings: true,
        }
    }
}

impl LxmertConfig {
    /// Reads and validates a Hugging Face `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses and validates config JSON; `origin` (a path or description) is used in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let document: Value = serde_json::from_str(text).map_err(|e| syntax_error(origin, &e))?;
        let Value::Object(map) = document else {
            return Err(ConfigError::FieldType {
                origin: origin.to_string(),
                field: "<document>".into(),
                line: 1,
                column: 1,
                message: format!("expected a JSON object, found {}", json_kind(&document)),
            });
        };
        let config: LxmertConfig =
            serde_json::from_str(text).map_err(|e| field_error(origin, &map, &e))?;
        config.validate(origin)?;
        Ok(config)
    }

    /// A named preset: `lxmert-base` or `lxmert-tiny` (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        presets::preset(name)
    }

    /// Checks that the config describes a buildable model; reports every problem at once,
    /// naming `origin` and each field.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let problems = validate::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Width of one attention head (`hidden_size / num_attention_heads`).
    pub fn head_dim(&self) -> usize {
        self.hidden_size
            .checked_div(self.num_attention_heads)
            .unwrap_or(0)
    }

    /// A `config.json` that transformers loads as `LxmertForQuestionAnswering`: every field,
    /// plus `model_type`, `architectures` and transformers 5's `num_hidden_layers` dict;
    /// keys sorted, two-space indentation, as transformers writes it.
    pub fn to_hf_json(&self) -> String {
        let mut map = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        map.insert("model_type".into(), Value::from("lxmert"));
        map.insert(
            "architectures".into(),
            Value::from(vec!["LxmertForQuestionAnswering"]),
        );
        let mut layers = Map::new();
        layers.insert("cross_encoder".into(), Value::from(self.x_layers));
        layers.insert("language".into(), Value::from(self.l_layers));
        layers.insert("vision".into(), Value::from(self.r_layers));
        map.insert("num_hidden_layers".into(), Value::Object(layers));
        format!("{:#}\n", Value::Object(map))
    }
}

/// A JSON syntax error (or early end) with its line and column.
fn syntax_error(origin: &str, e: &serde_json::Error) -> ConfigError {
    let (line, column) = (e.line(), e.column());
    let message = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    ConfigError::Syntax {
        origin: origin.to_string(),
        line,
        column,
        message: message
            .strip_suffix(&suffix)
            .unwrap_or(&message)
            .to_string(),
    }
}

/// A type error while deserialising the object `map`: names the field, found by
/// deserialising each top-level field on its own, with serde_json's line and column.
fn field_error(origin: &str, map: &Map<String, Value>, e: &serde_json::Error) -> ConfigError {
    let (field, message) = map
        .iter()
        .find_map(|(key, value)| {
            let single = Map::from_iter([(key.clone(), value.clone())]);
            serde_json::from_value::<LxmertConfig>(Value::Object(single))
                .err()
                .map(|err| (key.clone(), err.to_string()))
        })
        .unwrap_or_else(|| ("<document>".into(), e.to_string()));
    ConfigError::FieldType {
        origin: origin.to_string(),
        field,
        line: e.line(),
        column: e.column(),
        message,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
