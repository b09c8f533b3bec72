//! Compare, select, row reduction and scatter-add vertices are bit-identical to
//! `tessera_ir::eval::evaluate` running the same op on a one-node graph (f32 and f16, and i64
//! for compare / select), with broadcast operands, NaN, signed zeros and repeated indices.

use super::bits::{evaluate, tensor, tensor_bytes};
use super::*;
use rand::{Rng, SeedableRng};
use tessera_ir::{CmpOp, Op, ReduceKind, Tensor, TensorData};

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Bytes of a float, i64 or bool tensor (bool as 0/1).
fn any_bytes(t: &Tensor) -> Vec<u8> {
    match t.data() {
        TensorData::I64(v) => i64_bytes(v),
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        _ => tensor_bytes(t),
    }
}

/// A tensor of `elem` with values `v` (i64 truncates them).
fn value_tensor(elem: Elem, shape: &[usize], v: &[f32]) -> Tensor {
    match elem {
        Elem::I64 => {
            let ints = v.iter().map(|&x| x as i64).collect();
            Tensor::new(shape.to_vec(), TensorData::I64(ints)).unwrap()
        }
        _ => tensor(elem, shape, v),
    }
}

/// `mem` holding `parts` back to back (each padded to 8 bytes); returns their regions.
fn layout(parts: &[&[u8]], spare: usize) -> (Vec<u8>, Vec<Region>) {
    let mut mem = Vec::new();
    let mut regions = Vec::new();
    for p in parts {
        regions.push(Region::new(mem.len() as u32, p.len() as u32));
        mem.extend_from_slice(p);
        mem.resize(mem.len().next_multiple_of(8), 0);
    }
    mem.resize(mem.len() + spare, 0);
    (mem, regions)
}

/// Values with ties, signed zeros, infinities and a NaN.
const SPECIAL: [f32; 12] = [
    1.0,
    -0.0,
    0.0,
    f32::NAN,
    2.5,
    f32::INFINITY,
    -3.0,
    1.0,
    f32::NEG_INFINITY,
    0.1,
    -0.0,
    7.0,
];

#[test]
fn compare_is_bit_identical_to_the_evaluator() {
    let b_vals = [1.0f32, 0.0, f32::NAN, 7.0];
    for elem in [Elem::F32, Elem::F16, Elem::I64] {
        let a_vals: Vec<f32> = if elem == Elem::I64 {
            SPECIAL
                .iter()
                .map(|x| if x.is_finite() { *x } else { 5.0 })
                .collect()
        } else {
            SPECIAL.to_vec()
        };
        let a = value_tensor(elem, &[3, 4], &a_vals);
        let b = value_tensor(elem, &[4], &b_vals);
        for op in CmpOp::ALL {
            let want = any_bytes(&evaluate(Op::Compare(op), &[a.clone(), b.clone()]));
            let (mut mem, r) = layout(&[&any_bytes(&a), &any_bytes(&b)], 16);
            let dst = Region::new(mem.len() as u32 - 16, 12);
            let v = Vertex::Compare {
                op,
                elem,
                a: r[0],
                b: r[1],
                dst,
            };
            run_vertex(&mut mem, &v).unwrap();
            assert_eq!(&mem[dst.offset as usize..dst.end() as usize], &want[..]);
            // The test must be able to fail: the result is not constant.
            assert!(want.contains(&0) && want.contains(&1), "{elem:?} {op:?}");
        }
    }
}

#[test]
fn select_is_bit_identical_to_the_evaluator() {
    let flags = [
        true, false, false, true, true, true, false, false, true, false, true, false,
    ];
    let cond = Tensor::new(vec![3, 4], TensorData::Bool(flags.to_vec())).unwrap();
    for elem in [Elem::F32, Elem::F16, Elem::I64] {
        let a = value_tensor(
            elem,
            &[3, 4],
            &SPECIAL.map(|x| if x.is_nan() { 9.0 } else { x }),
        );
        // A NaN with a payload and a negative zero in b: bits must be copied, not recomputed.
        let b_vals = [f32::from_bits(0x7fc0_1234), -0.0, 42.0, -1.5];
        let b = value_tensor(elem, &[4], &b_vals);
        let want = any_bytes(&evaluate(Op::Select, &[cond.clone(), a.clone(), b.clone()]));
        for in_place in [false, true] {
            let (mut mem, r) = layout(&[&any_bytes(&cond), &any_bytes(&a), &any_bytes(&b)], 96);
            let dst = if in_place {
                r[1]
            } else {
                Region::new(mem.len() as u32 - 96, want.len() as u32)
            };
            let v = Vertex::Select {
                elem,
                cond: r[0],
                a: r[1],
                b: r[2],
                dst,
            };
            run_vertex(&mut mem, &v).unwrap();
            let got = &mem[dst.offset as usize..dst.end() as usize];
            assert_eq!(got, &want[..], "{elem:?} in place {in_place}");
        }
    }
}

