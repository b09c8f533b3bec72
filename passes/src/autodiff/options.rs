//! Options of the autodiff pass and their checking against the graph.

use super::AutodiffError;
use std::collections::{BTreeMap, HashMap};
use tessera_ir::{Graph, NodeId};

/// Options of the [`autodiff`] pass.
#[derive(Debug, Clone, PartialEq)]
pub struct AutodiffOptions {
    /// Name of the scalar loss output to differentiate (default `loss`).
    pub loss: String,
    /// The gradient seed `d loss` (default 1.0); static loss scaling sets it to the scale.
    pub seed_scale: f64,
    /// Embedding tables whose padding row gets no gradient from `gather`, as torch's
    /// `nn.Embedding(padding_idx = row)`: parameter name → row (default: none). The
    /// forward still reads the row; only the gather's gradient skips the positions whose
    /// index is the padding row (LXMERT's three embedding tables have `padding_idx = 0`).
    pub padding_idx: BTreeMap<String, usize>,
}

impl Default for AutodiffOptions {
    fn default() -> Self {
        AutodiffOptions {
            loss: "loss".to_string(),
            seed_scale: 1.0,
            padding_idx: BTreeMap::new(),
        }
    }
}

impl AutodiffOptions {
    /// Checks the options against `graph` and resolves `padding_idx` to parameter nodes.
    pub(super) fn check(&self, graph: &Graph) -> Result<HashMap<NodeId, usize>, AutodiffError> {
        if !self.seed_scale.is_finite() {
            return Err(AutodiffError::InvalidSeed(self.seed_scale));
        }
        let mut rows = HashMap::with_capacity(self.padding_idx.len());
        for (name, &row) in &self.padding_idx {
            let p = graph.param_by_name(name).map_err(|_| {
                AutodiffError::BadPaddingIdx(format!(
                    "`{name}` is not a parameter of graph @{}",
                    graph.name
                ))
            })?;
            let ty = &graph.node(p).ty;
            let in_range = matches!(ty.shape.first(), Some(&n) if row < n);
            if !in_range {
                return Err(AutodiffError::BadPaddingIdx(format!(
                    "row {row} is not a row of `{name}` ({ty})"
                )));
            }
            rows.insert(p, row);
        }
        Ok(rows)
    }
}
