//! The wrappers of the existing passes, run through the manager.

use super::small;
use crate::manager::*;
use tessera_ir::{BinaryOp, DType, Graph, Op, TensorType, UnaryOp};

/// A linear answer head: `question_answering_score = x @ head.w + head.b`, `x: f32[2,3]`,
/// 4 answers.
pub(super) fn qa_head() -> Graph {
    let mut g = Graph::new("qa");
    let x = g
        .input("x", TensorType::new(DType::F32, vec![2, 3]))
        .unwrap();
    let w = g
        .param("head.w", TensorType::new(DType::F32, vec![3, 4]))
        .unwrap();
    let b = g
        .param("head.b", TensorType::new(DType::F32, vec![4]))
        .unwrap();
    let mm = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
                half_partials: false,
            },
            &[x, w],
            "head",
        )
        .unwrap();
    let logits = g.add(Op::Binary(BinaryOp::Add), &[mm, b], "head").unwrap();
    g.set_output("question_answering_score", logits).unwrap();
    g
}

fn run(names: &[&str], opts: &PassOptions, g: Graph) -> Result<PipelineRun, PipelineError> {
    build_pipeline(names, opts)
        .unwrap()
        .run(g, &mut NoInstrumentation)
}

#[test]
fn loss_labels_follow_the_logits_shape() {
    let soft = run(&["loss"], &PassOptions::default(), qa_head()).unwrap();
    let labels = soft.graph.input_by_name("labels").unwrap();
    assert_eq!(
        soft.graph.node(labels).ty,
        TensorType::new(DType::F32, vec![2, 4])
    );
    let opts = PassOptions {
        labels: LabelsKind::Hard,
        ..Default::default()
    };
    let hard = run(&["loss"], &opts, qa_head()).unwrap();
    let labels = hard.graph.input_by_name("labels").unwrap();
    assert_eq!(
        hard.graph.node(labels).ty,
        TensorType::new(DType::I64, vec![2])
    );
    assert_eq!(
        hard.graph.node(hard.graph.output("loss").unwrap()).ty,
        TensorType::scalar(DType::F32)
    );
    // The loss only adds nodes (labels input + loss nodes).
    let r = &soft.records[0];
    assert!(r.added > 1 && r.removed == 0 && r.changed);
    assert_eq!(r.nodes_after, r.nodes_before + r.added);
}

#[test]
fn loss_without_answer_logits_names_the_pass_and_graph() {
    let err = run(&["loss"], &PassOptions::default(), small()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pass `loss` (#1) failed: the graph @small has no question-answering head (output `question_answering_score`)"
    );
}

#[test]
fn autodiff_counts_gradients_and_backward_nodes() {
    let out = run(&["loss", "autodiff"], &PassOptions::default(), qa_head()).unwrap();
    let r = &out.records[1];
    assert_eq!(r.name, "autodiff");
    assert_eq!(r.counters["gradients"], 2);
    // Nothing of the forward graph is dropped (it all feeds the loss), so every added node
    // is a backward node.
    assert_eq!(r.removed, 0);
    assert_eq!(r.counters["backward_nodes"], r.added as i64);
    assert!(r.added > 0);
    let names: Vec<&str> = out
        .graph
        .outputs()
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["loss", "grad.head.w", "grad.head.b"]);
}

#[test]
fn autodiff_without_loss_fails_naming_the_pass() {
    let err = run(&["autodiff"], &PassOptions::default(), qa_head()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("pass `autodiff` (#1) failed: graph @qa has no output `loss`"),
        "{msg}"
    );
}

#[test]
fn dce_removes_dead_nodes_but_keeps_inputs() {
    let mut g = small();
    let x = g.input_by_name("x").unwrap();
    let _unused_input = g.input("extra", TensorType::scalar(DType::F32)).unwrap();
    let dead_param = g.param("dead.w", TensorType::scalar(DType::F32)).unwrap();
    let e = g.add(Op::Unary(UnaryOp::Exp), &[x], "dead").unwrap();
    g.add(Op::Binary(BinaryOp::Mul), &[e, dead_param], "dead")
        .unwrap();
    let out = run(&["dce"], &PassOptions::default(), g).unwrap();
    let r = &out.records[0];
    assert_eq!(
        (r.nodes_before, r.nodes_after, r.removed, r.added),
        (8, 5, 3, 0)
    );
    assert_eq!(r.counters["dead_params"], 1);
    assert!(out.graph.input_by_name("extra").is_ok());
    let again = run(&["dce"], &PassOptions::default(), out.graph).unwrap();
    assert!(!again.records[0].changed);
}

#[test]
fn fold_casts_removes_the_redundant_casts_only() {
    let mut g = Graph::new("casts");
    let x = g.input("x", TensorType::new(DType::F16, vec![2])).unwrap();
    let y = g.input("y", TensorType::new(DType::F32, vec![2])).unwrap();
    let cast = |g: &mut Graph, v, to| g.add(Op::Cast { to }, &[v], "c").unwrap();
    let same = cast(&mut g, x, DType::F16); // to its own type: folded
    let wide = cast(&mut g, same, DType::F32); // exact widening of x: kept (feeds `wide`)
    let back = cast(&mut g, wide, DType::F16); // f16 -> f32 -> f16: folded to x
    let narrow = cast(&mut g, y, DType::F16); // rounds: kept
    let lossy = cast(&mut g, narrow, DType::F32); // f32 -> f16 -> f32: kept
    g.set_output("back", back).unwrap();
    g.set_output("wide", wide).unwrap();
    g.set_output("lossy", lossy).unwrap();
    let out = run(&["fold-casts"], &PassOptions::default(), g).unwrap();
    let r = &out.records[0];
    assert_eq!(r.counters["casts_folded"], 2);
    // `same` and `back` go; x, y, wide (now reading x), narrow and lossy stay.
    assert_eq!(
        (r.nodes_before, r.nodes_after, r.removed, r.added),
        (7, 5, 2, 0)
    );
    let g = &out.graph;
    assert_eq!(g.output("back").unwrap(), x);
    assert_eq!(g.operands(g.output("wide").unwrap()), [x]);
    assert_eq!(g.operands(g.output("lossy").unwrap()), [narrow]);
}
