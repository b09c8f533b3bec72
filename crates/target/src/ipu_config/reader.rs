//! Taking typed values out of a parsed `ipu_config.json` object, one key at a time.
//!
//! Each getter removes its key (so that what is left over can be reported), treats `null` as
//! absent, and on a wrong type or range returns an error naming the key, the value found and
//! the line the key is on.

use serde_json::{Map, Value};

use super::{MatmulProportion, OutputMode};
use crate::IpuConfigError;

/// The 1-based line of the first `"key":` in `text`, if any.
pub(super) fn key_line(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(found) = text[from..].find(&needle) {
        let at = from + found;
        from = at + needle.len();
        if text[from..].trim_start().starts_with(':') {
            return Some(text[..at].matches('\n').count() + 1);
        }
    }
    None
}

/// A short rendering of a value for messages.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

/// The object being read, and where it came from.
pub(super) struct Reader<'a> {
    /// The file name, or `<string>`.
    pub(super) origin: &'a str,
    /// The whole text, to find keys' lines in.
    pub(super) text: &'a str,
    /// The keys not taken yet.
    pub(super) map: Map<String, Value>,
}

impl Reader<'_> {
    /// An error about `key`'s value, located at the key's line.
    pub(super) fn invalid(&self, key: &str, reason: String) -> IpuConfigError {
        IpuConfigError::InvalidValue {
            origin: self.origin.to_string(),
            key: key.to_string(),
            line: key_line(self.text, key),
            reason,
        }
    }

    /// Removes `key`; `None` if it is absent or null.
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// An integer ≥ `min`.
    pub(super) fn unsigned(&mut self, key: &str, min: u64) -> Result<Option<u64>, IpuConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        match v.as_u64().filter(|n| *n >= min) {
            Some(n) => Ok(Some(n)),
            None => Err(self.invalid(
                key,
                format!("must be an integer ≥ {min}, found {}", shown(&v)),
            )),
        }
    }

    /// An integer ≥ `min` that fits a `usize`.
    pub(super) fn count(&mut self, key: &str, min: u64) -> Result<Option<usize>, IpuConfigError> {
        match self.unsigned(key, min)?.map(usize::try_from) {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(self.invalid(key, "does not fit this machine's word size".into())),
        }
    }

    /// `true` or `false`.
    pub(super) fn flag(&mut self, key: &str) -> Result<Option<bool>, IpuConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => {
                Err(self.invalid(key, format!("must be true or false, found {}", shown(&v))))
            }
        }
    }

    /// A string.
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, IpuConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.invalid(key, format!("must be a string, found {}", shown(&v)))),
        }
    }

    /// Any JSON number.
    pub(super) fn number(&mut self, key: &str) -> Result<Option<f64>, IpuConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        match v.as_f64() {
            Some(x) => Ok(Some(x)),
            None => Err(self.invalid(key, format!("must be a number, found {}", shown(&v)))),
        }
    }

    /// A number or a list of numbers (ranges are checked by `validate`).
    pub(super) fn proportion(
        &mut self,
        key: &str,
    ) -> Result<Option<MatmulProportion>, IpuConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        if let Some(x) = v.as_f64() {
            return Ok(Some(MatmulProportion::All(x)));
        }
        let list = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_f64).collect());
        match list {
            Some(list) => Ok(Some(MatmulProportion::PerIpu(list))),
            None => Err(self.invalid(
                key,
                format!("must be a number or a list of numbers, found {}", shown(&v)),
            )),
        }
    }

    /// A list of integers each ≥ `min`.
    pub(super) fn ints(&mut self, key: &str, min: i64) -> Result<Option<Vec<i64>>, IpuConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let list: Option<Vec<i64>> = v
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_i64().filter(|n| *n >= min)).collect());
        match list {
            Some(list) if !list.is_empty() => Ok(Some(list)),
            _ => {
                let what = if min < 0 {
                    "a non-empty list of integers ≥ -1 (-1 = fill)".to_string()
                } else {
                    format!("a non-empty list of integers ≥ {min}")
                };
                Err(self.invalid(key, format!("must be {what}, found {}", shown(&v))))
            }
        }
    }

    /// A non-empty list of integers ≥ 0.
    pub(super) fn splits(&mut self, key: &str) -> Result<Option<Vec<usize>>, IpuConfigError> {
        let Some(list) = self.ints(key, 0)? else {
            return Ok(None);
        };
        match list.into_iter().map(usize::try_from).collect() {
            Ok(list) => Ok(Some(list)),
            Err(_) => Err(self.invalid(key, "does not fit this machine's word size".into())),
        }
    }

    /// One of PopTorch's output modes.
    pub(super) fn output_mode(&mut self, key: &str) -> Result<Option<OutputMode>, IpuConfigError> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        match v.as_str() {
            Some("all") => Ok(Some(OutputMode::All)),
            Some("sum") => Ok(Some(OutputMode::Sum)),
            Some("final") => Ok(Some(OutputMode::Final)),
            Some("default") => Ok(Some(OutputMode::Default)),
            _ => Err(self.invalid(
                key,
                format!(
                    "must be one of \"all\", \"sum\", \"final\", \"default\", found {}",
                    shown(&v)
                ),
            )),
        }
    }

    /// `matmul_proportion`, or its alias `available_memory_proportion`, but not both.
    pub(super) fn matmul_proportion(&mut self) -> Result<Option<MatmulProportion>, IpuConfigError> {
        let main = self.proportion("matmul_proportion")?;
        let alias = self.proportion("available_memory_proportion")?;
        match (main, alias) {
            (Some(_), Some(_)) => Err(IpuConfigError::Conflict {
                origin: self.origin.to_string(),
                keys: vec![
                    "matmul_proportion".into(),
                    "available_memory_proportion".into(),
                ],
                reason: "the second is an alias of the first; give only one".into(),
            }),
            (main, alias) => Ok(main.or(alias)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_finds_keys_not_values() {
        let text = "{\n  \"a\": \"seed\",\n  \"seed\" : 4\n}";
        assert_eq!(key_line(text, "seed"), Some(3));
        assert_eq!(key_line(text, "a"), Some(2));
        assert_eq!(key_line(text, "b"), None);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let v = Value::String("x".repeat(100));
        let s = shown(&v);
        assert_eq!(s.chars().count(), 61);
        assert!(s.ends_with('…'));
    }
}
