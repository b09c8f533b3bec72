//! What Tessera compiles for: the hardware ([`Target`]) and the run's parallelism and precision
//! settings ([`IpuConfig`]).
//!
//! The two are kept apart on purpose. A [`Target`] describes one chip — tiles, memory, clock,
//! arithmetic rates, exchange and link bandwidths, sync costs — with every figure sourced in
//! [`target::presets`]; cost models and the lowering read it instead of scattering literals
//! through the code. An [`IpuConfig`] is an optimum-graphcore `ipu_config.json`: how many
//! chips a replica spans, how many replicas, gradient accumulation, recomputation, fp16
//! partials and so on — the knobs a user of Hugging Face's IPU stack already knows.
//!
//! Both load from JSON with errors that name the file, the line and the offending key or
//! field; [`IpuConfig`] loading returns the keys it did not understand as [`Warning`]s
//! rather than printing them, so the caller decides how to report them.

pub mod error;
pub mod ipu_config;
pub mod target;

pub use error::{IpuConfigError, TargetError};
pub use ipu_config::{IpuConfig, MatmulProportion, OutputMode, Warning};
pub use target::{MatmulPrecision, Target};
