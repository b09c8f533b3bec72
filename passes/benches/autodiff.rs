//! Time of the autodiff pass on LXMERT-base with its VQA loss (the real builder, batch 1,
//! 20 tokens, 36 objects) and on a synthetic BERT-style encoder of similar size: the pass
//! must stay well under 100 ms for LXMERT-base.
//!
//! Run with `cargo bench -p tessera-passes --bench autodiff`.

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, ReduceKind, TensorType, UnaryOp};
use tessera_lxmert::{build, BuildOptions, LxmertConfig, Shapes};
use tessera_passes::{attach_vqa_loss, autodiff, AutodiffOptions};

const B: usize = 2;
const S: usize = 8;
const H: usize = 16;
const HEADS: usize = 2;
const LAYERS: usize = 120;

fn f32t(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

fn add(g: &mut Graph, op: Op, xs: &[NodeId], scope: &str) -> NodeId {
    g.add(op, xs, scope).expect("well-typed synthetic graph")
}

fn linear(g: &mut Graph, x: NodeId, i: usize, o: usize, scope: &str) -> NodeId {
    let w = g
        .param(&format!("{scope}.weight"), f32t(&[o, i]))
        .expect("param");
    let b = g
        .param(&format!("{scope}.bias"), f32t(&[o]))
        .expect("param");
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let y = add(g, mm, &[x, w], scope);
    add(g, Op::Binary(BinaryOp::Add), &[y, b], scope)
}

fn layer_norm(g: &mut Graph, x: NodeId, scope: &str) -> NodeId {
    let gamma = g
        .param(&format!("{scope}.weight"), f32t(&[H]))
        .expect("param");
    let beta = g
        .param(&format!("{scope}.bias"), f32t(&[H]))
        .expect("param");
    add(g, Op::LayerNorm { eps: 1e-12 }, &[x, gamma, beta], scope)
}

fn heads(g: &mut Graph, x: NodeId, scope: &str) -> NodeId {
    let r = add(
        g,
        Op::Reshape {
            shape: vec![B, S, HEADS, H / HEADS],
        },
        &[x],
        scope,
    );
    add(
        g,
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[r],
        scope,
    )
}

fn layer(g: &mut Graph, x: NodeId, mask: NodeId, scope: &str) -> NodeId {
    let q = linear(g, x, H, H, &format!("{scope}.attention.self.query"));
    let k = linear(g, x, H, H, &format!("{scope}.attention.self.key"));
    let v = linear(g, x, H, H, &format!("{scope}.attention.self.value"));
    let att = format!("{scope}.attention.self");
    let (q, k, v) = (heads(g, q, &att), heads(g, k, &att), heads(g, v, &att));
    let qk = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let s = add(g, qk, &[q, k], &att);
    let scale = add(
        g,
        Op::Full {
            value: 0.5,
            ty: f32t(&[]),
        },
        &[],
        &att,
    );
    let s = add(g, Op::Binary(BinaryOp::Mul), &[s, scale], &att);
    let s = add(g, Op::Binary(BinaryOp::Add), &[s, mask], &att);
    let p = add(g, Op::Softmax, &[s], &att);
    let pv = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
        half_partials: false,
    };
    let c = add(g, pv, &[p, v], &att);
    let c = add(
        g,
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[c],
        &att,
    );
    let c = add(
        g,
        Op::Reshape {
            shape: vec![B, S, H],
        },
        &[c],
        &att,
    );
    let o = linear(g, c, H, H, &format!("{scope}.attention.output.dense"));
    let o = add(g, Op::Binary(BinaryOp::Add), &[o, x], scope);
    let o = layer_norm(g, o, &format!("{scope}.attention.output.LayerNorm"));
    let i = linear(g, o, H, 4 * H, &format!("{scope}.intermediate.dense"));
    let i = add(g, Op::Unary(UnaryOp::Gelu), &[i], scope);
    let f = linear(g, i, 4 * H, H, &format!("{scope}.output.dense"));
    let f = add(g, Op::Binary(BinaryOp::Add), &[f, o], scope);
    layer_norm(g, f, &format!("{scope}.output.LayerNorm"))
}

fn encoder() -> Graph {
    let mut g = Graph::new("encoder");
    let x = g.input("x", f32t(&[B, S, H])).expect("input");
    let mask = g.input("mask", f32t(&[B, 1, 1, S])).expect("input");
    let mut h = x;
    for l in 0..LAYERS {
        h = layer(&mut g, h, mask, &format!("encoder.layer.{l}"));
    }
    let sum = Op::Reduce {
        kind: ReduceKind::Mean,
        axes: vec![0, 1, 2],
        keep_dims: false,
    };
    let loss = add(&mut g, sum, &[h], "loss");
    g.set_output("loss", loss).expect("output");
    g
}

fn lxmert_base() -> Graph {
    let config = LxmertConfig::preset("lxmert-base").expect("preset");
    let shapes = Shapes {
        batch: 1,
        seq_len: 20,
        num_objects: 36,
    };
    let forward = build(&config, &shapes, &BuildOptions::default()).expect("builds");
    let labels = TensorType::new(DType::F32, vec![1, config.num_qa_labels]);
    attach_vqa_loss(&forward, &labels).expect("has a QA head")
}

fn bench(c: &mut Criterion) {
    let opts = AutodiffOptions::default();
    for (name, g) in [
        ("autodiff_lxmert_base", lxmert_base()),
        ("autodiff_encoder_5k", encoder()),
    ] {
        let ad = autodiff(&g, &opts).expect("differentiable");
        println!(
            "{name}: forward nodes {}, with backward {}",
            g.len(),
            ad.len()
        );
        c.bench_function(name, |b| {
            b.iter(|| autodiff(&g, &opts).expect("differentiable"))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
