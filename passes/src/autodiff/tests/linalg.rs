//! Finite-difference checks of matmul (transposes, batch broadcasting, the folded
//! linear-layer weight gradient), gather and scatter_add (repeated indices).

use super::harness::{Problem, Tol};
use proptest::prelude::*;
use rand::Rng;
use tessera_ir::{Op, Tensor};

/// Batch shape pairs that broadcast.
fn batches() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop_oneof![
        Just((vec![], vec![])),
        Just((vec![2], vec![])),
        Just((vec![], vec![2])),
        Just((vec![2], vec![2])),
        Just((vec![2], vec![1])),
        Just((vec![2, 3], vec![3])),
        Just((vec![1, 3], vec![2, 1])),
        Just((vec![2, 2], vec![])),
    ]
}

fn with_matrix(batch: &[usize], rows: usize, cols: usize, transposed: bool) -> Vec<usize> {
    let mut s = batch.to_vec();
    if transposed {
        s.extend([cols, rows]);
    } else {
        s.extend([rows, cols]);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn matmul_rule_matches_finite_differences(
        (ba, bb) in batches(),
        m in 1usize..4, k in 1usize..4, n in 1usize..4,
        ta in any::<bool>(), tb in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut p = Problem::new(seed);
        let a = p.param("a", &with_matrix(&ba, m, k, ta), -1.0, 1.0);
        let b = p.param("b", &with_matrix(&bb, k, n, tb), -1.0, 1.0);
        let y = p.add(Op::MatMul { transpose_a: ta, transpose_b: tb, half_partials: false }, &[a, b]);
        let r = p.finish(y).check(Tol::default());
        prop_assert!(r.is_ok(), "{:?}x{:?} ta={} tb={}: {}", ba, bb, ta, tb, r.unwrap_err());
    }

    #[test]
    fn gather_and_scatter_add_accumulate_repeated_indices(
        rows in 1usize..5, d in 1usize..4, idx_shape in prop::collection::vec(1usize..4, 0..3),
        seed in any::<u64>(),
    ) {
        // gather: y = table[idx]; scatter_add: z = scatter_add(idx, upd).
        let mut p = Problem::new(seed);
        let ni: usize = idx_shape.iter().product();
        let idx: Vec<i64> = (0..ni).map(|_| p.rng.gen_range(0..rows as i64)).collect();
        let idx = p.input("idx", Tensor::from_i64(idx_shape.clone(), idx).unwrap());
        let table = p.param("table", &[rows, d], -1.0, 1.0);
        let gathered = p.add(Op::Gather { padding_idx: None }, &[table, idx]);
        let mut upd_shape = idx_shape.clone();
        upd_shape.push(d);
        let upd = p.param("upd", &upd_shape, -1.0, 1.0);
        let scattered = p.add(Op::ScatterAdd { rows }, &[idx, upd]);
        // Combine both into one scalar-projected value: [rows, d] + sum over idx axes of gathered.
        let axes: Vec<usize> = (0..idx_shape.len()).collect();
        let g_sum = if axes.is_empty() { gathered } else {
            p.add(Op::Reduce { kind: tessera_ir::ReduceKind::Sum, axes, keep_dims: false }, &[gathered])
        };
        let g_mul = p.add(Op::Binary(tessera_ir::BinaryOp::Mul), &[g_sum, g_sum]);
        let y = p.add(Op::Binary(tessera_ir::BinaryOp::Add), &[scattered, g_mul]);
        // y is at most quadratic in every parameter, so central differences are exact up to
        // rounding whatever the step; a large step keeps the f32 rounding of y (up to 27² when
        // 27 indices hit one row) well inside the tolerance, which the default 1e-3 did not.
        let tol = Tol { h: 0.0625, ..Tol::default() };
        let r = p.finish(y).check(tol);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

#[test]
fn linear_layer_weight_gradient_is_one_folded_matmul() {
    // x[2,3,4] · W[5,4]ᵀ: the weight gradient contracts over the 6 flattened rows.
    let mut p = Problem::new(9);
    let x = p.param("x", &[2, 3, 4], -1.0, 1.0);
    let w = p.param("w", &[5, 4], -1.0, 1.0);
    let y = p.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: true,
            half_partials: false,
        },
        &[x, w],
    );
    let chk = p.finish(y);
    chk.check(Tol::default()).unwrap();
    let ad = crate::autodiff(&chk.g, &Default::default()).unwrap();
    let gw = ad.output("grad.w").unwrap();
    assert!(matches!(
        ad.node(gw).op,
        Op::MatMul {
            transpose_a: true,
            ..
        }
    ));
    assert_eq!(
        ad.node(ad.operands(gw)[0]).op,
        Op::Reshape { shape: vec![6, 5] },
        "dY folded to [rows, N]"
    );
}

#[test]
fn padding_row_gets_no_gradient_from_gather() {
    // table [4, 2], ids [0, 2, 0, 3] with padding row 0: row 0 gets nothing, row 2 and
    // row 3 get their output rows' weights, row 1 is never read.
    let mut p = Problem::new(12);
    let ids = p.input("ids", Tensor::from_i64(vec![4], vec![0, 2, 0, 3]).unwrap());
    let table = p.param("emb", &[4, 2], -1.0, 1.0);
    let y = p.add(
        Op::Gather {
            padding_idx: Some(0),
        },
        &[table, ids],
    );
    let chk = p.finish(y);
    let got = chk.ad_outputs(&Default::default())["grad.emb"].to_f64_vec();
    let w = &chk.w;
    let want = [0.0, 0.0, 0.0, 0.0, w[2], w[3], w[6], w[7]];
    super::harness::compare(
        "emb",
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
fn without_padding_idx_row_zero_accumulates() {
    let mut p = Problem::new(12);
    let ids = p.input("ids", Tensor::from_i64(vec![4], vec![0, 2, 0, 3]).unwrap());
    let table = p.param("emb", &[4, 2], -1.0, 1.0);
    let y = p.add(Op::Gather { padding_idx: None }, &[table, ids]);
    let chk = p.finish(y);
    let plain = chk.ad_outputs(&Default::default())["grad.emb"].to_f64_vec();
    let w = &chk.w;
    assert_eq!(plain[0], (w[0] as f32 + w[4] as f32) as f64);
}
