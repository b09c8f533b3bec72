//! Dense host tensors: the values the reference evaluator computes and the runtime feeds
//! and returns.
//!
//! Data is row-major and stored in its element type (f16 as `half::f16`), so a tensor read
//! from a safetensors file or produced by an fp16 op keeps its exact bits.

use crate::dtype::DType;
use crate::types::{Shape, TensorType};
use half::f16;
use serde::{Deserialize, Serialize};

/// The elements of a tensor, in its element type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TensorData {
    /// binary32 elements.
    F32(Vec<f32>),
    /// binary16 elements.
    F16(Vec<f16>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Error constructing a tensor whose data does not fit its shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tensor data has {len} elements but shape {shape:?} needs {expected}")]
pub struct ShapeMismatch {
    /// Elements given.
    pub len: usize,
    /// The shape.
    pub shape: Shape,
    /// Elements the shape needs.
    pub expected: usize,
}

/// A dense row-major tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Shape,
    data: TensorData,
}

impl Tensor {
    /// A tensor from a shape and data of matching length.
    pub fn new(shape: impl Into<Shape>, data: TensorData) -> Result<Self, ShapeMismatch> {
        let shape = shape.into();
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(ShapeMismatch {
                len: data.len(),
                shape,
                expected,
            });
        }
        Ok(Tensor { shape, data })
    }

    /// An f32 tensor.
    pub fn from_f32(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Self, ShapeMismatch> {
        Tensor::new(shape, TensorData::F32(data))
    }

    /// An i64 tensor.
    pub fn from_i64(shape: impl Into<Shape>, data: Vec<i64>) -> Result<Self, ShapeMismatch> {
        Tensor::new(shape, TensorData::I64(data))
    }

    /// A tensor of zeros of the given type.
    pub fn zeros(ty: &TensorType) -> Self {
        let n = ty.num_elements();
        let data = match ty.dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![false; n]),
        };
        Tensor {
            shape: ty.shape.clone(),
            data,
        }
    }

    /// A scalar f32 tensor.
    pub fn scalar_f32(v: f32) -> Self {
        Tensor {
            shape: Vec::new(),
            data: TensorData::F32(vec![v]),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The tensor's type.
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape.clone())
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Consumes the tensor, returning shape and elements.
    pub fn into_parts(self) -> (Shape, TensorData) {
        (self.shape, self.data)
    }

    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        self.data.len()
    }

    /// The elements as f32 when the tensor is f32 (no conversion), else `None`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as i64 when the tensor is i64, else `None`.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements converted to f64 (bools as 0/1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect(),
        }
    }

    /// The elements converted to f32 (bools as 0/1).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(v) => {
                let mut out = vec![0f32; v.len()];
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&v[..], &mut out);
                out
            }
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect(),
        }
    }

    /// The tensor converted to another element type (floats round to nearest even; to i64
    /// truncates toward zero; to bool is `x != 0`).
    pub fn cast(&self, to: DType) -> Tensor {
        if to == self.dtype() {
            return self.clone();
        }
        let data = match to {
            DType::F32 => TensorData::F32(self.to_f32_vec()),
            DType::F16 => match &self.data {
                TensorData::F32(v) => {
                    let mut out = vec![f16::ZERO; v.len()];
                    half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut out[..], v);
                    TensorData::F16(out)
                }
                _ => TensorData::F16(self.to_f64_vec().into_iter().map(f16::from_f64).collect()),
            },
            DType::I64 => {
                TensorData::I64(self.to_f64_vec().into_iter().map(|x| x as i64).collect())
            }
            DType::Bool => {
                TensorData::Bool(self.to_f64_vec().into_iter().map(|x| x != 0.0).collect())
            }
        };
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// The same elements with another shape of equal element count.
    pub fn reshape(self, shape: impl Into<Shape>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, self.data)
    }

    /// Max abs difference to `other` divided by `other`'s max abs value (the comparison
    /// used against the Hugging Face fixtures); `None` when shapes differ.
    pub fn rel_max_err(&self, reference: &Tensor) -> Option<f64> {
        if self.shape != reference.shape {
            return None;
        }
        let a = self.to_f64_vec();
        let b = reference.to_f64_vec();
        let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
        let diff = a.iter().zip(&b).fold(0f64, |m, (x, y)| {
            if (x - y).is_nan() {
                f64::INFINITY
            } else {
                m.max((x - y).abs())
            }
        });
        Some(if scale > 0.0 { diff / scale } else { diff })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_and_cast() {
        let t = Tensor::from_f32(vec![2, 2], vec![1.0, 2.5, -3.0, 0.1]).unwrap();
        let h = t.cast(DType::F16);
        assert_eq!(h.dtype(), DType::F16);
        assert_eq!(h.cast(DType::F32).as_f32().unwrap()[1], 2.5);
        assert!(Tensor::from_f32(vec![3], vec![1.0]).is_err());
        assert_eq!(t.rel_max_err(&t), Some(0.0));
    }
}
