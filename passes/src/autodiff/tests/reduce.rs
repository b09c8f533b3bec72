//! Finite-difference checks of reductions (sum, mean, max over random axes, with and
//! without kept axes), softmax and layer norm.

use super::harness::{compare, Problem, Tol};
use crate::autodiff::AutodiffOptions;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;
use tessera_ir::{Op, ReduceKind};

fn shape(min_rank: usize, max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=3, min_rank..=max_rank)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn reduce_rules_match_finite_differences(
        shape in shape(1, 3), keep_dims in any::<bool>(), seed in any::<u64>(),
    ) {
        for kind in ReduceKind::ALL {
            let mut p = Problem::new(seed);
            let axes: Vec<usize> = (0..shape.len()).filter(|_| p.rng.gen_bool(0.5)).collect();
            let n: usize = shape.iter().product();
            let x = if kind == ReduceKind::Max {
                // Distinct values 0.1 apart: no ties, no crossing within ± h.
                let mut v: Vec<f32> = (0..n).map(|i| 0.1 * i as f32 - 1.0).collect();
                v.shuffle(&mut p.rng);
                p.param_values("x", &shape, v)
            } else {
                p.param("x", &shape, -2.0, 2.0)
            };
            let y = p.add(Op::Reduce { kind, axes: axes.clone(), keep_dims }, &[x]);
            let r = p.finish(y).check(Tol::default());
            prop_assert!(r.is_ok(), "{} {:?} axes {:?}: {}", kind.name(), shape, axes, r.unwrap_err());
        }
    }

    #[test]
    fn softmax_rule_matches_finite_differences(shape in shape(1, 3), seed in any::<u64>()) {
        let mut p = Problem::new(seed);
        let x = p.param("x", &shape, -2.0, 2.0);
        let y = p.add(Op::Softmax, &[x]);
        let r = p.finish(y).check(Tol::default());
        prop_assert!(r.is_ok(), "{:?}: {}", shape, r.unwrap_err());
    }

    #[test]
    fn layer_norm_rule_matches_finite_differences(
        lead in prop::collection::vec(1usize..=3, 0..=2), h in 2usize..=5, seed in any::<u64>(),
    ) {
        let mut p = Problem::new(seed);
        let mut shape = lead.clone();
        shape.push(h);
        // Each row spread over [-1.5, 1.5] (shuffled, jittered): a row of nearly equal
        // values would make the normalisation ill-conditioned for finite differences.
        let rows: usize = lead.iter().product();
        let mut v = Vec::with_capacity(rows * h);
        for _ in 0..rows {
            let mut row: Vec<f32> = (0..h)
                .map(|k| (3.0 * k as f64 / (h - 1) as f64 - 1.5 + p.rng.gen_range(-0.1..0.1)) as f32)
                .collect();
            row.shuffle(&mut p.rng);
            v.extend(row);
        }
        let x = p.param_values("x", &shape, v);
        let gamma = p.param("gamma", &[h], 0.5, 1.5);
        let beta = p.param("beta", &[h], -0.5, 0.5);
        let y = p.add(Op::LayerNorm { eps: 1e-5 }, &[x, gamma, beta]);
        let r = p.finish(y).check(Tol::default());
        prop_assert!(r.is_ok(), "{:?}: {}", shape, r.unwrap_err());
    }
}

#[test]
fn reduce_max_splits_ties_evenly() {
    // max over [1, 3, 3, 2]: the gradient w is shared by elements 1 and 2.
    let mut p = Problem::new(2);
    let x = p.param_values("x", &[4], vec![1.0, 3.0, 3.0, 2.0]);
    let y = p.add(
        Op::Reduce {
            kind: ReduceKind::Max,
            axes: vec![0],
            keep_dims: false,
        },
        &[x],
    );
    let chk = p.finish(y);
    let got = chk.ad_outputs(&AutodiffOptions::default())["grad.x"].to_f64_vec();
    let w = chk.w[0];
    let want = vec![0.0, w / 2.0, w / 2.0, 0.0];
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
