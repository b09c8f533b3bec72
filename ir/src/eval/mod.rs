//! The reference evaluator: runs a [`Graph`] on whole host tensors.
//!
//! It is the oracle that compiler passes and the tile runtime are checked against, so it
//! is written to be obviously correct rather than fast: row-major dense tensors, one kernel
//! per op, nodes run one by one in [`Graph::topo_order`]. Only the nodes that the requested
//! values depend on are computed, and a value is dropped as soon as its last user has run
//! (unless it is requested), so that large graphs fit in memory. Fed inputs and parameters
//! are borrowed, never copied.
//!
//! Checks: every input and parameter of the graph must be fed with a tensor of exactly the
//! node's type (a missing or mistyped feed is an error naming it; extra feeds are ignored);
//! each node's operands must infer its stored type (so unverified graphs cannot make a
//! kernel misbehave); index operands are range-checked. Errors name the node as the text
//! printer does, `%k @scope`.
//!
//! Precision (the contract that passes and the runtime are compared under):
//! - f32 elementwise ops: `+ - * /` in f32; unary functions and `pow` evaluated in f64 and
//!   rounded once to f32 ([`math`]).
//! - f16 ops: operands widened to f32, each element computed as for f32, result rounded to
//!   f16 (nearest even).
//! - Reductions (sum, mean), softmax and layer norm, scatter_add: accumulate in f64 for f32
//!   data, in f32 for f16 data, rounding each result element once.
//! - MatMul: f32 accumulation in ascending `k`, rounded once; with `half_partials` on f16
//!   operands, the partial sum is rounded to f16 after every multiply-add.
//! - i64 arithmetic is checked (overflow and division by zero are errors).
//!
//! Options ([`EvalOptions`], [`evaluate_with`], [`Evaluator::with_options`]): stochastic
//! rounding of f16 results with a seed ([`sround`]), as the IPU rounds in training;
//! [`evaluate`] keeps round-to-nearest-even.

pub mod accum;
mod elementwise;
mod error;
mod index;
mod kernels;
mod layout;
pub mod math;
mod matmul;
mod reduce;
pub mod rows;
pub mod sround;
mod strided;
mod values;

#[cfg(test)]
mod tests;

pub use error::{EvalError, KernelError, NodeName};

use crate::dtype::DType;
use crate::graph::{Graph, NodeId};
use crate::op::{Op, TypeError};
use crate::tensor::Tensor;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Evaluates `graph` and returns its named outputs.
pub fn evaluate(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
    params: &HashMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, EvalError> {
    Evaluator::new(graph).run(inputs, params)
}

/// How the evaluator rounds; the default is the precision contract of the module
/// documentation (round to nearest even).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvalOptions {
    /// Round the f16 results of arithmetic stochastically, with random numbers keyed by this
    /// seed, the node and the element ([`sround`]); `None`: round to nearest even.
    pub stochastic_rounding: Option<u64>,
}

/// [`evaluate`] with options.
pub fn evaluate_with(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
    params: &HashMap<String, Tensor>,
    opts: &EvalOptions,
) -> Result<BTreeMap<String, Tensor>, EvalError> {
    Evaluator::with_options(graph, *opts).run(inputs, params)
}

/// Evaluates `graph` and returns the values of `nodes`, in order (for tests and debugging).
pub fn evaluate_nodes(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
    params: &HashMap<String, Tensor>,
    nodes: &[NodeId],
) -> Result<Vec<Tensor>, EvalError> {
    Evaluator::new(graph).run_nodes(inputs, params, nodes)
}

/// A reusable evaluator for one graph: computes the evaluation order once, for repeated
/// runs (finite differences, sweeps over inputs).
#[derive(Debug, Clone)]
pub struct Evaluator<'g> {
    graph: &'g Graph,
    order: Vec<NodeId>,
    opts: EvalOptions,
}

/// Counters of one evaluation, to check that values are freed and dead code skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvalStats {
    /// Nodes whose value was computed (fed leaves included).
    pub nodes_run: usize,
    /// The largest number of values held at once (fed values included).
    pub peak_live: usize,
}

/// Computed values: borrowed feeds or owned results.
type Values<'f> = HashMap<NodeId, Cow<'f, Tensor>>;

