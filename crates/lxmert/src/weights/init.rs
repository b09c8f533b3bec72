//! Random initialisation as transformers' `LxmertPreTrainedModel._init_weights`:
//! Linear and embedding weights `normal(0, initializer_range)` with the embedding tables'
//! `padding_idx = 0` row zeroed, biases zero, LayerNorm weight one and bias zero.
//!
//! The values are deterministic per seed and independent of the thread count: each tensor
//! is cut into fixed-size chunks and every chunk draws from its own ChaCha8 stream, seeded
//! from `(seed, parameter index, chunk index)`; chunks are filled in parallel (rayon), so
//! LXMERT-base's 214 M parameters take a couple of seconds.

use crate::config::LxmertConfig;
use crate::params::{param_specs, ParamInit, ParamSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use std::collections::BTreeMap;
use tessera_ir::{DType, Tensor, TensorData, TensorType};

/// Elements per independently seeded chunk.
const CHUNK: usize = 1 << 16;

/// SplitMix64 finaliser: decorrelates nearby seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn chunk_seed(seed: u64, param: usize, chunk: usize) -> u64 {
    mix(mix(mix(seed) ^ param as u64) ^ chunk as u64)
}

/// The values of parameter number `index` of `spec`.
fn init_values(spec: &ParamSpec, index: usize, std: f32, seed: u64) -> Vec<f32> {
    let n = spec.num_elements();
    match spec.init {
        ParamInit::Zeros => vec![0.0; n],
        ParamInit::Ones => vec![1.0; n],
        ParamInit::Normal | ParamInit::NormalZeroRow0 => {
            let mut data = vec![0.0f32; n];
            data.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(c, chunk)| {
                    let mut rng = ChaCha8Rng::seed_from_u64(chunk_seed(seed, index, c));
                    for x in chunk {
                        let z: f32 = rng.sample(StandardNormal);
                        *x = z * std;
                    }
                });
            if spec.init == ParamInit::NormalZeroRow0 {
                let row: usize = spec.shape.iter().skip(1).product();
                data.iter_mut().take(row).for_each(|x| *x = 0.0);
            }
            data
        }
    }
}

/// Fresh weights for every parameter of [`param_specs`]`(config)`, initialised like
/// transformers with `normal(0, config.initializer_range)`; deterministic for a given
/// `seed` (but not equal to PyTorch's random stream).
pub fn init_weights(config: &LxmertConfig, seed: u64) -> BTreeMap<String, Tensor> {
    let std = config.initializer_range as f32;
    param_specs(config)
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let values = init_values(&spec, i, std, seed);
            // `values` has exactly the shape's element count, so `new` cannot fail.
            let ty = TensorType::new(DType::F32, spec.shape.clone());
            let tensor = Tensor::new(spec.shape, TensorData::F32(values))
                .unwrap_or_else(|_| Tensor::zeros(&ty));
            (spec.name, tensor)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LxmertConfig {
        LxmertConfig::preset("lxmert-tiny").unwrap()
    }

    #[test]
    fn covers_every_param_with_its_shape() {
        let cfg = tiny();
        let w = init_weights(&cfg, 0);
        let specs = param_specs(&cfg);
        assert_eq!(w.len(), specs.len());
        for s in &specs {
            assert_eq!(w[&s.name].shape(), &s.shape[..], "{}", s.name);
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let cfg = tiny();
        assert_eq!(init_weights(&cfg, 7), init_weights(&cfg, 7));
        let a = init_weights(&cfg, 7);
        let b = init_weights(&cfg, 8);
        let name = "lxmert.encoder.layer.0.attention.self.query.weight";
        assert_ne!(a[name], b[name]);
    }

    #[test]
    fn rules_of_init_weights() {
        let cfg = tiny();
        let w = init_weights(&cfg, 1);
        let vals = |n: &str| w[n].as_f32().unwrap().to_vec();
        assert!(vals("lxmert.embeddings.LayerNorm.weight")
            .iter()
            .all(|&x| x == 1.0));
        assert!(vals("lxmert.embeddings.LayerNorm.bias")
            .iter()
            .all(|&x| x == 0.0));
        assert!(vals("answer_head.logit_fc.3.bias")
            .iter()
            .all(|&x| x == 0.0));
        assert!(vals("answer_head.logit_fc.2.weight")
            .iter()
            .all(|&x| x == 1.0));
        let h = cfg.hidden_size;
        for table in ["word", "position", "token_type"] {
            let v = vals(&format!("lxmert.embeddings.{table}_embeddings.weight"));
            assert!(v[..h].iter().all(|&x| x == 0.0), "{table}: padding row 0");
            assert!(v[h..2 * h].iter().any(|&x| x != 0.0), "{table}: row 1");
        }
    }

    #[test]
    fn normal_statistics() {
        // word embeddings of lxmert-base: 30522 x 768 = 23.4 M samples of N(0, 0.02^2).
        // Standard errors: mean 0.02/sqrt(n) = 4.1e-6, std 0.02/sqrt(2n) = 2.9e-6; allow 6 sigma.
        let spec = ParamSpec {
            name: "w".into(),
            shape: vec![30522, 768],
            init: ParamInit::Normal,
        };
        let v = init_values(&spec, 0, 0.02, 3);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 6.0 * 0.02 / n.sqrt(), "mean {mean}");
        assert!(
            (var.sqrt() - 0.02).abs() < 6.0 * 0.02 / (2.0 * n).sqrt(),
            "std {}",
            var.sqrt()
        );
        // about 68.27 % within one sigma (binomial sd ~1e-4)
        let within = v.iter().filter(|&&x| x.abs() < 0.02).count() as f64 / n;
        assert!(
            (within - 0.682_689).abs() < 1e-3,
            "within 1 sigma: {within}"
        );
        // chunks differ (no repeated stream)
        assert_ne!(v[..16], v[CHUNK..CHUNK + 16]);
    }
}
