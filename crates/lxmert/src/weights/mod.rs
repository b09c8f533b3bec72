//! Model weights as maps from state-dict name to [`Tensor`]: random initialisation like
//! transformers, loading a Hugging Face `model.safetensors`, and writing a Hugging Face
//! model directory.
//!
//! Every set of weights is checked against [`crate::param_specs`]; all problems (missing,
//! unexpected, wrong-shaped or wrongly typed tensors) are reported together.

mod init;
mod load;
mod save;

pub use init::init_weights;
pub use load::load_weights;
pub use save::save_hf_dir;

use crate::error::{ShapeProblem, WeightsMismatch};
use crate::params::ParamSpec;
use std::collections::{BTreeMap, BTreeSet};
use tessera_ir::{DType, Tensor};

/// Compares `found` (name → shape and element type) with `specs`: every problem, with the
/// lists sorted by name (missing ones in state-dict order).
pub(crate) fn compare<'a>(
    specs: &[ParamSpec],
    found: impl IntoIterator<Item = (&'a str, &'a [usize], Option<&'a str>)>,
) -> WeightsMismatch {
    let expected: BTreeMap<&str, &ParamSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut seen = BTreeSet::new();
    let mut m = WeightsMismatch::default();
    for (name, shape, bad_dtype) in found {
        match expected.get(name) {
            None => m.unexpected.push(name.to_string()),
            Some(spec) => {
                seen.insert(name);
                if spec.shape != shape {
                    m.wrong_shape.push(ShapeProblem {
                        name: name.to_string(),
                        expected: spec.shape.clone(),
                        found: shape.to_vec(),
                    });
                }
                if let Some(dtype) = bad_dtype {
                    m.bad_dtype.push((name.to_string(), dtype.to_string()));
                }
            }
        }
    }
    m.missing = specs
        .iter()
        .filter(|s| !seen.contains(s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    m.unexpected.sort();
    m.wrong_shape.sort_by(|a, b| a.name.cmp(&b.name));
    m.bad_dtype.sort();
    m
}

/// Checks an in-memory weight map against `specs` (floating-point tensors only).
pub(crate) fn check_map(
    specs: &[ParamSpec],
    weights: &BTreeMap<String, Tensor>,
) -> WeightsMismatch {
    compare(
        specs,
        weights.iter().map(|(name, t)| {
            let bad = match t.dtype() {
                DType::F32 | DType::F16 => None,
                other => Some(other.name()),
            };
            (name.as_str(), t.shape(), bad)
        }),
    )
}
