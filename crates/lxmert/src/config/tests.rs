//! Tests of config parsing, validation, presets and writing.

use super::*;
use serde_json::Value;

const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/lxmert-tiny/config.json"
));

/// A config as transformers 4 wrote it for the VQA model (no `num_hidden_layers` dict,
/// `layer_norm_eps` present, some keys this crate does not know).
const HF4: &str = r#"{
  "architectures": ["LxmertForQuestionAnswering"],
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "l_layers": 9,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "lxmert",
  "num_attention_heads": 12,
  "num_attr_labels": 400,
  "num_object_labels": 1600,
  "num_qa_labels": 3129,
  "output_attentions": false,
  "output_hidden_states": false,
  "r_layers": 5,
  "task_mask_lm": true,
  "task_matched": true,
  "task_obj_predict": true,
  "task_qa": true,
  "transformers_version": "4.6.0.dev0",
  "type_vocab_size": 2,
  "visual_attr_loss": true,
  "visual_feat_dim": 2048,
  "visual_feat_loss": true,
  "visual_loss_normalizer": 6.67,
  "visual_obj_loss": true,
  "visual_pos_dim": 4,
  "vocab_size": 30522,
  "x_layers": 5
}"#;

#[test]
fn fixture_config_is_the_tiny_preset() {
    let c = LxmertConfig::from_json_str(FIXTURE, "config.json").unwrap();
    assert_eq!(c, LxmertConfig::preset("lxmert-tiny").unwrap());
    assert_eq!((c.l_layers, c.x_layers, c.r_layers), (2, 1, 1));
    assert_eq!(c.head_dim(), 8);
}

#[test]
fn transformers4_config_without_layer_dict() {
    let c = LxmertConfig::from_json_str(HF4, "hf4.json").unwrap();
    let base = LxmertConfig::preset("lxmert-base").unwrap();
    assert_eq!(
        c,
        LxmertConfig {
            layer_norm_eps: Some(1e-12),
            ..base
        }
    );
}

#[test]
fn base_preset_is_transformers_default_with_vqa_head() {
    let c = LxmertConfig::preset("lxmert-base").unwrap();
    assert_eq!(
        (c.hidden_size, c.num_attention_heads, c.intermediate_size),
        (768, 12, 3072)
    );
    assert_eq!((c.l_layers, c.x_layers, c.r_layers), (9, 5, 5));
    assert_eq!((c.visual_feat_dim, c.visual_pos_dim), (2048, 4));
    assert_eq!(
        (c.vocab_size, c.max_position_embeddings, c.type_vocab_size),
        (30522, 512, 2)
    );
    assert_eq!((c.initializer_range, c.num_qa_labels), (0.02, 3129));
    // absent fields take transformers' LxmertConfig() defaults
    let empty = LxmertConfig::from_json_str("{}", "empty").unwrap();
    assert_eq!(empty.num_qa_labels, 9500);
    assert_eq!(
        LxmertConfig {
            num_qa_labels: 3129,
            ..empty
        },
        c
    );
}

#[test]
fn layer_dict_is_ignored() {
    let text = r#"{"l_layers": 3, "x_layers": 2, "r_layers": 1,
        "num_hidden_layers": {"language": 9, "cross_encoder": 9, "vision": 9}}"#;
    let c = LxmertConfig::from_json_str(text, "t").unwrap();
    assert_eq!((c.l_layers, c.x_layers, c.r_layers), (3, 2, 1));
    let c = LxmertConfig::from_json_str(r#"{"num_hidden_layers": 4}"#, "t").unwrap();
    assert_eq!(c.l_layers, 9);
}

#[test]
fn malformed_json_reports_line_and_column() {
    let text = "{\n  \"hidden_size\": 32,\n  \"l_layers\": ,\n}";
    let e = LxmertConfig::from_json_str(text, "bad.json").unwrap_err();
    let ConfigError::Syntax { line, column, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!((*line, *column), (3, 15));
    assert!(
        e.to_string().starts_with("bad.json:3:15: malformed JSON"),
        "{e}"
    );
    // truncated file
    let e = LxmertConfig::from_json_str("{\n  \"hidden_size\": 32,", "cut.json").unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("EOF"), "{e}");
}

