//! Typed access to tensor elements for the kernels.
//!
//! [`Elem`] lets layout kernels (transpose, slice, gather, ...) be written once, generic over
//! the element type, and [`dispatch!`] picks the instance from a [`DType`]. Floating-point
//! kernels read f32 and f16 operands uniformly as f32 ([`floats`]) and produce their result
//! with [`from_floats`], which rounds to f16 (nearest even) when the result is f16: that is
//! the "compute each element in f32, round the result to f16" rule. [`Acc`] is the
//! accumulator type of reductions: f64 for f32 data, f32 for f16 data.

use super::error::KernelError;
use crate::dtype::DType;
use crate::tensor::{Tensor, TensorData};
use half::f16;
use std::borrow::Cow;
use std::ops::{Add, Div, Mul, Sub};

/// An element type of [`TensorData`].
pub(crate) trait Elem: Copy + Default + PartialOrd + 'static {
    /// The elements of `d` when it holds this type.
    fn slice(d: &TensorData) -> Option<&[Self]>;
    /// Wraps elements of this type.
    fn wrap(v: Vec<Self>) -> TensorData;
}

macro_rules! impl_elem {
    ($t:ty, $variant:ident) => {
        impl Elem for $t {
            fn slice(d: &TensorData) -> Option<&[Self]> {
                match d {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> TensorData {
                TensorData::$variant(v)
            }
        }
    };
}
impl_elem!(f32, F32);
impl_elem!(f16, F16);
impl_elem!(i64, I64);
impl_elem!(bool, Bool);

/// Calls a function generic over [`Elem`] with the instance for a [`DType`]:
/// `dispatch!(dtype, kernel(args...))`.
macro_rules! dispatch {
    ($dtype:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $dtype {
            $crate::dtype::DType::F32 => $f::<f32>($($arg),*),
            $crate::dtype::DType::F16 => $f::<half::f16>($($arg),*),
            $crate::dtype::DType::I64 => $f::<i64>($($arg),*),
            $crate::dtype::DType::Bool => $f::<bool>($($arg),*),
        }
    };
}
pub(crate) use dispatch;

/// The elements of `t` as `T`, or an internal error when `t` holds another type.
pub(crate) fn elems<T: Elem>(t: &Tensor) -> Result<&[T], KernelError> {
    T::slice(t.data()).ok_or_else(|| {
        KernelError::Internal(format!("operand of type {} read as another type", t.ty()))
    })
}

/// A tensor of `shape` from elements, checking the count.
pub(crate) fn make(shape: &[usize], data: TensorData) -> Result<Tensor, KernelError> {
    Tensor::new(shape.to_vec(), data).map_err(|e| KernelError::Internal(e.to_string()))
}

/// The elements of a floating-point tensor as f32 (borrowed for f32, widened for f16).
pub(crate) fn floats(t: &Tensor) -> Result<Cow<'_, [f32]>, KernelError> {
    match t.data() {
        TensorData::F32(v) => Ok(Cow::Borrowed(v)),
        TensorData::F16(_) => Ok(Cow::Owned(t.to_f32_vec())),
        _ => Err(KernelError::Internal(format!(
            "floating-point kernel got a {} operand",
            t.ty()
        ))),
    }
}

/// Rounds an f32 value to f16 precision and back (nearest even).
pub(crate) fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// A floating-point result of `dtype` from f32 values (rounded to nearest even for f16).
pub(crate) fn from_floats(
    shape: &[usize],
    dtype: DType,
    v: Vec<f32>,
) -> Result<Tensor, KernelError> {
    let data = match dtype {
        DType::F32 => TensorData::F32(v),
        DType::F16 => {
            let mut out = vec![f16::ZERO; v.len()];
            half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut out[..], &v);
            TensorData::F16(out)
        }
        other => {
            return Err(KernelError::Internal(format!(
                "floating-point kernel asked for a {other} result"
            )))
        }
    };
    make(shape, data)
}

/// Accumulator arithmetic for sums and statistics: f64 for f32 data, f32 for f16 data.
pub(crate) trait Acc:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    /// Zero.
    const ZERO: Self;
    /// Widens an f32 value.
    fn of(x: f32) -> Self;
    /// Narrows or keeps an f64 constant.
    fn of_f64(x: f64) -> Self;
    /// A count as an accumulator value.
    fn of_count(n: usize) -> Self;
    /// Rounds to f32.
    fn to_f32(self) -> f32;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
}

impl Acc for f64 {
    const ZERO: Self = 0.0;
    fn of(x: f32) -> Self {
        f64::from(x)
    }
    fn of_f64(x: f64) -> Self {
        x
    }
    fn of_count(n: usize) -> Self {
        n as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

impl Acc for f32 {
    const ZERO: Self = 0.0;
    fn of(x: f32) -> Self {
        x
    }
    fn of_f64(x: f64) -> Self {
        x as f32
    }
    fn of_count(n: usize) -> Self {
        n as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

/// Calls a function generic over [`Acc`] with the accumulator for a float dtype:
/// `with_acc!(dtype, kernel(args...))` (f64 for f32, f32 for f16).
macro_rules! with_acc {
    ($dtype:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $dtype {
            $crate::dtype::DType::F16 => $f::<f32>($($arg),*),
            _ => $f::<f64>($($arg),*),
        }
    };
}
pub(crate) use with_acc;
