//! Safetensors I/O for [`Tensor`]s: load checkpoints and fixtures, save results atomically.
//!
//! Element types: `F32`, `F16`, `I64` and `BOOL` load as themselves. Three others are
//! converted on load, because Hugging Face files use them: `F64` to f32 (rounded to nearest
//! even; the fixtures' `*_f64` files), `BF16` to f32 (exact) and `I32` to i64 (exact).
//! Anything else is an [`IoError::UnsupportedDtype`] naming the file and the tensor. Saving
//! writes the four IR element types natively.
//!
//! Parsing and layout validation are the `safetensors` crate's; its errors do not say which
//! tensor is at fault, so on failure the header is re-read here to name it
//! (module `diagnose`). Every error names the file (the path, or the `source` label given to
//! [`read_safetensors_bytes`]), and the tensor when one is at fault. Files are written
//! through [`write_atomic`]: a temporary file in the same directory, fsynced, then renamed
//! over the target, so a failed run never leaves a half-written file.

mod atomic;
mod convert;
mod diagnose;

#[cfg(test)]
mod tests;

pub use atomic::{write_atomic, write_atomic_with};

use crate::tensor::Tensor;
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An error reading or writing tensors.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// An operating-system error.
    #[error("{}: {action} failed: {source}", path.display())]
    Os {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`reading`, `creating a temporary file in`, ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends before the header or the tensor data it announces.
    #[error("{file}: truncated safetensors file: {detail}")]
    Truncated {
        /// The file.
        file: String,
        /// What is missing.
        detail: String,
    },
    /// The header is not valid safetensors JSON.
    #[error("{file}: corrupt safetensors header: {detail}")]
    CorruptHeader {
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// A tensor's byte range does not match its shape and element type.
    #[error(
        "{file}: tensor `{tensor}` has {actual} bytes of data, its shape and dtype need {expected}"
    )]
    LengthMismatch {
        /// The file.
        file: String,
        /// The tensor.
        tensor: String,
        /// Bytes its dtype and shape need.
        expected: usize,
        /// Bytes its offsets give it.
        actual: usize,
    },
    /// A tensor's data is malformed (offsets out of order, invalid bool bytes).
    #[error("{file}: tensor `{tensor}`: {detail}")]
    BadTensor {
        /// The file.
        file: String,
        /// The tensor.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// A tensor's element type cannot be loaded.
    #[error("{file}: tensor `{tensor}` has unsupported dtype {dtype} (supported: F32, F16, I64, BOOL; F64, BF16, I32 converted)")]
    UnsupportedDtype {
        /// The file.
        file: String,
        /// The tensor.
        tensor: String,
        /// The dtype's safetensors name.
        dtype: String,
    },
    /// Any other malformation of the file.
    #[error("{file}: invalid safetensors file: {detail}")]
    Format {
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
}

/// Loads every tensor of a safetensors file, by name.
pub fn load_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor>, IoError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            IoError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            IoError::Os {
                path: path.to_path_buf(),
                action: "reading",
                source,
            }
        }
    })?;
    read_safetensors_bytes(&bytes, &path.display().to_string())
}

/// Reads every tensor of an in-memory safetensors file; `source` names it in errors.
pub fn read_safetensors_bytes(
    bytes: &[u8],
    source: &str,
) -> Result<BTreeMap<String, Tensor>, IoError> {
    diagnose::check_header_bounds(bytes, source)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| diagnose::explain(bytes, source, e))?;
    st.iter()
        .map(|(name, view)| Ok((name.to_string(), convert::decode(&view, name, source)?)))
        .collect()
}

/// Saves tensors as a safetensors file, atomically (see [`write_atomic`]).
pub fn save_safetensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<(), IoError> {
    let encoded = tensors
        .iter()
        .map(|(name, t)| (name.as_str(), convert::encode(t)));
    let bytes = safetensors::serialize(encoded, &None).map_err(|e| IoError::Format {
        file: path.display().to_string(),
        detail: format!("cannot serialise: {e}"),
    })?;
    write_atomic(path, &bytes)
}
