//! Conversion between safetensors' little-endian byte views and [`Tensor`]s.
//!
//! Loading widens or narrows the foreign element types (F64 -> f32 rounding to nearest
//! even, BF16 -> f32, I32 -> i64, both exact); BOOL bytes must be 0 or 1.

use super::IoError;
use crate::tensor::{Tensor, TensorData};
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, View};
use std::borrow::Cow;

/// Little-endian words of `W` bytes (the caller checked that the length is a multiple).
fn words<const W: usize>(data: &[u8]) -> impl Iterator<Item = [u8; W]> + '_ {
    data.chunks_exact(W).map(|c| {
        let mut w = [0u8; W];
        w.copy_from_slice(c);
        w
    })
}

/// The tensor held by a safetensors view.
pub(super) fn decode(view: &TensorView<'_>, name: &str, file: &str) -> Result<Tensor, IoError> {
    let dtype = view.dtype();
    let shape = view.shape().to_vec();
    let data = view.data();
    let count: usize = shape.iter().product();
    let expected = count.saturating_mul(dtype.size());
    if data.len() != expected {
        return Err(IoError::LengthMismatch {
            file: file.to_string(),
            tensor: name.to_string(),
            expected,
            actual: data.len(),
        });
    }
    let values = match dtype {
        Dtype::F32 => TensorData::F32(words::<4>(data).map(f32::from_le_bytes).collect()),
        Dtype::F16 => TensorData::F16(
            words::<2>(data)
                .map(|w| f16::from_bits(u16::from_le_bytes(w)))
                .collect(),
        ),
        Dtype::BF16 => TensorData::F32(
            words::<2>(data)
                .map(|w| bf16::from_bits(u16::from_le_bytes(w)).to_f32())
                .collect(),
        ),
        Dtype::F64 => TensorData::F32(
            words::<8>(data)
                .map(|w| f64::from_le_bytes(w) as f32)
                .collect(),
        ),
        Dtype::I64 => TensorData::I64(words::<8>(data).map(i64::from_le_bytes).collect()),
        Dtype::I32 => TensorData::I64(
            words::<4>(data)
                .map(|w| i64::from(i32::from_le_bytes(w)))
                .collect(),
        ),
        Dtype::BOOL => {
            let mut v = Vec::with_capacity(data.len());
            for (i, &b) in data.iter().enumerate() {
                match b {
                    0 => v.push(false),
                    1 => v.push(true),
                    _ => {
                        return Err(IoError::BadTensor {
                            file: file.to_string(),
                            tensor: name.to_string(),
                            detail: format!("BOOL element {i} is byte {b}, not 0 or 1"),
                        })
                    }
                }
            }
            TensorData::Bool(v)
        }
        other => {
            return Err(IoError::UnsupportedDtype {
                file: file.to_string(),
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    };
    Tensor::new(shape, values).map_err(|e| IoError::BadTensor {
        file: file.to_string(),
        tensor: name.to_string(),
        detail: e.to_string(),
    })
}

/// A tensor serialised to little-endian bytes, ready for `safetensors::serialize`.
pub(super) struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The safetensors encoding of a tensor.
pub(super) fn encode(t: &Tensor) -> Encoded {
    let (dtype, bytes) = match t.data() {
        TensorData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::F16(v) => (
            Dtype::F16,
            v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        ),
        TensorData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::Bool(v) => (Dtype::BOOL, v.iter().map(|&b| u8::from(b)).collect()),
    };
    Encoded {
        dtype,
        shape: t.shape().to_vec(),
        bytes,
    }
}

impl View for Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}
