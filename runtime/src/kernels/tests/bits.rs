//! Softmax and layer norm vertices are bit-identical to `tessera_ir::eval::evaluate` running
//! the same op on a one-node graph, for f32 and f16 data.

use super::*;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use tessera_ir::{Graph, Op, Tensor, TensorData};

/// Evaluates `op` on graph inputs fed with `args` through the reference evaluator.
pub(super) fn evaluate(op: Op, args: &[Tensor]) -> Tensor {
    let mut g = Graph::new("t");
    let mut feeds = HashMap::new();
    let mut ids = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let name = format!("x{i}");
        ids.push(g.input(&name, a.ty()).unwrap());
        feeds.insert(name, a.clone());
    }
    let y = g.add(op, &ids, "t.op").unwrap();
    g.set_output("y", y).unwrap();
    let mut out = tessera_ir::eval::evaluate(&g, &feeds, &HashMap::new()).unwrap();
    out.remove("y").unwrap()
}

/// A tensor of `elem` holding `v` (rounded to f16 for f16).
pub(super) fn tensor(elem: Elem, shape: &[usize], v: &[f32]) -> Tensor {
    match elem {
        Elem::F32 => Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap(),
        _ => {
            let h = v.iter().map(|&x| f16::from_f32(x)).collect();
            Tensor::new(shape.to_vec(), TensorData::F16(h)).unwrap()
        }
    }
}

/// The little-endian bytes of a float tensor.
pub(super) fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    match t.data() {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        other => panic!("not a float tensor: {other:?}"),
    }
}

/// Rows of varied scale, including a row of large values, a constant row and a NaN.
fn data(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..rows * cols)
        .map(|i| rng.gen_range(-4.0f32..4.0) * (1 + i / cols) as f32)
        .collect();
    v[cols..2 * cols].iter_mut().for_each(|x| *x = 1.5);
    v[2 * cols + 1] = f32::NAN;
    v[3 * cols] = 60000.0;
    v
}

#[test]
fn softmax_is_bit_identical_to_the_evaluator() {
    let (rows, cols) = (5, 7);
    for elem in [Elem::F32, Elem::F16] {
        let x = tensor(elem, &[rows, cols], &data(rows, cols, 3));
        let want = tensor_bytes(&evaluate(Op::Softmax, std::slice::from_ref(&x)));
        let len = want.len() as u32;
        for in_place in [false, true] {
            let mut mem = mem_with(8, &tensor_bytes(&x), 2 * len as usize + 8);
            let dst = if in_place {
                Region::new(8, len)
            } else {
                Region::new(8 + len, len)
            };
            let v = Vertex::Softmax {
                elem,
                cols: cols as u32,
                src: Region::new(8, len),
                dst,
            };
            run_vertex(&mut mem, &v).unwrap();
            let got = &mem[dst.offset as usize..dst.end() as usize];
            assert_eq!(got, want.as_slice(), "{elem:?} in place {in_place}");
        }
    }
}

#[test]
fn layer_norm_is_bit_identical_to_the_evaluator() {
    let (rows, cols) = (4, 6);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let g: Vec<f32> = (0..cols).map(|_| rng.gen_range(0.5f32..1.5)).collect();
    let b: Vec<f32> = (0..cols).map(|_| rng.gen_range(-0.5f32..0.5)).collect();
    for (elem, eps) in [(Elem::F32, 1e-12), (Elem::F16, 1e-5), (Elem::F32, 0.25)] {
        let x = tensor(elem, &[rows, cols], &data(rows, cols, 9));
        let (gt, bt) = (tensor(elem, &[cols], &g), tensor(elem, &[cols], &b));
        let args = [x.clone(), gt.clone(), bt.clone()];
        let want = tensor_bytes(&evaluate(Op::LayerNorm { eps }, &args));
        let (xl, gl) = (want.len() as u32, cols as u32 * elem.size());
        let bytes = [tensor_bytes(&gt), tensor_bytes(&bt), tensor_bytes(&x)].concat();
        for in_place in [false, true] {
            let mut mem = mem_with(0, &bytes, (2 * gl + 2 * xl) as usize);
            let x_r = Region::new(2 * gl, xl);
            let dst = if in_place {
                x_r
            } else {
                Region::new(2 * gl + xl, xl)
            };
            let v = Vertex::LayerNorm {
                elem,
                cols: cols as u32,
                eps,
                x: x_r,
                gamma: Region::new(0, gl),
                beta: Region::new(gl, gl),
                dst,
            };
            run_vertex(&mut mem, &v).unwrap();
            let got = &mem[dst.offset as usize..dst.end() as usize];
            assert_eq!(
                got,
                want.as_slice(),
                "{elem:?} eps {eps} in place {in_place}"
            );
        }
    }
}

#[test]
fn layer_norm_matches_hand_computation() {
    // Row [0, 2, 4, 6]: mean 3, biased variance (9 + 1 + 1 + 9) / 4 = 5; eps 11 makes the
    // denominator sqrt(16) = 4, so the normalised row is [-0.75, -0.25, 0.25, 0.75].
    let x = f32_bytes(&[0.0, 2.0, 4.0, 6.0]);
    let g = f32_bytes(&[1.0, 2.0, 4.0, -1.0]);
    let b = f32_bytes(&[0.0, 1.0, 0.0, 0.5]);
    let mut mem = mem_with(0, &[x, g, b].concat(), 64);
    let v = Vertex::LayerNorm {
        elem: Elem::F32,
        cols: 4,
        eps: 11.0,
        x: Region::new(0, 16),
        gamma: Region::new(16, 16),
        beta: Region::new(32, 16),
        dst: Region::new(48, 16),
    };
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(from_f32_bytes(&mem[48..64]), [-0.75, 0.5, 1.0, -0.25]);
}
