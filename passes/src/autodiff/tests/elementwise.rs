//! Finite-difference checks of the elementwise rules (unary, binary with broadcasting,
//! select, cast), and the tie conventions of max/min.

use super::harness::{broadcast_operand, compare, Problem, Tol};
use crate::autodiff::AutodiffOptions;
use proptest::prelude::*;
use rand::Rng;
use tessera_ir::{BinaryOp, CmpOp, DType, Op, Tensor, UnaryOp};

/// Inputs where each function is smooth and well conditioned.
fn domain(u: UnaryOp) -> (f64, f64) {
    match u {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Recip => (0.5, 2.0),
        UnaryOp::Log1p => (-0.5, 2.0),
        _ => (-2.0, 2.0),
    }
}

fn shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=3, 0..=max_rank)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn unary_rules_match_finite_differences(shape in shape(3), seed in any::<u64>()) {
        for u in UnaryOp::ALL {
            let mut p = Problem::new(seed);
            let (lo, hi) = domain(u);
            let x = if u == UnaryOp::Abs {
                // Keep |x| >= 0.1 so that x ± h never crosses the kink.
                let n = shape.iter().product();
                let v = p.uniform(n, 0.1, 2.0).into_iter()
                    .enumerate()
                    .map(|(i, a)| if i % 2 == 0 { a } else { -a })
                    .collect();
                p.param_values("x", &shape, v)
            } else {
                p.param("x", &shape, lo, hi)
            };
            let y = p.add(Op::Unary(u), &[x]);
            let r = p.finish(y).check(Tol::default());
            prop_assert!(r.is_ok(), "{}: {}", u.name(), r.unwrap_err());
        }
    }

    #[test]
    fn binary_rules_undo_broadcasting(full in shape(3), seed in any::<u64>()) {
        for b in BinaryOp::ALL {
            let mut p = Problem::new(seed);
            let sa = broadcast_operand(&mut p.rng, &full);
            let sb = broadcast_operand(&mut p.rng, &full);
            let (na, nb) = (sa.iter().product(), sb.iter().product());
            let (va, vb) = match b {
                BinaryOp::Div => {
                    let vb = p.uniform(nb, 0.5, 2.0).into_iter().enumerate()
                        .map(|(i, v)| if i % 2 == 0 { v } else { -v }).collect();
                    (p.uniform(na, -2.0, 2.0), vb)
                }
                BinaryOp::Pow => (p.uniform(na, 0.5, 2.0), p.uniform(nb, -1.5, 1.5)),
                BinaryOp::Max | BinaryOp::Min => {
                    // Values on two interleaved grids: |a - b| >= 0.12 everywhere.
                    let va = (0..na).map(|_| 0.25 * p.rng.gen_range(-6..6) as f32 + 0.05).collect();
                    let vb = (0..nb).map(|_| 0.25 * p.rng.gen_range(-6..6) as f32 + 0.17).collect();
                    (va, vb)
                }
                _ => (p.uniform(na, -2.0, 2.0), p.uniform(nb, -2.0, 2.0)),
            };
            let a = p.param_values("a", &sa, va);
            let bb = p.param_values("b", &sb, vb);
            let y = p.add(Op::Binary(b), &[a, bb]);
            let r = p.finish(y).check(Tol::default());
            prop_assert!(r.is_ok(), "{} {:?} {:?}: {}", b.name(), sa, sb, r.unwrap_err());
        }
    }

    #[test]
    fn select_routes_gradient_by_condition(full in shape(3), seed in any::<u64>()) {
        let mut p = Problem::new(seed);
        let sc = broadcast_operand(&mut p.rng, &full);
        let sa = broadcast_operand(&mut p.rng, &full);
        let sb = broadcast_operand(&mut p.rng, &full);
        let nc = sc.iter().product();
        let cv = p.uniform(nc, -1.0, 1.0);
        let c = p.input("c", Tensor::from_f32(sc.clone(), cv).unwrap());
        let zero = p.add(Op::Full { value: 0.0, ty: tessera_ir::TensorType::scalar(DType::F32) }, &[]);
        let cond = p.add(Op::Compare(CmpOp::Gt), &[c, zero]);
        let a = p.param("a", &sa, -2.0, 2.0);
        let b = p.param("b", &sb, -2.0, 2.0);
        let y = p.add(Op::Select, &[cond, a, b]);
        // The broadcast result must cover `full` for the operands to be exercised.
        let y = p.add(Op::BroadcastTo { shape: full.clone() }, &[y]);
        let r = p.finish(y).check(Tol::default());
        prop_assert!(r.is_ok(), "{:?} {:?} {:?}: {}", sc, sa, sb, r.unwrap_err());
    }
}

