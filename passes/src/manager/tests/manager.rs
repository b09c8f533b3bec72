//! The manager with toy passes whose effect is known exactly.

use super::small;
use crate::manager::*;
use tessera_ir::{DType, Graph, Op, TensorType, UnaryOp};

/// Adds `exp` on top of the output `y`: +1 node.
struct AddExp;
impl Pass for AddExp {
    fn name(&self) -> &str {
        "add-exp"
    }
    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let mut g = graph.clone();
        let y = g.output("y")?;
        let e = g.add(Op::Unary(UnaryOp::Exp), &[y], "top")?;
        // Not replace_all_uses: `e` itself uses `y`.
        g.set_outputs(vec![tessera_ir::Output {
            name: "y".into(),
            node: e,
        }]);
        Ok(PassOutput::new(g).with_counter("exps", 1))
    }
}

/// Replaces the `tanh` by a `sigmoid` of the same operand: +1 -1.
struct TanhToSigmoid;
impl Pass for TanhToSigmoid {
    fn name(&self) -> &str {
        "tanh-to-sigmoid"
    }
    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let mut g = graph.clone();
        let y = g
            .node_ids()
            .find(|&n| g.node(n).op == Op::Unary(UnaryOp::Tanh))
            .ok_or("no tanh")?;
        let operand = g.operands(y)[0];
        let s = g.add(Op::Unary(UnaryOp::Sigmoid), &[operand], "m")?;
        g.replace_all_uses(y, s);
        g.remove(y);
        Ok(PassOutput::new(g))
    }
}

/// Returns its input unchanged.
struct Identity;
impl Pass for Identity {
    fn name(&self) -> &str {
        "identity"
    }
    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        Ok(PassOutput::new(graph.clone()))
    }
}

/// Adds a node whose declared type is wrong: the verifier rejects the result.
struct Broken;
impl Pass for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn run(&self, graph: &Graph) -> Result<PassOutput, PassError> {
        let mut g = graph.clone();
        let y = g.output("y")?;
        let bad = g.add_unchecked(
            Op::Unary(UnaryOp::Exp),
            &[y],
            TensorType::new(DType::F32, vec![7]),
            "bad.scope",
        );
        g.set_output("z", bad)?;
        Ok(PassOutput::new(g))
    }
}

/// Fails with an error naming a node.
struct Failing;
impl Pass for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn run(&self, _graph: &Graph) -> Result<PassOutput, PassError> {
        Err("cannot handle `tanh` node %2 @m".into())
    }
}

/// Records every hook call as a line.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    fail_after: Option<usize>,
}

impl Instrumentation for Recorder {
    fn pipeline_start(&mut self, input: &Graph) -> Result<(), HookError> {
        self.events.push(format!("start {}", input.len()));
        Ok(())
    }
    fn before_pass(&mut self, index: usize, name: &str, graph: &Graph) -> Result<(), HookError> {
        self.events
            .push(format!("before {index} {name} {}", graph.len()));
        Ok(())
    }
    fn after_pass(&mut self, r: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        self.events
            .push(format!("after {} {} {}", r.index, r.name, graph.len()));
        if self.fail_after == Some(r.index) {
            return Err("disk full".into());
        }
        Ok(())
    }
    fn pass_failed(
        &mut self,
        f: &PassFailure,
        input: &Graph,
        invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        self.events.push(format!(
            "failed {} {} {:?} input={} invalid={:?}",
            f.index,
            f.name,
            f.kind,
            input.len(),
            invalid.map(Graph::len)
        ));
        Ok(())
    }
}

