//! The optimizer graph against a hand-written f64 AdamW (torch's algorithm as documented),
//! the schedule against its formula at chosen steps, clipping, validation and grouping.

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use tessera_ir::eval::evaluate;
use tessera_ir::{verify, DType, Graph, Op, Tensor};

fn cfg() -> AdamWConfig {
    AdamWConfig {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
        warmup_steps: 2,
        total_steps: 10,
        grad_accum: 2,
        max_grad_norm: None,
    }
}

fn params() -> Vec<OptimParam> {
    vec![
        OptimParam {
            name: "dense.weight".into(),
            ty: TensorType::new(DType::F32, vec![3, 2]),
            weight_decay: true,
        },
        OptimParam {
            name: "dense.bias".into(),
            ty: TensorType::new(DType::F32, vec![3]),
            weight_decay: false,
        },
    ]
}

/// Random weights, summed scaled gradients and state for `params`.
struct State {
    w: Vec<Vec<f32>>,
    grad_sum: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

fn state(ps: &[OptimParam], loss_scale: f64, seed: u64) -> State {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gen = |n: usize, lo: f64, hi: f64| -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(lo..hi) as f32).collect()
    };
    let mut s = State {
        w: vec![],
        grad_sum: vec![],
        m: vec![],
        v: vec![],
    };
    for p in ps {
        let n = p.ty.num_elements();
        s.w.push(gen(n, -1.0, 1.0));
        s.grad_sum.push(gen(n, -loss_scale, loss_scale));
        s.m.push(gen(n, -0.1, 0.1));
        s.v.push(gen(n, 0.0, 0.01));
    }
    s
}

fn run(
    ps: &[OptimParam],
    c: &AdamWConfig,
    s: &State,
    step: f32,
    loss_scale: f32,
) -> BTreeMap<String, Tensor> {
    let g = build_optimizer_graph(ps, c).unwrap();
    verify(&g).unwrap();
    let t = |p: &OptimParam, v: &[f32]| Tensor::from_f32(p.ty.shape.clone(), v.to_vec()).unwrap();
    let mut inputs = HashMap::from([
        ("step".to_string(), Tensor::scalar_f32(step)),
        ("loss_scale".to_string(), Tensor::scalar_f32(loss_scale)),
    ]);
    let mut params = HashMap::new();
    for (i, p) in ps.iter().enumerate() {
        params.insert(p.name.clone(), t(p, &s.w[i]));
        inputs.insert(format!("grad_sum.{}", p.name), t(p, &s.grad_sum[i]));
        inputs.insert(format!("adam_m.{}", p.name), t(p, &s.m[i]));
        inputs.insert(format!("adam_v.{}", p.name), t(p, &s.v[i]));
    }
    evaluate(&g, &inputs, &params).unwrap()
}

/// The reference step in f64: returns (weights, m, v, lr, grad_norm).
#[allow(clippy::type_complexity)]
fn reference(
    ps: &[OptimParam],
    c: &AdamWConfig,
    s: &State,
    step: f64,
    loss_scale: f64,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>, f64, f64) {
    let (warm, total) = (c.warmup_steps as f64, c.total_steps as f64);
    let lr = c.lr
        * if step < warm {
            step / warm.max(1.0)
        } else {
            ((total - step) / (total - warm).max(1.0)).max(0.0)
        };
    let k = c.grad_accum as f64;
    let mut grads: Vec<Vec<f64>> = s
        .grad_sum
        .iter()
        .map(|g| g.iter().map(|&x| x as f64 / (k * loss_scale)).collect())
        .collect();
    let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    if let Some(max) = c.max_grad_norm {
        let coef = (max / (norm + 1e-6)).min(1.0);
        grads.iter_mut().flatten().for_each(|g| *g *= coef);
    }
    let t = step + 1.0;
    let (mut ws, mut ms, mut vs) = (vec![], vec![], vec![]);
    for (i, p) in ps.iter().enumerate() {
        let (mut w, mut m, mut v) = (vec![], vec![], vec![]);
        for (j, &g) in grads[i].iter().enumerate() {
            let mut x = s.w[i][j] as f64;
            if p.weight_decay {
                x *= 1.0 - lr * c.weight_decay;
            }
            let mj = c.beta1 * s.m[i][j] as f64 + (1.0 - c.beta1) * g;
            let vj = c.beta2 * s.v[i][j] as f64 + (1.0 - c.beta2) * g * g;
            let m_hat = mj / (1.0 - c.beta1.powf(t));
            let v_hat = vj / (1.0 - c.beta2.powf(t));
            x -= lr * m_hat / (v_hat.sqrt() + c.eps);
            w.push(x);
            m.push(mj);
            v.push(vj);
        }
        ws.push(w);
        ms.push(m);
        vs.push(v);
    }
    (ws, ms, vs, lr, norm)
}

