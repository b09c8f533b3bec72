//! One AdamW step against the f64 reference: mid-training and first steps, decay groups,
//! clipping.

use super::*;

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
