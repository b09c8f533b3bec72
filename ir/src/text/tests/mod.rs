//! Tests of the text IR: exact printing, round trips (every op variant, random graphs,
//! serde), error reporting, robustness against arbitrary input, and a snapshot.
//!
//! Shared here: a structural graph comparison that does not go through the printer, and a
//! graph that uses every op variant and attribute.

mod errors;
mod fuzz;
mod gen;
mod roundtrip;
mod snapshot;

use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, Op, ReduceKind, UnaryOp};
use crate::{DType, TensorType};
use std::collections::HashMap;

/// Op equality that compares floats by their bits (so NaNs compare).
fn op_bits_eq(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::Full { value: x, ty: s }, Op::Full { value: y, ty: t }) => {
            x.to_bits() == y.to_bits() && s == t
        }
        (Op::LayerNorm { eps: x }, Op::LayerNorm { eps: y }) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// The inputs in creation order, then the other nodes in topological order: the order in
/// which the text IR lists nodes.
fn printed_order(g: &Graph) -> Vec<NodeId> {
    let mut order = g.inputs();
    order.extend(
        g.topo_order()
            .into_iter()
            .filter(|&n| !matches!(g.node(n).op, Op::Input { .. })),
    );
    order
}

/// Asserts that two graphs are the same up to node ids: same name, and node by node in
/// printed order (inputs, then the rest topologically) the same op, type, scope,
/// annotations and operands; same outputs.
pub(super) fn assert_same_graph(a: &Graph, b: &Graph) {
    assert_eq!(a.name, b.name);
    let (oa, ob) = (printed_order(a), printed_order(b));
    assert_eq!(oa.len(), ob.len(), "node count");
    assert_eq!(a.len(), b.len());
    let map: HashMap<NodeId, NodeId> = oa.iter().copied().zip(ob.iter().copied()).collect();
    for (&x, &y) in oa.iter().zip(&ob) {
        let (nx, ny) = (a.node(x), b.node(y));
        assert!(op_bits_eq(&nx.op, &ny.op), "{:?} vs {:?}", nx.op, ny.op);
        assert_eq!(nx.ty, ny.ty);
        assert_eq!(nx.scope, ny.scope);
        assert_eq!(nx.annot, ny.annot);
        let ops: Vec<NodeId> = a.operands(x).iter().map(|o| map[o]).collect();
        assert_eq!(ops, b.operands(y), "operands of {:?}", nx.op);
    }
    assert_eq!(a.outputs().len(), b.outputs().len());
    for (p, q) in a.outputs().iter().zip(b.outputs()) {
        assert_eq!(p.name, q.name);
        assert_eq!(map[&p.node], q.node);
    }
}

/// Verifies `g`, tolerating only scopes with white space (which the text IR can still
/// express, quoted).
pub(super) fn verify_but_scopes(g: &Graph) {
    if let Err(e) = crate::verify::verify(g) {
        for v in &e.violations {
            assert!(v.message.starts_with("malformed scope"), "{e}");
        }
    }
}

fn t(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s.to_vec())
}

