//! The optimizer graph against a hand-written f64 AdamW (torch's algorithm as documented),
//! the schedule against its formula at chosen steps, clipping, validation and grouping.

mod interface;
mod shards;
mod step;

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use tessera_ir::eval::evaluate;
use tessera_ir::{verify, DType, Tensor};

pub(super) fn cfg() -> AdamWConfig {
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

pub(super) fn params() -> Vec<OptimParam> {
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
pub(super) struct State {
    w: Vec<Vec<f32>>,
    grad_sum: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

pub(super) fn state(ps: &[OptimParam], loss_scale: f64, seed: u64) -> State {
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

pub(super) fn run(
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
pub(super) fn reference(
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

pub(super) fn assert_close(what: &str, got: &Tensor, want: &[f64], tol: f64) {
    let got = got.to_f64_vec();
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1e-3),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

pub(super) fn check_step(c: &AdamWConfig, step: f64, loss_scale: f64, seed: u64) {
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
