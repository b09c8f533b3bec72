//! The device loop against the host-driven step: four steps of two replicas × two
//! micro-batches, one of which overflows, with dynamic loss scaling. The host path feeds
//! every step's scalars from the host (PyTorch's scaler rule in [`LossScaler`], the step
//! count, the moments decoded and encoded between steps); the device loop (two calls of two
//! iterations) keeps them on the device. Everything must agree bit for bit.

use super::*;
use crate::autodiff::AutodiffOptions;
use crate::mixed_precision::{autodiff_scaled, DynamicScaling, LossScaler, LossScaling};
use crate::optim::{add_device_counters, ScaleRule};
use crate::testing::tiny_training;
use tessera_lxmert::{BuildOptions, LxmertConfig, Shapes};

/// lxmert-tiny's training step with the loss scale as an input (`autodiff_scaled`).
fn scaled_training() -> Training {
    let mut t = tiny_training(9);
    let config = LxmertConfig::preset("lxmert-tiny").unwrap();
    let shapes = Shapes {
        batch: 2,
        seq_len: 7,
        num_objects: 5,
    };
    let fwd = tessera_lxmert::build(&config, &shapes, &BuildOptions::default()).unwrap();
    let with_loss = crate::loss::attach_vqa_loss(&fwd, &t.inputs["labels"].ty()).unwrap();
    t.graph = autodiff_scaled(&with_loss, &AutodiffOptions::default()).unwrap();
    t
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_f32_vec().iter().map(|x| x.to_bits()).collect()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_f64_vec()[0]
}

/// What the host path records per step.
struct HostStep {
    losses: Vec<u32>,
    scale: f64,
    step: f64,
    results: HashMap<String, Tensor>,
}

