//! Kernel semantics on one tile's memory, checked against independent scalar computations.

use super::*;
use crate::tests::{f16_bytes, f32_bytes, from_f16_bytes, from_f32_bytes};
use crate::vertex::MatMul;
use half::f16;
use tessera_ir::{BinaryOp, UnaryOp};

fn mem_with(at: usize, bytes: &[u8], size: usize) -> Vec<u8> {
    let mut m = vec![0u8; size];
    m[at..at + bytes.len()].copy_from_slice(bytes);
    m
}

#[test]
fn unary_exp_in_place_is_correctly_rounded() {
    let xs = [0.0f32, 1.0, -2.5, 10.0, 1e-3];
    let mut mem = mem_with(0, &f32_bytes(&xs), 64);
    let r = Region::new(0, 20);
    run_vertex(
        &mut mem,
        &Vertex::Unary {
            op: UnaryOp::Exp,
            elem: Elem::F32,
            src: r,
            dst: r,
        },
    )
    .unwrap();
    let want: Vec<f32> = xs.iter().map(|x| f64::from(*x).exp() as f32).collect();
    assert_eq!(from_f32_bytes(&mem[..20]), want);
}

#[test]
fn binary_f16_rounds_each_result() {
    let (a, b) = ([1.0f32, 3.0, 0.1, 2048.0], [1.0f32 / 3.0, 7.0, 0.2, 1.0]);
    let mut mem = mem_with(0, &[f16_bytes(&a), f16_bytes(&b)].concat(), 32);
    let v = Vertex::Binary {
        op: BinaryOp::Mul,
        elem: Elem::F16,
        a: Region::new(0, 8),
        b: Region::new(8, 8),
        dst: Region::new(16, 8),
    };
    run_vertex(&mut mem, &v).unwrap();
    let want: Vec<f32> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            let (x, y) = (f16::from_f32(*x).to_f64(), f16::from_f32(*y).to_f64());
            f16::from_f64(x * y).to_f32()
        })
        .collect();
    assert_eq!(from_f16_bytes(&mem[16..24]), want);
}

#[test]
fn f16_partials_round_each_accumulation() {
    // C_old = 2048 (f16), A·B = 1: 2049 is a tie between 2048 and 2050 in f16 → 2048 (even).
    let mut mem = mem_with(
        0,
        &[f16_bytes(&[1.0, 1.0]), f16_bytes(&[2048.0])].concat(),
        16,
    );
    let mm = |partials| {
        Vertex::MatMul(MatMul {
            m: 1,
            k: 1,
            n: 1,
            input: Elem::F16,
            partials,
            accumulate: true,
            transpose_a: false,
            transpose_b: false,
            a: Region::new(0, 2),
            b: Region::new(2, 2),
            c: Region::new(4, 2 * partials.size() / 2),
        })
    };
    run_vertex(&mut mem, &mm(Elem::F16)).unwrap();
    assert_eq!(from_f16_bytes(&mem[4..6]), [2048.0]);
    let mut mem = mem_with(
        0,
        &[f16_bytes(&[1.0, 1.0]), f32_bytes(&[2048.0])].concat(),
        16,
    );
    run_vertex(&mut mem, &mm(Elem::F32)).unwrap();
    assert_eq!(from_f32_bytes(&mem[4..8]), [2049.0]);
}

