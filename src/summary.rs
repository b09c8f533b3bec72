//! The `inspect --emit summary` report: op counts, parameters, FLOPs, and a per-scope table.
//!
//! Scopes are grouped at module-instance level: the first two components of a node's scope,
//! extended to four when the third is a layer container followed by an index
//! (`lxmert.encoder.layer.3`, `lxmert.encoder.x_layers.0`), or at a fixed depth given by the
//! user. The JSON form has the stable keys `parameters`, `parameter_bytes`, `forward_flops`,
//! `matmul_flops`, `ops`, `nodes`, `inputs`, `outputs`, `scopes`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tessera_ir::flops::node_flops;
use tessera_ir::{Graph, Op};

/// One row of the per-scope table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScopeRow {
    /// The scope group.
    pub scope: String,
    /// Nodes in it (parameters included).
    pub nodes: usize,
    /// Parameter elements in it.
    pub parameters: u64,
    /// Parameter bytes in it.
    pub parameter_bytes: u64,
    /// FLOPs of its nodes.
    pub flops: u64,
}

/// A graph summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Graph name.
    pub graph: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of parameter elements.
    pub parameters: u64,
    /// Bytes of all parameters in their element types.
    pub parameter_bytes: u64,
    /// Number of parameter tensors.
    pub parameter_tensors: usize,
    /// FLOPs of one execution of the graph (all arithmetic; see `tessera_ir::flops`).
    pub forward_flops: u64,
    /// The matmul part of `forward_flops`.
    pub matmul_flops: u64,
    /// Node count per op name.
    pub ops: BTreeMap<String, usize>,
    /// Graph inputs with their types.
    pub inputs: BTreeMap<String, String>,
    /// Graph outputs with their types.
    pub outputs: BTreeMap<String, String>,
    /// Per-scope table, in order of first appearance.
    pub scopes: Vec<ScopeRow>,
}

/// The scope group of `scope` (see the module documentation); `depth` overrides.
pub fn scope_group(scope: &str, depth: Option<usize>) -> String {
    if scope.is_empty() {
        return "(top)".to_string();
    }
    let parts: Vec<&str> = scope.split('.').collect();
    let n = match depth {
        Some(d) => d.max(1),
        None if parts.len() >= 4 && parts[3].parse::<usize>().is_ok() => 4,
        None => 2,
    };
    parts[..n.min(parts.len())].join(".")
}

/// Summarises `graph`, grouping scopes as [`scope_group`] does.
pub fn summarize(graph: &Graph, depth: Option<usize>) -> Summary {
    let mut ops = BTreeMap::new();
    let mut rows: Vec<ScopeRow> = Vec::new();
    let mut row_index: BTreeMap<String, usize> = BTreeMap::new();
    let (mut parameters, mut parameter_bytes, mut parameter_tensors) = (0u64, 0u64, 0usize);
    let (mut flops, mut matmul) = (0u64, 0u64);
    let mut inputs = BTreeMap::new();
    for id in graph.topo_order() {
        let node = graph.node(id);
        *ops.entry(node.op.name().to_string()).or_insert(0) += 1;
        let group = scope_group(&node.scope, depth);
        let idx = *row_index.entry(group.clone()).or_insert_with(|| {
            rows.push(ScopeRow {
                scope: group,
                nodes: 0,
                parameters: 0,
                parameter_bytes: 0,
                flops: 0,
            });
            rows.len() - 1
        });
        let row = &mut rows[idx];
        row.nodes += 1;
        let f = node_flops(graph, id);
        row.flops += f.total();
        flops += f.total();
        matmul += f.matmul;
        match &node.op {
            Op::Param { .. } => {
                let (n, b) = (node.ty.num_elements() as u64, node.ty.size_bytes() as u64);
                row.parameters += n;
                row.parameter_bytes += b;
                parameters += n;
                parameter_bytes += b;
                parameter_tensors += 1;
            }
            Op::Input { name, ty } => {
                inputs.insert(name.clone(), ty.to_string());
            }
            _ => {}
        }
    }
    let outputs = graph
        .outputs()
        .iter()
        .map(|o| (o.name.clone(), graph.node(o.node).ty.to_string()))
        .collect();
    Summary {
        graph: graph.name.clone(),
        nodes: graph.len(),
        parameters,
        parameter_bytes,
        parameter_tensors,
        forward_flops: flops,
        matmul_flops: matmul,
        ops,
        inputs,
        outputs,
        scopes: rows,
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A human-readable quantity with SI prefix (`10.59 G`).
pub fn si(x: f64) -> String {
    let (v, p) = if x >= 1e12 {
        (x / 1e12, "T")
    } else if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{v:.2} {p}")
}

impl Summary {
    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "graph @{}: {} nodes",
            self.graph,
            thousands(self.nodes as u64)
        );
        let _ = writeln!(
            s,
            "parameters: {} in {} tensors ({}B)",
            thousands(self.parameters),
            self.parameter_tensors,
            si(self.parameter_bytes as f64)
        );
        let _ = writeln!(
            s,
            "FLOPs per execution: {}FLOP ({}FLOP in matmuls)",
            si(self.forward_flops as f64),
            si(self.matmul_flops as f64)
        );
        let _ = writeln!(s, "inputs:");
        for (k, v) in &self.inputs {
            let _ = writeln!(s, "  {k}: {v}");
        }
        let _ = writeln!(s, "outputs:");
        for (k, v) in &self.outputs {
            let _ = writeln!(s, "  {k}: {v}");
        }
        let _ = writeln!(s, "ops:");
        let mut ops: Vec<_> = self.ops.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, v) in ops {
            let _ = writeln!(s, "  {k:<14} {v:>7}");
        }
        let w = self
            .scopes
            .iter()
            .map(|r| r.scope.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            s,
            "{:<w$}  {:>7}  {:>13}  {:>11}  {:>12}",
            "scope", "nodes", "parameters", "param bytes", "FLOPs"
        );
        for r in &self.scopes {
            let _ = writeln!(
                s,
                "{:<w$}  {:>7}  {:>13}  {:>11}  {:>12}",
                r.scope,
                r.nodes,
                thousands(r.parameters),
                format!("{}B", si(r.parameter_bytes as f64)),
                format!("{}", si(r.flops as f64))
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        assert_eq!(
            scope_group("lxmert.encoder.layer.3.attention.self", None),
            "lxmert.encoder.layer.3"
        );
        assert_eq!(
            scope_group("lxmert.encoder.visn_fc.visn_fc", None),
            "lxmert.encoder"
        );
        assert_eq!(
            scope_group("lxmert.embeddings.LayerNorm", None),
            "lxmert.embeddings"
        );
        assert_eq!(
            scope_group("answer_head.logit_fc.0", None),
            "answer_head.logit_fc"
        );
        assert_eq!(scope_group("a.b.c", Some(1)), "a");
        assert_eq!(scope_group("", None), "(top)");
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(213930297), "213,930,297");
        assert_eq!(thousands(12), "12");
        assert_eq!(si(10.587e9), "10.59 G");
    }
}
