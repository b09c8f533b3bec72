//! Input feeds: reading them, checking them against the model, filling transformers' defaults.
//!
//! LXMERT inputs use transformers' forward argument names. `input_ids`, `visual_feats` and
//! `visual_pos` are required; `attention_mask` defaults to ones and `token_type_ids` to zeros
//! (as `LxmertModel.forward` does); `visual_attention_mask` is optional and, when absent,
//! no visual mask is applied. Batch size, sequence length and object count come from the
//! tensors. Every problem names the file and the tensor.

use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tessera_ir::{DType, Graph, Tensor, TensorData};
use tessera_lxmert::{LxmertConfig, Shapes};

/// LXMERT feeds ready for the graph, and the shapes they imply.
#[derive(Debug, Clone)]
pub struct LxmertFeeds {
    /// Batch size, sequence length and object count.
    pub shapes: Shapes,
    /// Whether a `visual_attention_mask` was given.
    pub visual_attention_mask: bool,
    /// The labels for training, if given.
    pub labels: Option<Tensor>,
    /// The input tensors by graph input name.
    pub inputs: HashMap<String, Tensor>,
}

const REQUIRED: [&str; 3] = ["input_ids", "visual_feats", "visual_pos"];
const OPTIONAL: [&str; 3] = ["attention_mask", "token_type_ids", "visual_attention_mask"];

fn dims(t: &Tensor) -> String {
    tessera_ir::types::shape_string(t.shape())
}

/// Converts an integer-valued tensor (i64, bool, or float 0/1 masks) to i64.
fn to_i64(name: &str, file: &str, t: &Tensor) -> Result<Tensor> {
    match t.dtype() {
        DType::I64 => Ok(t.clone()),
        DType::Bool | DType::F32 | DType::F16 => {
            let v = t.to_f64_vec();
            if v.iter().any(|x| x.fract() != 0.0) {
                bail!(
                    "{file}: tensor `{name}` must hold integers, got {} with fractional values",
                    t.dtype()
                );
            }
            Ok(t.cast(DType::I64))
        }
    }
}

