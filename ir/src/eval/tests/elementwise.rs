//! Unary, binary, compare and select, with broadcasting and f16 rounding.

use super::*;
use crate::op::{BinaryOp, CmpOp, UnaryOp};

const XS: [f32; 6] = [-2.0, -0.5, 0.0, 0.5, 1.0, 3.0];

fn unary_f32(op: UnaryOp, xs: &[f32]) -> Tensor {
    run(Op::Unary(op), &[f32s(&[xs.len()], xs)])
}

#[test]
fn unary_ops_f32() {
    let x64: Vec<f64> = XS.iter().map(|&x| x as f64).collect();
    let map = |f: fn(f64) -> f64| x64.iter().map(|&x| f(x)).collect::<Vec<_>>();
    let cases: [(UnaryOp, Vec<f64>); 7] = [
        (UnaryOp::Neg, map(|x| -x)),
        (UnaryOp::Abs, map(f64::abs)),
        (UnaryOp::Exp, map(f64::exp)),
        (UnaryOp::Tanh, map(f64::tanh)),
        (UnaryOp::Sigmoid, map(|x| 1.0 / (1.0 + (-x).exp()))),
        // math.erf at -2, -0.5, 0, 0.5, 1, 3.
        (
            UnaryOp::Erf,
            vec![
                -0.9953222650189527,
                -0.5204998778130465,
                0.0,
                0.5204998778130465,
                0.8427007929497149,
                0.9999779095030014,
            ],
        ),
        // 0.5 x (1 + math.erf(x / sqrt 2)).
        (
            UnaryOp::Gelu,
            vec![
                -0.04550026389635842,
                -0.15426876936299344,
                0.0,
                0.34573123063700656,
                0.8413447460685429,
                2.99595030590511,
            ],
        ),
    ];
    for (op, want) in cases {
        assert_close(&unary_f32(op, &XS), DType::F32, &[6], &want, 2e-7);
    }
    let pos = [0.25f32, 1.0, 4.0];
    assert_close(
        &unary_f32(UnaryOp::Log, &pos),
        DType::F32,
        &[3],
        &[-(4f64.ln()), 0.0, 4f64.ln()],
        1e-7,
    );
    assert_close(
        &unary_f32(UnaryOp::Log1p, &[1e-10, 1.0, -1.0]),
        DType::F32,
        &[3],
        &[1e-10, 2f64.ln(), f64::NEG_INFINITY],
        1e-7,
    );
    assert_close(
        &unary_f32(UnaryOp::Sqrt, &pos),
        DType::F32,
        &[3],
        &[0.5, 1.0, 2.0],
        0.0,
    );
    assert_close(
        &unary_f32(UnaryOp::Rsqrt, &pos),
        DType::F32,
        &[3],
        &[2.0, 1.0, 0.5],
        0.0,
    );
    assert_close(
        &unary_f32(UnaryOp::Recip, &pos),
        DType::F32,
        &[3],
        &[4.0, 1.0, 0.25],
        0.0,
    );
    let nan = unary_f32(UnaryOp::Log, &[-1.0]);
    assert!(nan.as_f32().unwrap()[0].is_nan());
}

#[test]
fn unary_f16_rounds_the_f32_result() {
    // e = 2.718281828...; f16 spacing in [2, 4) is 2^-9, and 2.718281828 / 2^-9 = 1391.76,
    // so the f16 result is 1392 * 2^-9 = 2.71875. tanh(0.5) = 0.46211715726 -> spacing 2^-12
    // in [0.25, 0.5): 0.46211715726 * 4096 = 1892.83 -> 1893 / 4096 = 0.462158203125.
    let y = run(Op::Unary(UnaryOp::Exp), &[f16s(&[1], &[1.0])]);
    assert_close(&y, DType::F16, &[1], &[2.71875], 0.0);
    let y = run(Op::Unary(UnaryOp::Tanh), &[f16s(&[1], &[0.5])]);
    assert_close(&y, DType::F16, &[1], &[0.462158203125], 0.0);
}

#[test]
fn binary_ops_broadcast() {
    let a = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let row = f32s(&[3], &[10.0, 20.0, 30.0]);
    let y = run(Op::Binary(BinaryOp::Add), &[a.clone(), row.clone()]);
    assert_close(
        &y,
        DType::F32,
        &[2, 3],
        &[11., 22., 33., 14., 25., 36.],
        0.0,
    );
    let y = run(Op::Binary(BinaryOp::Sub), &[row, a.clone()]);
    assert_close(&y, DType::F32, &[2, 3], &[9., 18., 27., 6., 15., 24.], 0.0);
    let col = f32s(&[2, 1], &[1.0, 2.0]);
    let r = f32s(&[1, 3], &[1.0, 2.0, 3.0]);
    let y = run(Op::Binary(BinaryOp::Mul), &[col, r]);
    assert_close(&y, DType::F32, &[2, 3], &[1., 2., 3., 2., 4., 6.], 0.0);
    let two = f32s(&[], &[2.0]);
    let y = run(Op::Binary(BinaryOp::Div), &[a.clone(), two.clone()]);
    assert_close(&y, DType::F32, &[2, 3], &[0.5, 1., 1.5, 2., 2.5, 3.], 0.0);
    let y = run(Op::Binary(BinaryOp::Pow), &[a.clone(), two]);
    assert_close(&y, DType::F32, &[2, 3], &[1., 4., 9., 16., 25., 36.], 0.0);
    let b = f32s(&[2, 3], &[3.0, 3.0, 3.0, f32::NAN, 0.0, 9.0]);
    let y = run(Op::Binary(BinaryOp::Max), &[a.clone(), b.clone()]);
    assert_close(
        &y,
        DType::F32,
        &[2, 3],
        &[3., 3., 3., f64::NAN, 5., 9.],
        0.0,
    );
    let y = run(Op::Binary(BinaryOp::Min), &[a, b]);
    assert_close(
        &y,
        DType::F32,
        &[2, 3],
        &[1., 2., 3., f64::NAN, 0., 6.],
        0.0,
    );
    // Rank-0 with rank-0.
    let y = run(
        Op::Binary(BinaryOp::Add),
        &[f32s(&[], &[1.5]), f32s(&[], &[2.0])],
    );
    assert_close(&y, DType::F32, &[], &[3.5], 0.0);
}

