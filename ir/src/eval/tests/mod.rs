//! Tests of the evaluator, by area. Most build a one-op graph (`run_op`) and compare the
//! result with values written out by hand or computed by an independent formula in the test.

mod driver;
mod elementwise;
mod index;
mod layout;
mod matmul;
mod reduce;
mod stochastic;

use super::{evaluate, EvalError};
use crate::dtype::DType;
use crate::graph::Graph;
use crate::op::Op;
use crate::tensor::{Tensor, TensorData};
use half::f16;
use std::collections::HashMap;

/// An f32 tensor.
pub(super) fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
}

/// An f16 tensor from values that are exactly representable in f16.
pub(super) fn f16s(shape: &[usize], v: &[f32]) -> Tensor {
    let h: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
    assert!(h.iter().zip(v).all(|(a, &b)| a.to_f32() == b), "{v:?}");
    Tensor::new(shape.to_vec(), TensorData::F16(h)).unwrap()
}

/// An i64 tensor.
pub(super) fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
}

/// A bool tensor.
pub(super) fn bools(shape: &[usize], v: &[bool]) -> Tensor {
    Tensor::new(shape.to_vec(), TensorData::Bool(v.to_vec())).unwrap()
}

/// Evaluates `op` applied to graph inputs `x0, x1, ...` fed with `args`.
pub(super) fn run_op(op: Op, args: &[Tensor]) -> Result<Tensor, EvalError> {
    let mut g = Graph::new("t");
    let mut feeds = HashMap::new();
    let mut ids = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let name = format!("x{i}");
        ids.push(g.input(&name, a.ty()).unwrap());
        feeds.insert(name, a.clone());
    }
    let y = g.add(op, &ids, "m.op").unwrap();
    g.set_output("y", y).unwrap();
    let mut out = evaluate(&g, &feeds, &HashMap::new())?;
    Ok(out.remove("y").unwrap())
}

/// `run_op` that must succeed.
pub(super) fn run(op: Op, args: &[Tensor]) -> Tensor {
    run_op(op, args).unwrap()
}

/// Asserts shape, dtype, and every element within `tol` of `want` (NaN matches NaN).
pub(super) fn assert_close(got: &Tensor, dtype: DType, shape: &[usize], want: &[f64], tol: f64) {
    assert_eq!(got.dtype(), dtype, "dtype");
    assert_eq!(got.shape(), shape, "shape");
    let g = got.to_f64_vec();
    assert_eq!(g.len(), want.len());
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol;
        assert!(ok, "element {i}: got {a}, want {b} (tol {tol})\n{g:?}");
    }
}
