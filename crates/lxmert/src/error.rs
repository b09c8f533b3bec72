//! Typed errors of this crate: reading configs, building the graph, reading and writing
//! weights.
//!
//! Every error names what it is about: the config file (and line/column or field), the
//! node scope, or the weights file and tensor, so that a user can act on it without a
//! debugger.

use std::path::PathBuf;
use tessera_ir::IrError;

/// One problem found while validating a config: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The Hugging Face field name, e.g. `hidden_size`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// An error reading or validating an [`crate::LxmertConfig`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The text is not well-formed JSON (or ends early).
    #[error("{origin}:{line}:{column}: malformed JSON: {message}")]
    Syntax {
        /// Where the text came from (a file path or a description).
        origin: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// A field has the wrong JSON type (or the document is not an object).
    #[error("{origin}:{line}:{column}: field `{field}`: {message}")]
    FieldType {
        /// Where the text came from.
        origin: String,
        /// The offending field (`<document>` when the document itself is not an object).
        field: String,
        /// 1-based line where parsing failed.
        line: usize,
        /// 1-based column where parsing failed.
        column: usize,
        /// What was expected.
        message: String,
    },
    /// Well-typed but unusable values; every problem is listed.
    #[error("{origin}: invalid LXMERT config: {}", format_problems(.problems))]
    Invalid {
        /// Where the config came from.
        origin: String,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
    /// `LxmertConfig::preset` with a name it does not know.
    #[error("unknown preset `{name}` (known presets: {known})")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The known preset names, comma separated.
        known: String,
    },
}

fn format_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("`{}`: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An error building the LXMERT graph.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config is not usable (see [`crate::LxmertConfig::validate`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The requested input shapes are not usable with this config.
    #[error("invalid shapes: `{field}` {message}")]
    Shapes {
        /// The [`crate::Shapes`] field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The IR rejected a node (a bug in the builder; the error names the node's scope).
    #[error("building the LXMERT graph: {0}")]
    Ir(#[from] IrError),
    /// A module referred to a parameter that was never registered (a builder bug).
    #[error("internal: parameter #{index} used at `{scope}` was never registered")]
    UnknownParam {
        /// The parameter's index.
        index: usize,
        /// The scope that used it.
        scope: String,
    },
    /// A registered parameter is not used by the graph (a builder bug).
    #[error("internal: parameter `{name}` is registered but the graph does not use it")]
    UnusedParam {
        /// The parameter's state-dict name.
        name: String,
    },
}

/// A parameter whose stored shape differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    /// The state-dict name.
    pub name: String,
    /// The shape the config implies.
    pub expected: Vec<usize>,
    /// The shape found.
    pub found: Vec<usize>,
}

/// Everything wrong with a set of weights compared with [`crate::param_specs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightsMismatch {
    /// Expected tensors that are absent.
    pub missing: Vec<String>,
    /// Tensors that the model does not have.
    pub unexpected: Vec<String>,
    /// Tensors with the wrong shape.
    pub wrong_shape: Vec<ShapeProblem>,
    /// Tensors of an element type that cannot be used (name and type).
    pub bad_dtype: Vec<(String, String)>,
}

impl WeightsMismatch {
    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.wrong_shape.is_empty()
            && self.bad_dtype.is_empty()
    }
}

impl std::fmt::Display for WeightsMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} missing: {}",
                self.missing.len(),
                self.missing.join(", ")
            ));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!(
                "{} unexpected: {}",
                self.unexpected.len(),
                self.unexpected.join(", ")
            ));
        }
        if !self.wrong_shape.is_empty() {
            let items: Vec<String> = self
                .wrong_shape
                .iter()
                .map(|p| {
                    format!(
                        "{} (expected {:?}, found {:?})",
                        p.name, p.expected, p.found
                    )
                })
                .collect();
            parts.push(format!(
                "{} with wrong shape: {}",
                items.len(),
                items.join(", ")
            ));
        }
        if !self.bad_dtype.is_empty() {
            let items: Vec<String> = self
                .bad_dtype
                .iter()
                .map(|(n, d)| format!("{n} ({d})"))
                .collect();
            parts.push(format!(
                "{} with unsupported element type: {}",
                items.len(),
                items.join(", ")
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// An error reading, checking or writing weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, corrupt header, bad offsets).
    #[error("{path}: not a valid safetensors file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader reported.
        reason: String,
    },
    /// The tensors do not match the model's parameters; every problem is listed.
    #[error("{origin}: weights do not match the LXMERT parameters: {mismatch}")]
    Mismatch {
        /// The file (or `weights` for in-memory maps).
        origin: String,
        /// Everything wrong.
        mismatch: WeightsMismatch,
    },
    /// Writing the safetensors file failed.
    #[error("{path}: cannot write safetensors: {reason}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The config is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