#[test]
fn records_exact_statistics_and_calls_hooks_in_order() {
    let pm = PassManager::new()
        .with(AddExp)
        .with(Identity)
        .with(TanhToSigmoid);
    assert_eq!(pm.pipeline_string(), "add-exp,identity,tanh-to-sigmoid");
    let mut rec = Recorder::default();
    let run = pm.run(small(), &mut rec).unwrap();
    assert_eq!(
        rec.events,
        [
            "start 4",
            "before 1 add-exp 4",
            "after 1 add-exp 5",
            "before 2 identity 5",
            "after 2 identity 5",
            "before 3 tanh-to-sigmoid 5",
            "after 3 tanh-to-sigmoid 5",
        ]
    );
    let r = &run.records;
    assert_eq!(r.len(), 3);
    assert_eq!(
        (
            r[0].index,
            r[0].nodes_before,
            r[0].nodes_after,
            r[0].added,
            r[0].removed,
            r[0].changed
        ),
        (1, 4, 5, 1, 0, true)
    );
    assert_eq!(r[0].counters.get("exps"), Some(&1));
    assert_eq!(
        (r[1].added, r[1].removed, r[1].changed, r[1].nodes_after),
        (0, 0, false, 5)
    );
    // The sigmoid replaces the tanh; the exp on top only changed its operand.
    assert_eq!(
        (r[2].added, r[2].removed, r[2].changed, r[2].nodes_after),
        (1, 1, true, 5)
    );
    assert!(r
        .iter()
        .all(|x| x.seconds >= 0.0 && x.verify_seconds >= 0.0));
    // The final graph is exp(sigmoid(x * w)).
    let text = tessera_ir::text::print(&run.graph);
    assert!(
        text.contains("sigmoid(") && text.contains("exp(") && !text.contains("tanh("),
        "{text}"
    );
}

#[test]
fn an_invalid_result_is_blamed_on_the_pass_and_names_the_node() {
    let pm = PassManager::new().with(Identity).with(Broken).with(AddExp);
    let mut rec = Recorder::default();
    let err = pm.run(small(), &mut rec).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("pass `broken` (#2) produced an invalid graph:"),
        "{msg}"
    );
    // The bad node is the last one in topological order: %3 (x is %x, w %0, mul %1, tanh %2).
    assert!(msg.contains("%3 @bad.scope"), "{msg}");
    assert_eq!(err.pass(), Some((2, "broken")));
    assert!(matches!(err, PipelineError::InvalidGraph { index: 2, .. }));
    assert_eq!(
        rec.events.last().unwrap(),
        "failed 2 broken InvalidGraph input=4 invalid=Some(5)"
    );
    // The third pass never ran.
    assert!(!rec.events.iter().any(|e| e.contains("add-exp")));
}

#[test]
fn a_failing_pass_error_names_the_pass_and_keeps_the_node() {
    let pm = PassManager::new().with(AddExp).with(Failing);
    let mut rec = Recorder::default();
    let err = pm.run(small(), &mut rec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pass `failing` (#2) failed: cannot handle `tanh` node %2 @m"
    );
    assert_eq!(
        rec.events.last().unwrap(),
        "failed 2 failing Error input=5 invalid=None"
    );
}

#[test]
fn an_invalid_input_is_rejected_before_any_pass() {
    let mut g = small();
    let y = g.output("y").unwrap();
    let bad = g.add_unchecked(
        Op::Unary(UnaryOp::Exp),
        &[y],
        TensorType::scalar(DType::F32),
        "",
    );
    g.set_output("z", bad).unwrap();
    let mut rec = Recorder::default();
    let err = PassManager::new()
        .with(Identity)
        .run(g, &mut rec)
        .unwrap_err();
    assert!(matches!(err, PipelineError::InvalidInput { .. }), "{err}");
    assert!(rec.events.is_empty());
}

#[test]
fn a_failing_hook_stops_the_run_naming_the_pass() {
    let pm = PassManager::new().with(AddExp).with(Identity);
    let mut rec = Recorder {
        fail_after: Some(1),
        ..Default::default()
    };
    let err = pm.run(small(), &mut rec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "instrumentation of pass `add-exp` (#1) failed: disk full"
    );
    assert!(!rec.events.iter().any(|e| e.contains("identity")));
}

#[test]
fn stop_after_truncates_or_names_the_pipeline() {
    let mut pm = PassManager::new()
        .with(AddExp)
        .with(Identity)
        .with(TanhToSigmoid);
    pm.stop_after("identity").unwrap();
    assert_eq!(pm.names(), ["add-exp", "identity"]);
    let err = pm.stop_after("tanh-to-sigmoid").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot stop after `tanh-to-sigmoid`: the pipeline (add-exp,identity) has no such pass"
    );
    let run = pm.run(small(), &mut NoInstrumentation).unwrap();
    assert_eq!(run.records.len(), 2);
    let mut empty = PassManager::new();
    assert!(empty
        .stop_after("x")
        .unwrap_err()
        .to_string()
        .contains("(none)"));
}

