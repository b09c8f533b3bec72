//! Gather, the i64 → float cast and broadcast binary vertices against hand-derived values.

use super::*;

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn gather(indices: Region, dst: Region) -> Vertex {
    Vertex::Gather {
        elem: Elem::F16,
        rows: 5,
        width: 3,
        table: Region::new(0, 30),
        indices,
        dst,
    }
}

#[test]
fn gather_copies_the_indexed_rows() {
    // Table row r = [10r, 10r + 1, 10r + 2] in f16 (exact).
    let table: Vec<f32> = (0..15).map(|i| (10 * (i / 3) + i % 3) as f32).collect();
    let idx = [4i64, 0, 4, 2];
    let bytes = [f16_bytes(&table), vec![0; 2], i64_bytes(&idx)].concat();
    let mut mem = mem_with(0, &bytes, 96);
    run_vertex(&mut mem, &gather(Region::new(32, 32), Region::new(64, 24))).unwrap();
    assert_eq!(
        from_f16_bytes(&mem[64..88]),
        [40.0, 41.0, 42.0, 0.0, 1.0, 2.0, 40.0, 41.0, 42.0, 20.0, 21.0, 22.0]
    );
}

#[test]
fn gather_rejects_out_of_range_indices() {
    for bad in [5i64, -1, i64::MIN] {
        let bytes = [vec![0u8; 32], i64_bytes(&[1, bad])].concat();
        let mut mem = mem_with(0, &bytes, 96);
        let err = run_vertex(&mut mem, &gather(Region::new(32, 16), Region::new(64, 12)));
        assert_eq!(
            err,
            Err(KernelError::Index {
                index: bad,
                rows: 5
            })
        );
    }
}

#[test]
fn i64_casts_round_as_the_ir_cast() {
    let v = [0i64, -3, 16_777_217, 2049, 65519, 65520, -70_000, i64::MAX];
    let mut mem = mem_with(0, &i64_bytes(&v), 160);
    let cast = |to, dst| Vertex::Cast {
        from: Elem::I64,
        to,
        src: Region::new(0, 64),
        dst,
    };
    run_vertex(&mut mem, &cast(Elem::F32, Region::new(64, 32))).unwrap();
    // 2^24 + 1 is a tie between 2^24 and 2^24 + 2: even significand wins; i64::MAX → 2^63.
    let two63 = 9_223_372_036_854_775_808.0f32;
    assert_eq!(
        from_f32_bytes(&mem[64..96]),
        [
            0.0,
            -3.0,
            16_777_216.0,
            2049.0,
            65519.0,
            65520.0,
            -70000.0,
            two63
        ]
    );
    run_vertex(&mut mem, &cast(Elem::F16, Region::new(96, 16))).unwrap();
    // f16 spacing is 2 in [2048, 4096) (2049 ties to 2048) and 32 near the maximum 65504;
    // 65520 is the overflow threshold (rounds to infinity), 65519 stays finite.
    let inf = f32::INFINITY;
    assert_eq!(
        from_f16_bytes(&mem[96..112]),
        [0.0, -3.0, inf, 2048.0, 65504.0, inf, -inf, inf]
    );
}

#[test]
fn binary_broadcasts_shorter_operands_cyclically() {
    // dst[i] = a[i % 6] - b[i % 2] with a = [0, 1, ..., 5], b = [100, 200].
    let a: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let mut mem = mem_with(0, &f32_bytes(&[a, vec![100.0, 200.0]].concat()), 64);
    let v = Vertex::Binary {
        op: BinaryOp::Sub,
        elem: Elem::F32,
        a: Region::new(0, 24),
        b: Region::new(24, 8),
        dst: Region::new(32, 24),
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(
        from_f32_bytes(&mem[32..56]),
        [-100.0, -199.0, -98.0, -197.0, -96.0, -195.0]
    );
    // Short left operand, in place on the full-length right one: x[i] = [1, 2, 3][i % 3] / x[i].
    let mut mem = mem_with(
        0,
        &f16_bytes(&[1.0, 2.0, 3.0, 2.0, 4.0, 8.0, 3.0, 6.0, 9.0]),
        32,
    );
    let v = Vertex::Binary {
        op: BinaryOp::Div,
        elem: Elem::F16,
        a: Region::new(0, 6),
        b: Region::new(6, 12),
        dst: Region::new(6, 12),
    };
    run_vertex(&mut mem, &v).unwrap();
    let third = f16::from_f64(1.0 / 3.0).to_f32();
    assert_eq!(
        from_f16_bytes(&mem[6..18]),
        [0.5, 0.5, 0.375, third, third, third]
    );
}
