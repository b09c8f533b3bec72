//! Gather, scatter_add, one_hot, iota and full.

use super::*;
use crate::types::TensorType;

#[test]
fn gather_selects_rows() {
    // table rows r = [10 r, 10 r + 1].
    let table = f32s(&[3, 2], &[0., 1., 10., 11., 20., 21.]);
    let ids = i64s(&[2, 2], &[2, 0, 1, 2]);
    let y = run(Op::Gather { padding_idx: None }, &[table, ids]);
    assert_close(
        &y,
        DType::F32,
        &[2, 2, 2],
        &[20., 21., 0., 1., 10., 11., 20., 21.],
        0.0,
    );
    let y = run(
        Op::Gather { padding_idx: None },
        &[i64s(&[3], &[5, 6, 7]), i64s(&[], &[1])],
    );
    assert_eq!(y, i64s(&[], &[6]));
}

#[test]
fn gather_out_of_range_is_an_error() {
    let table = f32s(&[3, 2], &[0.0; 6]);
    for bad in [3, -1, i64::MIN] {
        let e = run_op(
            Op::Gather { padding_idx: None },
            &[table.clone(), i64s(&[2], &[0, bad])],
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("index {bad}")) && msg.contains("@m.op"),
            "{msg}"
        );
    }
}

#[test]
fn scatter_add_accumulates_repeated_rows() {
    // Indices [1, 0, 1] with update rows [1,2], [3,4], [5,6] into 3 rows:
    // row 0 = [3,4], row 1 = [1+5, 2+6], row 2 = 0.
    let ids = i64s(&[3], &[1, 0, 1]);
    let upd = f32s(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
    let y = run(Op::ScatterAdd { rows: 3 }, &[ids.clone(), upd]);
    assert_close(&y, DType::F32, &[3, 2], &[3., 4., 6., 8., 0., 0.], 0.0);
    let upd16 = f16s(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
    let y = run(Op::ScatterAdd { rows: 3 }, &[ids, upd16]);
    assert_close(&y, DType::F16, &[3, 2], &[3., 4., 6., 8., 0., 0.], 0.0);
    let e = run_op(
        Op::ScatterAdd { rows: 2 },
        &[i64s(&[1], &[2]), f32s(&[1, 1], &[1.0])],
    )
    .unwrap_err();
    assert!(e.to_string().contains("index 2"), "{e}");
}

#[test]
fn one_hot_and_its_range_check() {
    let one_hot = Op::OneHot {
        depth: 3,
        dtype: DType::F32,
    };
    let y = run(one_hot.clone(), &[i64s(&[2], &[2, 0])]);
    assert_close(&y, DType::F32, &[2, 3], &[0., 0., 1., 1., 0., 0.], 0.0);
    assert!(run_op(one_hot.clone(), &[i64s(&[1], &[3])]).is_err());
    assert!(run_op(one_hot, &[i64s(&[1], &[-1])]).is_err());
}

#[test]
fn iota_and_full_constants() {
    let y = run(
        Op::Iota {
            axis: 1,
            ty: TensorType::new(DType::I64, vec![2, 3]),
        },
        &[],
    );
    assert_eq!(y, i64s(&[2, 3], &[0, 1, 2, 0, 1, 2]));
    let y = run(
        Op::Iota {
            axis: 0,
            ty: TensorType::new(DType::F32, vec![2, 2]),
        },
        &[],
    );
    assert_close(&y, DType::F32, &[2, 2], &[0., 0., 1., 1.], 0.0);
    let y = run(
        Op::Full {
            value: 0.1,
            ty: TensorType::new(DType::F16, vec![2]),
        },
        &[],
    );
    // 0.1 in f16: spacing 2^-14 in [2^-4, 2^-3): 0.1 * 16384 = 1638.4 -> 1638 / 16384.
    assert_close(&y, DType::F16, &[2], &[1638.0 / 16384.0; 2], 0.0);
    let y = run(
        Op::Full {
            value: -2.5,
            ty: TensorType::new(DType::I64, vec![]),
        },
        &[],
    );
    assert_eq!(y, i64s(&[], &[-2]));
}
