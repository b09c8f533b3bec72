//! Resolution of the MODEL argument of every command.
//!
//! A MODEL is, in this order: an existing directory (a Hugging Face model directory:
//! `config.json` plus an optional `model.safetensors`), an existing `.json` file (a Hugging
//! Face `config.json`), any other existing file (text IR), or the name of a preset
//! (`lxmert-base`, `lxmert-tiny`). LXMERT models are graphs only once input shapes are
//! known, so resolution yields a [`ModelSpec`] and [`ModelSpec::graph`] builds the graph.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tessera_ir::{Graph, Tensor};
use tessera_lxmert::{BuildOptions, LxmertConfig, Shapes};

/// A resolved MODEL argument.
#[derive(Debug, Clone)]
pub enum ModelSpec {
    /// An LXMERT model given by its configuration.
    Lxmert {
        /// The configuration.
        config: Box<LxmertConfig>,
        /// Where it came from (preset name or file), for messages.
        source: String,
        /// The weights that came with it (a model directory's `model.safetensors`).
        weights: Option<PathBuf>,
    },
    /// A graph read from a text-IR file.
    Ir {
        /// The parsed graph.
        graph: Box<Graph>,
        /// The file it came from.
        path: PathBuf,
    },
}

/// Resolves a MODEL argument (see the module documentation).
pub fn resolve(arg: &str) -> Result<ModelSpec> {
    let path = Path::new(arg);
    if path.is_dir() {
        let config_path = path.join("config.json");
        if !config_path.is_file() {
            bail!(
                "model directory {} has no config.json (a Hugging Face model directory holds config.json and model.safetensors)",
                path.display()
            );
        }
        let config = Box::new(LxmertConfig::from_file(&config_path)?);
        let weights = path.join("model.safetensors");
        return Ok(ModelSpec::Lxmert {
            config,
            source: config_path.display().to_string(),
            weights: weights.is_file().then_some(weights),
        });
    }
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "json") {
            let config = Box::new(LxmertConfig::from_file(path)?);
            return Ok(ModelSpec::Lxmert {
                config,
                source: path.display().to_string(),
                weights: None,
            });
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let graph = tessera_ir::text::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        tessera_ir::verify(&graph).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok(ModelSpec::Ir {
            graph: Box::new(graph),
            path: path.to_path_buf(),
        });
    }
    if looks_like_path(arg) {
        bail!("no such file or directory: {arg}");
    }
    let config = Box::new(LxmertConfig::preset(arg)?);
    Ok(ModelSpec::Lxmert {
        config,
        source: format!("preset {arg}"),
        weights: None,
    })
}

fn looks_like_path(arg: &str) -> bool {
    arg.contains('/') || arg.contains('\\') || arg.ends_with(".json") || arg.ends_with(".tir")
}

impl ModelSpec {
    /// The graph for the given shapes (ignored for text-IR models, whose shapes are fixed).
    pub fn graph(&self, shapes: &Shapes, opts: &BuildOptions) -> Result<Graph> {
        match self {
            ModelSpec::Lxmert { config, source, .. } => tessera_lxmert::build(config, shapes, opts)
                .with_context(|| format!("building LXMERT from {source}")),
            ModelSpec::Ir { graph, .. } => Ok((**graph).clone()),
        }
    }

    /// The LXMERT configuration, when the model is one.
    pub fn lxmert_config(&self) -> Option<&LxmertConfig> {
        match self {
            ModelSpec::Lxmert { config, .. } => Some(config),
            ModelSpec::Ir { .. } => None,
        }
    }

    /// Parameter values: from `weights` if given, else from the model directory's
    /// `model.safetensors`, else (LXMERT only) transformers-style random initialisation with
    /// `seed`. A text-IR model needs weights for all of its parameters.
    pub fn weights(&self, weights: Option<&Path>, seed: u64) -> Result<HashMap<String, Tensor>> {
        match self {
            ModelSpec::Lxmert {
                config,
                weights: dir_weights,
                ..
            } => {
                let map = match weights.or(dir_weights.as_deref()) {
                    Some(p) => tessera_lxmert::load_weights(p, config)?,
                    None => tessera_lxmert::init_weights(config, seed),
                };
                Ok(map.into_iter().collect())
            }
            ModelSpec::Ir { graph, path } => {
                let Some(p) = weights else {
                    if graph.params().is_empty() {
                        return Ok(HashMap::new());
                    }
                    bail!(
                        "{} has {} parameters: give their values with --weights FILE.safetensors",
                        path.display(),
                        graph.params().len()
                    );
                };
                let map = tessera_ir::io::load_safetensors(p)?;
                Ok(map.into_iter().collect())
            }
        }
    }
}
