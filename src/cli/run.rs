//! `tessera run MODEL --inputs in.safetensors --outputs out.safetensors [--weights W]`.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tessera::{feeds, model, train};
use tessera_lxmert::BuildOptions;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A preset, a config.json, a Hugging Face model directory, or a text-IR file.
    model: String,
    /// Input tensors (safetensors), named as transformers' forward arguments.
    #[arg(long)]
    inputs: PathBuf,
    /// Where to write the outputs (safetensors, written atomically).
    #[arg(long)]
    outputs: PathBuf,
    /// Parameter values (safetensors with Hugging Face state-dict names).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of the random initialisation used when no weights are given.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute the loss and its gradients: the inputs add `labels` (f32 [B,num_qa_labels]
    /// soft scores or i64 [B] class ids); the outputs hold `loss` and `grad.<parameter>`.
    #[arg(long)]
    train: bool,
}

pub fn run(a: RunArgs) -> Result<()> {
    let spec = model::resolve(&a.model)?;
    let tensors = tessera_ir::io::load_safetensors(&a.inputs)?;
    let params = spec.weights(a.weights.as_deref(), a.seed)?;
    let (graph, inputs) = match spec.lxmert_config() {
        Some(config) => {
            let f = feeds::lxmert_feeds(tensors, config, &a.inputs, a.train)?;
            let opts = BuildOptions {
                visual_attention_mask: f.visual_attention_mask,
                ..Default::default()
            };
            let forward = spec.graph(&f.shapes, &opts)?;
            let mut inputs = f.inputs;
            match f.labels {
                Some(labels) if a.train => {
                    let graph = train::gradient_graph(&forward, &labels.ty(), 1.0)?;
                    inputs.insert("labels".into(), labels);
                    (graph, inputs)
                }
                _ => (forward, inputs),
            }
        }
        None => {
            if a.train {
                bail!("--train needs an LXMERT model (its loss is the VQA loss)");
            }
            let graph = spec.graph(
                &tessera_lxmert::Shapes {
                    batch: 1,
                    seq_len: 1,
                    num_objects: 1,
                },
                &BuildOptions::default(),
            )?;
            let inputs = feeds::ir_feeds(&graph, tensors, &a.inputs)?;
            (graph, inputs)
        }
    };
    let outputs = tessera_ir::eval::evaluate(&graph, &inputs, &params)
        .with_context(|| format!("evaluating graph @{}", graph.name))?;
    if outputs.is_empty() {
        bail!("graph @{} has no outputs", graph.name);
    }
    let outputs: BTreeMap<_, _> = outputs.into_iter().collect();
    tessera_ir::io::save_safetensors(&a.outputs, &outputs)?;
    eprintln!("wrote {} outputs to {}", outputs.len(), a.outputs.display());
    Ok(())
}
