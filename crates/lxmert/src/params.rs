//! The parameter registry: every weight of the model, with its state-dict name, shape and
//! initialisation rule, in transformers' `state_dict()` order.
//!
//! Module structs (see [`crate::model`]) register their parameters when they are
//! constructed, in the order the PyTorch modules register theirs, with names built from
//! the module path; the same registry then serves [`param_specs`], the graph builder and
//! [`crate::init_weights`], so the three can never disagree.

use crate::config::LxmertConfig;
use crate::model::LxmertForQuestionAnswering;

/// How transformers' `_init_weights` initialises a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamInit {
    /// `normal(0, initializer_range)` (Linear and embedding weights).
    Normal,
    /// `normal(0, initializer_range)` with row `padding_idx = 0` zeroed (LXMERT's
    /// three embedding tables).
    NormalZeroRow0,
    /// Zeros (biases, LayerNorm bias).
    Zeros,
    /// Ones (LayerNorm weight).
    Ones,
}

/// One parameter of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// The Hugging Face state-dict name, e.g. `lxmert.embeddings.word_embeddings.weight`.
    pub name: String,
    /// The shape (PyTorch layout: Linear weights are `[out, in]`).
    pub shape: Vec<usize>,
    /// How it is initialised.
    pub init: ParamInit,
}

impl ParamSpec {
    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Identifies a registered parameter (its index in registration order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ParamId(pub(crate) usize);

/// Collects parameters as modules are constructed.
#[derive(Debug, Default)]
pub(crate) struct ParamRegistry {
    specs: Vec<ParamSpec>,
}

impl ParamRegistry {
    /// Registers parameter `name` (full dotted path) and returns its id.
    pub(crate) fn add(&mut self, name: String, shape: Vec<usize>, init: ParamInit) -> ParamId {
        self.specs.push(ParamSpec { name, shape, init });
        ParamId(self.specs.len() - 1)
    }

    /// Consumes the registry, returning its parameters.
    pub fn into_specs(self) -> Vec<ParamSpec> {
        self.specs
    }
}

/// Joins a module path and a child name (`a.b` + `c` = `a.b.c`; empty parent = child).
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// Every parameter of `LxmertForQuestionAnswering` for `config`, in `state_dict()` order,
/// with the state-dict names and shapes.
pub fn param_specs(config: &LxmertConfig) -> Vec<ParamSpec> {
    let mut reg = ParamRegistry::default();
    LxmertForQuestionAnswering::new(&mut reg, config);
    reg.into_specs()
}

/// Total number of scalar parameters of `specs`.
pub fn count_params(specs: &[ParamSpec]) -> usize {
    specs.iter().map(ParamSpec::num_elements).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Reads the key set and shapes of a safetensors file's header.
    fn fixture_shapes() -> BTreeMap<String, Vec<usize>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/lxmert-tiny/model.safetensors"
        );
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.tensors()
            .into_iter()
            .map(|(n, v)| (n, v.shape().to_vec()))
            .collect()
    }

    #[test]
    fn tiny_specs_equal_fixture_state_dict() {
        let cfg = LxmertConfig::preset("lxmert-tiny").unwrap();
        let specs = param_specs(&cfg);
        let ours: BTreeMap<String, Vec<usize>> = specs
            .iter()
            .map(|s| (s.name.clone(), s.shape.clone()))
            .collect();
        assert_eq!(ours.len(), specs.len(), "duplicate names");
        assert_eq!(ours, fixture_shapes());
        // meta.json of the fixture: params_LxmertForQuestionAnswering = 57162
        assert_eq!(count_params(&specs), 57162);
    }

    #[test]
    fn base_counts_match_transformers() {
        let cfg = LxmertConfig::preset("lxmert-base").unwrap();
        let specs = param_specs(&cfg);
        assert_eq!(count_params(&specs), 213_930_297);
        let model: usize = specs
            .iter()
            .filter(|s| s.name.starts_with("lxmert."))
            .map(ParamSpec::num_elements)
            .sum();
        assert_eq!(model, 207_936_768);
    }

    #[test]
    fn order_follows_module_registration() {
        let cfg = LxmertConfig::preset("lxmert-tiny").unwrap();
        let names: Vec<String> = param_specs(&cfg).into_iter().map(|s| s.name).collect();
        // Hand-written from modeling_lxmert.py's __init__ order.
        let head = [
            "lxmert.embeddings.word_embeddings.weight",
            "lxmert.embeddings.position_embeddings.weight",
            "lxmert.embeddings.token_type_embeddings.weight",
            "lxmert.embeddings.LayerNorm.weight",
            "lxmert.embeddings.LayerNorm.bias",
            "lxmert.encoder.visn_fc.visn_fc.weight",
            "lxmert.encoder.visn_fc.visn_fc.bias",
            "lxmert.encoder.visn_fc.visn_layer_norm.weight",
            "lxmert.encoder.visn_fc.visn_layer_norm.bias",
            "lxmert.encoder.visn_fc.box_fc.weight",
            "lxmert.encoder.visn_fc.box_fc.bias",
            "lxmert.encoder.visn_fc.box_layer_norm.weight",
            "lxmert.encoder.visn_fc.box_layer_norm.bias",
            "lxmert.encoder.layer.0.attention.self.query.weight",
            "lxmert.encoder.layer.0.attention.self.query.bias",
            "lxmert.encoder.layer.0.attention.self.key.weight",
        ];
        assert_eq!(&names[..head.len()], &head);
        let tail = [
            "lxmert.pooler.dense.weight",
            "lxmert.pooler.dense.bias",
            "answer_head.logit_fc.0.weight",
            "answer_head.logit_fc.0.bias",
            "answer_head.logit_fc.2.weight",
            "answer_head.logit_fc.2.bias",
            "answer_head.logit_fc.3.weight",
            "answer_head.logit_fc.3.bias",
        ];
        assert_eq!(&names[names.len() - tail.len()..], &tail);
        // layer.*, then x_layers.*, then r_layers.* (LxmertEncoder.__init__ order)
        let first = |p: &str| names.iter().position(|n| n.starts_with(p)).unwrap();
        assert!(first("lxmert.encoder.layer.1.") < first("lxmert.encoder.x_layers.0."));
        assert!(first("lxmert.encoder.x_layers.0.") < first("lxmert.encoder.r_layers.0."));
        let x = first("lxmert.encoder.x_layers.0.");
        assert_eq!(
            names[x],
            "lxmert.encoder.x_layers.0.visual_attention.att.query.weight"
        );
    }
}
