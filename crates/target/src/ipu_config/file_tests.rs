//! Tests of loading whole `ipu_config.json` files: the seed run's file, every rejected
//! contradiction, warnings, and malformed input.

use super::{IpuConfig, MatmulProportion, OutputMode};
use crate::IpuConfigError;

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lxmert-vqa-uncased.ipu_config.json"
);

/// The seed file's object with `key` set to the JSON literal `value`.
fn seed_with(key: &str, value: &str) -> String {
    let text = std::fs::read_to_string(SEED).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[key] = serde_json::from_str(value).unwrap();
    serde_json::to_string_pretty(&v).unwrap()
}

fn error_for(key: &str, value: &str) -> IpuConfigError {
    match IpuConfig::from_json_str(&seed_with(key, value)) {
        Ok((cfg, _)) => panic!("{key} = {value} was accepted: {cfg:?}"),
        Err(e) => e,
    }
}

#[test]
fn seed_file_parses_to_its_values_without_warnings() {
    let (cfg, warnings) = IpuConfig::from_file(SEED).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.device_iterations, 2);
    assert_eq!(cfg.embedding_serialization_factor, 0);
    assert!(cfg.enable_half_first_order_momentum);
    assert!(cfg.enable_half_partials);
    assert_eq!(cfg.executable_cache_dir, "./exe_cache");
    assert_eq!(cfg.gradient_accumulation_steps, 8);
    assert_eq!(cfg.inference_device_iterations, 4);
    assert_eq!(cfg.inference_replication_factor, 4);
    assert_eq!(cfg.ipus_per_replica, 4);
    assert_eq!(cfg.layers_per_ipu, vec![1]);
    assert_eq!(cfg.matmul_proportion, MatmulProportion::PerIpu(vec![0.25]));
    assert!(cfg.optimizer_state_offchip);
    assert_eq!(cfg.optimum_version.as_deref(), Some("1.0.0"));
    assert_eq!(cfg.output_mode, OutputMode::Final);
    assert!(cfg.recompute_checkpoint_every_layer);
    assert!(cfg.replicated_tensor_sharding);
    assert_eq!(cfg.replication_factor, 4);
    assert_eq!(cfg.seed, Some(42));
    assert!(!cfg.use_popdist);
    // Derived: 1 × 8 × 4 × 2 = 64 samples per step on 4 × 4 = 16 IPUs.
    assert_eq!(cfg.global_batch(1).unwrap(), 64);
    assert_eq!(cfg.total_ipus(), 16);
    assert_eq!(cfg.matmul_proportion_per_ipu(), Some(vec![0.25; 4]));
    // Keys the file does not have take their defaults.
    assert_eq!(cfg.inference_ipus_per_replica, 4);
    assert_eq!(cfg.inference_matmul_proportion, cfg.matmul_proportion);
    assert!(cfg.stochastic_rounding);
    assert_eq!(cfg.loss_scaling, None);
}

