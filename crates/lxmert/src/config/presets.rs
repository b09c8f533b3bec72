//! Named configurations: the real LXMERT-base VQA model and the tiny model of the test
//! fixtures.
//!
//! `lxmert-base` is transformers' `LxmertConfig()` with the VQA answer vocabulary of
//! `unc-nlp/lxmert-vqa-uncased` (3129 answers instead of the default 9500).
//! `lxmert-tiny` has exactly the values of the fixture's `config.json` (made by the
//! project's oracle script), so tests can build it without reading a file.

use super::LxmertConfig;
use crate::error::ConfigError;

/// The known preset names, for `LxmertConfig::preset` and CLI help.
pub const PRESETS: [&str; 2] = ["lxmert-base", "lxmert-tiny"];

/// The config called `name`, or an error listing the known names.
pub(crate) fn preset(name: &str) -> Result<LxmertConfig, ConfigError> {
    match name {
        "lxmert-base" => Ok(LxmertConfig {
            num_qa_labels: 3129,
            ..LxmertConfig::default()
        }),
        "lxmert-tiny" => Ok(LxmertConfig {
            l_layers: 2,
            x_layers: 1,
            r_layers: 1,
            hidden_size: 32,
            num_attention_heads: 4,
            intermediate_size: 64,
            visual_feat_dim: 16,
            visual_pos_dim: 4,
            num_qa_labels: 10,
            vocab_size: 100,
            max_position_embeddings: 64,
            ..LxmertConfig::default()
        }),
        _ => Err(ConfigError::UnknownPreset {
            name: name.to_string(),
            known: PRESETS.join(", "),
        }),
    }
}
