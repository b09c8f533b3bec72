//! optimum-graphcore's IPU configuration (`ipu_config.json`): how a run is spread over chips
//! and which precision and memory options it uses.
//!
//! [`IpuConfig`] mirrors the keys of optimum-graphcore's `IPUConfig`
//! (`optimum/graphcore/ipu_configuration.py`) with the same names and, unless said otherwise
//! on the field, the defaults of its last release (commit `e1010019`, July 2023). Files
//! written by older releases also load: the seed run's file (optimum-graphcore 0.3-era, with
//! `use_popdist` and `enable_half_first_order_momentum`) parses with no warning.
//!
//! Loading ([`IpuConfig::from_file`], [`IpuConfig::from_json_str`]) reports malformed JSON
//! with file, line and column; a key with a value of the wrong type or range, and keys whose
//! values contradict each other, are errors naming the keys (see [`IpuConfig::validate`]);
//! keys Tessera does not know are returned as [`Warning`]s for the caller to show. The
//! placement of a model's layers is checked separately, against the model's layer count, by
//! [`IpuConfig::layers_per_ipu_for`].

#[cfg(test)]
mod file_tests;
mod layers;
mod parse;
mod reader;
mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::IpuConfigError;

/// The memory proportion given to matmul and convolution temporaries on each IPU
/// (`matmul_proportion`, PopTorch's `availableMemoryProportion`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatmulProportion {
    /// One proportion for every IPU.
    All(f64),
    /// One proportion per IPU of a replica (a single-entry list means every IPU).
    PerIpu(Vec<f64>),
}

impl MatmulProportion {
    /// The proportion of each of `num_ipus` IPUs; `None` if this is a list whose length is
    /// neither 1 nor `num_ipus`.
    pub fn for_ipus(&self, num_ipus: usize) -> Option<Vec<f64>> {
        match self {
            MatmulProportion::All(p) => Some(vec![*p; num_ipus]),
            MatmulProportion::PerIpu(v) if v.len() == num_ipus => Some(v.clone()),
            MatmulProportion::PerIpu(v) => match v.as_slice() {
                [p] => Some(vec![*p; num_ipus]),
                _ => None,
            },
        }
    }

    /// The values as written.
    pub fn values(&self) -> &[f64] {
        match self {
            MatmulProportion::All(p) => std::slice::from_ref(p),
            MatmulProportion::PerIpu(v) => v,
        }
    }
}

/// Which results a training run returns to the host (PopTorch's `OutputMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// A result for every batch.
    All,
    /// The sum over all batches.
    Sum,
    /// The last batch's result.
    Final,
    /// `all` for inference, `final` for training.
    Default,
}

/// A key an [`IpuConfig`] file has that Tessera ignores, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file name, or `<string>`.
    pub origin: String,
    /// The key.
    pub key: String,
    /// The line the key is on, when it could be found.
    pub line: Option<usize>,
    /// What Tessera does about it.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: `{}` {}", self.origin, self.key, self.message),
            None => write!(f, "{}: `{}` {}", self.origin, self.key, self.message),
        }
    }
}

