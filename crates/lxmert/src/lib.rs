//! Hugging Face `LxmertForQuestionAnswering` (transformers' `modeling_lxmert.py`) as a
//! Tessera IR graph, with its config and weights.
//!
//! - [`LxmertConfig`]: the Hugging Face `config.json`, with transformers' defaults and
//!   presets (`lxmert-base`, `lxmert-tiny`).
//! - [`build`]: the eval-mode forward graph for static [`Shapes`]; parameter nodes carry
//!   the exact state-dict names and every node the scope of the module that made it.
//! - [`param_specs`]: every parameter in `state_dict()` order.
//! - [`init_weights`], [`load_weights`], [`save_hf_dir`]: weights as name → [`Tensor`]
//!   maps, random (like transformers' `_init_weights`), from a `model.safetensors`, or
//!   written as a Hugging Face model directory.
//!
//! [`Tensor`]: tessera_ir::Tensor

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod model;
pub mod params;
pub mod weights;

pub use config::{LxmertConfig, LAYER_NORM_EPS, PRESETS};
pub use error::{
    BuildError, ConfigError, ConfigProblem, ShapeProblem, WeightsError, WeightsMismatch,
};
pub use model::{build, tap_names, BuildOptions, Shapes, OUTPUT_NAMES};
pub use params::{count_params, param_specs, ParamInit, ParamSpec};
pub use weights::{init_weights, load_weights, save_hf_dir};
