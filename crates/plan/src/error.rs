//! Errors of writing and reading plan files; each names the file (or `<bytes>`).

use std::path::PathBuf;

/// Why a plan could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("cannot read plan {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write plan: {0}")]
    Write(#[from] tessera_ir::io::IoError),
    /// The file does not start with the plan magic.
    #[error("{origin} is not a Tessera plan (it does not start with `TSPLAN\\0`)")]
    NotAPlan {
        /// The file name, or `<bytes>`.
        origin: String,
    },
    /// The file is shorter than its header says.
    #[error("{origin}: truncated plan: {expected} bytes expected, {found} present")]
    Truncated {
        /// The file name, or `<bytes>`.
        origin: String,
        /// Bytes the header announces (header included).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file is longer than its header says.
    #[error("{origin}: {extra} unexpected bytes after the plan")]
    TrailingBytes {
        /// The file name, or `<bytes>`.
        origin: String,
        /// Extra bytes.
        extra: u64,
    },
    /// The file was written by another format version.
    #[error("{origin}: plan format version {found}, but this Tessera reads version {supported} (recompile the model)")]
    Version {
        /// The file name, or `<bytes>`.
        origin: String,
        /// The file's version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The payload's checksum does not match the header's.
    #[error("{origin}: plan is corrupt: checksum {found:#018x}, header says {expected:#018x}")]
    Checksum {
        /// The file name, or `<bytes>`.
        origin: String,
        /// The header's checksum.
        expected: u64,
        /// The payload's.
        found: u64,
    },
    /// The payload does not decode as a plan.
    #[error("{origin}: plan does not decode: {message}")]
    Decode {
        /// The file name, or `<bytes>`.
        origin: String,
        /// postcard's message.
        message: String,
    },
    /// The plan could not be encoded.
    #[error("cannot encode plan: {0}")]
    Encode(String),
    /// The stored IPU configuration does not parse.
    #[error("plan's IPU configuration: {0}")]
    IpuConfig(String),
}