#[test]
fn add_partials_adds_left_to_right_in_f16() {
    // 1024 + 0.5 + 0.5 in f16: each step ties back to 1024; one f32 sum would give 1025.
    let bytes = [f16_bytes(&[1024.0]), f16_bytes(&[0.5]), f16_bytes(&[0.5])].concat();
    let mut mem = mem_with(0, &bytes, 8);
    let v = Vertex::AddPartials {
        elem: Elem::F16,
        dst: Region::new(0, 2),
        srcs: vec![Region::new(2, 2), Region::new(4, 2)],
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(from_f16_bytes(&mem[..2]), [1024.0]);
}

#[test]
fn cast_fill_and_copy() {
    let mut mem = mem_with(0, &f32_bytes(&[1.0 / 3.0, 65520.0]), 32);
    run_vertex(
        &mut mem,
        &Vertex::Cast {
            from: Elem::F32,
            to: Elem::F16,
            src: Region::new(0, 8),
            dst: Region::new(8, 4),
        },
    )
    .unwrap();
    // 1/3 → 0x3555 (nearest f16); 65520 rounds up to infinity.
    assert_eq!(&mem[8..12], &[0x55, 0x35, 0x00, 0x7c]);
    run_vertex(
        &mut mem,
        &Vertex::Cast {
            from: Elem::F16,
            to: Elem::F32,
            src: Region::new(8, 2),
            dst: Region::new(12, 4),
        },
    )
    .unwrap();
    assert_eq!(from_f32_bytes(&mem[12..16]), [f32::from_bits(0x3eaa_a000)]);
    run_vertex(
        &mut mem,
        &Vertex::Fill {
            elem: Elem::F16,
            dst: Region::new(16, 4),
            value: 0.1,
        },
    )
    .unwrap();
    assert_eq!(&mem[16..20], &[0x66, 0x2e, 0x66, 0x2e]);
    // Overlapping copy has memmove semantics.
    let mut mem: Vec<u8> = (0..8).collect();
    run_vertex(
        &mut mem,
        &Vertex::Copy {
            src: Region::new(0, 6),
            dst: Region::new(2, 6),
        },
    )
    .unwrap();
    assert_eq!(mem, [0, 1, 0, 1, 2, 3, 4, 5]);
}

#[test]
fn unvalidated_out_of_range_operands_are_errors_not_panics() {
    let mut mem = vec![0u8; 16];
    let v = Vertex::Fill {
        elem: Elem::F32,
        dst: Region::new(12, 8),
        value: 0.0,
    };
    assert!(run_vertex(&mut mem, &v).is_err());
    let mm = Vertex::MatMul(MatMul {
        m: 1,
        k: 1,
        n: 1,
        input: Elem::F32,
        partials: Elem::F32,
        accumulate: false,
        transpose_a: false,
        transpose_b: false,
        a: Region::new(0, 4),
        b: Region::new(2, 4),
        c: Region::new(4, 4),
    });
    assert!(run_vertex(&mut mem, &mm).is_err());
    assert!(run_vertex(
        &mut mem,
        &Vertex::Copy {
            src: Region::new(0, 8),
            dst: Region::new(10, 8)
        }
    )
    .is_err());
}

mod bits;
mod layout;
mod products;
mod train;
mod train_hand;

#[test]
fn elementwise_fast_paths_follow_the_cyclic_definition() {
    // Operand lengths: equal, scalar right, scalar left, and a shorter cycle (a row bias).
    let vals = |len: usize, seed: f32| -> Vec<f32> {
        (0..len)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 3.0)
            .collect()
    };
    for op in BinaryOp::ALL {
        for (la, lb, n) in [
            (12, 12, 12),
            (12, 1, 12),
            (1, 12, 12),
            (12, 4, 12),
            (3, 12, 12),
        ] {
            let (a, b) = (vals(la, 0.5), vals(lb, 1.5));
            let mut got = Vec::new();
            elementwise(op, &a, &b, n, &mut got);
            assert_eq!(got.len(), n);
            for (i, g) in got.iter().enumerate() {
                let (x, y) = (a[i % la], b[i % lb]);
                let want = match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div => x / y,
                    BinaryOp::Max => x.max(y),
                    BinaryOp::Min => x.min(y),
                    BinaryOp::Pow => f64::from(x).powf(f64::from(y)) as f32,
                };
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "{op:?} {la}x{lb} at {i}: {g} vs {want}"
                );
            }
        }
    }
}
