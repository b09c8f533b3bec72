//! Training plans carry the optimizer: `tessera compile --train` lowers the AdamW step as the
//! pipeline's last segment, `inspect` shows it, and `tessera run PLAN` runs a whole
//! training step on the tiles. The updated weights and moments equal the reference engine's
//! optimizer graph (built by the trainer from the unplaced training graph) evaluated on the
//! host with the gradients the run wrote, with zero moments and with given ones.

mod common;

use common::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tessera::train::{TrainConfig, Trainer};
use tessera_ir::{DType, Tensor};
use tessera_lxmert::BuildOptions;
use tessera_passes::mixed_precision::{LossScaling, PrecisionConfig};

/// Worst error over the tensors of `want` named `prefix*`, relative to each tensor's largest
/// magnitude.
fn worst(want: &BTreeMap<String, Tensor>, got: &BTreeMap<String, Tensor>, prefix: &str) -> f64 {
    let mut worst = 0f64;
    let mut n = 0;
    for (k, w) in want.iter().filter(|(k, _)| k.starts_with(prefix)) {
        let g = got.get(k).unwrap_or_else(|| panic!("the run wrote no {k}"));
        assert_eq!(g.dtype(), w.dtype(), "{k}");
        let (g, w) = (g.to_f64_vec(), w.to_f64_vec());
        let scale = w.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-30);
        let diff = g
            .iter()
            .zip(&w)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        worst = worst.max(diff / scale);
        n += 1;
    }
    assert!(n > 0, "no {prefix}* outputs");
    worst
}

/// The reference: the trainer's optimizer graph for lxmert-tiny's training step (same
/// hyper-parameters as the compile below: 2 micro-batches per step, lr 1e-2, no warmup, 10
/// steps) evaluated on `run`'s gradients (scaled back by `scale`) with `moments` (zero when
/// missing), from the fixture's weights.
fn host_update(
    run: &BTreeMap<String, Tensor>,
    moments: &BTreeMap<String, Tensor>,
    precision: Option<PrecisionConfig>,
    scale: f32,
) -> BTreeMap<String, Tensor> {
    let spec = tessera::model::resolve(tiny().to_str().unwrap()).unwrap();
    let config = spec.lxmert_config().unwrap().clone();
    let path = tiny_file("train_soft.safetensors");
    let f = tessera::feeds::lxmert_feeds(load(&path), &config, &path, true).unwrap();
    let opts = BuildOptions {
        visual_attention_mask: f.visual_attention_mask,
        ..Default::default()
    };
    let forward = spec.graph(&f.shapes, &opts).unwrap();
    let cfg = TrainConfig {
        steps: 10,
        grad_accum: 2,
        lr: 1e-2,
        warmup_ratio: 0.0,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        max_grad_norm: None,
        precision,
    };
    let params = spec.weights(None, 0).unwrap();
    let trainer = Trainer::new(&forward, &f.labels.unwrap().ty(), params, cfg).unwrap();
    let opt = trainer.optimizer_graph();
    let mut feeds: HashMap<String, Tensor> = HashMap::new();
    feeds.insert("step".into(), Tensor::scalar_f32(0.0));
    feeds.insert("loss_scale".into(), Tensor::scalar_f32(scale));
    for id in opt.inputs() {
        if let tessera_ir::Op::Input { name, ty } = &opt.node(id).op {
            if let Some(p) = name.strip_prefix("grad_sum.") {
                let g = &run[&format!("grad.{p}")];
                let v: Vec<f32> = g.to_f32_vec().iter().map(|x| x * scale).collect();
                feeds.insert(
                    name.clone(),
                    Tensor::from_f32(g.shape().to_vec(), v).unwrap(),
                );
            } else if name.starts_with("adam_") {
                let m = moments.get(name).cloned();
                feeds.insert(name.clone(), m.unwrap_or_else(|| Tensor::zeros(ty)));
            }
        }
    }
    tessera_ir::eval::evaluate(opt, &feeds, &trainer.params).unwrap()
}