/// An optimum-graphcore IPU configuration. Field names are the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpuConfig {
    /// IPUs (pipeline stages) per replica. Default: `len(layers_per_ipu)` (optimum ≥ 0.6;
    /// older releases defaulted to 1, the same for the default `layers_per_ipu`).
    pub ipus_per_replica: usize,
    /// Layers placed on each IPU of a replica, in order; `-1` means "fill": the layers not
    /// placed by the other entries are shared out among the `-1` entries. Default `[-1]`.
    pub layers_per_ipu: Vec<i64>,
    /// Data-parallel replicas in training. Default 1.
    pub replication_factor: usize,
    /// Micro-batches whose gradients are accumulated before a weight update. Default 1.
    pub gradient_accumulation_steps: usize,
    /// Training iterations run on the device per host call. Default 1.
    pub device_iterations: usize,
    /// IPUs per replica in inference. Default: `ipus_per_replica` (optimum 0.3 used the
    /// training value; later releases derive it from `inference_layers_per_ipu`).
    pub inference_ipus_per_replica: usize,
    /// `layers_per_ipu` for inference. Default: `layers_per_ipu`.
    pub inference_layers_per_ipu: Vec<i64>,
    /// Replicas in inference. Default 1.
    pub inference_replication_factor: usize,
    /// Inference iterations run on the device per host call. Default 1.
    pub inference_device_iterations: usize,
    /// Proportion of each IPU's memory for matmul/convolution temporaries, in (0, 1];
    /// alias `available_memory_proportion`. Default 0.2 (optimum 0.3: 0.6).
    pub matmul_proportion: MatmulProportion,
    /// `matmul_proportion` for inference. Default: `matmul_proportion`.
    pub inference_matmul_proportion: MatmulProportion,
    /// Optimizer state in streaming memory rather than on chip. Default `false` (the value of
    /// optimum's signature; its docstring, and releases before 0.7, say `true`).
    pub optimizer_state_offchip: bool,
    /// Shard optimizer state across replicas (only used with `replication_factor` > 1).
    /// Default `false`.
    pub replicated_tensor_sharding: bool,
    /// Recomputation checkpoint at the output of every layer. Default `false`.
    pub recompute_checkpoint_every_layer: bool,
    /// Split the word embedding's vocabulary into this many serial parts on one IPU; 0 and 1
    /// both mean no serialisation (the seed file says 0). Default 1.
    pub embedding_serialization_factor: usize,
    /// Splits of the serialised embedding placed on each IPU (instead of
    /// `embedding_serialization_factor`). Default none.
    pub serialized_embedding_splits_per_ipu: Option<Vec<usize>>,
    /// Like `embedding_serialization_factor`, for the output projection. Default 1.
    pub projection_serialization_factor: usize,
    /// Like `serialized_embedding_splits_per_ipu`, for the output projection. Default none.
    pub serialized_projection_splits_per_ipu: Option<Vec<usize>>,
    /// fp16 partial sums in matmuls and convolutions. Default `true` (optimum 0.3: `false`).
    pub enable_half_partials: bool,
    /// fp16 first-order (momentum) optimizer state (optimum 0.3; deprecated later).
    /// Default `false`.
    pub enable_half_first_order_momentum: bool,
    /// Automatic loss scaling (experimental in PopTorch). Default `false`.
    pub auto_loss_scaling: bool,
    /// Static loss scale (initial scale with `auto_loss_scaling`). Not an `IPUConfig` key in
    /// optimum, which takes it from `IPUTrainingArguments.loss_scaling`; accepted here so one
    /// file holds the run's precision settings. Default none.
    pub loss_scaling: Option<f64>,
    /// Stochastic rounding in training. Not an `IPUConfig` key in optimum, which always turns
    /// it on for training and off for inference; a Tessera extension. Default `true`.
    pub stochastic_rounding: bool,
    /// Which training results go back to the host. Default `final`.
    pub output_mode: OutputMode,
    /// Seed of the IPU's random number generators. Default none.
    pub seed: Option<u64>,
    /// Directory of cached executables (`""` or `"disabled"`: none). Default `""`.
    pub executable_cache_dir: String,
    /// Launch through PopDist (optimum ≤ 0.4). Default `false`.
    pub use_popdist: bool,
    /// Version of optimum that wrote the file. Default none.
    pub optimum_version: Option<String>,
    /// Version of transformers that wrote the file, if recorded. Default none.
    pub transformers_version: Option<String>,
}

impl Default for IpuConfig {
    fn default() -> Self {
        IpuConfig {
            ipus_per_replica: 1,
            layers_per_ipu: vec![-1],
            replication_factor: 1,
            gradient_accumulation_steps: 1,
            device_iterations: 1,
            inference_ipus_per_replica: 1,
            inference_layers_per_ipu: vec![-1],
            inference_replication_factor: 1,
            inference_device_iterations: 1,
            matmul_proportion: MatmulProportion::All(0.2),
            inference_matmul_proportion: MatmulProportion::All(0.2),
            optimizer_state_offchip: false,
            replicated_tensor_sharding: false,
            recompute_checkpoint_every_layer: false,
            embedding_serialization_factor: 1,
            serialized_embedding_splits_per_ipu: None,
            projection_serialization_factor: 1,
            serialized_projection_splits_per_ipu: None,
            enable_half_partials: true,
            enable_half_first_order_momentum: false,
            auto_loss_scaling: false,
            loss_scaling: None,
            stochastic_rounding: true,
            output_mode: OutputMode::Final,
            seed: None,
            executable_cache_dir: String::new(),
            use_popdist: false,
            optimum_version: None,
            transformers_version: None,
        }
    }
}

