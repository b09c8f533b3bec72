//! transformers Trainer's weight-decay grouping, derived from a differentiated graph.
//!
//! Trainer (`get_decay_parameter_names`) decays every parameter except those of
//! normalisation layers and those whose lower-cased name matches `bias`, `layernorm`,
//! `rmsnorm`, a `norm` component or a `_norm` suffix. Layer-norm parameters are found
//! structurally (the gamma or beta operand of a `layer_norm` node), so a LayerNorm inside
//! an `nn.Sequential` (LXMERT's `answer_head.logit_fc.2.weight`) is recognised too.

use super::{OptimError, OptimParam};
use crate::autodiff::GRAD_PREFIX;
use std::collections::HashMap;
use tessera_ir::{Graph, NodeId, Op};

/// The optimizer parameters of a graph made by [`crate::autodiff()`]: one per
/// `grad.<name>` output, in output order, with Trainer's decay grouping.
pub fn trainer_optim_params(grad_graph: &Graph) -> Result<Vec<OptimParam>, OptimError> {
    let params: HashMap<&str, NodeId> = grad_graph
        .params()
        .into_iter()
        .filter_map(|p| match &grad_graph.node(p).op {
            Op::Param { name, .. } => Some((name.as_str(), p)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for o in grad_graph.outputs() {
        let Some(name) = o.name.strip_prefix(GRAD_PREFIX) else {
            continue;
        };
        let &p = params.get(name).ok_or_else(|| OptimError::UnknownParam {
            output: o.name.clone(),
            graph: grad_graph.name.clone(),
        })?;
        out.push(OptimParam {
            name: name.to_string(),
            ty: grad_graph.node(p).ty.clone(),
            weight_decay: trainer_decays(grad_graph, p),
        });
    }
    Ok(out)
}

/// True when Trainer would apply weight decay to parameter node `p` (false for a node
/// that is not a parameter of `graph`).
pub fn trainer_decays(graph: &Graph, p: NodeId) -> bool {
    let Some(Op::Param { name, .. }) = graph.petgraph().node_weight(p).map(|n| &n.op) else {
        return false;
    };
    let lower = name.to_lowercase();
    let by_name = ["bias", "layernorm", "rmsnorm"]
        .iter()
        .any(|pat| lower.contains(pat))
        || lower
            .split('.')
            .any(|c| c == "norm" || c.ends_with("_norm"));
    // A LayerNorm's gamma/beta, possibly through casts (mixed precision casts f16 weights to
    // f32 before the f32 layer norm).
    let mut in_layer_norm = false;
    let mut frontier = vec![p];
    while let Some(v) = frontier.pop() {
        for u in graph.users(v) {
            match graph.node(u).op {
                Op::LayerNorm { .. } if graph.operands(u).first() != Some(&v) => {
                    in_layer_norm = true
                }
                Op::Cast { .. } => frontier.push(u),
                _ => {}
            }
        }
    }
    !(by_name || in_layer_norm)
}