/// Checks and completes LXMERT inputs read from `file`. With `train`, `labels` is accepted
/// (its form is checked by the loss).
pub fn lxmert_feeds(
    tensors: BTreeMap<String, Tensor>,
    config: &LxmertConfig,
    file: &Path,
    train: bool,
) -> Result<LxmertFeeds> {
    let f = file.display().to_string();
    for name in tensors.keys() {
        let known = REQUIRED.contains(&name.as_str())
            || OPTIONAL.contains(&name.as_str())
            || (train && name == "labels");
        if !known {
            let extra = if train { ", labels" } else { "" };
            bail!(
                "{f}: unexpected tensor `{name}` (LXMERT inputs are {}, {}{extra})",
                REQUIRED.join(", "),
                OPTIONAL.join(", ")
            );
        }
    }
    for name in REQUIRED {
        if !tensors.contains_key(name) {
            bail!("{f}: missing required input tensor `{name}`");
        }
    }
    if train && !tensors.contains_key("labels") {
        bail!("{f}: training needs a `labels` tensor (f32 [B,num_qa_labels] soft scores or i64 [B] class ids)");
    }
    let ids = to_i64("input_ids", &f, &tensors["input_ids"])?;
    let [batch, seq_len] = ids.shape() else {
        bail!(
            "{f}: `input_ids` must be [batch, seq_len], got {}",
            dims(&ids)
        );
    };
    let (batch, seq_len) = (*batch, *seq_len);
    if let TensorData::I64(v) = ids.data() {
        if let Some(bad) = v
            .iter()
            .find(|&&x| x < 0 || x as usize >= config.vocab_size)
        {
            bail!(
                "{f}: `input_ids` holds token id {bad}, outside the vocabulary [0, {})",
                config.vocab_size
            );
        }
    }
    let feats = &tensors["visual_feats"];
    let [fb, num_objects, fd] = feats.shape() else {
        bail!(
            "{f}: `visual_feats` must be [batch, num_objects, {}], got {}",
            config.visual_feat_dim,
            dims(feats)
        );
    };
    let num_objects = *num_objects;
    if *fb != batch || *fd != config.visual_feat_dim {
        bail!(
            "{f}: `visual_feats` must be [{batch}, num_objects, {}], got {}",
            config.visual_feat_dim,
            dims(feats)
        );
    }
    let mut inputs = HashMap::new();
    let want_float = |name: &str, t: &Tensor, shape: &[usize]| -> Result<Tensor> {
        if t.shape() != shape {
            bail!(
                "{f}: `{name}` must be {}, got {}",
                tessera_ir::types::shape_string(shape),
                dims(t)
            );
        }
        if !t.dtype().is_float() {
            bail!("{f}: `{name}` must be floating point, got {}", t.dtype());
        }
        Ok(t.cast(DType::F32))
    };
    inputs.insert(
        "visual_feats".to_string(),
        want_float(
            "visual_feats",
            feats,
            &[batch, num_objects, config.visual_feat_dim],
        )?,
    );
    inputs.insert(
        "visual_pos".to_string(),
        want_float(
            "visual_pos",
            &tensors["visual_pos"],
            &[batch, num_objects, config.visual_pos_dim],
        )?,
    );
    let want_int = |name: &str, shape: &[usize]| -> Result<Option<Tensor>> {
        let Some(t) = tensors.get(name) else {
            return Ok(None);
        };
        if t.shape() != shape {
            bail!(
                "{f}: `{name}` must be {}, got {}",
                tessera_ir::types::shape_string(shape),
                dims(t)
            );
        }
        to_i64(name, &f, t).map(Some)
    };
    let bs = [batch, seq_len];
    let mask = want_int("attention_mask", &bs)?.unwrap_or_else(|| {
        Tensor::from_i64(bs.to_vec(), vec![1; batch * seq_len]).expect("shape matches")
    });
    let tt = want_int("token_type_ids", &bs)?.unwrap_or_else(|| {
        Tensor::from_i64(bs.to_vec(), vec![0; batch * seq_len]).expect("shape matches")
    });
    if let TensorData::I64(v) = tt.data() {
        if let Some(bad) = v
            .iter()
            .find(|&&x| x < 0 || x as usize >= config.type_vocab_size)
        {
            bail!(
                "{f}: `token_type_ids` holds {bad}, outside [0, {})",
                config.type_vocab_size
            );
        }
    }
    let vmask = want_int("visual_attention_mask", &[batch, num_objects])?;
    inputs.insert("input_ids".to_string(), ids);
    inputs.insert("attention_mask".to_string(), mask);
    inputs.insert("token_type_ids".to_string(), tt);
    let visual_attention_mask = vmask.is_some();
    if let Some(v) = vmask {
        inputs.insert("visual_attention_mask".to_string(), v);
    }
    Ok(LxmertFeeds {
        shapes: Shapes {
            batch,
            seq_len,
            num_objects,
        },
        visual_attention_mask,
        labels: tensors.get("labels").cloned(),
        inputs,
    })
}

/// Checks feeds for a text-IR graph: every graph input present with its exact type.
pub fn ir_feeds(
    graph: &Graph,
    tensors: BTreeMap<String, Tensor>,
    file: &Path,
) -> Result<HashMap<String, Tensor>> {
    let f = file.display().to_string();
    let mut out = HashMap::new();
    for id in graph.inputs() {
        let node = graph.node(id);
        let tessera_ir::Op::Input { name, ty } = &node.op else {
            continue;
        };
        let Some(t) = tensors.get(name) else {
            bail!("{f}: missing input tensor `{name}` ({ty})");
        };
        if t.ty() != *ty {
            bail!("{f}: input `{name}` must be {ty}, got {}", t.ty());
        }
        out.insert(name.clone(), t.clone());
    }
    Ok(out)
}
