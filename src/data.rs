//! Training data: batches from a safetensors file, or a deterministic synthetic VQA task.
//!
//! The synthetic task imitates VQA inputs at any model size — a question of token ids, `N`
//! objects with non-negative, sparse "2048-d-style" region features and normalised boxes
//! `(x1, y1, x2, y2)`, and soft answer scores — and makes the answer a learnable function of
//! the inputs: each sample has a hidden answer class `c`; the question carries a token that
//! names `c`, and one object's features carry a bump at a feature index tied to `c`. The
//! soft labels follow VQA's scoring (1.0 for the answer, 0.3 for a near-miss answer).
//! A file source yields its samples in order, `batch` at a time, cycling at the end.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tessera_ir::{DType, Tensor, TensorData};
use tessera_lxmert::LxmertConfig;

/// Shapes of the synthetic samples.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticShape {
    /// Question length in tokens.
    pub seq_len: usize,
    /// Objects per image.
    pub num_objects: usize,
}

/// A source of training batches (tensors named as `run --train` inputs, with `labels`).
pub enum DataSource {
    /// Samples from a file, in order, cycling.
    File {
        /// All samples, batch axis first.
        tensors: BTreeMap<String, Tensor>,
        /// Number of samples in the file.
        len: usize,
        /// Next sample.
        cursor: usize,
    },
    /// The synthetic VQA task.
    Synthetic {
        /// The model's configuration (vocabulary, feature and label sizes).
        config: Box<LxmertConfig>,
        /// Sample shapes.
        shape: SyntheticShape,
        /// Random state.
        rng: Box<ChaCha8Rng>,
    },
}

impl DataSource {
    /// A synthetic source seeded with `seed`.
    pub fn synthetic(config: &LxmertConfig, shape: SyntheticShape, seed: u64) -> Self {
        DataSource::Synthetic {
            config: Box::new(config.clone()),
            shape,
            rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// A source over the samples of `tensors` (all with the same first extent).
    pub fn from_tensors(tensors: BTreeMap<String, Tensor>, source: &str) -> Result<Self> {
        let mut len = None;
        for (name, t) in &tensors {
            let Some(&n) = t.shape().first() else {
                bail!("{source}: tensor `{name}` is a scalar; every tensor needs a batch axis");
            };
            match len {
                None => len = Some(n),
                Some(m) if m != n => {
                    bail!("{source}: tensor `{name}` has {n} samples but others have {m}")
                }
                _ => {}
            }
        }
        match len {
            Some(len) if len > 0 => Ok(DataSource::File {
                tensors,
                len,
                cursor: 0,
            }),
            _ => bail!("{source}: no samples"),
        }
    }

    /// The next `batch` samples.
    pub fn next_batch(&mut self, batch: usize) -> Result<BTreeMap<String, Tensor>> {
        match self {
            DataSource::File {
                tensors,
                len,
                cursor,
            } => {
                let idx: Vec<usize> = (0..batch).map(|i| (*cursor + i) % *len).collect();
                *cursor = (*cursor + batch) % *len;
                tensors
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), take_rows(t, &idx)?)))
                    .collect()
            }
            DataSource::Synthetic { config, shape, rng } => {
                Ok(synthetic_batch(config, *shape, batch, rng.as_mut()))
            }
        }
    }
}

/// Rows `idx` of `t` along its first axis.
fn take_rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = idx.len();
    fn pick<T: Copy>(v: &[T], idx: &[usize], row: usize) -> Vec<T> {
        idx.iter()
            .flat_map(|&i| v[i * row..(i + 1) * row].iter().copied())
            .collect()
    }
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(pick(v, idx, row)),
        TensorData::F16(v) => TensorData::F16(pick(v, idx, row)),
        TensorData::I64(v) => TensorData::I64(pick(v, idx, row)),
        TensorData::Bool(v) => TensorData::Bool(pick(v, idx, row)),
    };
    Ok(Tensor::new(shape, data)?)
}