#[test]
fn the_device_loop_equals_host_driven_steps_bit_for_bit() {
    let t = scaled_training();
    let g = placed(&t, 2, RecomputeMode::Layer);
    let params = crate::optim::trainer_optim_params(&t.graph).unwrap();
    let opt = guarded_adamw(&t.graph, 1e-2, 1, 4);
    let rule = ScaleRule::Dynamic {
        growth_interval: 2,
        floor: 1.0,
    };
    let opt = add_device_counters(&opt, rule).unwrap();
    let plan = lower_pipelined_with(&g, Some(&opt), &target(), &LowerOptions::default()).unwrap();
    // 4 steps × 2 replicas × 2 micro-batches; micro-batch 5 (step 1) overflows.
    let mut feeds: Vec<_> = (0..16).map(|m| micro_batch(&t, m)).collect();
    let x = feeds[5]["visual_feats"].clone();
    let mut v = x.to_f32_vec();
    v[0] = f32::INFINITY;
    feeds[5].insert(
        "visual_feats".into(),
        Tensor::from_f32(x.shape().to_vec(), v).unwrap(),
    );
    let mut zero_moments = HashMap::new();
    for q in &params {
        for kind in ["adam_m", "adam_v"] {
            zero_moments.insert(format!("{kind}.{}", q.name), Tensor::zeros(&q.ty));
        }
    }

    // Host-driven: one step_full per step, every scalar from the host.
    let mut host = PipelineSession::new(&plan).unwrap();
    host.load(&t.params).unwrap();
    let mut scaler = LossScaler::new(LossScaling::Dynamic(DynamicScaling {
        init_scale: 4.0,
        growth_interval: 2,
    }));
    let (mut moments, mut step, mut clean) = (zero_moments.clone(), 0f32, 0f32);
    let mut steps = Vec::new();
    let mut weights = HashMap::new();
    for s in 0..4 {
        let scale = scaler.scale() as f32;
        let mb: Vec<_> = feeds[4 * s..4 * s + 4]
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.insert("loss_scale".into(), Tensor::scalar_f32(scale));
                f
            })
            .collect();
        let mut opt_feeds = moments.clone();
        opt_feeds.insert("step".into(), Tensor::scalar_f32(step));
        opt_feeds.insert("loss_scale".into(), Tensor::scalar_f32(scale));
        opt_feeds.insert("clean_steps".into(), Tensor::scalar_f32(clean));
        let out = host
            .step_full(&[&mb[..2], &mb[2..]], Some(&opt_feeds), TraceMode::Off)
            .unwrap();
        let found_inf = scalar(&out.optimizer["found_inf"]) != 0.0;
        let u = scaler.update(found_inf);
        steps.push(HostStep {
            losses: out
                .micro_batches
                .iter()
                .flat_map(|m| bits(&m["loss"]))
                .collect(),
            scale: u.used_scale,
            step: f64::from(step),
            results: out.optimizer.clone(),
        });
        clean = if found_inf || u.next_scale > u.used_scale {
            0.0
        } else {
            clean + 1.0
        };
        if !found_inf {
            step += 1.0;
            for (k, v) in &out.optimizer {
                if k.starts_with("adam_") {
                    moments.insert(k.clone(), v.clone());
                }
            }
        }
        for (k, v) in out.optimizer {
            if k.starts_with("param.") {
                weights.insert(k, v);
            }
        }
    }
    // PyTorch's rule by hand: clean (1 clean step), overflow (halve, restart), clean, clean
    // (2 clean steps: double).
    let skipped: Vec<bool> = steps
        .iter()
        .map(|s| scalar(&s.results["found_inf"]) != 0.0)
        .collect();
    assert_eq!(skipped, [false, true, false, false]);
    assert_eq!(
        steps.iter().map(|s| s.scale).collect::<Vec<_>>(),
        [4.0, 4.0, 2.0, 2.0]
    );
    assert_eq!(scaler.scale(), 4.0);

    // On the device: two loops of two iterations.
    let mut dev = PipelineSession::new(&plan).unwrap();
    dev.load(&t.params).unwrap();
    let shape = LoopShape {
        iterations: 2,
        replicas: 2,
        grad_accum: 2,
    };
    assert!(matches!(
        dev.device_loop(shape, &feeds[..8]),
        Err(LoopError::NotInitialised)
    ));
    let mut init = zero_moments.clone();
    init.insert("step".into(), Tensor::scalar_f32(0.0));
    init.insert("loss_scale".into(), Tensor::scalar_f32(4.0));
    let err = dev.init_streaming_memory(&init).unwrap_err();
    assert!(err.to_string().contains("clean_steps"), "{err}");
    init.insert("clean_steps".into(), Tensor::scalar_f32(0.0));
    dev.init_streaming_memory(&init).unwrap();
    assert!(matches!(
        dev.device_loop(shape, &feeds[..7]),
        Err(LoopError::Shape { expected: 8, .. })
    ));
    let first = dev.device_loop(shape, &feeds[..8]).unwrap();
    let second = dev.device_loop(shape, &feeds[8..]).unwrap();
    let iterations: Vec<_> = first.iterations.iter().chain(&second.iterations).collect();
    assert_eq!(iterations.len(), 4);
    for (s, (want, got)) in steps.iter().zip(iterations).enumerate() {
        let losses: Vec<u32> = got
            .micro_batches
            .iter()
            .flat_map(|m| bits(&m["loss"]))
            .collect();
        assert_eq!(losses, want.losses, "step {s}: losses");
        assert_eq!(scalar(&got.used["loss_scale"]), want.scale, "step {s}");
        assert_eq!(scalar(&got.used["step"]), want.step, "step {s}");
        for k in ["lr", "grad_norm", "found_inf"] {
            assert_eq!(
                bits(&got.results[k]),
                bits(&want.results[k]),
                "step {s}: {k}"
            );
        }
        // Fed back, not anchored.
        let mut names: Vec<&String> = got.results.keys().collect();
        names.sort();
        assert_eq!(names, ["found_inf", "grad_norm", "lr"], "step {s}");
    }
    assert_eq!(second.weights.len(), weights.len());
    for (k, w) in &weights {
        assert_eq!(bits(&second.weights[k]), bits(w), "{k}");
    }
    for (k, m) in &moments {
        assert_eq!(bits(&second.state[k]), bits(m), "{k}");
    }
    assert_eq!(scalar(&second.state["step"]), 3.0);
    assert_eq!(scalar(&second.state["loss_scale"]), 4.0);
    assert_eq!(scalar(&second.state["clean_steps"]), 0.0);
    // The streaming memory persists: read back as the loop left it.
    let again = dev.streaming_memory().unwrap().unwrap();
    assert_eq!(
        bits(&again["loss_scale"]),
        bits(&second.state["loss_scale"])
    );

    // A plan without the optimizer cannot loop.
    let bare = lower_pipelined(&g, &target(), &LowerOptions::default()).unwrap();
    let mut s = PipelineSession::new(&bare).unwrap();
    assert!(s.streaming_tensors().is_empty());
    assert!(matches!(
        s.init_streaming_memory(&init),
        Err(LoopError::NoOptimizer)
    ));
    assert!(matches!(
        s.device_loop(shape, &feeds[..8]),
        Err(LoopError::NoOptimizer)
    ));
}