#[test]
fn binary_f16_rounds_to_nearest_even() {
    // 1 + 1.5 * 2^-10 lies halfway between 1 + 2^-10 (odd last bit) and 1 + 2^-9 (even):
    // ties go to even. 1 + 2^-11 lies halfway between 1 (even) and 1 + 2^-10.
    let one = f16s(&[2], &[1.0, 1.0]);
    let small = f16s(&[2], &[3.0 / 2048.0, 1.0 / 2048.0]);
    let y = run(Op::Binary(BinaryOp::Add), &[one, small]);
    assert_close(&y, DType::F16, &[2], &[1.0 + 1.0 / 512.0, 1.0], 0.0);
    // 300 * 300 = 90000 exceeds the f16 maximum 65504.
    let big = f16s(&[1], &[300.0]);
    let y = run(Op::Binary(BinaryOp::Mul), &[big.clone(), big]);
    assert_close(&y, DType::F16, &[1], &[f64::INFINITY], 0.0);
}

#[test]
fn binary_i64_is_exact_and_checked() {
    let a = i64s(&[3], &[7, -7, 10]);
    let b = i64s(&[], &[2]);
    let y = run(Op::Binary(BinaryOp::Div), &[a.clone(), b.clone()]);
    assert_eq!(y, i64s(&[3], &[3, -3, 5]));
    let y = run(Op::Binary(BinaryOp::Mul), &[a.clone(), b]);
    assert_eq!(y, i64s(&[3], &[14, -14, 20]));
    let y = run(Op::Binary(BinaryOp::Max), &[a.clone(), i64s(&[1], &[0])]);
    assert_eq!(y, i64s(&[3], &[7, 0, 10]));
    let big = i64s(&[1], &[i64::MAX]);
    let e = run_op(Op::Binary(BinaryOp::Add), &[big, i64s(&[1], &[1])]).unwrap_err();
    assert!(e.to_string().contains("overflow"), "{e}");
    let e = run_op(Op::Binary(BinaryOp::Div), &[a, i64s(&[1], &[0])]).unwrap_err();
    assert!(e.to_string().contains("by zero"), "{e}");
}

#[test]
fn compare_ops() {
    let a = f32s(&[3], &[1.0, 2.0, f32::NAN]);
    let two = f32s(&[1], &[2.0]);
    let cases = [
        (CmpOp::Lt, [true, false, false]),
        (CmpOp::Le, [true, true, false]),
        (CmpOp::Gt, [false, false, false]),
        (CmpOp::Ge, [false, true, false]),
        (CmpOp::Eq, [false, true, false]),
        (CmpOp::Ne, [true, false, true]),
    ];
    for (op, want) in cases {
        let y = run(Op::Compare(op), &[a.clone(), two.clone()]);
        assert_eq!(y, bools(&[3], &want), "{op:?}");
    }
    let y = run(
        Op::Compare(CmpOp::Ge),
        &[i64s(&[2, 1], &[1, 5]), i64s(&[2], &[1, 3])],
    );
    assert_eq!(y, bools(&[2, 2], &[true, false, true, true]));
    let y = run(
        Op::Compare(CmpOp::Lt),
        &[bools(&[2], &[false, true]), bools(&[], &[true])],
    );
    assert_eq!(y, bools(&[2], &[true, false]));
    let y = run(
        Op::Compare(CmpOp::Eq),
        &[f16s(&[2], &[0.5, 1.0]), f16s(&[2], &[0.5, 2.0])],
    );
    assert_eq!(y, bools(&[2], &[true, false]));
}

#[test]
fn select_broadcasts_all_three() {
    let cond = bools(&[2, 1], &[true, false]);
    let a = f32s(&[3], &[1.0, 2.0, 3.0]);
    let b = f32s(&[], &[-1.0]);
    let y = run(Op::Select, &[cond.clone(), a, b]);
    assert_close(&y, DType::F32, &[2, 3], &[1., 2., 3., -1., -1., -1.], 0.0);
    let y = run(
        Op::Select,
        &[cond, i64s(&[1], &[7]), i64s(&[2, 2], &[1, 2, 3, 4])],
    );
    assert_eq!(y, i64s(&[2, 2], &[7, 7, 3, 4]));
}