fn synthetic_batch(
    config: &LxmertConfig,
    shape: SyntheticShape,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> BTreeMap<String, Tensor> {
    let (s, n, f, c) = (
        shape.seq_len,
        shape.num_objects,
        config.visual_feat_dim,
        config.num_qa_labels,
    );
    let vocab = config.vocab_size.max(3) as i64;
    let mut ids = Vec::with_capacity(batch * s);
    let mut mask = Vec::with_capacity(batch * s);
    let mut feats = vec![0f32; batch * n * f];
    let mut boxes = Vec::with_capacity(batch * n * 4);
    let mut labels = vec![0f32; batch * c];
    for b in 0..batch {
        let answer = rng.gen_range(0..c);
        // Question: [CLS]-like token 1, the answer's token, filler tokens, then padding.
        let len = if s > 2 { rng.gen_range(2..=s) } else { s };
        for i in 0..s {
            let tok = match i {
                0 => 1,
                1 => 2 + (answer as i64 % (vocab - 2)),
                _ if i < len => rng.gen_range(2..vocab),
                _ => 0,
            };
            ids.push(tok);
            mask.push(i64::from(i < len));
        }
        // Objects: sparse non-negative features; object 0 carries the answer's bump.
        for o in 0..n {
            let row = &mut feats[(b * n + o) * f..(b * n + o + 1) * f];
            for x in row.iter_mut() {
                if rng.gen_bool(0.25) {
                    *x = rng.gen_range(0.0f32..1.0);
                }
            }
            if o == 0 {
                row[answer % f] += 4.0;
            }
            let (x1, y1) = (rng.gen_range(0.0f32..0.7), rng.gen_range(0.0f32..0.7));
            let (w, h) = (rng.gen_range(0.1f32..0.3), rng.gen_range(0.1f32..0.3));
            boxes.extend_from_slice(&[x1, y1, x1 + w, y1 + h]);
        }
        labels[b * c + answer] = 1.0;
        if c > 1 {
            labels[b * c + (answer + 1) % c] = 0.3;
        }
    }
    let t = |shape: Vec<usize>, data: TensorData| {
        Tensor::new(shape, data).expect("sizes computed above")
    };
    let mut out = BTreeMap::new();
    out.insert("input_ids".into(), t(vec![batch, s], TensorData::I64(ids)));
    out.insert(
        "attention_mask".into(),
        t(vec![batch, s], TensorData::I64(mask)),
    );
    out.insert(
        "token_type_ids".into(),
        Tensor::zeros(&tessera_ir::TensorType::new(DType::I64, vec![batch, s])),
    );
    out.insert(
        "visual_feats".into(),
        t(vec![batch, n, f], TensorData::F32(feats)),
    );
    out.insert(
        "visual_pos".into(),
        t(vec![batch, n, 4], TensorData::F32(boxes)),
    );
    out.insert("labels".into(), t(vec![batch, c], TensorData::F32(labels)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_deterministic_and_well_formed() {
        let cfg = LxmertConfig::preset("lxmert-tiny").unwrap();
        let shape = SyntheticShape {
            seq_len: 7,
            num_objects: 5,
        };
        let a = DataSource::synthetic(&cfg, shape, 3).next_batch(4).unwrap();
        let b = DataSource::synthetic(&cfg, shape, 3).next_batch(4).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["labels"].shape(), &[4, cfg.num_qa_labels]);
        let ids = a["input_ids"].as_i64().unwrap();
        assert!(ids.iter().all(|&x| x >= 0 && (x as usize) < cfg.vocab_size));
    }

    #[test]
    fn file_source_cycles() {
        let mut m = BTreeMap::new();
        m.insert(
            "x".to_string(),
            Tensor::from_i64(vec![3, 1], vec![10, 11, 12]).unwrap(),
        );
        let mut src = DataSource::from_tensors(m, "mem").unwrap();
        let b1 = src.next_batch(2).unwrap();
        let b2 = src.next_batch(2).unwrap();
        assert_eq!(b1["x"].as_i64().unwrap(), &[10, 11]);
        assert_eq!(b2["x"].as_i64().unwrap(), &[12, 10]);
    }
}
