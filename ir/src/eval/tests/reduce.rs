//! Reductions, softmax and layer norm.

use super::*;
use crate::op::ReduceKind;

fn reduce(kind: ReduceKind, axes: &[usize], keep_dims: bool) -> Op {
    Op::Reduce {
        kind,
        axes: axes.to_vec(),
        keep_dims,
    }
}

/// x[i, j, k] = 100 i + 10 j + k for a [2, 3, 2] tensor.
fn cube() -> Tensor {
    let v: Vec<f32> = (0..2)
        .flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| (100 * i + 10 * j + k) as f32)))
        .collect();
    f32s(&[2, 3, 2], &v)
}

#[test]
fn sum_mean_max_over_axes() {
    // Over axis 1: 3 terms 100i + {0,10,20} + k -> 300 i + 30 + 3 k.
    let y = run(reduce(ReduceKind::Sum, &[1], false), &[cube()]);
    assert_close(&y, DType::F32, &[2, 2], &[30., 33., 330., 333.], 0.0);
    let y = run(reduce(ReduceKind::Mean, &[1], true), &[cube()]);
    assert_close(&y, DType::F32, &[2, 1, 2], &[10., 11., 110., 111.], 0.0);
    // Over axes 0 and 2: 4 terms 100 {0,1} + 10 j + {0,1} -> 40 j + 202.
    let y = run(reduce(ReduceKind::Sum, &[0, 2], false), &[cube()]);
    assert_close(&y, DType::F32, &[3], &[202., 242., 282.], 0.0);
    let y = run(reduce(ReduceKind::Max, &[0, 2], true), &[cube()]);
    assert_close(&y, DType::F32, &[1, 3, 1], &[101., 111., 121.], 0.0);
    let y = run(reduce(ReduceKind::Max, &[0, 1, 2], false), &[cube()]);
    assert_close(&y, DType::F32, &[], &[121.], 0.0);
    let y = run(reduce(ReduceKind::Sum, &[], false), &[cube()]);
    assert_eq!(y, cube());
    let nan = f32s(&[3], &[1.0, f32::NAN, 2.0]);
    let y = run(reduce(ReduceKind::Max, &[0], false), &[nan]);
    assert!(y.as_f32().unwrap()[0].is_nan());
}

#[test]
fn reductions_on_i64_and_f16() {
    let x = i64s(&[2, 2], &[1, -5, 3, 7]);
    let y = run(
        reduce(ReduceKind::Sum, &[0], false),
        std::slice::from_ref(&x),
    );
    assert_eq!(y, i64s(&[2], &[4, 2]));
    let y = run(reduce(ReduceKind::Max, &[1], true), &[x]);
    assert_eq!(y, i64s(&[2, 1], &[1, 7]));
    let big = i64s(&[2], &[i64::MAX, 1]);
    assert!(run_op(reduce(ReduceKind::Sum, &[0], false), &[big]).is_err());
    // 2048 + 1 + 1 + ... : an f32 accumulator keeps every 1 (2048 + 4 = 2052, an f16 value
    // since the f16 spacing in [2048, 4096) is 2). Accumulating in f16 would give 2048.
    let mut v = vec![2048.0f32];
    v.extend([1.0; 4]);
    let y = run(reduce(ReduceKind::Sum, &[0], false), &[f16s(&[5], &v)]);
    assert_close(&y, DType::F16, &[], &[2052.0], 0.0);
    // Mean 2053/5 = 410.6 rounds to the f16 grid (spacing 0.25 in [256, 512)): 410.5.
    let mut v = vec![2048.0f32];
    v.extend([1.0, 1.0, 1.0, 2.0]);
    let y = run(reduce(ReduceKind::Mean, &[0], false), &[f16s(&[5], &v)]);
    assert_close(&y, DType::F16, &[], &[410.5], 0.0);
}

#[test]
fn max_over_an_empty_axis_is_an_error() {
    let x = f32s(&[2, 0], &[]);
    let e = run_op(
        reduce(ReduceKind::Max, &[1], false),
        std::slice::from_ref(&x),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no elements"), "{e}");
    let y = run(reduce(ReduceKind::Sum, &[1], false), &[x]);
    assert_close(&y, DType::F32, &[2], &[0., 0.], 0.0);
}

/// Softmax of one row by the textbook formula in f64.
fn softmax_ref(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = row.iter().map(|x| (x - m).exp()).sum();
    row.iter().map(|x| (x - m).exp() / s).collect()
}

#[test]
fn softmax_over_last_axis() {
    let x = f32s(&[3, 3], &[1., 2., 3., 0., 0., 0., 1000., 1000., -1000.]);
    let y = run(Op::Softmax, &[x]);
    let mut want = softmax_ref(&[1., 2., 3.]);
    want.extend([1. / 3.; 3]);
    want.extend([0.5, 0.5, 0.0]);
    assert_close(&y, DType::F32, &[3, 3], &want, 1e-7);
    let y = run(Op::Softmax, &[f16s(&[2], &[0.0, 0.0])]);
    assert_close(&y, DType::F16, &[2], &[0.5, 0.5], 0.0);
}

#[test]
fn layer_norm_biased_variance_with_affine() {
    // Row [1,2,3,4]: mean 2.5, biased var (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    // Row [2,2,2,2]: var 0, so with eps 1e-5 the normalised row is 0 and y = beta.
    let x = f32s(&[2, 4], &[1., 2., 3., 4., 2., 2., 2., 2.]);
    let g = f32s(&[4], &[1., 2., 1., 1.]);
    let b = f32s(&[4], &[0., 0., 1., 0.]);
    let eps = 1e-5;
    let y = run(Op::LayerNorm { eps }, &[x, g, b]);
    let sd = (1.25f64 + eps).sqrt();
    let want = [
        -1.5 / sd,
        2.0 * -0.5 / sd,
        0.5 / sd + 1.0,
        1.5 / sd,
        0.,
        0.,
        1.,
        0.,
    ];
    assert_close(&y, DType::F32, &[2, 4], &want, 2e-7);
    // f16: [0, 2] -> mean 1, var 1, eps 0: [-1, 1].
    let y = run(
        Op::LayerNorm { eps: 0.0 },
        &[
            f16s(&[1, 2], &[0., 2.]),
            f16s(&[2], &[1., 1.]),
            f16s(&[2], &[0., 0.]),
        ],
    );
    assert_close(&y, DType::F16, &[1, 2], &[-1., 1.], 0.0);
}
