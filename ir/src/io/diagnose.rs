//! Turns `safetensors` parse errors into [`IoError`]s that name the file and the tensor.
//!
//! The crate reports, e.g., "invalid tensor info" without saying which tensor; on such an
//! error the header JSON is re-read here to find the culprit. This runs only on failure.

use super::IoError;
use safetensors::{Dtype, SafeTensorError};
use serde_json::{Map, Value};

/// Header lengths above this are rejected by the `safetensors` crate.
const MAX_HEADER: u64 = 100_000_000;

/// The header's length field, checked against the file size.
pub(super) fn check_header_bounds(bytes: &[u8], file: &str) -> Result<usize, IoError> {
    let truncated = |detail: String| IoError::Truncated {
        file: file.to_string(),
        detail,
    };
    let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(truncated(format!(
            "{} bytes, less than the 8-byte header length",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(*len_bytes);
    if n > MAX_HEADER {
        return Err(IoError::CorruptHeader {
            file: file.to_string(),
            detail: format!("header length {n} exceeds the {MAX_HEADER}-byte limit"),
        });
    }
    match usize::try_from(n) {
        Ok(n) if n <= rest.len() => Ok(n),
        _ => Err(truncated(format!(
            "header of {n} bytes announced, {} bytes follow",
            rest.len()
        ))),
    }
}

/// The header JSON as an object, if it parses as one.
fn header_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let n = bytes
        .split_first_chunk::<8>()
        .and_then(|(len, _)| usize::try_from(u64::from_le_bytes(*len)).ok())
        .ok_or("no header length")?;
    let text = bytes
        .get(8..8 + n)
        .ok_or("header past the end of the file")?;
    let text = std::str::from_utf8(text).map_err(|e| format!("header is not UTF-8: {e}"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("header is not a JSON object".into()),
        Err(e) => Err(format!("header is not JSON: {e}")),
    }
}

/// One tensor entry of the header: dtype, element count and byte range.
struct Entry {
    name: String,
    dtype: Dtype,
    count: Option<usize>,
    offsets: (usize, usize),
}

/// Every tensor entry, or the first problem found in the header, naming its tensor.
fn entries(map: &Map<String, Value>, file: &str) -> Result<Vec<Entry>, IoError> {
    let corrupt = |detail: String| IoError::CorruptHeader {
        file: file.to_string(),
        detail,
    };
    let mut out = Vec::new();
    for (name, v) in map.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let dtype_name = v.get("dtype").and_then(Value::as_str).unwrap_or("?");
        let dtype: Dtype =
            serde_json::from_value(Value::String(dtype_name.into())).map_err(|_| {
                IoError::UnsupportedDtype {
                    file: file.to_string(),
                    tensor: name.clone(),
                    dtype: dtype_name.to_string(),
                }
            })?;
        let shape: Option<Vec<usize>> = v
            .get("shape")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let offsets: Option<(usize, usize)> = v
            .get("data_offsets")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let (Some(shape), Some(offsets)) = (shape, offsets) else {
            return Err(corrupt(format!(
                "tensor `{name}` needs a `shape` of sizes and two `data_offsets`"
            )));
        };
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        out.push(Entry {
            name: name.clone(),
            dtype,
            count,
            offsets,
        });
    }
    out.sort_by_key(|e| e.offsets);
    Ok(out)
}

/// The first tensor whose byte range disagrees with its shape and dtype, or which does
/// not start where the previous one ends, or which ends past `data_len`.
fn misfit(entries: &[Entry], data_len: usize, file: &str) -> Option<IoError> {
    let mut start = 0;
    for e in entries {
        let (s, t) = e.offsets;
        let bad = |detail: String| IoError::BadTensor {
            file: file.to_string(),
            tensor: e.name.clone(),
            detail,
        };
        if s != start || t < s {
            return Some(bad(format!(
                "data offsets [{s}, {t}] do not follow the previous tensor's end {start}"
            )));
        }
        let Some(expected) = e.count.and_then(|c| c.checked_mul(e.dtype.size())) else {
            return Some(bad("shape overflows".into()));
        };
        if t - s != expected {
            return Some(IoError::LengthMismatch {
                file: file.to_string(),
                tensor: e.name.clone(),
                expected,
                actual: t - s,
            });
        }
        if t > data_len {
            return Some(IoError::Truncated {
                file: file.to_string(),
                detail: format!(
                    "tensor `{}` ends at data byte {t}, the data section has {data_len}",
                    e.name
                ),
            });
        }
        start = t;
    }
    (start != data_len).then(|| IoError::Format {
        file: file.to_string(),
        detail: format!("{} bytes after the last tensor", data_len - start),
    })
}

/// An [`IoError`] for a `safetensors` parse error of `bytes`.
pub(super) fn explain(bytes: &[u8], file: &str, err: SafeTensorError) -> IoError {
    let map = match header_object(bytes) {
        Ok(m) => m,
        Err(detail) => {
            return IoError::CorruptHeader {
                file: file.to_string(),
                detail,
            }
        }
    };
    let entries = match entries(&map, file) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let header_len = check_header_bounds(bytes, file).unwrap_or(0);
    let data_len = bytes.len().saturating_sub(8 + header_len);
    misfit(&entries, data_len, file).unwrap_or_else(|| IoError::Format {
        file: file.to_string(),
        detail: err.to_string(),
    })
}
