//! Errors of loading and checking target descriptions and IPU configurations.
//!
//! Every error says where it comes from: the file (or `<string>` / the preset name), the line
//! and column for malformed JSON, and the field or key whose value is wrong, so that a user
//! can fix the input without reading Tessera's code.

use std::path::PathBuf;

/// Renders `origin` or `origin:line`.
fn located(origin: &str, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{origin}:{line}"),
        None => origin.to_string(),
    }
}

/// Renders a list of keys as `` `a`, `b` ``.
fn key_list(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error loading, resolving or checking a [`crate::Target`].
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The file could not be read.
    #[error("cannot read target description {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON, or does not have the shape of a target description.
    #[error("{origin}:{line}:{column}: invalid target description: {message}")]
    Json {
        /// The file name, or `<string>`.
        origin: String,
        /// 1-based line, as reported by serde_json.
        line: usize,
        /// 1-based column, as reported by serde_json.
        column: usize,
        /// serde_json's message (which names unknown or missing fields).
        message: String,
    },
    /// A field has a value no chip can have (zero tiles, a non-finite clock, ...).
    #[error("{origin}: target field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The file name, `<string>`, or `preset <name>`.
        origin: String,
        /// The field's JSON name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `Target::preset` or `Target::resolve` was given a name that is not a preset.
    #[error(
        "unknown target preset `{name}` (presets: {known}; a file must end in `.json` or exist)"
    )]
    UnknownPreset {
        /// The name given.
        name: String,
        /// The known preset names, comma-separated.
        known: String,
    },
    /// serde_json could not serialise the target.
    #[error("cannot serialise target `{name}` to JSON: {message}")]
    Serialize {
        /// The target's name.
        name: String,
        /// serde_json's message.
        message: String,
    },
}

/// An error loading or checking an [`crate::IpuConfig`], or applying it to a model.
#[derive(Debug, thiserror::Error)]
pub enum IpuConfigError {
    /// The file could not be read.
    #[error("cannot read IPU configuration {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON.
    #[error("{origin}:{line}:{column}: malformed IPU configuration JSON: {message}")]
    Json {
        /// The file name, or `<string>`.
        origin: String,
        /// 1-based line, as reported by serde_json.
        line: usize,
        /// 1-based column, as reported by serde_json.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// The JSON is valid but its top level is not an object.
    #[error("{origin}: an IPU configuration must be a JSON object of keys to values")]
    NotAnObject {
        /// The file name, or `<string>`.
        origin: String,
    },
    /// One key's value has the wrong type or is out of range.
    #[error("{}: `{key}` {reason}", located(.origin, .line))]
    InvalidValue {
        /// The file name, or `<string>`.
        origin: String,
        /// The key.
        key: String,
        /// The line the key is on, when it could be found in the text.
        line: Option<usize>,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// Several keys have values that cannot hold together.
    #[error("{origin}: contradictory values of {}: {reason}", key_list(.keys))]
    Conflict {
        /// The file name, or `<string>`.
        origin: String,
        /// The keys involved.
        keys: Vec<String>,
        /// Why they contradict each other.
        reason: String,
    },
    /// `layers_per_ipu` cannot place a model's layers on the replica's IPUs.
    #[error("{} cannot place {num_layers} layers: {reason}", key_list(.keys))]
    LayerPlacement {
        /// The keys involved (`layers_per_ipu`, `ipus_per_replica`, or their inference twins).
        keys: Vec<String>,
        /// The model's layer count.
        num_layers: usize,
        /// Why.
        reason: String,
    },
    /// A derived quantity does not fit in a machine integer.
    #[error("{what} overflows")]
    Overflow {
        /// What was being computed, with its operands.
        what: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_value_names_file_line_and_key() {
        let e = IpuConfigError::InvalidValue {
            origin: "cfg.json".into(),
            key: "replication_factor".into(),
            line: Some(7),
            reason: "must be at least 1, found 0".into(),
        };
        assert_eq!(
            e.to_string(),
            "cfg.json:7: `replication_factor` must be at least 1, found 0"
        );
        let e = IpuConfigError::InvalidValue {
            origin: "<string>".into(),
            key: "seed".into(),
            line: None,
            reason: "x".into(),
        };
        assert_eq!(e.to_string(), "<string>: `seed` x");
    }

    #[test]
    fn conflict_lists_every_key() {
        let e = IpuConfigError::Conflict {
            origin: "a.json".into(),
            keys: vec!["matmul_proportion".into(), "ipus_per_replica".into()],
            reason: "r".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.json: contradictory values of `matmul_proportion`, `ipus_per_replica`: r"
        );
    }
}