impl IpuConfig {
    /// Reads and checks the `ipu_config.json` at `path`; returns it with the warnings about
    /// keys that were ignored.
    pub fn from_file(path: impl AsRef<Path>) -> Result<(IpuConfig, Vec<Warning>), IpuConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| IpuConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        parse::parse(&text, &path.display().to_string())
    }

    /// Parses and checks an IPU configuration held in a string (errors say `<string>`).
    pub fn from_json_str(text: &str) -> Result<(IpuConfig, Vec<Warning>), IpuConfigError> {
        parse::parse(text, "<string>")
    }

    /// IPUs the training run uses: `ipus_per_replica × replication_factor` (saturating; a
    /// validated configuration never saturates).
    pub fn total_ipus(&self) -> usize {
        self.ipus_per_replica
            .saturating_mul(self.replication_factor)
    }

    /// IPUs the inference run uses: `inference_ipus_per_replica × inference_replication_factor`.
    pub fn inference_total_ipus(&self) -> usize {
        self.inference_ipus_per_replica
            .saturating_mul(self.inference_replication_factor)
    }

    /// Samples per weight update and host call in training: `micro_batch ×
    /// gradient_accumulation_steps × replication_factor × device_iterations` (optimum's
    /// `batch_size_factor`).
    pub fn global_batch(&self, micro_batch: usize) -> Result<usize, IpuConfigError> {
        [
            self.gradient_accumulation_steps,
            self.replication_factor,
            self.device_iterations,
        ]
        .iter()
        .try_fold(micro_batch, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| IpuConfigError::Overflow {
            what: format!(
                "global batch {micro_batch} × {} × {} × {}",
                self.gradient_accumulation_steps, self.replication_factor, self.device_iterations
            ),
        })
    }

    /// Samples per host call in inference: `micro_batch × inference_replication_factor ×
    /// inference_device_iterations` (no gradient accumulation).
    pub fn inference_global_batch(&self, micro_batch: usize) -> Result<usize, IpuConfigError> {
        micro_batch
            .checked_mul(self.inference_replication_factor)
            .and_then(|b| b.checked_mul(self.inference_device_iterations))
            .ok_or_else(|| IpuConfigError::Overflow {
                what: format!(
                    "inference global batch {micro_batch} × {} × {}",
                    self.inference_replication_factor, self.inference_device_iterations
                ),
            })
    }

    /// `matmul_proportion` of each IPU of a training replica; `None` if the list's length is
    /// neither 1 nor `ipus_per_replica` (which [`IpuConfig::validate`] rejects).
    pub fn matmul_proportion_per_ipu(&self) -> Option<Vec<f64>> {
        self.matmul_proportion.for_ipus(self.ipus_per_replica)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportion_broadcasts_single_values_only() {
        assert_eq!(MatmulProportion::All(0.3).for_ipus(2), Some(vec![0.3, 0.3]));
        let one = MatmulProportion::PerIpu(vec![0.25]);
        assert_eq!(one.for_ipus(3), Some(vec![0.25; 3]));
        let two = MatmulProportion::PerIpu(vec![0.1, 0.2]);
        assert_eq!(two.for_ipus(2), Some(vec![0.1, 0.2]));
        assert_eq!(two.for_ipus(4), None);
        assert_eq!(two.values(), &[0.1, 0.2]);
    }

    #[test]
    fn batch_and_ipu_counts() {
        let cfg = IpuConfig {
            ipus_per_replica: 2,
            replication_factor: 3,
            gradient_accumulation_steps: 5,
            device_iterations: 7,
            inference_replication_factor: 11,
            inference_device_iterations: 13,
            ..IpuConfig::default()
        };
        assert_eq!(cfg.total_ipus(), 6);
        assert_eq!(cfg.global_batch(2).unwrap(), 2 * 5 * 3 * 7);
        assert_eq!(cfg.inference_global_batch(2).unwrap(), 2 * 11 * 13);
        assert_eq!(cfg.inference_total_ipus(), 11);
        let huge = IpuConfig {
            gradient_accumulation_steps: usize::MAX,
            ..cfg
        };
        assert!(matches!(
            huge.global_batch(2),
            Err(IpuConfigError::Overflow { .. })
        ));
    }

    #[test]
    fn warning_display_names_file_line_and_key() {
        let w = Warning {
            origin: "c.json".into(),
            key: "foo".into(),
            line: Some(3),
            message: "is unknown; ignored".into(),
        };
        assert_eq!(w.to_string(), "c.json:3: `foo` is unknown; ignored");
    }
}
