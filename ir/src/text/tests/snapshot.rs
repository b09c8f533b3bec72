//! Snapshot of the printed IR of a small hand-built graph (review changes with
//! `cargo insta review`; the snapshot lives in `ir/src/text/snapshots/`).

use crate::graph::Graph;
use crate::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::text::print;
use crate::{DType, TensorType};

/// An embedding + layer-norm + masked-softmax fragment in the shape of LXMERT's.
fn fragment() -> Graph {
    let f32t = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let mut g = Graph::new("lxmert_fragment");
    let ids = g
        .input("input_ids", TensorType::new(DType::I64, vec![2, 7]))
        .unwrap();
    let mask = g
        .input("attention_mask", TensorType::new(DType::I64, vec![2, 7]))
        .unwrap();
    let s = "lxmert.embeddings";
    let word = g
        .param(&format!("{s}.word_embeddings.weight"), f32t(&[100, 32]))
        .unwrap();
    let pos_table = g
        .param(&format!("{s}.position_embeddings.weight"), f32t(&[16, 32]))
        .unwrap();
    let gamma = g
        .param(&format!("{s}.LayerNorm.weight"), f32t(&[32]))
        .unwrap();
    let beta = g
        .param(&format!("{s}.LayerNorm.bias"), f32t(&[32]))
        .unwrap();
    let e = g
        .add(Op::Gather { padding_idx: None }, &[word, ids], s)
        .unwrap();
    let pos_ids = g
        .add(
            Op::Iota {
                axis: 1,
                ty: TensorType::new(DType::I64, vec![2, 7]),
            },
            &[],
            s,
        )
        .unwrap();
    let p = g
        .add(Op::Gather { padding_idx: None }, &[pos_table, pos_ids], s)
        .unwrap();
    let sum = g.add(Op::Binary(BinaryOp::Add), &[e, p], s).unwrap();
    let ln = g
        .add(
            Op::LayerNorm { eps: 1e-12 },
            &[sum, gamma, beta],
            format!("{s}.LayerNorm"),
        )
        .unwrap();
    let half = g
        .add(Op::Cast { to: DType::F16 }, &[ln], "lxmert.encoder")
        .unwrap();
    let scores = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: true,
            },
            &[half, half],
            "lxmert.encoder.layer.0.attention.self",
        )
        .unwrap();
    g.node_mut(scores).annot.stage = Some(1);
    let m = g.add(Op::Cast { to: DType::F16 }, &[mask], "").unwrap();
    let m = g
        .add(
            Op::Reshape {
                shape: vec![2, 1, 7],
            },
            &[m],
            "",
        )
        .unwrap();
    let one = g
        .add(
            Op::Full {
                value: 1.0,
                ty: TensorType::scalar(DType::F16),
            },
            &[],
            "",
        )
        .unwrap();
    let inv = g.add(Op::Binary(BinaryOp::Sub), &[one, m], "").unwrap();
    let big = g
        .add(
            Op::Full {
                value: -65504.0,
                ty: TensorType::scalar(DType::F16),
            },
            &[],
            "",
        )
        .unwrap();
    let bias = g.add(Op::Binary(BinaryOp::Mul), &[inv, big], "").unwrap();
    let masked = g
        .add(Op::Binary(BinaryOp::Add), &[scores, bias], "")
        .unwrap();
    let probs = g
        .add(
            Op::Softmax,
            &[masked],
            "lxmert.encoder.layer.0.attention.self",
        )
        .unwrap();
    g.node_mut(probs).annot.stage = Some(1);
    g.node_mut(probs).annot.recompute = true;
    let mean = g
        .add(
            Op::Reduce {
                kind: ReduceKind::Mean,
                axes: vec![1, 2],
                keep_dims: false,
            },
            &[probs],
            "",
        )
        .unwrap();
    let out = g.add(Op::Unary(UnaryOp::Exp), &[mean], "").unwrap();
    g.set_output("pooled", out).unwrap();
    g.set_output("attention_probs", probs).unwrap();
    g
}

#[test]
fn fragment_snapshot() {
    let g = fragment();
    crate::verify::verify(&g).unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("lxmert_fragment", print(&g));
    });
}
