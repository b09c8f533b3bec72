//! End-to-end tests of training against Hugging Face transformers: losses and gradients of
//! `tessera run --train`, one AdamW step of the optimizer graph, and learning on synthetic data.

mod common;
use common::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tessera_ir::Tensor;

/// transformers' Trainer grouping for LXMERT, written out: no weight decay for biases and for
/// LayerNorm weights (`answer_head.logit_fc.2` is a LayerNorm).
fn trainer_no_decay(name: &str) -> bool {
    name.ends_with(".bias")
        || name.contains("LayerNorm.")
        || name.contains("layer_norm.")
        || name.starts_with("answer_head.logit_fc.2.")
}

fn meta_of(model: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(model.join("meta.json")).unwrap()).unwrap()
}

fn meta() -> serde_json::Value {
    meta_of(&tiny())
}

fn run_train(model: &Path, inputs: &str) -> BTreeMap<String, Tensor> {
    run_train_with(model, inputs, &[])
}

fn run_train_with(model: &Path, inputs: &str, extra: &[&str]) -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grads.safetensors");
    let inputs = model.join(inputs);
    let mut args = run_args(model, &inputs, &out, &["--train"]);
    args.extend_from_slice(extra);
    tessera_ok(&args);
    load(&out)
}

fn check_grads(
    model: &Path,
    got: &BTreeMap<String, Tensor>,
    grads_file: &str,
    without_grad_key: &str,
) {
    let want = load(&model.join(grads_file));
    let m = meta_of(model);
    let without: Vec<&str> = m[without_grad_key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(without.len(), 16);
    for name in &without {
        assert!(
            !got.contains_key(&format!("grad.{name}")),
            "{name} should get no gradient"
        );
    }
    let mut checked = 0;
    for (name, expected) in &want {
        if without.contains(&name.as_str()) {
            continue;
        }
        let g = got
            .get(&format!("grad.{name}"))
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        if name.contains(".key.bias") {
            // Exactly zero in exact arithmetic (softmax is shift-invariant).
            let e = abs_err(g, expected);
            assert!(e < 1e-6, "{name}: abs error {e:e}");
        } else {
            let e = rel_err(g, expected);
            assert!(e < 1e-4, "{name}: relative error {e:e}");
        }
        checked += 1;
    }
    assert_eq!(checked + 16, want.len());
    assert_eq!(
        got.len(),
        checked + 1,
        "outputs: loss + one gradient per trained parameter"
    );
}

#[test]
fn soft_label_bce_loss_and_gradients_match_transformers() {
    for model in fixtures() {
        let got = run_train(&model, "train_soft.safetensors");
        let loss = got["loss"].to_f64_vec()[0];
        let want = meta_of(&model)["losses"]["loss_bce_mean"].as_f64().unwrap();
        assert!(
            ((loss - want) / want).abs() < 1e-5,
            "{}: loss {loss} vs {want}",
            model.display()
        );
        check_grads(&model, &got, "grads.safetensors", "params_without_grad");
    }
}

#[test]
fn training_step_on_tiles_matches_transformers() {
    // The loss and every gradient computed on the emulated tiles, on 1 and 4 chips, against the
    // Hugging Face fixtures (the same bounds as the reference evaluator's test above).
    for model in fixtures() {
        for ipus in ["1", "4"] {
            let got = run_train_with(
                &model,
                "train_soft.safetensors",
                &["--engine", "tiles", "--ipus", ipus],
            );
            let loss = got["loss"].to_f64_vec()[0];
            let want = meta_of(&model)["losses"]["loss_bce_mean"].as_f64().unwrap();
            assert!(
                ((loss - want) / want).abs() < 1e-5,
                "{} on {ipus} IPU(s): loss {loss} vs {want}",
                model.display()
            );
            check_grads(&model, &got, "grads.safetensors", "params_without_grad");
        }
    }
}

#[test]
fn recomputation_on_tiles_does_not_change_the_gradients() {
    // Recomputed forward ops are real extra vertices on the tiles, the same arithmetic: the
    // outputs are identical byte for byte.
    let model = tiny();
    let base = run_train_with(
        &model,
        "train_soft.safetensors",
        &["--engine", "tiles", "--ipus", "4", "--recompute", "none"],
    );
    for mode in ["layer", "pipeline"] {
        let got = run_train_with(
            &model,
            "train_soft.safetensors",
            &["--engine", "tiles", "--ipus", "4", "--recompute", mode],
        );
        assert_eq!(got.len(), base.len());
        for (name, t) in &base {
            assert_eq!(got[name].to_f64_vec(), t.to_f64_vec(), "{mode}: {name}");
        }
    }
}

#[test]
fn hard_label_cross_entropy_and_gradients_match_transformers() {
    for model in fixtures() {
        let got = run_train(&model, "train_hard.safetensors");
        let loss = got["loss"].to_f64_vec()[0];
        let want = meta_of(&model)["losses"]["loss_ce_hf"].as_f64().unwrap();
        assert!(
            ((loss - want) / want).abs() < 1e-5,
            "{}: loss {loss} vs {want}",
            model.display()
        );
        check_grads(
            &model,
            &got,
            "grads_ce.safetensors",
            "params_without_grad_ce",
        );
    }
}

#[test]
fn one_adamw_step_matches_transformers_trainer() {
    use tessera_passes::optim::{build_optimizer_graph, AdamWConfig, OptimParam};
    let params = load(&tiny_file("model.safetensors"));
    let grads = load(&tiny_file("grads.safetensors"));
    let after = load(&tiny_file("params_after_adamw_trainer.safetensors"));
    let m = meta();
    let without: Vec<String> = m["params_without_grad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let trained: Vec<OptimParam> = params
        .iter()
        .filter(|(k, _)| !without.contains(k))
        .map(|(k, t)| OptimParam {
            name: k.clone(),
            ty: t.ty(),
            weight_decay: !trainer_no_decay(k),
        })
        .collect();
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
    let graph = build_optimizer_graph(&trained, &cfg).unwrap();
    let mut feeds: HashMap<String, Tensor> = HashMap::new();
    feeds.insert("step".into(), Tensor::scalar_f32(0.0));
    feeds.insert("loss_scale".into(), Tensor::scalar_f32(1.0));
    for p in &trained {
        feeds.insert(format!("grad_sum.{}", p.name), grads[&p.name].clone());
        feeds.insert(format!("adam_m.{}", p.name), Tensor::zeros(&p.ty));
        feeds.insert(format!("adam_v.{}", p.name), Tensor::zeros(&p.ty));
    }
    let weights: HashMap<String, Tensor> = params.clone().into_iter().collect();
    let out = tessera_ir::eval::evaluate(&graph, &feeds, &weights).unwrap();
    for p in &trained {
        let got = &out[&format!("param.{}", p.name)];
        let want = &after[&p.name];
        // The step is lr·sign-like; compare against the step size, not the weights' scale.
        let e = abs_err(got, want);
        assert!(e < 5e-7, "{}: abs error {e:e} (the step is 5e-5)", p.name);
    }
    // Parameters without a gradient are untouched by torch; they are not in the graph at all.
    for name in &without {
        assert_eq!(&params[name], &after[name]);
    }
}

#[test]
fn training_on_synthetic_vqa_learns() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let save = dir.path().join("saved");
    tessera_ok(&[
        "train",
        "lxmert-tiny",
        "--steps",
        "300",
        "--quiet",
        "--log",
        log.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 300);
    for key in ["step", "loss", "lr", "loss_scale", "samples_per_second"] {
        assert!(lines[0].get(key).is_some(), "log line lacks {key}");
    }
    let mean = |r: &[serde_json::Value]| {
        r.iter().map(|l| l["loss"].as_f64().unwrap()).sum::<f64>() / r.len() as f64
    };
    // The criterion: the mean of the last 20 steps below half the mean of the first 20.
    let (first, last) = (mean(&lines[..20]), mean(&lines[280..]));
    assert!(
        last < 0.5 * first,
        "loss did not halve: first {first}, last {last}"
    );
    // The saved directory is a model tessera can run.
    assert!(save.join("config.json").is_file() && save.join("model.safetensors").is_file());
    tessera_ok(&["inspect", save.to_str().unwrap(), "--json"]);
}

#[test]
fn training_rejects_bad_arguments() {
    let err = tessera_err(&["train", "lxmert-tiny", "--steps", "1", "--grad-accum", "0"]);
    assert!(err.contains("--grad-accum"), "{err}");
    let err = tessera_err(&["train", "lxmert-tiny", "--steps", "1", "--lr=-1"]);
    assert!(err.contains("--lr"), "{err}");
    // Labels of the wrong shape.
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = load(&tiny_file("train_soft.safetensors"));
    inputs.insert(
        "labels".into(),
        Tensor::from_f32(vec![2, 3], vec![0.0; 6]).unwrap(),
    );
    let p = dir.path().join("bad_labels.safetensors");
    tessera_ir::io::save_safetensors(&p, &inputs).unwrap();
    let out = dir.path().join("o.safetensors");
    let err = tessera_err(&[
        "run",
        tiny().to_str().unwrap(),
        "--train",
        "--inputs",
        p.to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("labels"), "{err}");
    // Training without labels.
    let err = tessera_err(&[
        "run",
        tiny().to_str().unwrap(),
        "--train",
        "--inputs",
        tiny_file("inputs.safetensors").to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("labels"), "{err}");
}

#[test]
fn training_from_a_data_file_takes_samples_in_order_and_needs_labels() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let model = tiny();
    let data = tiny_file("train_soft.safetensors");
    tessera_ok(&[
        "train",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--warmup-ratio",
        "0",
        "--quiet",
        "--log",
        log.to_str().unwrap(),
    ]);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    // Step 1 sees the whole 2-sample file with the fixture weights: transformers' loss.
    let want = meta()["losses"]["loss_bce_mean"].as_f64().unwrap();
    let got = first["loss"].as_f64().unwrap();
    assert!(((got - want) / want).abs() < 1e-5, "loss {got} vs {want}");
    let err = tessera_err(&[
        "train",
        "lxmert-tiny",
        "--data",
        tiny_file("inputs.safetensors").to_str().unwrap(),
        "--steps",
        "1",
    ]);
    assert!(err.contains("labels"), "{err}");
}

#[test]
fn optimizer_grouping_is_transformers_trainer_grouping_in_fp32_and_fp16() {
    use tessera_lxmert::{build, BuildOptions, LxmertConfig, Shapes};
    use tessera_passes::mixed_precision::PrecisionConfig;
    let config = LxmertConfig::preset("lxmert-tiny").unwrap();
    let shapes = Shapes {
        batch: 2,
        seq_len: 7,
        num_objects: 5,
    };
    let forward = build(&config, &shapes, &BuildOptions::default()).unwrap();
    let labels = tessera_ir::TensorType::new(tessera_ir::DType::F32, vec![2, config.num_qa_labels]);
    for precision in [None, Some(PrecisionConfig::default())] {
        let (grad, _) =
            tessera::train::precision::mixed_gradient_graph(&forward, &labels, precision.as_ref())
                .unwrap();
        let params = tessera_passes::optim::trainer_optim_params(&grad).unwrap();
        // every parameter but the 16 of the last cross layer's visual branch is trained
        assert_eq!(params.len(), forward.params().len() - 16);
        assert!(!params.is_empty());
        for p in &params {
            assert_eq!(
                p.weight_decay,
                !trainer_no_decay(&p.name),
                "{} ({precision:?})",
                p.name
            );
        }
    }
}