#[test]
fn serialised_config_reloads_identically() {
    let (cfg, _) = IpuConfig::from_file(SEED).unwrap();
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    let (back, warnings) = IpuConfig::from_json_str(&text).unwrap();
    assert_eq!(back, cfg);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn empty_object_gives_optimum_defaults() {
    let (cfg, warnings) = IpuConfig::from_json_str("{}").unwrap();
    assert!(warnings.is_empty());
    assert_eq!(cfg, IpuConfig::default());
    // ipus_per_replica defaults to len(layers_per_ipu).
    let (cfg, _) = IpuConfig::from_json_str(r#"{"layers_per_ipu": [-1, -1, -1]}"#).unwrap();
    assert_eq!(cfg.ipus_per_replica, 3);
}

#[test]
fn zero_counts_are_errors_naming_key_and_line() {
    for key in [
        "ipus_per_replica",
        "replication_factor",
        "gradient_accumulation_steps",
        "device_iterations",
        "inference_replication_factor",
        "inference_device_iterations",
    ] {
        let text = seed_with(key, "0");
        let e = IpuConfig::from_json_str(&text).unwrap_err();
        match &e {
            IpuConfigError::InvalidValue { key: k, line, .. } => {
                assert_eq!(k, key);
                let expected = text.lines().position(|l| l.contains(&format!("\"{key}\"")));
                assert_eq!(*line, expected.map(|i| i + 1), "{e}");
            }
            other => panic!("{key}: expected InvalidValue, got {other}"),
        }
    }
}

#[test]
fn matmul_proportion_length_must_be_one_or_ipus_per_replica() {
    let e = error_for("matmul_proportion", "[0.2, 0.3]");
    match &e {
        IpuConfigError::Conflict { keys, .. } => {
            assert_eq!(keys, &["matmul_proportion", "ipus_per_replica"])
        }
        other => panic!("expected Conflict, got {other}"),
    }
    let (cfg, _) =
        IpuConfig::from_json_str(&seed_with("matmul_proportion", "[0.1, 0.2, 0.3, 0.4]")).unwrap();
    assert_eq!(
        cfg.matmul_proportion_per_ipu(),
        Some(vec![0.1, 0.2, 0.3, 0.4])
    );
}

#[test]
fn matmul_proportion_outside_zero_one_is_an_error() {
    for bad in ["0", "1.5", "-0.2", "[0.2, 0.0, 0.3, 0.4]", "[]", "\"big\""] {
        let e = error_for("matmul_proportion", bad);
        assert!(
            matches!(&e, IpuConfigError::InvalidValue { key, .. } if key == "matmul_proportion"),
            "{bad}: {e}"
        );
    }
    let (cfg, _) = IpuConfig::from_json_str(&seed_with("matmul_proportion", "1")).unwrap();
    assert_eq!(cfg.matmul_proportion, MatmulProportion::All(1.0));
}

#[test]
fn layers_per_ipu_rules() {
    for bad in ["[-2]", "[1, -3, 1, 1]", "[]", "[1.5]", "3"] {
        let e = error_for("layers_per_ipu", bad);
        assert!(
            matches!(&e, IpuConfigError::InvalidValue { key, .. } if key == "layers_per_ipu"),
            "{bad}: {e}"
        );
    }
    let e = error_for("layers_per_ipu", "[3, 3]");
    assert!(
        matches!(&e, IpuConfigError::Conflict { keys, .. } if keys[0] == "layers_per_ipu"),
        "{e}"
    );
    let (cfg, _) =
        IpuConfig::from_json_str(&seed_with("layers_per_ipu", "[-1, 9, -1, 5]")).unwrap();
    assert_eq!(cfg.layers_per_ipu_for(19).unwrap(), vec![2, 9, 3, 5]);
}

#[test]
fn alias_of_matmul_proportion() {
    let text = r#"{"ipus_per_replica": 2, "available_memory_proportion": [0.3, 0.4]}"#;
    let (cfg, warnings) = IpuConfig::from_json_str(text).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        cfg.matmul_proportion,
        MatmulProportion::PerIpu(vec![0.3, 0.4])
    );
    let e = error_for("available_memory_proportion", "0.3");
    let msg = e.to_string();
    assert!(
        msg.contains("`matmul_proportion`, `available_memory_proportion`"),
        "{msg}"
    );
}

#[test]
fn unknown_keys_are_warnings_with_a_suggestion() {
    let text = seed_with("replication_factr", "8");
    let (cfg, warnings) = IpuConfig::from_json_str(&text).unwrap();
    assert_eq!(cfg.replication_factor, 4);
    assert_eq!(warnings.len(), 1);
    let w = &warnings[0];
    assert_eq!(w.key, "replication_factr");
    assert!(
        w.message.contains("did you mean `replication_factor`"),
        "{w}"
    );
    let line = text.lines().position(|l| l.contains("replication_factr"));
    assert_eq!(w.line, line.map(|i| i + 1));
}

#[test]
fn optimum_keys_tessera_ignores_warn_only_when_set() {
    let (_, warnings) = IpuConfig::from_json_str(&seed_with("profile_dir", "\"\"")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let (_, warnings) = IpuConfig::from_json_str(&seed_with("profile_dir", "\"./p\"")).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("ignored"));
    let (_, warnings) =
        IpuConfig::from_json_str(&seed_with("sharded_execution_for_inference", "true")).unwrap();
    assert!(warnings[0].message.contains("deprecated"));
}

#[test]
fn sharding_without_replicas_is_a_warning() {
    let text = seed_with("replication_factor", "1");
    let (_, warnings) = IpuConfig::from_json_str(&text).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "replicated_tensor_sharding");
}