/// Shape and data of the reduction tests: values spanning many binades (so that the order
/// and precision of the accumulation show), a NaN in one place.
fn reduce_input(seed: u64) -> (Vec<usize>, Vec<f32>) {
    let shape = vec![3, 4, 5];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..60)
        .map(|_| rng.gen_range(-1.0f32..1.0) * 2f32.powi(rng.gen_range(-12..12)))
        .collect();
    v[17] = f32::NAN;
    (shape, v)
}

/// The input permuted so that for each output element (row-major over the kept axes) its
/// reduced elements follow in increasing input flat index, computed by nested loops.
fn rows_for(shape: &[usize], axes: &[usize], x: &[f32]) -> Vec<f32> {
    let strides = [shape[1] * shape[2], shape[2], 1];
    let kept: Vec<usize> = (0..3).filter(|a| !axes.contains(a)).collect();
    let mut order: Vec<usize> = kept.clone();
    order.extend_from_slice(axes);
    // Iterate the multi-index in `order` (last fastest).
    let mut out = Vec::new();
    for i in 0..shape[order[0]] {
        for j in 0..shape[order[1]] {
            for k in 0..shape[order[2]] {
                let flat = i * strides[order[0]] + j * strides[order[1]] + k * strides[order[2]];
                out.push(x[flat]);
            }
        }
    }
    out
}

#[test]
fn reduce_rows_is_bit_identical_to_the_evaluator() {
    let axes_sets: [&[usize]; 6] = [&[0], &[1], &[2], &[0, 2], &[1, 2], &[0, 1, 2]];
    for elem in [Elem::F32, Elem::F16] {
        let (shape, mut x) = reduce_input(5);
        for kind in ReduceKind::ALL {
            for axes in axes_sets {
                // Without the NaN for sums (a NaN would hide the accumulation differences).
                if kind != ReduceKind::Max {
                    x[17] = 0.75;
                } else {
                    x[17] = f32::NAN;
                }
                let t = tensor(elem, &shape, &x);
                let op = Op::Reduce {
                    kind,
                    axes: axes.to_vec(),
                    keep_dims: false,
                };
                let want = tensor_bytes(&evaluate(op, std::slice::from_ref(&t)));
                let cols: usize = axes.iter().map(|&a| shape[a]).product();
                let permuted = tensor(elem, &[60], &rows_for(&shape, axes, &x));
                let (mut mem, r) = layout(&[&tensor_bytes(&permuted)], want.len());
                let dst = Region::new(r[0].end() as u32, want.len() as u32);
                let v = Vertex::ReduceRows {
                    kind,
                    elem,
                    cols: cols as u32,
                    src: r[0],
                    dst,
                };
                run_vertex(&mut mem, &v).unwrap();
                let got = &mem[dst.offset as usize..dst.end() as usize];
                assert_eq!(got, &want[..], "{elem:?} {kind:?} axes {axes:?}");
            }
        }
    }
}

#[test]
fn scatter_add_is_bit_identical_to_the_evaluator_per_column_block() {
    let ids = [2i64, 0, 2, 4, 2, 0];
    let (n, width_all, rows) = (ids.len(), 6usize, 5usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let upd: Vec<f32> = (0..n * width_all)
        .map(|_| rng.gen_range(-1.0f32..1.0) * 2f32.powi(rng.gen_range(-14..14)))
        .collect();
    let idx = Tensor::new(vec![n], TensorData::I64(ids.to_vec())).unwrap();
    for elem in [Elem::F32, Elem::F16] {
        let u = tensor(elem, &[n, width_all], &upd);
        let want = evaluate(Op::ScatterAdd { rows }, &[idx.clone(), u.clone()]);
        let (want_bytes, u_bytes) = (tensor_bytes(&want), tensor_bytes(&u));
        let es = elem.size() as usize;
        // Column blocks [0, 2), [2, 5), [5, 6).
        for (c0, c1) in [(0usize, 2usize), (2, 5), (5, 6)] {
            let w = c1 - c0;
            let block = |bytes: &[u8], r: usize| {
                bytes[(r * width_all + c0) * es..(r * width_all + c1) * es].to_vec()
            };
            let u_block: Vec<u8> = (0..n).flat_map(|r| block(&u_bytes, r)).collect();
            let want_block: Vec<u8> = (0..rows).flat_map(|r| block(&want_bytes, r)).collect();
            let junk = vec![0xAB; rows * w * es];
            let (mut mem, r) = layout(&[&i64_bytes(&ids), &u_block, &junk], 0);
            let v = Vertex::ScatterAdd {
                elem,
                rows: rows as u32,
                width: w as u32,
                indices: r[0],
                updates: r[1],
                dst: r[2],
            };
            run_vertex(&mut mem, &v).unwrap();
            let got = &mem[r[2].offset as usize..r[2].end() as usize];
            assert_eq!(got, &want_block[..], "{elem:?} columns {c0}..{c1}");
        }
    }
}