/// A graph with every op variant, every attribute (flags on and off), special floats,
/// names and scopes that need quoting, and annotations.
pub(super) fn all_ops_graph() -> Graph {
    use DType::*;
    let mut g = Graph::new("all_ops");
    let x = g.input("x", t(F32, &[2, 7, 8])).unwrap();
    let ids = g.input("input_ids", t(I64, &[2, 7])).unwrap();
    let h = g.input("attention mask", t(F16, &[2, 7, 8])).unwrap();
    g.node_mut(h).annot.stage = Some(0);
    let w = g.param("enc.q.weight", t(F32, &[16, 8])).unwrap();
    let table = g
        .param("emb.word_embeddings.weight", t(F32, &[100, 8]))
        .unwrap();
    let gamma = g.param("ln.weight", t(F32, &[8])).unwrap();
    let beta = g.param("ln.bias", t(F32, &[8])).unwrap();
    let p57 = g.param("odd \"name\"\\\n\u{1}é", t(F32, &[5, 7])).unwrap();
    let hw = g.param("half.weight", t(F16, &[16, 8])).unwrap();
    let add = |g: &mut Graph, op: Op, ops: &[NodeId], scope: &str| g.add(op, ops, scope).unwrap();
    let mut last = Vec::new();
    for value in [
        -3.4028234663852886e38,
        1e-12,
        -0.0,
        0.1,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0abc),
        5e-324,
    ] {
        last.push(add(
            &mut g,
            Op::Full {
                value,
                ty: t(F32, &[]),
            },
            &[],
            "",
        ));
    }
    let minf = last[0];
    add(
        &mut g,
        Op::Iota {
            axis: 1,
            ty: t(I64, &[2, 7]),
        },
        &[],
        "emb",
    );
    for u in UnaryOp::ALL {
        add(&mut g, Op::Unary(u), &[x], "enc.layer.0");
    }
    for b in BinaryOp::ALL {
        add(&mut g, Op::Binary(b), &[x, minf], "enc.layer.1");
    }
    let mut cond = x;
    for c in CmpOp::ALL {
        cond = add(&mut g, Op::Compare(c), &[x, minf], "");
    }
    add(&mut g, Op::Select, &[cond, x, minf], "weird scope");
    let mm = |ta, tb, hp| Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
        half_partials: hp,
    };
    add(&mut g, mm(false, true, false), &[x, w], "enc.q");
    add(&mut g, mm(true, false, false), &[x, x], "");
    add(&mut g, mm(true, true, false), &[x, p57], "");
    let q = add(&mut g, mm(false, true, true), &[h, hw], "");
    g.node_mut(q).annot = crate::Annotations {
        stage: Some(3),
        recompute: true,
    };
    let emb = add(
        &mut g,
        Op::Gather { padding_idx: None },
        &[table, ids],
        "emb",
    );
    g.node_mut(emb).annot.recompute = true;
    let sc = add(&mut g, Op::ScatterAdd { rows: 100 }, &[ids, emb], "emb");
    add(
        &mut g,
        Op::OneHot {
            depth: 10,
            dtype: F16,
        },
        &[ids],
        "",
    );
    add(&mut g, Op::Softmax, &[x], "");
    let ln = add(
        &mut g,
        Op::LayerNorm { eps: 1e-12 },
        &[x, gamma, beta],
        "ln",
    );
    for (kind, axes, keep_dims) in [
        (ReduceKind::Sum, vec![2], true),
        (ReduceKind::Mean, vec![0, 2], false),
        (ReduceKind::Max, vec![], false),
    ] {
        add(
            &mut g,
            Op::Reduce {
                kind,
                axes,
                keep_dims,
            },
            &[x],
            "",
        );
    }
    add(&mut g, Op::Reshape { shape: vec![14, 8] }, &[x], "");
    add(&mut g, Op::Reshape { shape: vec![] }, &[minf], "");
    let tr = add(
        &mut g,
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[x],
        "",
    );
    add(
        &mut g,
        Op::BroadcastTo {
            shape: vec![2, 7, 8],
        },
        &[gamma],
        "",
    );
    add(
        &mut g,
        Op::Slice {
            axis: 1,
            start: 0,
            end: 1,
        },
        &[x],
        "",
    );
    add(
        &mut g,
        Op::Pad {
            axis: 2,
            before: 1,
            after: 2,
        },
        &[x],
        "",
    );
    let cat = add(&mut g, Op::Concat { axis: 0 }, &[x, ln, x], "");
    add(&mut g, Op::Concat { axis: 1 }, &[tr], "");
    let cast = add(&mut g, Op::Cast { to: F16 }, &[cat], "");
    g.set_output("cast", cast).unwrap();
    g.set_output("0", sc).unwrap();
    g.set_output("with space", q).unwrap();
    g
}

/// Every op name the text IR has, from the op enums.
pub(super) fn every_op_name() -> Vec<&'static str> {
    let mut names: Vec<&str> = vec![
        "param",
        "full",
        "iota",
        "select",
        "matmul",
        "gather",
        "scatter_add",
        "one_hot",
        "softmax",
        "layer_norm",
        "reshape",
        "transpose",
        "broadcast_to",
        "slice",
        "pad",
        "concat",
        "cast",
    ];
    names.extend(UnaryOp::ALL.iter().map(|u| u.name()));
    names.extend(BinaryOp::ALL.iter().map(|b| b.name()));
    names.extend(CmpOp::ALL.iter().map(|c| c.name()));
    names.extend(ReduceKind::ALL.iter().map(|k| k.name()));
    names
}