#[test]
fn wrong_types_name_the_key_and_the_value() {
    for (key, value, found) in [
        ("replication_factor", "\"4\"", "\"4\""),
        ("seed", "-1", "-1"),
        ("enable_half_partials", "1", "1"),
        ("output_mode", "\"every\"", "\"every\""),
        ("executable_cache_dir", "false", "false"),
        ("loss_scaling", "\"x\"", "\"x\""),
    ] {
        let e = error_for(key, value);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("`{key}`")) && msg.contains(found),
            "{msg}"
        );
    }
}

#[test]
fn serialisation_factor_and_splits_exclude_each_other() {
    let text = seed_with("serialized_embedding_splits_per_ipu", "[2, 1, 0, 0]");
    let (cfg, _) = IpuConfig::from_json_str(&text).unwrap();
    assert_eq!(
        cfg.serialized_embedding_splits_per_ipu,
        Some(vec![2, 1, 0, 0])
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["embedding_serialization_factor"] = 4.into();
    let e = IpuConfig::from_json_str(&v.to_string()).unwrap_err();
    assert!(
        matches!(&e, IpuConfigError::Conflict { keys, .. } if keys.len() == 2),
        "{e}"
    );
    for bad in ["[2, 0, 1, 0]", "[0, 0, 0, 0]", "[1, 1]"] {
        let e = error_for("serialized_embedding_splits_per_ipu", bad);
        assert!(
            e.to_string()
                .contains("serialized_embedding_splits_per_ipu"),
            "{e}"
        );
    }
}

#[test]
fn loss_scaling_must_be_positive() {
    let (cfg, _) = IpuConfig::from_json_str(&seed_with("loss_scaling", "16384")).unwrap();
    assert_eq!(cfg.loss_scaling, Some(16384.0));
    let e = error_for("loss_scaling", "0");
    assert!(e.to_string().contains("`loss_scaling`"), "{e}");
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipu_config.json");
    std::fs::write(
        &path,
        "{\n  \"ipus_per_replica\": 4,\n  \"seed\": 42,,\n}\n",
    )
    .unwrap();
    let e = IpuConfig::from_file(&path).unwrap_err();
    match &e {
        IpuConfigError::Json {
            origin,
            line,
            column,
            ..
        } => {
            assert_eq!(origin, &path.display().to_string());
            assert_eq!((*line, *column), (3, 14));
        }
        other => panic!("expected Json, got {other}"),
    }
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3:14: ", path.display())),
        "{e}"
    );
    let e = IpuConfig::from_json_str("[1, 2]").unwrap_err();
    assert!(matches!(e, IpuConfigError::NotAnObject { .. }));
    let e = IpuConfig::from_file(dir.path().join("missing.json")).unwrap_err();
    assert!(e.to_string().contains("missing.json"), "{e}");
}

#[test]
fn validate_checks_configs_built_in_code() {
    let cfg = IpuConfig {
        ipus_per_replica: 0,
        ..IpuConfig::default()
    };
    let e = cfg.validate().unwrap_err();
    assert_eq!(
        e.to_string(),
        "<config>: `ipus_per_replica` must be an integer ≥ 1, found 0"
    );
    assert!(IpuConfig::default().validate().unwrap().is_empty());
}
