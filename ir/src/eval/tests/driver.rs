//! The driver: feeds, node selection, freeing, and error messages.

use super::*;
use crate::eval::{evaluate_nodes, Evaluator, KernelError};
use crate::op::{BinaryOp, UnaryOp};
use crate::types::TensorType;

fn ty(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s.to_vec())
}

/// `y = tanh(x * w)` with an input `x: f32[2]` and a param `m.w: f32[2]`.
fn small_graph() -> (Graph, crate::NodeId) {
    let mut g = Graph::new("small");
    let x = g.input("x", ty(DType::F32, &[2])).unwrap();
    let w = g.param("m.w", ty(DType::F32, &[2])).unwrap();
    let p = g.add(Op::Binary(BinaryOp::Mul), &[x, w], "m").unwrap();
    let y = g.add(Op::Unary(UnaryOp::Tanh), &[p], "m").unwrap();
    g.set_output("y", y).unwrap();
    g.set_output("y_again", y).unwrap();
    (g, p)
}

fn feeds(pairs: &[(&str, Tensor)]) -> HashMap<String, Tensor> {
    pairs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

#[test]
fn evaluates_outputs_and_chosen_nodes() {
    let (g, p) = small_graph();
    let inputs = feeds(&[
        ("x", f32s(&[2], &[0.5, -1.0])),
        ("extra", f32s(&[1], &[9.0])),
    ]);
    let params = feeds(&[("m.w", f32s(&[2], &[2.0, 3.0]))]);
    let out = evaluate(&g, &inputs, &params).unwrap();
    let want = [1f64.tanh(), (-3f64).tanh()];
    assert_close(&out["y"], DType::F32, &[2], &want, 1e-7);
    assert_eq!(out["y"], out["y_again"]);
    let y = g.output("y").unwrap();
    let vals = evaluate_nodes(&g, &inputs, &params, &[p, y, p]).unwrap();
    assert_close(&vals[0], DType::F32, &[2], &[1.0, -3.0], 0.0);
    assert_eq!(vals[0], vals[2]);
}

#[test]
fn missing_and_mistyped_feeds_are_named() {
    let (g, _) = small_graph();
    let params = feeds(&[("m.w", f32s(&[2], &[2.0, 3.0]))]);
    let e = evaluate(&g, &HashMap::new(), &params).unwrap_err();
    assert!(matches!(&e, EvalError::MissingFeed { kind: "input", name, .. } if name == "x"));
    assert!(
        e.to_string().contains("`x`") && e.to_string().contains("f32[2]"),
        "{e}"
    );

    let bad_dtype = feeds(&[("x", i64s(&[2], &[1, 2]))]);
    let e = evaluate(&g, &bad_dtype, &params).unwrap_err();
    assert!(
        e.to_string().contains("i64[2]") && e.to_string().contains("f32[2]"),
        "{e}"
    );

    let inputs = feeds(&[("x", f32s(&[2], &[0.5, -1.0]))]);
    let bad_shape = feeds(&[("m.w", f32s(&[1, 2], &[2.0, 3.0]))]);
    let e = evaluate(&g, &inputs, &bad_shape).unwrap_err();
    match e {
        EvalError::FeedType {
            kind,
            name,
            expected,
            actual,
        } => {
            assert_eq!((kind, name.as_str()), ("param", "m.w"));
            assert_eq!(expected, ty(DType::F32, &[2]));
            assert_eq!(actual, ty(DType::F32, &[1, 2]));
        }
        other => panic!("{other}"),
    }
    assert!(evaluate(&g, &inputs, &HashMap::new()).is_err());
}

#[test]
fn gather_error_names_node_scope_and_index() {
    let mut g = Graph::new("emb");
    let table = g.param("emb.w", ty(DType::F32, &[3, 2])).unwrap();
    let ids = g.input("ids", ty(DType::I64, &[2, 2])).unwrap();
    let y = g
        .add(
            Op::Gather { padding_idx: None },
            &[table, ids],
            "lxmert.embeddings",
        )
        .unwrap();
    g.set_output("y", y).unwrap();
    let params = feeds(&[("emb.w", f32s(&[3, 2], &[0.0; 6]))]);
    for bad in [3i64, -1] {
        let inputs = feeds(&[("ids", i64s(&[2, 2], &[0, 1, bad, 2]))]);
        let e = evaluate(&g, &inputs, &params).unwrap_err();
        let name = g.value_names()[&y].clone();
        let msg = e.to_string();
        assert!(msg.contains(&format!("{name} @lxmert.embeddings")), "{msg}");
        assert!(
            msg.contains(&format!("index {bad}")) && msg.contains("[1, 0]"),
            "{msg}"
        );
        match e {
            EvalError::Kernel {
                source: KernelError::IndexOutOfRange { index, bound, .. },
                ..
            } => assert_eq!((index, bound), (bad, 3)),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn values_are_freed_after_their_last_use() {
    // x -> exp -> exp -> ... (50 times): at most the input, one value and its successor live.
    let mut g = Graph::new("chain");
    let x = g.input("x", ty(DType::F32, &[4])).unwrap();
    let mut last = x;
    for _ in 0..50 {
        last = g.add(Op::Unary(UnaryOp::Neg), &[last], "c").unwrap();
    }
    g.set_output("y", last).unwrap();
    // A dead branch with an out-of-range gather is never run.
    let table = g.input("t", ty(DType::F32, &[2, 1])).unwrap();
    let ids = g.input("i", ty(DType::I64, &[1])).unwrap();
    g.add(Op::Gather { padding_idx: None }, &[table, ids], "dead")
        .unwrap();
    let inputs = feeds(&[
        ("x", f32s(&[4], &[1.0, 2.0, 3.0, 4.0])),
        ("t", f32s(&[2, 1], &[0.0, 0.0])),
        ("i", i64s(&[1], &[7])),
    ]);
    let ev = Evaluator::new(&g);
    let (vals, stats) = ev
        .run_nodes_with_stats(&inputs, &HashMap::new(), &[last])
        .unwrap();
    assert_close(&vals[0], DType::F32, &[4], &[1.0, 2.0, 3.0, 4.0], 0.0);
    assert_eq!(stats.nodes_run, 51);
    assert_eq!(stats.peak_live, 2, "{stats:?}");
    // Requesting the input keeps it alive throughout: then x, a value and its successor
    // are live when the successor has just been computed.
    let (_, stats) = ev
        .run_nodes_with_stats(&inputs, &HashMap::new(), &[last, x])
        .unwrap();
    assert_eq!(stats.peak_live, 3);
}

#[test]
fn unverified_and_cyclic_graphs_are_errors_not_panics() {
    let mut g = Graph::new("bad");
    let x = g.input("x", ty(DType::F32, &[2])).unwrap();
    // Stored type disagrees with what the op infers.
    let y = g.add_unchecked(Op::Unary(UnaryOp::Exp), &[x], ty(DType::F32, &[3]), "s");
    let inputs = feeds(&[("x", f32s(&[2], &[0.0, 1.0]))]);
    let e = evaluate_nodes(&g, &inputs, &HashMap::new(), &[y]).unwrap_err();
    assert!(matches!(e, EvalError::IllTyped { .. }), "{e}");
    // Wrong arity.
    let z = g.add_unchecked(Op::Binary(BinaryOp::Add), &[x], ty(DType::F32, &[2]), "s");
    assert!(evaluate_nodes(&g, &inputs, &HashMap::new(), &[z]).is_err());
    // A cycle a -> b -> a.
    let a = g.add(Op::Unary(UnaryOp::Exp), &[x], "c").unwrap();
    let b = g.add(Op::Unary(UnaryOp::Exp), &[a], "c").unwrap();
    g.set_operand(a, 0, b);
    let e = evaluate_nodes(&g, &inputs, &HashMap::new(), &[b]).unwrap_err();
    assert!(matches!(e, EvalError::Cycle { .. }), "{e}");
    // A node of another graph.
    let mut other = Graph::new("other");
    let mut far = other.input("q", ty(DType::F32, &[1])).unwrap();
    for _ in 0..20 {
        far = other.add(Op::Unary(UnaryOp::Exp), &[far], "").unwrap();
    }
    let e = evaluate_nodes(&g, &inputs, &HashMap::new(), &[far]).unwrap_err();
    assert!(matches!(e, EvalError::UnknownNode { .. }), "{e}");
}
