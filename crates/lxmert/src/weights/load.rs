//! Reading a Hugging Face `model.safetensors` into f32 tensors.
//!
//! Accepts f32, f16, bf16 and f64 tensors on disk (converted to f32); checks the names
//! and shapes against [`crate::param_specs`] and reports every problem at once. A
//! truncated or corrupt file is an error naming the file.

use super::compare;
use crate::config::LxmertConfig;
use crate::error::WeightsError;
use crate::params::param_specs;
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;
use tessera_ir::Tensor;

/// Little-endian bytes of a float type to f32 values (`None` for non-float types).
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 => Some(
            bytes
                .chunks_exact(4)
                .filter_map(|c| c.try_into().ok().map(f32::from_le_bytes))
                .collect(),
        ),
        Dtype::F16 => Some(
            bytes
                .chunks_exact(2)
                .filter_map(|c| c.try_into().ok().map(|b| f16::from_le_bytes(b).to_f32()))
                .collect(),
        ),
        Dtype::BF16 => Some(
            bytes
                .chunks_exact(2)
                .filter_map(|c| c.try_into().ok().map(|b| bf16::from_le_bytes(b).to_f32()))
                .collect(),
        ),
        Dtype::F64 => Some(
            bytes
                .chunks_exact(8)
                .filter_map(|c| c.try_into().ok().map(|b| f64::from_le_bytes(b) as f32))
                .collect(),
        ),
        _ => None,
    }
}

