//! Numerical equality of the built graph with Hugging Face transformers' outputs for the
//! tiny fixture model (`tests/data`, made by the project's oracle script): every output and
//! per-layer tap, and the `vmask.*` outputs for the inputs with a visual attention mask.
//! Tolerance: max abs error / max abs of the expected value <= 1e-4.
//!
//! The graph is run twice: by a small f64 interpreter written for these tests
//! (`common/refeval.rs`, an independent reading of each op's semantics) and by the project's
//! reference evaluator (`tessera_ir::eval`).

mod common;

use common::refeval::{evaluate, Feeds};
use common::{data, read_tensors};
use std::collections::{BTreeMap, HashMap};
use tessera_ir::{Graph, Tensor};
use tessera_lxmert::{build, load_weights, BuildOptions, LxmertConfig, Shapes};

const TOL: f64 = 1e-4;

/// An evaluated output: shape and values.
type Values = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

fn shapes_of(inputs: &HashMap<String, Tensor>) -> Shapes {
    let ids = inputs["input_ids"].shape();
    Shapes {
        batch: ids[0],
        seq_len: ids[1],
        num_objects: inputs["visual_feats"].shape()[1],
    }
}

/// Relative max error of `got` against the fixture tensor.
fn rel_err(got: &[f64], shape: &[usize], expected: &Tensor) -> f64 {
    assert_eq!(shape, expected.shape());
    let e = expected.to_f64_vec();
    let scale = e.iter().fold(0f64, |m, x| m.max(x.abs()));
    let diff = got.iter().zip(&e).fold(0f64, |m, (a, b)| {
        if (a - b).is_nan() {
            f64::INFINITY
        } else {
            m.max((a - b).abs())
        }
    });
    diff / scale
}

/// Builds the tiny graph for the fixture inputs, runs it with `run` and compares every
/// output with the fixture.
fn check(
    vmask: bool,
    run: impl Fn(&Graph, &HashMap<String, Tensor>, &BTreeMap<String, Tensor>) -> Values,
) {
    let config = LxmertConfig::from_file(&data("config.json")).unwrap();
    let params = load_weights(&data("model.safetensors"), &config).unwrap();
    let file = if vmask {
        "inputs_vmask.safetensors"
    } else {
        "inputs.safetensors"
    };
    let inputs = read_tensors(file);
    let expected = read_tensors("outputs.safetensors");
    let opts = BuildOptions {
        visual_attention_mask: vmask,
        taps: !vmask,
    };
    let graph = build(&config, &shapes_of(&inputs), &opts).unwrap();
    let outputs = run(&graph, &inputs, &params);
    assert_eq!(outputs.len(), graph.outputs().len());
    let mut report = Vec::new();
    for (name, (shape, values)) in &outputs {
        let key = if vmask {
            format!("vmask.{name}")
        } else {
            name.clone()
        };
        let err = rel_err(values, shape, &expected[&key]);
        report.push(format!("{key}: {err:.2e}"));
        assert!(
            err <= TOL,
            "{key}: relative error {err:e} > {TOL:e}\n{}",
            report.join("\n")
        );
    }
    println!("{}", report.join("\n"));
}

fn run_refeval(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
    params: &BTreeMap<String, Tensor>,
) -> Values {
    evaluate(g, &Feeds { inputs, params })
        .into_iter()
        .map(|(k, v)| (k, (v.shape, v.data)))
        .collect()
}

#[test]
fn outputs_and_taps_match_transformers() {
    check(false, run_refeval);
}

#[test]
fn visual_mask_outputs_match_transformers() {
    check(true, run_refeval);
}

#[test]
fn visual_mask_changes_the_result() {
    // guards against a vacuous vmask test: the fixture's vmask logits differ from the plain ones
    let expected = read_tensors("outputs.safetensors");
    let a = &expected["question_answering_score"];
    let b = &expected["vmask.question_answering_score"];
    assert!(a.rel_max_err(b).unwrap() > 1e-3);
}

mod with_ir_evaluator {
    use super::*;

    fn run_ir_eval(
        g: &Graph,
        inputs: &HashMap<String, Tensor>,
        params: &BTreeMap<String, Tensor>,
    ) -> Values {
        let params: HashMap<String, Tensor> =
            params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        tessera_ir::eval::evaluate(g, inputs, &params)
            .unwrap()
            .into_iter()
            .map(|(k, t)| (k, (t.shape().to_vec(), t.to_f64_vec())))
            .collect()
    }

    #[test]
    fn ir_evaluator_matches_transformers() {
        check(false, run_ir_eval);
    }

    #[test]
    fn ir_evaluator_matches_transformers_with_visual_mask() {
        check(true, run_ir_eval);
    }
}
