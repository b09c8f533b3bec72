//! Tests of the mixed-precision pass on a small LXMERT-shaped graph: structure of the
//! rewrite, numerics against the f32 graph, gradients (before and after autodiff), loss
//! scaling, and snapshots of the printed IR.

mod gradients;
mod numerics;
mod snapshot;
mod structure;

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, Tensor, TensorType, UnaryOp};

const B: usize = 2;
const L: usize = 4;
const H: usize = 8;
const V: usize = 16;
const C: usize = 3;

fn f32t(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

/// A linear layer `x W^T + b` in `scope`.
fn linear(g: &mut Graph, x: NodeId, scope: &str, out: usize, inp: usize) -> NodeId {
    let w = g
        .param(&format!("{scope}.weight"), f32t(&[out, inp]))
        .unwrap();
    let b = g.param(&format!("{scope}.bias"), f32t(&[out])).unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let y = g.add(mm, &[x, w], scope).unwrap();
    g.add(Op::Binary(BinaryOp::Add), &[y, b], scope).unwrap()
}

/// Embedding, layer norm, one masked attention head with a residual, GELU and a QA head
/// averaged over the sequence: `question_answering_score: f32[B, C]`.
pub(super) fn fragment() -> Graph {
    let mut g = Graph::new("fragment");
    let ids = g
        .input("input_ids", TensorType::new(DType::I64, vec![B, L]))
        .unwrap();
    let mask = g
        .input("attention_mask", TensorType::new(DType::I64, vec![B, L]))
        .unwrap();
    let table = g.param("emb.weight", f32t(&[V, H])).unwrap();
    let e = g
        .add(Op::Gather { padding_idx: None }, &[table, ids], "emb")
        .unwrap();
    let gamma = g.param("ln.weight", f32t(&[H])).unwrap();
    let beta = g.param("ln.bias", f32t(&[H])).unwrap();
    let h = g
        .add(Op::LayerNorm { eps: 1e-12 }, &[e, gamma, beta], "ln")
        .unwrap();
    let q = linear(&mut g, h, "attn.query", H, H);
    let scores_op = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let scores = g.add(scores_op, &[q, h], "attn").unwrap();
    let m = g
        .add(
            Op::Reshape {
                shape: vec![B, 1, L],
            },
            &[mask],
            "attn",
        )
        .unwrap();
    let m = g.add(Op::Cast { to: DType::F32 }, &[m], "attn").unwrap();
    let one = g
        .add(
            Op::Full {
                value: 1.0,
                ty: f32t(&[]),
            },
            &[],
            "attn",
        )
        .unwrap();
    let inv = g.add(Op::Binary(BinaryOp::Sub), &[one, m], "attn").unwrap();
    let min = g
        .add(
            Op::Full {
                value: f64::from(f32::MIN),
                ty: f32t(&[]),
            },
            &[],
            "attn",
        )
        .unwrap();
    let bias = g
        .add(Op::Binary(BinaryOp::Mul), &[inv, min], "attn")
        .unwrap();
    let masked = g
        .add(Op::Binary(BinaryOp::Add), &[scores, bias], "attn")
        .unwrap();
    let probs = g.add(Op::Softmax, &[masked], "attn").unwrap();
    let ctx_op = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
        half_partials: false,
    };
    let ctx = g.add(ctx_op, &[probs, q], "attn").unwrap();
    let res = g.add(Op::Binary(BinaryOp::Add), &[ctx, h], "attn").unwrap();
    let act = g.add(Op::Unary(UnaryOp::Gelu), &[res], "act").unwrap();
    let logits = linear(&mut g, act, "head", C, H);
    let pooled = g
        .add(
            Op::Reduce {
                kind: tessera_ir::ReduceKind::Mean,
                axes: vec![1],
                keep_dims: false,
            },
            &[logits],
            "head",
        )
        .unwrap();
    g.set_output("question_answering_score", pooled).unwrap();
    tessera_ir::verify(&g).unwrap();
    g
}

/// Seeded weights (scale 0.5) for the fragment's parameters, LayerNorm weight around 1.
pub(super) fn weights(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for p in g.params() {
        let Op::Param { name, ty } = &g.node(p).op else {
            unreachable!()
        };
        let n = ty.num_elements();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                let x: f32 = rng.gen_range(-0.5..0.5);
                if name == "ln.weight" {
                    1.0 + x
                } else {
                    x
                }
            })
            .collect();
        out.insert(name.clone(), Tensor::from_f32(ty.shape.clone(), v).unwrap());
    }
    out
}

/// Inputs: token ids and a mask with the last position of the second sample masked.
pub(super) fn inputs() -> HashMap<String, Tensor> {
    let ids = Tensor::from_i64(vec![B, L], vec![1, 5, 9, 2, 3, 15, 0, 7]).unwrap();
    let mask = Tensor::from_i64(vec![B, L], vec![1, 1, 1, 1, 1, 1, 1, 0]).unwrap();
    HashMap::from([
        ("input_ids".to_string(), ids),
        ("attention_mask".to_string(), mask),
    ])
}

/// Weights cast to the types of the graph's parameters (f16 under `master_weights = f16`).
pub(super) fn weights_for(g: &Graph, w: &HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    g.params()
        .into_iter()
        .filter_map(|p| match &g.node(p).op {
            Op::Param { name, ty } => Some((name.clone(), w[name].cast(ty.dtype))),
            _ => None,
        })
        .collect()
}

/// Max |a − b| / max |b|.
pub(super) fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    a.rel_max_err(b).unwrap()
}

/// The nodes of `g` with op name `name`.
pub(super) fn nodes_named(g: &Graph, name: &str) -> Vec<NodeId> {
    g.node_ids()
        .filter(|&n| g.node(n).op.name() == name)
        .collect()
}
