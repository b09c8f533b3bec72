//! Exact printing and round trips: a hand-written expected printout, every op variant,
//! value names, serde, and a 20k-node graph.

use super::{all_ops_graph, assert_same_graph, every_op_name, verify_but_scopes};
use crate::graph::Graph;
use crate::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::text::{parse, print};
use crate::verify::verify;
use crate::{DType, TensorType};

/// A small LXMERT-like graph and its printout written out by hand.
fn small() -> (Graph, &'static str) {
    let mut g = Graph::new("lxmert_tiny");
    let ids = g
        .input("input_ids", TensorType::new(DType::I64, vec![2, 7]))
        .unwrap();
    // Created before the second input: the header still lists inputs in creation order and
    // the numbering skips inputs.
    let table = g
        .param(
            "lxmert.embeddings.word_embeddings.weight",
            TensorType::new(DType::F32, vec![100, 32]),
        )
        .unwrap();
    let mask = g
        .input("attention_mask", TensorType::new(DType::I64, vec![2, 7]))
        .unwrap();
    let emb = g
        .add(
            Op::Gather { padding_idx: None },
            &[table, ids],
            "lxmert.embeddings",
        )
        .unwrap();
    let m = g.add(Op::Cast { to: DType::F32 }, &[mask], "").unwrap();
    let big = g
        .add(
            Op::Full {
                value: -3.4028234663852886e38,
                ty: TensorType::scalar(DType::F32),
            },
            &[],
            "",
        )
        .unwrap();
    let neg = g.add(Op::Binary(BinaryOp::Mul), &[m, big], "").unwrap();
    let q = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: false,
            },
            &[emb, emb],
            "lxmert.encoder.layer.0.attention.self",
        )
        .unwrap();
    g.node_mut(q).annot.stage = Some(1);
    g.node_mut(q).annot.recompute = true;
    let s = g
        .add(
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![2],
                keep_dims: true,
            },
            &[q],
            "",
        )
        .unwrap();
    let t = g.add(Op::Unary(UnaryOp::Tanh), &[s], "").unwrap();
    g.set_output("score", t).unwrap();
    g.set_output("mask_bias", neg).unwrap();
    let text = "\
graph @lxmert_tiny(%input_ids: i64[2,7], %attention_mask: i64[2,7]) {
  %0 = param \"lxmert.embeddings.word_embeddings.weight\" : f32[100,32]  @lxmert.embeddings.word_embeddings
  %1 = gather(%0, %input_ids) : f32[2,7,32]  @lxmert.embeddings
  %2 = cast(%attention_mask) {to=f32} : f32[2,7]
  %3 = full {value=-3.4028234663852886e38} : f32[]
  %4 = mul(%2, %3) : f32[2,7]
  %5 = matmul(%1, %1) {transpose_b} : f32[2,7,7]  @lxmert.encoder.layer.0.attention.self  stage=1 recompute
  %6 = reduce_sum(%5) {axes=[2], keep_dims} : f32[2,7,1]
  %7 = tanh(%6) : f32[2,7,1]
  return %score: %7, %mask_bias: %4
}
";
    (g, text)
}

#[test]
fn prints_the_documented_format_exactly() {
    let (g, expected) = small();
    assert_eq!(print(&g), expected);
    let parsed = parse(expected).unwrap();
    assert_same_graph(&g, &parsed);
    verify(&parsed).unwrap();
}

#[test]
fn parses_comments_blank_lines_and_multiline_headers() {
    let (g, _) = small();
    let text = "
// a comment before the graph

graph @lxmert_tiny(
    %input_ids: i64[2,7],   // first input
    %attention_mask: i64[2,7]
) {
  %0 = param \"lxmert.embeddings.word_embeddings.weight\" : f32[100,32] @lxmert.embeddings.word_embeddings

  %1 = gather(%0, %input_ids) : f32[2,7,32] @lxmert.embeddings // the embedding
  %2 = cast(%attention_mask) {to=f32} : f32[2,7]
  %3 = full {value=-3.4028234663852886e+38} : f32[]
  %4 = mul(%2, %3) : f32[2,7]
  // names need not be numbers in hand-written IR
  %q = matmul(%1, %1) {transpose_b} : f32[2,7,7] @lxmert.encoder.layer.0.attention.self stage=1 recompute
  %6 = reduce_sum(%q) {keep_dims, axes=[2]} : f32[2,7,1]
  %7 = tanh(%6) : f32[2,7,1]
  return %score: %7, %mask_bias: %4
}
// trailing comment
";
    let parsed = parse(text).unwrap();
    assert_same_graph(&g, &parsed);
    assert_eq!(print(&parsed), print(&g));
}

