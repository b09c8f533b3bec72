//! Reshape, transpose, broadcast_to, slice, pad, concat and cast.

use super::*;

/// 0, 1, ..., n-1 as f32 in `shape`.
fn range(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    f32s(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
}

#[test]
fn reshape_keeps_order() {
    let y = run(Op::Reshape { shape: vec![3, 2] }, &[range(&[2, 3])]);
    assert_close(&y, DType::F32, &[3, 2], &[0., 1., 2., 3., 4., 5.], 0.0);
}

#[test]
fn transpose_permutes_axes() {
    // x[i,j,k] = 6i + 3j... for shape [2,2,3]: x[i,j,k] = 6 i + 3 j + k.
    // perm [2,0,1]: y[k,i,j] = x[i,j,k], y shape [3,2,2].
    let y = run(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        &[range(&[2, 2, 3])],
    );
    let mut want = Vec::new();
    for k in 0..3 {
        for i in 0..2 {
            for j in 0..2 {
                want.push((6 * i + 3 * j + k) as f64);
            }
        }
    }
    assert_close(&y, DType::F32, &[3, 2, 2], &want, 0.0);
    let y = run(
        Op::Transpose { perm: vec![1, 0] },
        &[i64s(&[2, 2], &[1, 2, 3, 4])],
    );
    assert_eq!(y, i64s(&[2, 2], &[1, 3, 2, 4]));
}

#[test]
fn broadcast_to_repeats() {
    let y = run(
        Op::BroadcastTo {
            shape: vec![2, 2, 3],
        },
        &[range(&[2, 1])],
    );
    assert_close(
        &y,
        DType::F32,
        &[2, 2, 3],
        &[0., 0., 0., 1., 1., 1., 0., 0., 0., 1., 1., 1.],
        0.0,
    );
    let y = run(Op::BroadcastTo { shape: vec![3] }, &[bools(&[], &[true])]);
    assert_eq!(y, bools(&[3], &[true; 3]));
}

#[test]
fn slice_and_pad_are_adjoint() {
    // [2,4] rows [0..4), [4..8); slice axis 1, 1..3 -> [[1,2],[5,6]].
    let y = run(
        Op::Slice {
            axis: 1,
            start: 1,
            end: 3,
        },
        &[range(&[2, 4])],
    );
    assert_close(&y, DType::F32, &[2, 2], &[1., 2., 5., 6.], 0.0);
    let y = run(
        Op::Slice {
            axis: 0,
            start: 1,
            end: 2,
        },
        &[range(&[2, 4])],
    );
    assert_close(&y, DType::F32, &[1, 4], &[4., 5., 6., 7.], 0.0);
    let p = run(
        Op::Pad {
            axis: 1,
            before: 1,
            after: 2,
        },
        &[range(&[2, 2])],
    );
    assert_close(
        &p,
        DType::F32,
        &[2, 5],
        &[0., 0., 1., 0., 0., 0., 2., 3., 0., 0.],
        0.0,
    );
    let p = run(
        Op::Pad {
            axis: 0,
            before: 0,
            after: 1,
        },
        &[i64s(&[1, 2], &[7, 8])],
    );
    assert_eq!(p, i64s(&[2, 2], &[7, 8, 0, 0]));
    let p = run(
        Op::Pad {
            axis: 0,
            before: 1,
            after: 0,
        },
        &[bools(&[1], &[true])],
    );
    assert_eq!(p, bools(&[2], &[false, true]));
}

#[test]
fn concat_along_middle_axis() {
    // a [2,1,2] = 0..4, b [2,2,2] = 0..8 (+100), c [2,1,2] = 0..4 (+200); along axis 1.
    let a = range(&[2, 1, 2]);
    let b = f32s(
        &[2, 2, 2],
        &(100..108).map(|i| i as f32).collect::<Vec<_>>(),
    );
    let c = f32s(&[2, 1, 2], &[200., 201., 202., 203.]);
    let y = run(Op::Concat { axis: 1 }, &[a, b, c]);
    let want = [
        0., 1., 100., 101., 102., 103., 200., 201., // batch 0
        2., 3., 104., 105., 106., 107., 202., 203., // batch 1
    ];
    assert_close(&y, DType::F32, &[2, 4, 2], &want, 0.0);
    let y = run(
        Op::Concat { axis: 0 },
        &[i64s(&[1], &[1]), i64s(&[2], &[2, 3])],
    );
    assert_eq!(y, i64s(&[3], &[1, 2, 3]));
}

#[test]
fn cast_rounds_truncates_and_tests_nonzero() {
    // f32 -> f16: 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even, 1. 1 + 3 * 2^-11 is a
    // tie going up to 1 + 2^-9. 70000 overflows to inf. 2^-25 is half the smallest f16
    // subnormal (2^-24): a tie, to even, 0.
    let x = f32s(
        &[4],
        &[
            1.0 + 1.0 / 2048.0,
            1.0 + 3.0 / 2048.0,
            70000.0,
            1.0 / 33554432.0,
        ],
    );
    let y = run(Op::Cast { to: DType::F16 }, &[x]);
    assert_close(
        &y,
        DType::F16,
        &[4],
        &[1.0, 1.0 + 1.0 / 512.0, f64::INFINITY, 0.0],
        0.0,
    );
    let x = f32s(&[5], &[2.7, -2.7, 0.0, -0.5, 1e30]);
    let y = run(Op::Cast { to: DType::I64 }, std::slice::from_ref(&x));
    assert_eq!(y, i64s(&[5], &[2, -2, 0, 0, i64::MAX]));
    let y = run(Op::Cast { to: DType::Bool }, &[x]);
    assert_eq!(y, bools(&[5], &[true, true, false, true, true]));
    let y = run(Op::Cast { to: DType::F32 }, &[i64s(&[2], &[-3, 16777217])]);
    // 2^24 + 1 is not an f32: nearest even is 2^24.
    assert_close(&y, DType::F32, &[2], &[-3.0, 16777216.0], 0.0);
    let y = run(Op::Cast { to: DType::F32 }, &[bools(&[2], &[true, false])]);
    assert_close(&y, DType::F32, &[2], &[1.0, 0.0], 0.0);
}
