//! The graph-building context shared by all module structs: the graph under construction,
//! the registered parameters (added to the graph the first time a module uses them, so
//! that each appears next to its first use in printed IR) and small op helpers.

use crate::error::BuildError;
use crate::params::{ParamId, ParamSpec};
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, TensorType};

/// The graph being built and the parameters it may use.
pub(crate) struct Ctx {
    /// The graph under construction.
    pub graph: Graph,
    specs: Vec<ParamSpec>,
    nodes: Vec<Option<NodeId>>,
}

impl Ctx {
    /// A context building graph `name` with the registered parameters `specs`.
    pub fn new(name: &str, specs: Vec<ParamSpec>) -> Self {
        let nodes = vec![None; specs.len()];
        Ctx {
            graph: Graph::new(name),
            specs,
            nodes,
        }
    }

    /// The node of parameter `id` (creating it on first use), used at `scope`.
    pub fn param(&mut self, id: ParamId, scope: &str) -> Result<NodeId, BuildError> {
        let unknown = || BuildError::UnknownParam {
            index: id.0,
            scope: scope.to_string(),
        };
        let slot = self.nodes.get(id.0).ok_or_else(unknown)?;
        if let Some(node) = slot {
            return Ok(*node);
        }
        let spec = self.specs.get(id.0).ok_or_else(unknown)?;
        let node = self
            .graph
            .param(&spec.name, TensorType::new(DType::F32, spec.shape.clone()))?;
        if let Some(slot) = self.nodes.get_mut(id.0) {
            *slot = Some(node);
        }
        Ok(node)
    }

    /// Adds `op` applied to `operands` in `scope`.
    pub fn op(&mut self, op: Op, operands: &[NodeId], scope: &str) -> Result<NodeId, BuildError> {
        Ok(self.graph.add(op, operands, scope)?)
    }

    /// Adds the elementwise binary `op` of `a` and `b` (broadcast) in `scope`.
    pub fn binary(
        &mut self,
        op: BinaryOp,
        a: NodeId,
        b: NodeId,
        scope: &str,
    ) -> Result<NodeId, BuildError> {
        self.op(Op::Binary(op), &[a, b], scope)
    }

    /// An f32 scalar constant `value` in `scope` (broadcast by the binary op that uses it).
    pub fn scalar(&mut self, value: f64, scope: &str) -> Result<NodeId, BuildError> {
        self.op(
            Op::Full {
                value,
                ty: TensorType::scalar(DType::F32),
            },
            &[],
            scope,
        )
    }

    /// `x` reshaped to `shape` in `scope`.
    pub fn reshape(
        &mut self,
        x: NodeId,
        shape: Vec<usize>,
        scope: &str,
    ) -> Result<NodeId, BuildError> {
        self.op(Op::Reshape { shape }, &[x], scope)
    }

    /// The static shape of node `x`.
    pub fn shape(&self, x: NodeId) -> Vec<usize> {
        self.graph.node(x).ty.shape.clone()
    }

    /// The registered parameters that the graph has not used (empty for a complete model).
    pub fn unused_params(&self) -> Vec<&str> {
        self.specs
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.is_none())
            .map(|(s, _)| s.name.as_str())
            .collect()
    }
}