#[test]
fn every_op_variant_round_trips() {
    let g = all_ops_graph();
    verify_but_scopes(&g);
    let text = print(&g);
    for name in every_op_name() {
        assert!(
            text.contains(&format!(" = {name}(")) || text.contains(&format!(" = {name} ")),
            "op {name} missing from\n{text}"
        );
    }
    for attr in [
        "{value=-3.4028234663852886e38}",
        "{value=-0.0}",
        "{value=inf}",
        "{value=-inf}",
        "{value=nan}",
        "{value=0x7ff8000000000abc}",
        "{value=5e-324}",
        "{axis=1}",
        "{transpose_a}",
        "{transpose_a, transpose_b}",
        "{transpose_b, half_partials}",
        "{rows=100}",
        "{depth=10, dtype=f16}",
        "{eps=1e-12}",
        "{axes=[2], keep_dims}",
        "{axes=[0,2]}",
        "{axes=[]}",
        "{shape=[14,8]}",
        "{shape=[]}",
        "{perm=[0,2,1]}",
        "{shape=[2,7,8]}",
        "{axis=1, start=0, end=1}",
        "{axis=2, before=1, after=2}",
        "{axis=0}",
        "{to=f16}",
        "%\"attention mask\": f16[2,7,8] stage=0",
        "param \"odd \\\"name\\\"\\\\\\n\\u{1}é\"",
        "@\"weird scope\"",
        "  stage=3 recompute\n",
        "  @emb  recompute\n",
        "return %cast: %",
        "%\"0\": %",
        "%\"with space\": %",
    ] {
        assert!(text.contains(attr), "`{attr}` missing from\n{text}");
    }
    let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_same_graph(&g, &parsed);
    assert_eq!(print(&parsed), text);
}

#[test]
fn value_names_agree_with_the_graph() {
    let g = all_ops_graph();
    let text = print(&g);
    let names = g.value_names();
    for id in g.topo_order() {
        let n = &names[&id];
        if n.contains(' ') {
            continue; // quoted in the text: %"attention mask"
        }
        assert!(
            text.contains(&format!("  {n} = ")) || text.contains(&format!("{n}: ")),
            "{n} not defined in\n{text}"
        );
    }
}

#[test]
fn serde_json_round_trip_prints_identically() {
    let mut g = all_ops_graph();
    // Leave holes in the node indices, as passes do.
    g.add(Op::Softmax, &[g.inputs()[0]], "").unwrap();
    // 67 nodes, 13 of them feed an output (counted by hand from `all_ops_graph`).
    assert_eq!(g.remove_dead(), 54);
    let json = serde_json::to_string(&g).unwrap();
    let back: Graph = serde_json::from_str(&json).unwrap();
    assert_eq!(print(&back), print(&g));
    assert_same_graph(&g, &back);
}

#[test]
fn empty_graph_and_empty_names() {
    let mut g = Graph::new("");
    let x = g.input("", TensorType::scalar(DType::Bool)).unwrap();
    g.set_output("", x).unwrap();
    let text = print(&g);
    assert_eq!(
        text,
        "graph @\"\"(%\"\": bool[]) {\n  return %\"\": %\"\"\n}\n"
    );
    let back = parse(&text).unwrap();
    assert_same_graph(&g, &back);
    let none = Graph::new("e");
    assert_eq!(print(&none), "graph @e() {\n  return\n}\n");
    assert_same_graph(&none, &parse(&print(&none)).unwrap());
}

/// A transformer-like stack of 20k nodes round-trips; timings are printed (run with
/// `--nocapture`), not asserted.
#[test]
fn large_graph_round_trips() {
    let mut g = Graph::new("big");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let mut x = g.input("x", f(&[2, 7, 32])).unwrap();
    let mut layer = 0;
    while g.len() < 20_000 {
        let scope = format!("enc.layer.{layer}");
        let w = g.param(&format!("{scope}.w"), f(&[32, 32])).unwrap();
        let b = g.param(&format!("{scope}.b"), f(&[32])).unwrap();
        let mm = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
            half_partials: false,
        };
        let y = g.add(mm, &[x, w], scope.as_str()).unwrap();
        let y = g
            .add(Op::Binary(BinaryOp::Add), &[y, b], scope.as_str())
            .unwrap();
        let y = g
            .add(Op::Unary(UnaryOp::Gelu), &[y], scope.as_str())
            .unwrap();
        let ln = Op::LayerNorm { eps: 1e-12 };
        let gm = g.param(&format!("{scope}.ln.weight"), f(&[32])).unwrap();
        let bt = g.param(&format!("{scope}.ln.bias"), f(&[32])).unwrap();
        let y = g.add(ln, &[y, gm, bt], scope.as_str()).unwrap();
        x = g
            .add(Op::Binary(BinaryOp::Add), &[x, y], scope.as_str())
            .unwrap();
        layer += 1;
    }
    g.set_output("y", x).unwrap();
    let t0 = std::time::Instant::now();
    let text = print(&g);
    let t1 = std::time::Instant::now();
    let back = parse(&text).unwrap();
    let t2 = std::time::Instant::now();
    eprintln!(
        "{} nodes: print {:?}, parse {:?}",
        g.len(),
        t1 - t0,
        t2 - t1
    );
    assert_eq!(print(&back), text);
    assert_eq!(back.len(), g.len());
}