#[test]
fn same_param_on_both_sides_sums_contributions() {
    // d/dx Σ w x² = 2 w x, and d/dx Σ w max(x, x) = w (ties split evenly, then summed).
    let mut p = Problem::new(7);
    let x = p.param_values("x", &[3], vec![0.5, -1.0, 2.0]);
    let sq = p.add(Op::Binary(BinaryOp::Mul), &[x, x]);
    let mx = p.add(Op::Binary(BinaryOp::Max), &[x, x]);
    let y = p.add(Op::Binary(BinaryOp::Add), &[sq, mx]);
    let c = p.finish(y);
    let out = c.ad_outputs(&AutodiffOptions::default());
    let got = out["grad.x"].to_f64_vec();
    let want: Vec<f64> = [0.5, -1.0, 2.0]
        .iter()
        .zip(&c.w)
        .map(|(x, w)| 2.0 * w * x + w)
        .collect();
    compare(
        "x",
        &got,
        &want,
        Tol {
            h: 0.0,
            atol: 1e-6,
            rtol: 1e-6,
        },
    )
    .unwrap();
}

#[test]
fn max_and_min_split_ties_evenly() {
    // max(x, c) with c == x at element 1: half the gradient goes to x there.
    for b in [BinaryOp::Max, BinaryOp::Min] {
        let mut p = Problem::new(3);
        let x = p.param_values("x", &[3], vec![1.0, 2.0, 3.0]);
        let c = p.input("c", Tensor::from_f32(vec![3], vec![1.5, 2.0, 2.5]).unwrap());
        let y = p.add(Op::Binary(b), &[x, c]);
        let chk = p.finish(y);
        let got = chk.ad_outputs(&AutodiffOptions::default())["grad.x"].to_f64_vec();
        let w = &chk.w;
        let want = if b == BinaryOp::Max {
            vec![0.0, 0.5 * w[1], w[2]]
        } else {
            vec![w[0], 0.5 * w[1], 0.0]
        };
        compare(
            "x",
            &got,
            &want,
            Tol {
                h: 0.0,
                atol: 1e-7,
                rtol: 1e-6,
            },
        )
        .unwrap();
    }
}

#[test]
fn abs_has_zero_gradient_at_zero() {
    let mut p = Problem::new(5);
    let x = p.param_values("x", &[3], vec![-2.0, 0.0, 3.0]);
    let y = p.add(Op::Unary(UnaryOp::Abs), &[x]);
    let chk = p.finish(y);
    let got = chk.ad_outputs(&AutodiffOptions::default())["grad.x"].to_f64_vec();
    let want = vec![-chk.w[0], 0.0, chk.w[2]];
    compare(
        "x",
        &got,
        &want,
        Tol {
            h: 0.0,
            atol: 1e-7,
            rtol: 1e-6,
        },
    )
    .unwrap();
}

#[test]
fn cast_casts_the_gradient_back() {
    // y = cast(cast(x, f16), f32): dx = cast(cast(w, f16), f32), i.e. w rounded to f16.
    let mut p = Problem::new(11);
    let x = p.param("x", &[2, 3], -2.0, 2.0);
    let h = p.add(Op::Cast { to: DType::F16 }, &[x]);
    let y = p.add(Op::Cast { to: DType::F32 }, &[h]);
    let chk = p.finish(y);
    let got = chk.ad_outputs(&AutodiffOptions::default())["grad.x"].to_f64_vec();
    let want: Vec<f64> = chk
        .w
        .iter()
        .map(|&w| half::f16::from_f64(w).to_f64())
        .collect();
    assert!(
        want.iter().zip(&chk.w).any(|(a, b)| a != b),
        "rounding must show"
    );
    compare(
        "x",
        &got,
        &want,
        Tol {
            h: 0.0,
            atol: 0.0,
            rtol: 0.0,
        },
    )
    .unwrap();
}

#[test]
fn harness_detects_a_wrong_gradient() {
    // The tolerance must be able to fail: a gradient off by 5 % is rejected.
    let mut p = Problem::new(1);
    let x = p.param("x", &[4], -1.0, 1.0);
    let y = p.add(Op::Unary(UnaryOp::Tanh), &[x]);
    let chk = p.finish(y);
    let ad = chk.ad_outputs(&AutodiffOptions::default())["grad.x"].to_f64_vec();
    let fd = chk.fd_grad("x", Tol::default().h);
    compare("x", &ad, &fd, Tol::default()).unwrap();
    let wrong: Vec<f64> = ad.iter().map(|g| g * 1.05).collect();
    assert!(compare("x", &wrong, &fd, Tol::default()).is_err());
}
