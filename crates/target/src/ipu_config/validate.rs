//! The range and consistency rules of an [`IpuConfig`].
//!
//! They are optimum-graphcore's (`IPUConfig._validate_ipu_config` and its attribute
//! validators), with one deliberate difference: a single-entry `matmul_proportion` or
//! `layers_per_ipu` list is accepted for any number of IPUs, as optimum 0.3 (which wrote the
//! seed run's file) accepted it — the proportion applies to every IPU, and the layer list is
//! checked against a model only by [`IpuConfig::layers_per_ipu_for`]. Errors name every key
//! involved; a setting that is legal but has no effect is returned as a [`Warning`].

use super::{IpuConfig, MatmulProportion, Warning};
use crate::IpuConfigError;

/// Finds the line of a key in the source text, when there is one.
pub(super) type LineOf<'a> = &'a dyn Fn(&str) -> Option<usize>;

impl IpuConfig {
    /// Checks the rules above on a configuration built in code (files are checked when
    /// loaded); returns the warnings about settings without effect.
    pub fn validate(&self) -> Result<Vec<Warning>, IpuConfigError> {
        self.check("<config>", &|_| None)
    }

    pub(super) fn check(
        &self,
        origin: &str,
        line: LineOf<'_>,
    ) -> Result<Vec<Warning>, IpuConfigError> {
        let invalid = |key: &str, reason: String| IpuConfigError::InvalidValue {
            origin: origin.to_string(),
            key: key.to_string(),
            line: line(key),
            reason,
        };
        let conflict = |keys: &[&str], reason: String| IpuConfigError::Conflict {
            origin: origin.to_string(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            reason,
        };

        for (key, value) in [
            ("ipus_per_replica", self.ipus_per_replica),
            ("replication_factor", self.replication_factor),
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
            ),
            ("device_iterations", self.device_iterations),
            (
                "inference_ipus_per_replica",
                self.inference_ipus_per_replica,
            ),
            (
                "inference_replication_factor",
                self.inference_replication_factor,
            ),
            (
                "inference_device_iterations",
                self.inference_device_iterations,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be an integer ≥ 1, found 0".into()));
            }
        }

        for (layers_key, layers, ipus_key, ipus) in [
            (
                "layers_per_ipu",
                &self.layers_per_ipu,
                "ipus_per_replica",
                self.ipus_per_replica,
            ),
            (
                "inference_layers_per_ipu",
                &self.inference_layers_per_ipu,
                "inference_ipus_per_replica",
                self.inference_ipus_per_replica,
            ),
        ] {
            if layers.is_empty() {
                return Err(invalid(layers_key, "must not be empty".into()));
            }
            if let Some(bad) = layers.iter().find(|&&n| n < -1) {
                return Err(invalid(
                    layers_key,
                    format!("entries must be ≥ -1 (-1 = fill), found {bad}"),
                ));
            }
            if layers.len() != 1 && layers.len() != ipus {
                return Err(conflict(
                    &[layers_key, ipus_key],
                    format!(
                        "`{layers_key}` has {} entries for {ipus} IPUs; give one entry per IPU \
                         (or a single entry){}",
                        layers.len(),
                        inherited_note(layers_key)
                    ),
                ));
            }
        }

        for (key, proportion, ipus_key, ipus) in [
            (
                "matmul_proportion",
                &self.matmul_proportion,
                "ipus_per_replica",
                self.ipus_per_replica,
            ),
            (
                "inference_matmul_proportion",
                &self.inference_matmul_proportion,
                "inference_ipus_per_replica",
                self.inference_ipus_per_replica,
            ),
        ] {
            check_proportion(key, proportion, ipus_key, ipus, &invalid, &conflict)?;
        }

        for (factor_key, factor, splits_key, splits) in [
            (
                "embedding_serialization_factor",
                self.embedding_serialization_factor,
                "serialized_embedding_splits_per_ipu",
                &self.serialized_embedding_splits_per_ipu,
            ),
            (
                "projection_serialization_factor",
                self.projection_serialization_factor,
                "serialized_projection_splits_per_ipu",
                &self.serialized_projection_splits_per_ipu,
            ),
        ] {
            let Some(splits) = splits else { continue };
            if factor > 1 {
                return Err(conflict(
                    &[factor_key, splits_key],
                    "give only one: the factor serialises the layer on one IPU, the splits \
                     place its parts on several"
                        .into(),
                ));
            }
            if splits.len() != self.ipus_per_replica {
                return Err(conflict(
                    &[splits_key, "ipus_per_replica"],
                    format!(
                        "{} entries for {} IPUs; give one per IPU",
                        splits.len(),
                        self.ipus_per_replica
                    ),
                ));
            }
            if splits.iter().all(|&s| s == 0) {
                return Err(invalid(splits_key, "must place at least one split".into()));
            }
            let gap = splits
                .windows(2)
                .enumerate()
                .any(|(i, w)| w[0] > 0 && w[1] == 0 && splits.iter().skip(i + 2).any(|&s| s > 0));
            if gap {
                return Err(invalid(
                    splits_key,
                    format!("must place its splits on consecutive IPUs, found {splits:?}"),
                ));
            }
        }

        if let Some(scale) = self.loss_scaling {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(invalid(
                    "loss_scaling",
                    format!("must be a finite number > 0, found {scale}"),
                ));
            }
        }

        if self
            .ipus_per_replica
            .checked_mul(self.replication_factor)
            .is_none()
        {
            return Err(IpuConfigError::Overflow {
                what: format!(
                    "`ipus_per_replica` × `replication_factor` = {} × {}",
                    self.ipus_per_replica, self.replication_factor
                ),
            });
        }
        self.global_batch(1)?;
        self.inference_global_batch(1)?;

        let mut warnings = Vec::new();
        if self.replicated_tensor_sharding && self.replication_factor == 1 {
            warnings.push(Warning {
                origin: origin.to_string(),
                key: "replicated_tensor_sharding".into(),
                line: line("replicated_tensor_sharding"),
                message: "has no effect with `replication_factor` 1".into(),
            });
        }
        Ok(warnings)
    }
}

/// Explains, for an inference key, where its value came from if the user did not give it.
fn inherited_note(key: &str) -> String {
    match key.strip_prefix("inference_") {
        Some(base) => format!(" (`{key}` defaults to `{base}`)"),
        None => String::new(),
    }
}

/// Values in (0, 1], and one per IPU or a single one.
fn check_proportion(
    key: &str,
    proportion: &MatmulProportion,
    ipus_key: &str,
    ipus: usize,
    invalid: &dyn Fn(&str, String) -> IpuConfigError,
    conflict: &dyn Fn(&[&str], String) -> IpuConfigError,
) -> Result<(), IpuConfigError> {
    let values = proportion.values();
    if values.is_empty() {
        return Err(invalid(key, "must not be an empty list".into()));
    }
    if let Some(bad) = values
        .iter()
        .find(|&&p| !(p.is_finite() && p > 0.0 && p <= 1.0))
    {
        return Err(invalid(
            key,
            format!("values must be in (0, 1], found {bad}"),
        ));
    }
    if proportion.for_ipus(ipus).is_none() {
        return Err(conflict(
            &[key, ipus_key],
            format!(
                "`{key}` has {} entries for {ipus} IPUs; give one per IPU (or a single one){}",
                values.len(),
                inherited_note(key)
            ),
        ));
    }
    Ok(())
}