fn assert_close(what: &str, got: &Tensor, want: &[f64], tol: f64) {
    let got = got.to_f64_vec();
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1e-3),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

fn check_step(c: &AdamWConfig, step: f64, loss_scale: f64, seed: u64) {
    let ps = params();
    let s = state(&ps, loss_scale, seed);
    let out = run(&ps, c, &s, step as f32, loss_scale as f32);
    let (w, m, v, lr, norm) = reference(&ps, c, &s, step, loss_scale);
    for (i, p) in ps.iter().enumerate() {
        assert_close(
            &format!("param.{}", p.name),
            &out[&format!("param.{}", p.name)],
            &w[i],
            1e-5,
        );
        assert_close(
            &format!("adam_m.{}", p.name),
            &out[&format!("adam_m.{}", p.name)],
            &m[i],
            1e-5,
        );
        assert_close(
            &format!("adam_v.{}", p.name),
            &out[&format!("adam_v.{}", p.name)],
            &v[i],
            1e-5,
        );
    }
    assert_close("lr", &out["lr"], &[lr], 1e-6);
    assert_close("grad_norm", &out["grad_norm"], &[norm], 1e-6);
}

#[test]
fn one_step_matches_f64_adamw() {
    // Mid-training step (t = 4) with accumulation K = 2 and loss scale 8.
    check_step(&cfg(), 3.0, 8.0, 1);
    // First step without warmup: lr = peak, bias corrections at t = 1.
    let c = AdamWConfig {
        warmup_steps: 0,
        grad_accum: 1,
        ..cfg()
    };
    check_step(&c, 0.0, 1.0, 2);
}

#[test]
fn decay_applies_only_to_the_decay_group() {
    // With zero gradients and state, only decay moves the weights.
    let ps = params();
    let mut s = state(&ps, 1.0, 3);
    for x in s
        .grad_sum
        .iter_mut()
        .chain(&mut s.m)
        .chain(&mut s.v)
        .flatten()
    {
        *x = 0.0;
    }
    let out = run(&ps, &cfg(), &s, 5.0, 1.0);
    let lr = 1e-2 * (10.0 - 5.0) / 8.0;
    let decayed: Vec<f64> = s.w[0]
        .iter()
        .map(|&x| x as f64 * (1.0 - lr * 0.1))
        .collect();
    assert_close("weight", &out["param.dense.weight"], &decayed, 1e-6);
    let kept: Vec<f64> = s.w[1].iter().map(|&x| x as f64).collect();
    assert_close("bias", &out["param.dense.bias"], &kept, 0.0);
}

#[test]
fn clipping_scales_gradients_to_max_norm() {
    // Gradients of norm ~2: a max of 0.5 clips, a max of 100 does not.
    for max in [0.5, 100.0] {
        let c = AdamWConfig {
            max_grad_norm: Some(max),
            ..cfg()
        };
        check_step(&c, 4.0, 2.0, 4);
    }
    let ps = params();
    let s = state(&ps, 2.0, 4);
    let (.., norm) = reference(&ps, &cfg(), &s, 4.0, 2.0);
    assert!(
        norm > 0.5 && norm < 100.0,
        "the clip must be active for 0.5 only: {norm}"
    );
}

#[test]
fn schedule_follows_linear_warmup_then_decay() {
    // warmup 4, total 10, peak 1: 0, 1/4, 3/4 rising; then (10 − s)/6 down to 0.
    let c = AdamWConfig {
        lr: 1.0,
        warmup_steps: 4,
        total_steps: 10,
        ..cfg()
    };
    let expected = [
        (0, 0.0),
        (1, 0.25),
        (3, 0.75),
        (4, 1.0),
        (5, 5.0 / 6.0),
        (9, 1.0 / 6.0),
        (10, 0.0),
        (12, 0.0),
    ];
    let ps = params();
    let s = state(&ps, 1.0, 5);
    for (step, want) in expected {
        assert!((c.lr_at(step) - want).abs() < 1e-12, "host lr at {step}");
        let out = run(&ps, &c, &s, step as f32, 1.0);
        assert_close(&format!("lr@{step}"), &out["lr"], &[want], 1e-6);
    }
    let flat = AdamWConfig {
        lr: 2.0,
        warmup_steps: 0,
        total_steps: 4,
        ..cfg()
    };
    assert_eq!(flat.lr_at(0), 2.0);
    assert_eq!(flat.lr_at(1), 1.5);
}

