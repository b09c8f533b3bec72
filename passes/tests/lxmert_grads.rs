//! The whole training chain on the tiny LXMERT against Hugging Face transformers'
//! fixtures (`tests/data`, copied from the project's oracle run): forward graph
//! (tessera-lxmert) → VQA loss → autodiff → reference evaluator, and one AdamW step.
//!
//! Checked: both losses to 1e-5 relative; every gradient to 1e-4 of its largest element
//! (attention key biases, whose exact gradient is 0, to 1e-6 absolute); the 16 parameters
//! of the last cross layer's visual branch have no gradient output; one AdamW step with
//! Trainer's grouping equals `params_after_adamw_trainer.safetensors` to f32 rounding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tessera_ir::eval::evaluate;
use tessera_ir::io::load_safetensors;
use tessera_ir::{verify, Graph, Tensor};
use tessera_lxmert::{build, load_weights, BuildOptions, LxmertConfig, Shapes};
use tessera_passes::{
    attach_vqa_loss, autodiff, build_optimizer_graph, trainer_optim_params, AdamWConfig,
    AutodiffOptions,
};

/// `loss_bce_mean` and `loss_ce_hf` of the fixtures' `meta.json`.
const LOSS_BCE: f64 = 0.698773205280304;
const LOSS_CE: f64 = 2.336709499359131;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/lxmert-tiny")
        .join(name)
}

/// Every tensor of a fixture file.
fn read(name: &str) -> HashMap<String, Tensor> {
    load_safetensors(&data(name)).unwrap().into_iter().collect()
}

struct Setup {
    config: LxmertConfig,
    params: HashMap<String, Tensor>,
}

fn setup() -> Setup {
    let config = LxmertConfig::from_file(&data("config.json")).unwrap();
    let params = load_weights(&data("model.safetensors"), &config)
        .unwrap()
        .into_iter()
        .collect();
    Setup { config, params }
}

/// Forward + loss + autodiff for the inputs (and labels) of `file`; returns the
/// differentiated graph and its outputs.
fn train_graph(s: &Setup, file: &str) -> (Graph, BTreeMap<String, Tensor>) {
    let inputs = read(file);
    let ids = inputs["input_ids"].shape();
    let shapes = Shapes {
        batch: ids[0],
        seq_len: ids[1],
        num_objects: inputs["visual_feats"].shape()[1],
    };
    let forward = build(&s.config, &shapes, &BuildOptions::default()).unwrap();
    let with_loss = attach_vqa_loss(&forward, &inputs["labels"].ty()).unwrap();
    // The builder marks LXMERT's embedding gathers with padding_idx=0, as transformers'
    // nn.Embedding(.., padding_idx=0): no option is needed here.
    let grads = autodiff(&with_loss, &AutodiffOptions::default()).unwrap();
    verify(&grads).unwrap();
    let out = evaluate(&grads, &inputs, &s.params).unwrap();
    (grads, out)
}

fn check_loss_and_grads(file: &str, grads_file: &str, want_loss: f64) {
    let s = setup();
    let (_, out) = train_graph(&s, file);
    let loss = out["loss"].to_f64_vec()[0];
    assert!(
        ((loss - want_loss) / want_loss).abs() <= 1e-5,
        "loss {loss} vs transformers {want_loss}"
    );
    let expected = read(grads_file);
    // The last cross layer's visual branch does not reach the logits.
    let last = s.config.x_layers - 1;
    let no_grad: BTreeSet<String> = s
        .params
        .keys()
        .filter(|n| n.starts_with(&format!("lxmert.encoder.x_layers.{last}.visn_")))
        .cloned()
        .collect();
    assert_eq!(no_grad.len(), 16);
    let mut report = Vec::new();
    for name in s.params.keys() {
        let got = out.get(&format!("grad.{name}"));
        if no_grad.contains(name) {
            assert!(got.is_none(), "{name} must have no gradient");
            continue;
        }
        let got = got.unwrap_or_else(|| panic!("no gradient for {name}"));
        let want = &expected[name];
        if name.ends_with(".key.bias") {
            let g = got.to_f64_vec();
            let max = g.iter().fold(0f64, |m, x| m.max(x.abs()));
            assert!(
                max <= 1e-6,
                "{name}: key bias gradient {max:e}, exactly 0 in f64"
            );
            continue;
        }
        let err = got.rel_max_err(want).unwrap();
        report.push((err, name.clone()));
        assert!(err <= 1e-4, "{name}: relative error {err:e}");
    }
    report.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "loss {loss} (transformers {want_loss}); worst gradients: {:?}",
        &report[..3]
    );
}

#[test]
fn bce_loss_and_gradients_match_transformers() {
    check_loss_and_grads("train_soft.safetensors", "grads.safetensors", LOSS_BCE);
}

#[test]
fn cross_entropy_loss_and_gradients_match_transformers() {
    check_loss_and_grads("train_hard.safetensors", "grads_ce.safetensors", LOSS_CE);
}

#[test]
fn one_adamw_step_matches_torch_with_trainer_grouping() {
    let s = setup();
    let (grad_graph, _) = train_graph(&s, "train_soft.safetensors");
    let params = trainer_optim_params(&grad_graph).unwrap();
    let no_decay: Vec<&str> = params
        .iter()
        .filter(|p| !p.weight_decay)
        .map(|p| p.name.as_str())
        .collect();
    assert!(no_decay.contains(&"answer_head.logit_fc.2.weight"));
    let cfg = AdamWConfig {
        lr: 5e-5,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        warmup_steps: 0,
        total_steps: 1,
        grad_accum: 1,
        max_grad_norm: None,
    };
    let g = build_optimizer_graph(&params, &cfg).unwrap();
    // The fixture's step used transformers' gradients: feed those.
    let grads = read("grads.safetensors");
    let mut inputs = HashMap::from([
        ("step".to_string(), Tensor::scalar_f32(0.0)),
        ("loss_scale".to_string(), Tensor::scalar_f32(1.0)),
    ]);
    for p in &params {
        inputs.insert(format!("grad_sum.{}", p.name), grads[&p.name].clone());
        inputs.insert(format!("adam_m.{}", p.name), Tensor::zeros(&p.ty));
        inputs.insert(format!("adam_v.{}", p.name), Tensor::zeros(&p.ty));
    }
    let out = evaluate(&g, &inputs, &s.params).unwrap();
    let expected = read("params_after_adamw_trainer.safetensors");
    for p in &params {
        let got = out[&format!("param.{}", p.name)].to_f64_vec();
        let want = expected[&p.name].to_f64_vec();
        let before = s.params[&p.name].to_f64_vec();
        let mut moved = 0f64;
        for (i, ((g, w), b)) in got.iter().zip(&want).zip(&before).enumerate() {
            // Two f32 roundings at the scale of the operands (the weight before and after,
            // and the step ≈ lr); a missing or extra decay (lr·wd·p ≈ 4 ulp of p) or a
            // wrong step is outside.
            let scale = w.abs().max(b.abs()).max(cfg.lr);
            let tol = 2.0 * f32::EPSILON as f64 * scale;
            assert!((g - w).abs() <= tol, "{}[{i}]: {g} vs torch {w}", p.name);
            moved = moved.max((w - b).abs());
        }
        assert!(moved > 0.0, "{}: the step must move the parameter", p.name);
    }
}
