//! Elementwise kernels: unary functions, binary arithmetic, comparisons and select, with
//! NumPy broadcasting.
//!
//! Float operands are read as f32 and results rounded to the result type (see
//! [`super::values`]); the scalar semantics live in [`super::math`]. i64 arithmetic is
//! checked: overflow and division by zero are errors, and division truncates toward zero.

use super::accum::compare_values;
use super::error::KernelError;
use super::math::{binary_f32, unary_f32};
use super::strided::{broadcast_strides, for_each_offset};
use super::values::{dispatch, elems, floats, from_floats, make, Elem};
use crate::dtype::DType;
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::tensor::{Tensor, TensorData};

/// A unary function applied to every element.
pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor, KernelError> {
    let v = floats(x)?;
    let out = v.iter().map(|&e| unary_f32(op, e)).collect();
    from_floats(x.shape(), x.dtype(), out)
}

fn out_of_bounds() -> KernelError {
    KernelError::Internal("broadcast read past the end of an operand".into())
}

/// `f(a, b)` for every element of the broadcast shape `out`.
fn zip_broadcast<A: Copy, B: Copy, O>(
    (a, a_shape): (&[A], &[usize]),
    (b, b_shape): (&[B], &[usize]),
    out: &[usize],
    mut f: impl FnMut(A, B) -> Result<O, KernelError>,
) -> Result<Vec<O>, KernelError> {
    let n: usize = out.iter().product();
    let mut res = Vec::with_capacity(n);
    if a_shape == out && b_shape == out {
        for (&x, &y) in a.iter().zip(b) {
            res.push(f(x, y)?);
        }
    } else {
        let (sa, sb) = (
            broadcast_strides(a_shape, out),
            broadcast_strides(b_shape, out),
        );
        let mut failure = None;
        for_each_offset(out, [&sa, &sb], |[i, j]| {
            if failure.is_some() {
                return;
            }
            match (a.get(i), b.get(j)) {
                (Some(&x), Some(&y)) => match f(x, y) {
                    Ok(v) => res.push(v),
                    Err(e) => failure = Some(e),
                },
                _ => failure = Some(out_of_bounds()),
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    if res.len() != n {
        return Err(out_of_bounds());
    }
    Ok(res)
}

fn checked_i64(op: BinaryOp, a: i64, b: i64) -> Result<i64, KernelError> {
    let r = match op {
        BinaryOp::Add => a.checked_add(b),
        BinaryOp::Sub => a.checked_sub(b),
        BinaryOp::Mul => a.checked_mul(b),
        BinaryOp::Div if b == 0 => return Err(KernelError::DivisionByZero { lhs: a }),
        BinaryOp::Div => a.checked_div(b),
        BinaryOp::Max => Some(a.max(b)),
        BinaryOp::Min => Some(a.min(b)),
        BinaryOp::Pow => {
            return Err(KernelError::Internal("pow on i64 operands".into()));
        }
    };
    r.ok_or(KernelError::IntegerOverflow {
        op: op.name(),
        lhs: a,
        rhs: b,
    })
}

/// A binary op with broadcasting to the result shape `out`.
pub(crate) fn binary(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<Tensor, KernelError> {
    match a.dtype() {
        DType::I64 => {
            let v = zip_broadcast(
                (elems::<i64>(a)?, a.shape()),
                (elems::<i64>(b)?, b.shape()),
                out,
                |x, y| checked_i64(op, x, y),
            )?;
            make(out, TensorData::I64(v))
        }
        dtype => {
            let (fa, fb) = (floats(a)?, floats(b)?);
            let v = zip_broadcast((&fa, a.shape()), (&fb, b.shape()), out, |x, y| {
                Ok(binary_f32(op, x, y))
            })?;
            from_floats(out, dtype, v)
        }
    }
}

fn compare_t<T: Elem>(
    op: CmpOp,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<Vec<bool>, KernelError> {
    zip_broadcast(
        (elems::<T>(a)?, a.shape()),
        (elems::<T>(b)?, b.shape()),
        out,
        |x, y| Ok(compare_values(op, x, y)),
    )
}

/// A comparison with broadcasting; f16 values compare exactly (as their f32 widening).
pub(crate) fn compare(
    op: CmpOp,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let v = dispatch!(a.dtype(), compare_t(op, a, b, out))?;
    make(out, TensorData::Bool(v))
}

fn select_t<T: Elem>(
    cond: &Tensor,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<TensorData, KernelError> {
    let (c, x, y) = (elems::<bool>(cond)?, elems::<T>(a)?, elems::<T>(b)?);
    let sc = broadcast_strides(cond.shape(), out);
    let sa = broadcast_strides(a.shape(), out);
    let sb = broadcast_strides(b.shape(), out);
    let mut res = Vec::with_capacity(out.iter().product());
    let mut bad = false;
    for_each_offset(out, [&sc, &sa, &sb], |[i, j, k]| {
        let v = match c.get(i) {
            Some(true) => x.get(j),
            Some(false) => y.get(k),
            None => None,
        };
        match v {
            Some(&v) => res.push(v),
            None => bad = true,
        }
    })?;
    if bad {
        return Err(out_of_bounds());
    }
    Ok(T::wrap(res))
}

/// `select(cond, a, b)` with all three operands broadcast to `out`.
pub(crate) fn select(
    cond: &Tensor,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<Tensor, KernelError> {
    let data = dispatch!(a.dtype(), select_t(cond, a, b, out))?;
    make(out, data)
}