#[test]
fn wrong_field_types_name_the_field() {
    let cases = [
        (
            "{\n\"l_layers\": 2,\n\"hidden_size\": \"32\"\n}",
            "hidden_size",
            3,
        ),
        ("{\"vocab_size\": null}", "vocab_size", 1),
        ("{\"hidden_size\": -8}", "hidden_size", 1),
        ("{\"hidden_size\": 7.5}", "hidden_size", 1),
        ("{\"task_qa\": \"yes\"}", "task_qa", 1),
        ("{\"hidden_act\": 3}", "hidden_act", 1),
        ("[1, 2]", "<document>", 1),
    ];
    for (text, field, line) in cases {
        let e = LxmertConfig::from_json_str(text, "c.json").unwrap_err();
        match &e {
            ConfigError::FieldType {
                field: f, line: l, ..
            } => {
                assert_eq!((f.as_str(), *l), (field, line), "{text}: {e}");
            }
            other => panic!("{text}: {other}"),
        }
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        assert!(e.to_string().starts_with("c.json:"), "{e}");
    }
}

#[test]
fn invalid_values_are_all_reported() {
    let text = r#"{"hidden_size": 30, "num_attention_heads": 4, "vocab_size": 0,
        "hidden_act": "relu", "hidden_dropout_prob": 1.5}"#;
    let e = LxmertConfig::from_json_str(text, "v.json").unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else {
        panic!("{e}")
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        [
            "vocab_size",
            "hidden_size",
            "hidden_act",
            "hidden_dropout_prob"
        ]
    );
    let msg = e.to_string();
    assert!(msg.starts_with("v.json: invalid LXMERT config"), "{msg}");
    assert!(
        msg.contains("30 is not a multiple of num_attention_heads (4)"),
        "{msg}"
    );
    assert!(
        msg.contains("`relu` is not supported (supported: gelu)"),
        "{msg}"
    );

    let zero_heads = LxmertConfig::from_json_str(r#"{"num_attention_heads": 0}"#, "z");
    assert!(zero_heads
        .unwrap_err()
        .to_string()
        .contains("num_attention_heads"));
    let no_lang = r#"{"l_layers": 0, "x_layers": 0}"#;
    let e = LxmertConfig::from_json_str(no_lang, "n").unwrap_err();
    assert!(e.to_string().contains("l_layers + x_layers"), "{e}");
    // zero layers of one kind are fine when the others produce the outputs
    LxmertConfig::from_json_str(r#"{"x_layers": 0}"#, "ok").unwrap();
}

#[test]
fn from_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = LxmertConfig::from_file(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e.to_string().contains("nope.json"), "{e}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"hidden_size\": 33}").unwrap();
    let e = LxmertConfig::from_file(&bad).unwrap_err();
    assert!(e.to_string().contains("bad.json"), "{e}");
    let good = dir.path().join("config.json");
    std::fs::write(&good, FIXTURE).unwrap();
    assert_eq!(LxmertConfig::from_file(&good).unwrap().hidden_size, 32);
}

#[test]
fn unknown_preset_lists_known_ones() {
    let e = LxmertConfig::preset("lxmert-huge").unwrap_err().to_string();
    assert!(e.contains("lxmert-huge"), "{e}");
    for p in PRESETS {
        assert!(e.contains(p), "{e}");
        LxmertConfig::preset(p).unwrap().validate(p).unwrap();
    }
}

#[test]
fn hf_json_has_every_field_transformers_writes() {
    let c = LxmertConfig::preset("lxmert-tiny").unwrap();
    let ours: Value = serde_json::from_str(&c.to_hf_json()).unwrap();
    let theirs: Value = serde_json::from_str(FIXTURE).unwrap();
    let (ours, theirs) = (ours.as_object().unwrap(), theirs.as_object().unwrap());
    for (k, v) in theirs {
        if k == "transformers_version" {
            continue;
        }
        assert_eq!(ours.get(k), Some(v), "field {k}");
    }
    assert_eq!(
        ours["architectures"],
        serde_json::json!(["LxmertForQuestionAnswering"])
    );
    assert_eq!(
        LxmertConfig::from_json_str(&c.to_hf_json(), "rt").unwrap(),
        c
    );
    // keys sorted, as transformers writes them
    let text = c.to_hf_json();
    let mut in_file_order: Vec<(usize, &str)> = ours
        .keys()
        .map(|k| (text.find(&format!("\n  \"{k}\"")).unwrap(), k.as_str()))
        .collect();
    in_file_order.sort();
    let names: Vec<&str> = in_file_order.iter().map(|(_, k)| *k).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}
