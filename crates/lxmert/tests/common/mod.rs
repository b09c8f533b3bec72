//! Helpers shared by the integration tests: fixture loading and a reference interpreter.

pub mod refeval;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tessera_ir::Tensor;

/// Path of a file in `tests/data`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/lxmert-tiny")
        .join(name)
}

/// Every tensor of a fixture safetensors file (f32 and i64 only).
pub fn read_tensors(name: &str) -> HashMap<String, Tensor> {
    let bytes = std::fs::read(data(name)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| {
            let shape = v.shape().to_vec();
            let t = match v.dtype() {
                safetensors::Dtype::F32 => {
                    let d = v
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()));
                    Tensor::from_f32(shape, d.collect()).unwrap()
                }
                safetensors::Dtype::I64 => {
                    let d = v
                        .data()
                        .chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap()));
                    Tensor::from_i64(shape, d.collect()).unwrap()
                }
                other => panic!("{name}: {n}: unexpected dtype {other:?}"),
            };
            (n, t)
        })
        .collect()
}
