//! Test support shared by the recomputation and pipeline tests: an lxmert-tiny training
//! graph (forward, VQA loss, autodiff) with random weights and feeds, and bit-exact
//! comparison of evaluator results.

use crate::autodiff::{autodiff, AutodiffOptions};
use crate::loss::attach_vqa_loss;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use tessera_ir::{DType, Graph, Tensor, TensorType};
use tessera_lxmert::{BuildOptions, LxmertConfig, Shapes};

/// A training graph with everything needed to evaluate it.
pub(crate) struct Training {
    pub graph: Graph,
    pub inputs: HashMap<String, Tensor>,
    pub params: HashMap<String, Tensor>,
}

/// lxmert-tiny's training graph for batch 2, 7 tokens (row 1 padded), 5 objects, with
/// soft VQA labels; weights and feeds drawn from `seed`.
pub(crate) fn tiny_training(seed: u64) -> Training {
    let config = LxmertConfig::preset("lxmert-tiny").unwrap();
    let (b, s, n) = (2usize, 7usize, 5usize);
    let shapes = Shapes {
        batch: b,
        seq_len: s,
        num_objects: n,
    };
    let fwd = tessera_lxmert::build(&config, &shapes, &BuildOptions::default()).unwrap();
    let labels_ty = TensorType::new(DType::F32, vec![b, config.num_qa_labels]);
    let with_loss = attach_vqa_loss(&fwd, &labels_ty).unwrap();
    let graph = autodiff(&with_loss, &AutodiffOptions::default()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut inputs = HashMap::new();
    let ids: Vec<i64> = (0..b * s)
        .map(|_| rng.gen_range(1..config.vocab_size as i64))
        .collect();
    inputs.insert(
        "input_ids".into(),
        Tensor::from_i64(vec![b, s], ids).unwrap(),
    );
    let mask: Vec<i64> = (0..b * s).map(|i| i64::from(i < s || i % s < 4)).collect();
    inputs.insert(
        "attention_mask".into(),
        Tensor::from_i64(vec![b, s], mask).unwrap(),
    );
    inputs.insert(
        "token_type_ids".into(),
        Tensor::from_i64(vec![b, s], vec![0; b * s]).unwrap(),
    );
    let f = config.visual_feat_dim;
    let feats: Vec<f32> = (0..b * n * f).map(|_| rng.gen_range(-1.0..1.0)).collect();
    inputs.insert(
        "visual_feats".into(),
        Tensor::from_f32(vec![b, n, f], feats).unwrap(),
    );
    let pos: Vec<f32> = (0..b * n * 4).map(|_| rng.gen_range(0.0..1.0)).collect();
    inputs.insert(
        "visual_pos".into(),
        Tensor::from_f32(vec![b, n, 4], pos).unwrap(),
    );
    let c = config.num_qa_labels;
    let labels: Vec<f32> = (0..b * c).map(|_| rng.gen_range(0.0..1.0)).collect();
    inputs.insert(
        "labels".into(),
        Tensor::from_f32(vec![b, c], labels).unwrap(),
    );
    let params = tessera_lxmert::init_weights(&config, seed)
        .into_iter()
        .collect();
    Training {
        graph,
        inputs,
        params,
    }
}

impl Training {
    /// Evaluates `graph` (a transformed version of this training graph) on the feeds.
    pub fn eval(&self, graph: &Graph) -> BTreeMap<String, Tensor> {
        tessera_ir::eval::evaluate(graph, &self.inputs, &self.params).unwrap()
    }
}

/// Asserts that two result sets have the same names and bit-identical values.
pub(crate) fn assert_bits_equal(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "output names differ"
    );
    for (name, x) in a {
        let y = &b[name];
        assert_eq!(x.ty(), y.ty(), "{name}");
        let (xb, yb): (Vec<u32>, Vec<u32>) = (
            x.to_f32_vec().iter().map(|v| v.to_bits()).collect(),
            y.to_f32_vec().iter().map(|v| v.to_bits()).collect(),
        );
        assert!(xb == yb, "output {name} differs in its bits");
    }
}

/// AdamW hyper-parameters for optimizer tests: transformers' defaults (lr 1e-3, betas
/// 0.9/0.999, eps 1e-8, weight decay 0.01), no warmup, no accumulation, no clipping, one step.
pub(crate) fn adamw_config() -> crate::optim::AdamWConfig {
    crate::optim::AdamWConfig {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        warmup_steps: 0,
        total_steps: 1,
        grad_accum: 1,
        max_grad_norm: None,
    }
}