/// Reads every parameter of `LxmertForQuestionAnswering` for `config` from the
/// safetensors file at `path`, converted to f32.
///
/// Errors: the file cannot be read ([`WeightsError::Io`]), is not valid safetensors
/// ([`WeightsError::Corrupt`]), or its tensors do not match the parameters
/// ([`WeightsError::Mismatch`], listing every missing, unexpected, wrong-shaped and
/// non-float tensor).
pub fn load_weights(
    path: &Path,
    config: &LxmertConfig,
) -> Result<BTreeMap<String, Tensor>, WeightsError> {
    config.validate("config")?;
    let bytes = std::fs::read(path).map_err(|error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{e:?}"),
    })?;
    let specs = param_specs(config);
    let tensors = st.tensors();
    let mut values = BTreeMap::new();
    let mut dtype_names = Vec::with_capacity(tensors.len());
    for (name, view) in &tensors {
        let converted = to_f32(view.dtype(), view.data());
        dtype_names.push(match converted {
            Some(_) => None,
            None => Some(format!("{:?}", view.dtype())),
        });
        if let Some(v) = converted {
            values.insert(name.clone(), v);
        }
    }
    let mismatch = compare(
        &specs,
        tensors
            .iter()
            .zip(&dtype_names)
            .map(|((name, view), d)| (name.as_str(), view.shape(), d.as_deref())),
    );
    if !mismatch.is_empty() {
        return Err(WeightsError::Mismatch {
            origin: path.display().to_string(),
            mismatch,
        });
    }
    let mut out = BTreeMap::new();
    for spec in specs {
        let data = values.remove(&spec.name).unwrap_or_default();
        let tensor = Tensor::from_f32(spec.shape, data).map_err(|e| WeightsError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("tensor `{}`: {e}", spec.name),
        })?;
        out.insert(spec.name, tensor);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/lxmert-tiny/model.safetensors")
    }

    fn tiny() -> LxmertConfig {
        LxmertConfig::preset("lxmert-tiny").unwrap()
    }

    #[test]
    fn loads_the_fixture() {
        let w = load_weights(&fixture(), &tiny()).unwrap();
        assert_eq!(w.len(), 111);
        // LayerNorm weights start at 1 and the fixture is the untrained init
        let ln = w["lxmert.embeddings.LayerNorm.weight"].as_f32().unwrap();
        assert!(ln.iter().all(|&x| x == 1.0));
        // padding row 0 of the word embeddings is zero at init (padding_idx = 0)
        let words = w["lxmert.embeddings.word_embeddings.weight"]
            .as_f32()
            .unwrap();
        assert!(words[..32].iter().all(|&x| x == 0.0));
        assert!(words[32..64].iter().any(|&x| x != 0.0));
    }

    #[test]
    fn converts_f16_and_bf16() {
        // 1.5 and -2.0 are exact in every format
        let f16_bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::F16, &f16_bytes), Some(vec![1.5, -2.0]));
        let bf_bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::BF16, &bf_bytes), Some(vec![1.5, -2.0]));
        assert_eq!(to_f32(Dtype::I64, &[0; 8]), None);
    }

    #[test]
    fn truncated_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(fixture()).unwrap();
        for cut in [4, 100, bytes.len() - 10] {
            let p = dir.path().join(format!("cut{cut}.safetensors"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = load_weights(&p, &tiny()).unwrap_err();
            assert!(matches!(e, WeightsError::Corrupt { .. }), "{e}");
            assert!(
                e.to_string().contains(&format!("cut{cut}.safetensors")),
                "{e}"
            );
        }
        let missing = dir.path().join("absent.safetensors");
        let e = load_weights(&missing, &tiny()).unwrap_err();
        assert!(matches!(e, WeightsError::Io { .. }));
        assert!(e.to_string().contains("absent.safetensors"), "{e}");
    }

    #[test]
    fn every_mismatch_is_reported() {
        // rewrite the fixture with 3 tensors dropped, 1 renamed, 1 reshaped, 1 as i64
        let bytes = std::fs::read(fixture()).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let drop = [
            "lxmert.pooler.dense.bias",
            "answer_head.logit_fc.0.weight",
            "lxmert.encoder.r_layers.0.output.dense.bias",
        ];
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, v) in st.tensors() {
            if drop.contains(&name.as_str()) {
                continue;
            }
            let (mut name, mut shape) = (name, v.shape().to_vec());
            let (mut dtype, data) = (v.dtype(), v.data().to_vec());
            if name == "lxmert.embeddings.LayerNorm.bias" {
                name = "lxmert.embeddings.LayerNorm.beta".into();
            }
            if name == "answer_head.logit_fc.3.weight" {
                shape = vec![shape[1], shape[0]];
            }
            if name == "answer_head.logit_fc.3.bias" {
                dtype = Dtype::I32; // same byte size as f32
            }
            owned.push((name, dtype, shape, data));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = owned
            .iter()
            .map(|(n, d, s, b)| {
                let view = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
                (n.clone(), view)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        safetensors::serialize_to_file(views, &None, &p).unwrap();
        let e = load_weights(&p, &tiny()).unwrap_err();
        let WeightsError::Mismatch { origin, mismatch } = &e else {
            panic!("{e}")
        };
        assert!(origin.ends_with("bad.safetensors"));
        let mut missing = drop.map(String::from).to_vec();
        missing.push("lxmert.embeddings.LayerNorm.bias".into());
        missing.sort();
        let mut got = mismatch.missing.clone();
        got.sort();
        assert_eq!(got, missing);
        assert_eq!(
            mismatch.unexpected,
            vec!["lxmert.embeddings.LayerNorm.beta"]
        );
        assert_eq!(mismatch.wrong_shape.len(), 1);
        assert_eq!(
            mismatch.wrong_shape[0].name,
            "answer_head.logit_fc.3.weight"
        );
        assert_eq!(mismatch.wrong_shape[0].expected, vec![10, 64]);
        assert_eq!(mismatch.wrong_shape[0].found, vec![64, 10]);
        assert_eq!(
            mismatch.bad_dtype,
            vec![("answer_head.logit_fc.3.bias".to_string(), "I32".to_string())]
        );
        let text = e.to_string();
        assert!(text.contains("4 missing: "), "{text}");
        assert!(text.contains("lxmert.pooler.dense.bias"), "{text}");
        assert!(
            text.contains("1 unexpected: lxmert.embeddings.LayerNorm.beta"),
            "{text}"
        );
    }
}
