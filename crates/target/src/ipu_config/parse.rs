//! Reading an `ipu_config.json` into an [`IpuConfig`], key by key.
//!
//! The text is parsed as a JSON object first (syntax errors keep serde_json's line and
//! column); then each known key is taken out and converted, so that a wrong type names the
//! key, and the line it is on when it can be found in the text. `null` means "use the
//! default", as `None` does in optimum. Keys left over become [`Warning`]s: optimum keys that
//! do not change what Tessera compiles, and unknown keys (with the closest known key, to catch
//! typos). Range and consistency checks follow in [`IpuConfig::validate`].

use serde_json::Value;

use super::reader::{key_line, Reader};
use super::{IpuConfig, Warning};
use crate::IpuConfigError;

/// Every key an [`IpuConfig`] reads (its field names, plus the alias).
pub(super) const FIELDS: &[&str] = &[
    "ipus_per_replica",
    "layers_per_ipu",
    "replication_factor",
    "gradient_accumulation_steps",
    "device_iterations",
    "inference_ipus_per_replica",
    "inference_layers_per_ipu",
    "inference_replication_factor",
    "inference_device_iterations",
    "matmul_proportion",
    "available_memory_proportion",
    "inference_matmul_proportion",
    "optimizer_state_offchip",
    "replicated_tensor_sharding",
    "recompute_checkpoint_every_layer",
    "embedding_serialization_factor",
    "serialized_embedding_splits_per_ipu",
    "projection_serialization_factor",
    "serialized_projection_splits_per_ipu",
    "enable_half_partials",
    "enable_half_first_order_momentum",
    "auto_loss_scaling",
    "loss_scaling",
    "stochastic_rounding",
    "output_mode",
    "seed",
    "executable_cache_dir",
    "use_popdist",
    "optimum_version",
    "transformers_version",
];

/// optimum-graphcore keys that do not change what Tessera compiles, and what is said about
/// them when they are set (to a value Python would call true).
const IGNORED: &[(&str, &str)] = &[
    (
        "profile_dir",
        "(PopVision report directory) is ignored: Tessera writes its own profile",
    ),
    ("explicit_ir_inference", "(a PopART option) is ignored"),
    (
        "execute_encoder_on_cpu_for_generation",
        "is not supported (nor by optimum); ignored",
    ),
    (
        "parallelize_kwargs",
        "(arguments of a model's `parallelize`) is ignored",
    ),
    (
        "inference_parallelize_kwargs",
        "(arguments of a model's `parallelize`) is ignored",
    ),
    (
        "sharded_execution_for_inference",
        "is deprecated: inference always uses sharded execution",
    ),
    (
        "inference_embedding_serialization_factor",
        "is ignored: inference embeddings are not serialised",
    ),
    (
        "inference_serialized_embedding_splits_per_ipu",
        "is ignored: inference embeddings are not serialised",
    ),
    (
        "inference_projection_serialization_factor",
        "is ignored: inference projections are not serialised",
    ),
    (
        "inference_serialized_projection_splits_per_ipu",
        "is ignored: inference projections are not serialised",
    ),
];

/// Python's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Edit distance between two keys (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The known key closest to `key`, if it is close enough to be a typo.
fn closest(key: &str) -> Option<&'static str> {
    let known = FIELDS
        .iter()
        .copied()
        .chain(IGNORED.iter().map(|(k, _)| *k));
    known
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Warnings about the keys no one took.
fn leftovers(r: Reader<'_>) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for (key, value) in &r.map {
        let message = match IGNORED.iter().find(|(k, _)| k == key) {
            Some(_) if !truthy(value) => continue,
            Some((_, why)) => (*why).to_string(),
            None => match closest(key) {
                Some(near) => format!("is not a known key (did you mean `{near}`?); ignored"),
                None => "is not a known key; ignored".to_string(),
            },
        };
        warnings.push(Warning {
            origin: r.origin.to_string(),
            key: key.clone(),
            line: key_line(r.text, key),
            message,
        });
    }
    warnings
}

