//! Writing a Hugging Face model directory: `config.json` + `model.safetensors`.
//!
//! Both files are written atomically (a temporary file in the same directory, then a
//! rename), so a failed run never leaves a half-written file under the final name. The
//! safetensors metadata carries `format: pt`, which transformers' loader expects. Weights
//! are checked against [`crate::param_specs`] before anything is written.

use super::check_map;
use crate::config::LxmertConfig;
use crate::error::WeightsError;
use crate::params::param_specs;
use safetensors::tensor::View;
use safetensors::Dtype;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tessera_ir::{Tensor, TensorData};

/// A tensor as safetensors sees it; bytes are produced (little endian) when written.
struct StView<'a>(&'a Tensor);

impl View for StView<'_> {
    fn dtype(&self) -> Dtype {
        match self.0.data() {
            TensorData::F16(_) => Dtype::F16,
            TensorData::I64(_) => Dtype::I64,
            TensorData::Bool(_) => Dtype::BOOL,
            TensorData::F32(_) => Dtype::F32,
        }
    }

    fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(match self.0.data() {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
        })
    }

    fn data_len(&self) -> usize {
        self.0.num_elements() * self.0.dtype().size_bytes()
    }
}

/// `dir/.name.tmp-<pid>`: a temporary sibling of `dir/name`.
fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Runs `write` on a temporary file, then renames it to `dir/name`; removes the temporary
/// file if anything fails.
fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), WeightsError>,
) -> Result<(), WeightsError> {
    let tmp = temp_path(dir, name);
    let target = dir.join(name);
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, &target).map_err(|error| WeightsError::Io {
            path: target.clone(),
            error,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `dir/config.json` ([`LxmertConfig::to_hf_json`]) and `dir/model.safetensors`
/// (every weight, in its element type), creating `dir` if needed. The weights must be
/// exactly [`crate::param_specs`]`(config)` (floating point); otherwise nothing is
/// written and the error lists every problem.
pub fn save_hf_dir(
    dir: &Path,
    config: &LxmertConfig,
    weights: &BTreeMap<String, Tensor>,
) -> Result<(), WeightsError> {
    config.validate("config")?;
    let mismatch = check_map(&param_specs(config), weights);
    if !mismatch.is_empty() {
        return Err(WeightsError::Mismatch {
            origin: "weights to save".into(),
            mismatch,
        });
    }
    std::fs::create_dir_all(dir).map_err(|error| WeightsError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    write_atomic(dir, "config.json", |tmp| {
        std::fs::write(tmp, config.to_hf_json()).map_err(|error| WeightsError::Io {
            path: tmp.to_path_buf(),
            error,
        })
    })?;
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    write_atomic(dir, "model.safetensors", |tmp| {
        let views = weights.iter().map(|(n, t)| (n.as_str(), StView(t)));
        safetensors::serialize_to_file(views, &metadata, tmp).map_err(|e| WeightsError::Write {
            path: tmp.to_path_buf(),
            reason: format!("{e:?}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{init_weights, load_weights};

    fn tiny() -> LxmertConfig {
        LxmertConfig::preset("lxmert-tiny").unwrap()
    }

    #[test]
    fn round_trip_through_a_hf_dir() {
        let cfg = LxmertConfig {
            num_qa_labels: 7,
            ..tiny()
        };
        let w = init_weights(&cfg, 5);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        save_hf_dir(&out, &cfg, &w).unwrap();
        let cfg2 = LxmertConfig::from_file(&out.join("config.json")).unwrap();
        assert_eq!(cfg2, cfg);
        let w2 = load_weights(&out.join("model.safetensors"), &cfg2).unwrap();
        assert_eq!(w2, w);
        // no temporary files left behind
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // transformers needs metadata format=pt
        let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let m = meta.metadata().as_ref().unwrap();
        assert_eq!(m.get("format").map(String::as_str), Some("pt"));
    }

    #[test]
    fn refuses_incomplete_weights_and_writes_nothing() {
        let cfg = tiny();
        let mut w = init_weights(&cfg, 0);
        w.remove("lxmert.pooler.dense.weight");
        w.insert("extra".into(), Tensor::scalar_f32(1.0));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m");
        let e = save_hf_dir(&out, &cfg, &w).unwrap_err().to_string();
        assert!(e.contains("1 missing: lxmert.pooler.dense.weight"), "{e}");
        assert!(e.contains("1 unexpected: extra"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn failed_write_leaves_no_file() {
        let cfg = tiny();
        let w = init_weights(&cfg, 0);
        let dir = tempfile::tempdir().unwrap();
        // a directory where the safetensors file should go makes the rename fail
        std::fs::create_dir_all(dir.path().join("model.safetensors/x")).unwrap();
        let e = save_hf_dir(dir.path(), &cfg, &w).unwrap_err();
        assert!(e.to_string().contains("model.safetensors"), "{e}");
        let stray: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }
}
