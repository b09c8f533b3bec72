//! Compare, select, row and column reductions, scatter-add and the bool → float cast against
//! hand-derived values: NaN and cyclic operands, accumulator precision, overwrite of `dst`,
//! index errors.

use super::*;
use tessera_ir::{CmpOp, ReduceKind};

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn compare_cycles_operands_and_nan_is_unordered() {
    // a = [1, NaN, 3, 2], b = [2] repeated.
    let a = f32_bytes(&[1.0, f32::NAN, 3.0, 2.0]);
    let mut mem = mem_with(0, &[a, f32_bytes(&[2.0])].concat(), 32);
    let cmp = |op| Vertex::Compare {
        op,
        elem: Elem::F32,
        a: Region::new(0, 16),
        b: Region::new(16, 4),
        dst: Region::new(24, 4),
    };
    for (op, want) in [
        (CmpOp::Lt, [1u8, 0, 0, 0]),
        (CmpOp::Ge, [0, 0, 1, 1]),
        (CmpOp::Eq, [0, 0, 0, 1]),
        (CmpOp::Ne, [1, 1, 1, 0]),
    ] {
        run_vertex(&mut mem, &cmp(op)).unwrap();
        assert_eq!(mem[24..28], want, "{op:?}");
    }
}

#[test]
fn compare_i64_and_f16_hand_values() {
    // i64: [-100, 7] != -100 (ignore-index mask) = [0, 1].
    let mut mem = mem_with(0, &i64_bytes(&[-100, 7, -100]), 32);
    let v = Vertex::Compare {
        op: CmpOp::Ne,
        elem: Elem::I64,
        a: Region::new(0, 16),
        b: Region::new(16, 8),
        dst: Region::new(24, 2),
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(mem[24..26], [0, 1]);
    // f16: -0 >= +0, and 65503 rounds to 65504 in f16, so 65504 >= it.
    let mut mem = mem_with(0, &f16_bytes(&[-0.0, 65504.0, 0.0, 65503.0]), 16);
    let v = Vertex::Compare {
        op: CmpOp::Ge,
        elem: Elem::F16,
        a: Region::new(0, 4),
        b: Region::new(4, 4),
        dst: Region::new(8, 2),
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(mem[8..10], [1, 1]);
}

#[test]
fn select_picks_bytes_with_cyclic_condition() {
    // cond = [1, 0] repeated over 4, a = [1, 2, 3, 4], b = [-7] repeated.
    let bytes = [
        vec![1u8, 0, 0, 0],
        f16_bytes(&[1.0, 2.0, 3.0, 4.0]),
        f16_bytes(&[-7.0]),
    ]
    .concat();
    let mut mem = mem_with(0, &bytes, 32);
    let v = Vertex::Select {
        elem: Elem::F16,
        cond: Region::new(0, 2),
        a: Region::new(4, 8),
        b: Region::new(12, 2),
        dst: Region::new(16, 8),
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(from_f16_bytes(&mem[16..24]), [1.0, -7.0, 3.0, -7.0]);
}

fn reduce(kind: ReduceKind, elem: Elem, cols: u32, src: Vec<u8>) -> Vec<u8> {
    let len = src.len() as u32;
    let out = len / cols;
    let mut mem = mem_with(0, &src, (len + out) as usize);
    let v = Vertex::ReduceRows {
        kind,
        elem,
        cols,
        src: Region::new(0, len),
        dst: Region::new(len, out),
    };
    run_vertex(&mut mem, &v).unwrap();
    mem[len as usize..].to_vec()
}

#[test]
fn reduce_rows_hand_values() {
    // f32 data accumulates in f64: 1 + 2^-30 - 1 = 2^-30 (f32 accumulation would give 0).
    let tiny = 2f32.powi(-30);
    let got = reduce(ReduceKind::Sum, Elem::F32, 3, f32_bytes(&[1.0, tiny, -1.0]));
    assert_eq!(from_f32_bytes(&got), [tiny]);
    // f16 data accumulates in f32: 2048 + 1 + 1 = 2050 (f16 accumulation: 2048, ties to even).
    let got = reduce(
        ReduceKind::Sum,
        Elem::F16,
        3,
        f16_bytes(&[2048.0, 1.0, 1.0]),
    );
    assert_eq!(from_f16_bytes(&got), [2050.0]);
    // Mean of [1, 2, 4] is 7/3 divided in f64 and rounded once; second row [-6, 0, 0].
    let got = reduce(
        ReduceKind::Mean,
        Elem::F32,
        3,
        f32_bytes(&[1.0, 2.0, 4.0, -6.0, 0.0, 0.0]),
    );
    assert_eq!(from_f32_bytes(&got), [(7.0f64 / 3.0) as f32, -2.0]);
    // Max: [-5, -2] → -2, [1, NaN] → NaN, [-inf, -inf] → -inf.
    let got = reduce(
        ReduceKind::Max,
        Elem::F32,
        2,
        f32_bytes(&[
            -5.0,
            -2.0,
            1.0,
            f32::NAN,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ]),
    );
    let got = from_f32_bytes(&got);
    assert_eq!(got[0], -2.0);
    assert!(got[1].is_nan());
    assert_eq!(got[2], f32::NEG_INFINITY);
}

#[test]
fn scatter_add_overwrites_dst_and_accumulates_before_rounding() {
    // Three f16 updates 2048, 1, 1 into row 0, one update 0.5 into row 2; dst starts as junk.
    let bytes = [
        i64_bytes(&[0, 0, 2, 0]),
        f16_bytes(&[2048.0, 1.0, 0.5, 1.0]),
        f16_bytes(&[9.0, 9.0, 9.0]),
    ]
    .concat();
    let mut mem = mem_with(0, &bytes, 48);
    let v = Vertex::ScatterAdd {
        elem: Elem::F16,
        rows: 3,
        width: 1,
        indices: Region::new(0, 32),
        updates: Region::new(32, 8),
        dst: Region::new(40, 6),
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(from_f16_bytes(&mem[40..46]), [2050.0, 0.0, 0.5]);
}

#[test]
fn scatter_add_rejects_out_of_range_indices() {
    for (width, bad) in [(1u32, 3i64), (1, -1), (0, 3), (0, i64::MIN)] {
        let bytes = [i64_bytes(&[1, bad]), f32_bytes(&[1.0, 2.0])].concat();
        let mut mem = mem_with(0, &bytes, 64);
        let v = Vertex::ScatterAdd {
            elem: Elem::F32,
            rows: 3,
            width,
            indices: Region::new(0, 16),
            updates: Region::new(16, 8 * width),
            dst: Region::new(32, 12 * width),
        };
        assert_eq!(
            run_vertex(&mut mem, &v),
            Err(KernelError::Index {
                index: bad,
                rows: 3
            }),
            "width {width} index {bad}"
        );
    }
}

#[test]
fn bool_casts_to_zero_and_one() {
    let mut mem = mem_with(0, &[0u8, 1, 1, 0], 32);
    for (to, size) in [(Elem::F32, 4u32), (Elem::F16, 2)] {
        let v = Vertex::Cast {
            from: Elem::Bool,
            to,
            src: Region::new(0, 4),
            dst: Region::new(8, 4 * size),
        };
        run_vertex(&mut mem, &v).unwrap();
        let got = if to == Elem::F32 {
            from_f32_bytes(&mem[8..24])
        } else {
            from_f16_bytes(&mem[8..16])
        };
        assert_eq!(got, [0.0, 1.0, 1.0, 0.0], "{to:?}");
    }
}

fn reduce_cols(kind: ReduceKind, elem: Elem, rows: u32, src: Vec<u8>) -> Vec<u8> {
    let len = src.len() as u32;
    let out = len / rows;
    let mut mem = mem_with(0, &src, (len + out) as usize);
    let v = Vertex::ReduceCols {
        kind,
        elem,
        rows,
        src: Region::new(0, len),
        dst: Region::new(len, out),
    };
    run_vertex(&mut mem, &v).unwrap();
    mem[len as usize..].to_vec()
}

#[test]
fn reduce_cols_hand_values() {
    // Rows [1, 10, 100], [2^-30, 20, 200], [-1, 30, -300]: column sums in f64 then rounded
    // once: 2^-30 (f32 accumulation of 1 + 2^-30 - 1 would give 0), 60, 0.
    let tiny = 2f32.powi(-30);
    let src = f32_bytes(&[1.0, 10.0, 100.0, tiny, 20.0, 200.0, -1.0, 30.0, -300.0]);
    let got = from_f32_bytes(&reduce_cols(ReduceKind::Sum, Elem::F32, 3, src.clone()));
    assert_eq!(got, [tiny, 60.0, 0.0]);
    let mean = from_f32_bytes(&reduce_cols(ReduceKind::Mean, Elem::F32, 3, src.clone()));
    assert_eq!(mean, [tiny / 3.0, 20.0, 0.0]);
    let max = from_f32_bytes(&reduce_cols(ReduceKind::Max, Elem::F32, 3, src));
    assert_eq!(max, [1.0, 30.0, 200.0]);
    // Max propagates NaN from any row.
    let nan = f32_bytes(&[1.0, 2.0, f32::NAN, 0.0]);
    let got = from_f32_bytes(&reduce_cols(ReduceKind::Max, Elem::F32, 2, nan));
    assert!(got[0].is_nan() && got[1] == 2.0, "{got:?}");
    // f16 accumulates in f32 and rounds once: 2048 + 1 + 1 = 2050 (f16 steps would tie
    // back to 2048 twice).
    let h = f16_bytes(&[2048.0, 1.0, 1.0, 0.5, 1.0, 0.25]);
    let got = from_f16_bytes(&reduce_cols(ReduceKind::Sum, Elem::F16, 3, h));
    assert_eq!(got, [2050.0, 1.75]);
}

#[test]
fn reduce_cols_with_a_ragged_source_is_an_error() {
    // 5 elements are not 2 rows of dst's 2 columns.
    let mut mem = mem_with(0, &f32_bytes(&[1.0; 5]), 64);
    let v = Vertex::ReduceCols {
        kind: ReduceKind::Sum,
        elem: Elem::F32,
        rows: 2,
        src: Region::new(0, 20),
        dst: Region::new(20, 8),
    };
    assert!(run_vertex(&mut mem, &v).is_err());
}