#[test]
fn invalid_config_names_the_field() {
    let cases: Vec<(AdamWConfig, &str)> = vec![
        (AdamWConfig { lr: -1.0, ..cfg() }, "lr"),
        (
            AdamWConfig {
                lr: f64::INFINITY,
                ..cfg()
            },
            "lr",
        ),
        (
            AdamWConfig {
                beta1: 1.0,
                ..cfg()
            },
            "beta1",
        ),
        (
            AdamWConfig {
                beta2: -0.1,
                ..cfg()
            },
            "beta2",
        ),
        (AdamWConfig { eps: 0.0, ..cfg() }, "eps"),
        (
            AdamWConfig {
                weight_decay: f64::NAN,
                ..cfg()
            },
            "weight_decay",
        ),
        (
            AdamWConfig {
                grad_accum: 0,
                ..cfg()
            },
            "grad_accum",
        ),
        (
            AdamWConfig {
                total_steps: 0,
                warmup_steps: 0,
                ..cfg()
            },
            "total_steps",
        ),
        (
            AdamWConfig {
                warmup_steps: 11,
                ..cfg()
            },
            "warmup_steps",
        ),
        (
            AdamWConfig {
                max_grad_norm: Some(0.0),
                ..cfg()
            },
            "max_grad_norm",
        ),
    ];
    for (c, field) in cases {
        let e = build_optimizer_graph(&params(), &c).unwrap_err();
        assert!(
            matches!(&e, OptimError::InvalidConfig { field: f, .. } if *f == field),
            "{field}: {e}"
        );
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
    }
}

#[test]
fn graph_interface_and_scopes() {
    let mut ps = params();
    ps.push(OptimParam {
        name: "half.weight".into(),
        ty: TensorType::new(DType::F16, vec![2]),
        weight_decay: true,
    });
    let g = build_optimizer_graph(&ps, &cfg()).unwrap();
    verify(&g).unwrap();
    let outs: Vec<&str> = g.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        outs,
        [
            "param.dense.weight",
            "adam_m.dense.weight",
            "adam_v.dense.weight",
            "param.dense.bias",
            "adam_m.dense.bias",
            "adam_v.dense.bias",
            "param.half.weight",
            "adam_m.half.weight",
            "adam_v.half.weight",
            "lr",
            "grad_norm"
        ]
    );
    let half = g.output("param.half.weight").unwrap();
    assert_eq!(g.node(half).ty, TensorType::new(DType::F16, vec![2]));
    for id in g.node_ids() {
        let n = g.node(id);
        match &n.op {
            Op::Input { .. } | Op::Param { .. } => {}
            _ => assert!(
                n.scope == "optimizer" || n.scope.starts_with("optimizer."),
                "{}",
                n.scope
            ),
        }
    }
    let bad = vec![OptimParam {
        name: "ids".into(),
        ty: TensorType::new(DType::I64, vec![2]),
        weight_decay: false,
    }];
    let e = build_optimizer_graph(&bad, &cfg()).unwrap_err();
    assert!(e.to_string().contains("`ids`"), "{e}");
}

#[test]
fn trainer_grouping_excludes_biases_and_layer_norm_params() {
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let mut g = Graph::new("m");
    let x = g.input("x", f(&[2, 4])).unwrap();
    let w = g.param("head.0.weight", f(&[4, 4])).unwrap();
    let b = g.param("head.0.bias", f(&[4])).unwrap();
    let gamma = g.param("head.2.weight", f(&[4])).unwrap();
    let beta = g.param("head.2.bias", f(&[4])).unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let y = g.add(mm, &[x, w], "head.0").unwrap();
    let y = g
        .add(Op::Binary(tessera_ir::BinaryOp::Add), &[y, b], "head.0")
        .unwrap();
    let y = g
        .add(Op::LayerNorm { eps: 1e-12 }, &[y, gamma, beta], "head.2")
        .unwrap();
    let loss = g
        .add(
            Op::Reduce {
                kind: tessera_ir::ReduceKind::Sum,
                axes: vec![0, 1],
                keep_dims: false,
            },
            &[y],
            "loss",
        )
        .unwrap();
    g.set_output("loss", loss).unwrap();
    let ad = crate::autodiff(&g, &Default::default()).unwrap();
    let ps = trainer_optim_params(&ad).unwrap();
    let groups: Vec<(&str, bool)> = ps
        .iter()
        .map(|p| (p.name.as_str(), p.weight_decay))
        .collect();
    assert_eq!(
        groups,
        [
            ("head.0.weight", true),
            ("head.0.bias", false),
            ("head.2.weight", false),
            ("head.2.bias", false)
        ]
    );
}