#[test]
fn diff_counts_by_content() {
    let g = small();
    assert_eq!(
        diff(&g, &g),
        GraphDiff {
            added: 0,
            removed: 0,
            changed: false
        }
    );
    // Swapping the operands of the mul adds and removes nothing, but changes the graph.
    let mut swapped = g.clone();
    let mul = swapped.operands(swapped.output("y").unwrap())[0];
    let ops = swapped.operands(mul);
    swapped.set_operand(mul, 0, ops[1]);
    swapped.set_operand(mul, 1, ops[0]);
    assert_eq!(
        diff(&g, &swapped),
        GraphDiff {
            added: 0,
            removed: 0,
            changed: true
        }
    );
    // Renaming an output changes the graph without touching nodes.
    let mut renamed = g.clone();
    let y = renamed.output("y").unwrap();
    renamed.set_outputs(vec![tessera_ir::Output {
        name: "out".into(),
        node: y,
    }]);
    assert_eq!(
        diff(&g, &renamed),
        GraphDiff {
            added: 0,
            removed: 0,
            changed: true
        }
    );
    // Re-scoping a node counts as replacing it.
    let mut rescoped = g.clone();
    rescoped.node_mut(y).scope = "n".into();
    assert_eq!(
        diff(&g, &rescoped),
        GraphDiff {
            added: 1,
            removed: 1,
            changed: true
        }
    );
    // The same graph built in another order is the same graph.
    let mut rebuilt = Graph::new("small");
    let w = rebuilt
        .param("m.w", TensorType::new(DType::F32, vec![3]))
        .unwrap();
    let x = rebuilt
        .input("x", TensorType::new(DType::F32, vec![2, 3]))
        .unwrap();
    let p = rebuilt
        .add(Op::Binary(tessera_ir::BinaryOp::Mul), &[x, w], "m")
        .unwrap();
    let t = rebuilt.add(Op::Unary(UnaryOp::Tanh), &[p], "m").unwrap();
    rebuilt.set_output("y", t).unwrap();
    assert_ne!(
        rebuilt.param_by_name("m.w").unwrap(),
        g.param_by_name("m.w").unwrap()
    );
    assert_eq!(
        diff(&g, &rebuilt),
        GraphDiff {
            added: 0,
            removed: 0,
            changed: false
        }
    );
    // Retyping a node and inserting a cast: +2 -1.
    let mut cast = g.clone();
    let y = cast.output("y").unwrap();
    let mul = cast.operands(y)[0];
    let half = cast.add(Op::Cast { to: DType::F16 }, &[mul], "m").unwrap();
    let t16 = cast.add(Op::Unary(UnaryOp::Tanh), &[half], "m").unwrap();
    cast.set_outputs(vec![tessera_ir::Output {
        name: "y".into(),
        node: t16,
    }]);
    cast.remove(y);
    assert_eq!(
        diff(&g, &cast),
        GraphDiff {
            added: 2,
            removed: 1,
            changed: true
        }
    );
    // A NaN constant equals itself.
    let mut with_nan = g.clone();
    let nan = with_nan
        .add(
            Op::Full {
                value: f64::NAN,
                ty: TensorType::scalar(DType::F32),
            },
            &[],
            "",
        )
        .unwrap();
    with_nan.set_output("nan", nan).unwrap();
    assert!(!diff(&with_nan, &with_nan.clone()).changed);
}