fn compile(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let plan = dir.join(name);
    let tiny_dir = tiny();
    let mut args = vec![
        "compile",
        tiny_dir.to_str().unwrap(),
        "--train",
        "--ipus",
        "2",
        "--grad-accum",
        "2",
        "--seq-len",
        "7",
        "--num-objects",
        "5",
        "--micro-batch",
        "2",
        "--lr",
        "1e-2",
        "--warmup-ratio",
        "0",
        "--steps",
        "10",
        "-o",
        plan.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    tessera_ok(&args);
    plan
}

fn run(plan: &Path, inputs: &Path, out: &Path) -> BTreeMap<String, Tensor> {
    tessera_ok(&run_args(plan, inputs, out, &[]));
    load(out)
}

#[test]
fn a_training_plan_updates_the_weights_as_the_host_optimizer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = compile(d, "train.tsp", &[]);
    let info = tessera_ok(&["inspect", plan.to_str().unwrap()]);
    assert!(
        info.contains("optimizer after the flush")
            && info.contains("reads step, loss_scale")
            && info.contains("device counters step_next"),
        "{info}"
    );

    // Zero moments.
    let got = run(
        &plan,
        &tiny_file("train_soft.safetensors"),
        &d.join("o1.st"),
    );
    assert!(got.contains_key("loss") && got.contains_key("lr"));
    assert_eq!(got["found_inf"].dtype(), DType::Bool);
    assert_eq!(got["step_next"].to_f64_vec(), vec![1.0]);
    let want = host_update(&got, &BTreeMap::new(), None, 1.0);
    for prefix in ["param.", "adam_m.", "adam_v."] {
        let err = worst(&want, &got, prefix);
        assert!(err < 1e-5, "{prefix}: relative error {err}");
    }
    // The step moved the weights.
    let w = "lxmert.embeddings.word_embeddings.weight";
    assert_ne!(want[&format!("param.{w}")], host_weights()[w]);

    // Given moments: the first run's, with every second one of each moment dropped (zero).
    let mut inputs = load(&tiny_file("train_soft.safetensors"));
    let mut moments = BTreeMap::new();
    for (i, (k, t)) in got
        .iter()
        .filter(|(k, _)| k.starts_with("adam_"))
        .enumerate()
    {
        if i % 2 == 0 {
            moments.insert(k.clone(), t.clone());
            inputs.insert(k.clone(), t.clone());
        }
    }
    let with_moments = d.join("with_moments.safetensors");
    tessera_ir::io::save_safetensors(&with_moments, &inputs).unwrap();
    let got2 = run(&plan, &with_moments, &d.join("o2.st"));
    let want2 = host_update(&got2, &moments, None, 1.0);
    for prefix in ["param.", "adam_m.", "adam_v."] {
        let err = worst(&want2, &got2, prefix);
        assert!(err < 1e-5, "given moments, {prefix}: relative error {err}");
    }
    assert!(
        worst(&want, &got2, "adam_v.") > 1e-3,
        "the moments were ignored"
    );

    // A moment the plan does not have.
    inputs.insert("adam_m.nothing".into(), Tensor::scalar_f32(0.0));
    let bad = d.join("bad.safetensors");
    tessera_ir::io::save_safetensors(&bad, &inputs).unwrap();
    let err = tessera_err(&run_args(&plan, &bad, &d.join("o3.st"), &[]));
    assert!(
        err.contains("`adam_m.nothing` is not optimizer state"),
        "{err}"
    );
}

/// The fixture's weights.
fn host_weights() -> HashMap<String, Tensor> {
    tessera::model::resolve(tiny().to_str().unwrap())
        .unwrap()
        .weights(None, 0)
        .unwrap()
}

/// fp16 with a static loss scale: the plan's optimizer takes the scaled gradient sums and
/// the scale; the run writes the gradients unscaled, and the update is the host's.
#[test]
fn an_fp16_training_plan_with_loss_scaling_updates_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = compile(
        d,
        "fp16.tsp",
        &["--precision", "fp16", "--loss-scaling", "1024"],
    );
    let got = run(&plan, &tiny_file("train_soft.safetensors"), &d.join("o.st"));
    // What `--precision fp16 --loss-scaling 1024` selects.
    let precision = PrecisionConfig {
        loss_scaling: LossScaling::Static(1024.0),
        ..PrecisionConfig::plain_fp16()
    };
    let want = host_update(&got, &BTreeMap::new(), Some(precision), 1024.0);
    for prefix in ["param.", "adam_m.", "adam_v."] {
        let err = worst(&want, &got, prefix);
        assert!(err < 1e-5, "fp16, {prefix}: relative error {err}");
    }
}

#[test]
fn optimizer_host_leaves_the_optimizer_out_of_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let plan = compile(dir.path(), "pipeline.tsp", &["--optimizer", "host"]);
    let info = tessera_ok(&["inspect", plan.to_str().unwrap()]);
    assert!(info.contains("pipeline: 2 stages"), "{info}");
    assert!(!info.contains("optimizer after the flush"), "{info}");
}