impl<'g> Evaluator<'g> {
    /// An evaluator for `graph`.
    pub fn new(graph: &'g Graph) -> Self {
        Self::with_options(graph, EvalOptions::default())
    }

    /// An evaluator for `graph` that rounds as `opts` says.
    pub fn with_options(graph: &'g Graph, opts: EvalOptions) -> Self {
        Evaluator {
            graph,
            order: graph.topo_order(),
            opts,
        }
    }

    /// The graph evaluated.
    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    /// Evaluates the graph's named outputs.
    pub fn run(
        &self,
        inputs: &HashMap<String, Tensor>,
        params: &HashMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, EvalError> {
        let outputs = self.graph.outputs();
        let targets: Vec<NodeId> = outputs.iter().map(|o| o.node).collect();
        let (mut values, _) = self.compute(inputs, params, &targets)?;
        let mut result = BTreeMap::new();
        for (i, o) in outputs.iter().enumerate() {
            let reused = targets.iter().skip(i + 1).any(|&t| t == o.node);
            result.insert(o.name.clone(), self.take(&mut values, o.node, reused)?);
        }
        Ok(result)
    }

    /// Evaluates the values of `nodes`, in order (a node may appear more than once).
    pub fn run_nodes(
        &self,
        inputs: &HashMap<String, Tensor>,
        params: &HashMap<String, Tensor>,
        nodes: &[NodeId],
    ) -> Result<Vec<Tensor>, EvalError> {
        self.run_nodes_with_stats(inputs, params, nodes)
            .map(|(v, _)| v)
    }

    /// [`Evaluator::run_nodes`] that also reports [`EvalStats`].
    pub fn run_nodes_with_stats(
        &self,
        inputs: &HashMap<String, Tensor>,
        params: &HashMap<String, Tensor>,
        nodes: &[NodeId],
    ) -> Result<(Vec<Tensor>, EvalStats), EvalError> {
        let (mut values, stats) = self.compute(inputs, params, nodes)?;
        let mut result = Vec::with_capacity(nodes.len());
        for (i, &n) in nodes.iter().enumerate() {
            let reused = nodes.iter().skip(i + 1).any(|&t| t == n);
            result.push(self.take(&mut values, n, reused)?);
        }
        Ok((result, stats))
    }

    /// The printed name and scope of `id`.
    fn name(&self, id: NodeId) -> NodeName {
        let name = self
            .graph
            .value_names()
            .remove(&id)
            .unwrap_or_else(|| format!("%<node {}>", id.index()));
        NodeName {
            name,
            scope: self.graph.node(id).scope.clone(),
        }
    }

    fn kernel_error(&self, id: NodeId, source: KernelError) -> EvalError {
        EvalError::Kernel {
            node: self.name(id),
            op: self.graph.node(id).op.name(),
            source,
        }
    }

    /// Moves (or, when it is requested again later, copies) a computed value out.
    fn take(&self, values: &mut Values<'_>, id: NodeId, reused: bool) -> Result<Tensor, EvalError> {
        let value = if reused {
            values.get(&id).map(|v| v.as_ref().clone())
        } else {
            values.remove(&id).map(Cow::into_owned)
        };
        value.ok_or_else(|| EvalError::Cycle {
            node: self.name(id),
            op: self.graph.node(id).op.name(),
        })
    }

    /// Checks that every input and parameter is fed with a tensor of its type.
    fn check_feeds(
        &self,
        inputs: &HashMap<String, Tensor>,
        params: &HashMap<String, Tensor>,
    ) -> Result<(), EvalError> {
        for id in self.graph.node_ids() {
            let node = self.graph.node(id);
            let (kind, name, feeds) = match &node.op {
                Op::Input { name, .. } => ("input", name, inputs),
                Op::Param { name, .. } => ("param", name, params),
                _ => continue,
            };
            let expected = node.ty.clone();
            match feeds.get(name) {
                None => {
                    return Err(EvalError::MissingFeed {
                        kind,
                        name: name.clone(),
                        expected,
                    })
                }
                Some(t) if t.ty() != expected => {
                    return Err(EvalError::FeedType {
                        kind,
                        name: name.clone(),
                        expected,
                        actual: t.ty(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The nodes `targets` depend on (themselves included).
    fn needed(&self, targets: &[NodeId]) -> Result<HashSet<NodeId>, EvalError> {
        let mut needed = HashSet::new();
        let mut stack = Vec::with_capacity(targets.len());
        for &t in targets {
            if !self.graph.contains(t) {
                return Err(EvalError::UnknownNode {
                    index: t.index(),
                    graph: self.graph.name.clone(),
                });
            }
            stack.push(t);
        }
        while let Some(n) = stack.pop() {
            if needed.insert(n) {
                stack.extend(self.graph.operands(n));
            }
        }
        Ok(needed)
    }

    /// Computes the values of `targets` (and drops everything else once used).
    fn compute<'f>(
        &self,
        inputs: &'f HashMap<String, Tensor>,
        params: &'f HashMap<String, Tensor>,
        targets: &[NodeId],
    ) -> Result<(Values<'f>, EvalStats), EvalError> {
        let needed = self.needed(targets)?;
        self.check_feeds(inputs, params)?;
        let keep: HashSet<NodeId> = targets.iter().copied().collect();
        let mut remaining: HashMap<NodeId, usize> = HashMap::new();
        for &n in &needed {
            for o in distinct(self.graph.operands(n)) {
                *remaining.entry(o).or_default() += 1;
            }
        }
        let mut values: Values<'f> = HashMap::new();
        let mut stats = EvalStats::default();
        for &id in self.order.iter().filter(|n| needed.contains(n)) {
            let operands = self.graph.operands(id);
            let value = self.compute_node(id, &operands, &values, inputs, params)?;
            values.insert(id, value);
            stats.nodes_run += 1;
            stats.peak_live = stats.peak_live.max(values.len());
            for o in distinct(operands) {
                let left = remaining.entry(o).or_default();
                *left = left.saturating_sub(1);
                if *left == 0 && !keep.contains(&o) {
                    values.remove(&o);
                }
            }
        }
        Ok((values, stats))
    }

    /// One node's value from its operands' values.
    fn compute_node<'f>(
        &self,
        id: NodeId,
        operands: &[NodeId],
        values: &Values<'f>,
        inputs: &'f HashMap<String, Tensor>,
        params: &'f HashMap<String, Tensor>,
    ) -> Result<Cow<'f, Tensor>, EvalError> {
        let node = self.graph.node(id);
        let types: Vec<_> = operands.iter().map(|&o| &self.graph.node(o).ty).collect();
        let inferred = node
            .op
            .infer(&types)
            .map_err(|source| EvalError::IllTyped {
                node: self.name(id),
                op: node.op.name(),
                source,
            })?;
        if inferred != node.ty {
            return Err(EvalError::IllTyped {
                node: self.name(id),
                op: node.op.name(),
                source: TypeError(format!(
                    "stored type {} but the operands give {inferred}",
                    node.ty
                )),
            });
        }
        let value = match &node.op {
            Op::Input { name, .. } => inputs.get(name).map(Cow::Borrowed),
            Op::Param { name, .. } => params.get(name).map(Cow::Borrowed),
            op => {
                let args = operands
                    .iter()
                    .map(|o| values.get(o).map(AsRef::as_ref))
                    .collect::<Option<Vec<&Tensor>>>()
                    .ok_or_else(|| {
                        self.kernel_error(id, KernelError::Internal("operand not computed".into()))
                    })?;
                let v = match self.opts.stochastic_rounding {
                    Some(seed) if node.ty.dtype == DType::F16 && sround::applies(op, &args) => {
                        sround::eval_stochastic(op, &args, &node.ty, seed, id.index() as u64)
                    }
                    _ => kernels::eval_op(op, &args, &node.ty),
                }
                .map_err(|e| self.kernel_error(id, e))?;
                Some(Cow::Owned(v))
            }
        };
        let value = value
            .ok_or_else(|| self.kernel_error(id, KernelError::Internal("feed vanished".into())))?;
        if value.dtype() != node.ty.dtype || value.shape() != node.ty.shape.as_slice() {
            let msg = format!("produced {} for a {} node", value.ty(), node.ty);
            return Err(self.kernel_error(id, KernelError::Internal(msg)));
        }
        Ok(value)
    }
}

/// The distinct ids of a list, in ascending order.
fn distinct(ids: Vec<NodeId>) -> BTreeSet<NodeId> {
    ids.into_iter().collect()
}