/// Parses and checks `text`; `origin` names it in errors and warnings.
pub(super) fn parse(text: &str, origin: &str) -> Result<(IpuConfig, Vec<Warning>), IpuConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        IpuConfigError::Json {
            origin: origin.to_string(),
            line,
            column,
            message: full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
        }
    })?;
    let Value::Object(map) = value else {
        return Err(IpuConfigError::NotAnObject {
            origin: origin.to_string(),
        });
    };
    let mut r = Reader { origin, text, map };
    let d = IpuConfig::default();

    let layers_per_ipu = r.ints("layers_per_ipu", -1)?.unwrap_or(d.layers_per_ipu);
    let ipus_per_replica = r
        .count("ipus_per_replica", 1)?
        .unwrap_or(layers_per_ipu.len());
    let inference_layers_per_ipu = r
        .ints("inference_layers_per_ipu", -1)?
        .unwrap_or_else(|| layers_per_ipu.clone());
    let inference_ipus_per_replica = r
        .count("inference_ipus_per_replica", 1)?
        .unwrap_or(ipus_per_replica);
    let matmul_proportion = r.matmul_proportion()?.unwrap_or(d.matmul_proportion);
    // As optimum: inference inherits the training proportion unless that is a list of the
    // wrong length for inference, in which case it gets the default.
    let inference_matmul_proportion = match r.proportion("inference_matmul_proportion")? {
        Some(p) => p,
        None if matmul_proportion
            .for_ipus(inference_ipus_per_replica)
            .is_some() =>
        {
            matmul_proportion.clone()
        }
        None => d.inference_matmul_proportion.clone(),
    };

    let config = IpuConfig {
        ipus_per_replica,
        layers_per_ipu,
        replication_factor: r
            .count("replication_factor", 1)?
            .unwrap_or(d.replication_factor),
        gradient_accumulation_steps: r
            .count("gradient_accumulation_steps", 1)?
            .unwrap_or(d.gradient_accumulation_steps),
        device_iterations: r
            .count("device_iterations", 1)?
            .unwrap_or(d.device_iterations),
        inference_ipus_per_replica,
        inference_layers_per_ipu,
        inference_replication_factor: r
            .count("inference_replication_factor", 1)?
            .unwrap_or(d.inference_replication_factor),
        inference_device_iterations: r
            .count("inference_device_iterations", 1)?
            .unwrap_or(d.inference_device_iterations),
        matmul_proportion,
        inference_matmul_proportion,
        optimizer_state_offchip: r
            .flag("optimizer_state_offchip")?
            .unwrap_or(d.optimizer_state_offchip),
        replicated_tensor_sharding: r
            .flag("replicated_tensor_sharding")?
            .unwrap_or(d.replicated_tensor_sharding),
        recompute_checkpoint_every_layer: r
            .flag("recompute_checkpoint_every_layer")?
            .unwrap_or(d.recompute_checkpoint_every_layer),
        embedding_serialization_factor: r
            .count("embedding_serialization_factor", 0)?
            .unwrap_or(d.embedding_serialization_factor),
        serialized_embedding_splits_per_ipu: r.splits("serialized_embedding_splits_per_ipu")?,
        projection_serialization_factor: r
            .count("projection_serialization_factor", 0)?
            .unwrap_or(d.projection_serialization_factor),
        serialized_projection_splits_per_ipu: r.splits("serialized_projection_splits_per_ipu")?,
        enable_half_partials: r
            .flag("enable_half_partials")?
            .unwrap_or(d.enable_half_partials),
        enable_half_first_order_momentum: r
            .flag("enable_half_first_order_momentum")?
            .unwrap_or(d.enable_half_first_order_momentum),
        auto_loss_scaling: r.flag("auto_loss_scaling")?.unwrap_or(d.auto_loss_scaling),
        loss_scaling: r.number("loss_scaling")?,
        stochastic_rounding: r
            .flag("stochastic_rounding")?
            .unwrap_or(d.stochastic_rounding),
        output_mode: r.output_mode("output_mode")?.unwrap_or(d.output_mode),
        seed: r.unsigned("seed", 0)?,
        executable_cache_dir: r
            .string("executable_cache_dir")?
            .unwrap_or(d.executable_cache_dir),
        use_popdist: r.flag("use_popdist")?.unwrap_or(d.use_popdist),
        optimum_version: r.string("optimum_version")?,
        transformers_version: r.string("transformers_version")?,
    };
    let mut warnings = leftovers(r);
    warnings.extend(config.check(origin, &|key| key_line(text, key))?);
    Ok((config, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_truthiness() {
        for v in ["null", "false", "0", "0.0", "\"\"", "[]", "{}"] {
            assert!(!truthy(&serde_json::from_str(v).unwrap()), "{v}");
        }
        for v in ["true", "2", "\"x\"", "[0]", "{\"a\":1}"] {
            assert!(truthy(&serde_json::from_str(v).unwrap()), "{v}");
        }
    }

    #[test]
    fn typos_find_their_key() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(closest("replication_factr"), Some("replication_factor"));
        assert_eq!(closest("matmul_proportions"), Some("matmul_proportion"));
        assert_eq!(closest("completely_different"), None);
    }

    #[test]
    fn every_field_is_a_known_key() {
        let v = serde_json::to_value(IpuConfig::default()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        for key in &keys {
            assert!(FIELDS.contains(&key.as_str()), "{key} missing from FIELDS");
        }
        // Every field plus the one alias.
        assert_eq!(FIELDS.len(), keys.len() + 1);
    }
}
