//! The rewrite behind [`super::mixed_precision`]: the graph rebuilt node by node in
//! topological order with the precision the policy gives each node.
//!
//! For every node: leaves are copied (a float parameter becomes f16 under
//! `master_weights = f16`); any other node gets a target type from [`super::policy`] (or
//! f32 in an fp32 scope), its floating-point operands are converted to it, and the node is
//! re-added through the checked [`Graph::add`]. Conversions are cached per (value, type), so
//! a parameter gets one f16 working copy shared by all its users and an f32 value read by
//! several fp16 ops is cast once; constants are re-typed rather than cast. Outputs keep
//! their types (a `grad.<p>` output takes its parameter's). Redundant casts are then folded
//! and nodes the rewrite left unused are removed; nodes that were already unused in the
//! input graph are kept as they were.

use super::config::{MasterWeights, PrecisionConfig};
use super::error::{printed_name, MixedPrecisionError};
use super::fold::{fold_casts, lossless};
use super::policy::{op_precision, OpPrecision};
use super::stats::MixedPrecisionStats;
use crate::autodiff::GRAD_PREFIX;
use std::collections::{HashMap, HashSet};
use tessera_ir::{DType, Graph, IrError, NodeId, Op, Output};

/// The largest finite f16 value.
const F16_MAX: f64 = 65504.0;

/// The state of one rewrite.
struct Rewrite<'a> {
    src: &'a Graph,
    cfg: &'a PrecisionConfig,
    names: HashMap<NodeId, String>,
    dst: Graph,
    /// Source node → its rewritten node.
    map: HashMap<NodeId, NodeId>,
    /// (source node, type) → the node holding its value in that type.
    converted: HashMap<(NodeId, DType), NodeId>,
    stats: MixedPrecisionStats,
}

/// Rewrites `src` under `cfg`; see the module documentation.
pub(super) fn rewrite(
    src: &Graph,
    cfg: &PrecisionConfig,
) -> Result<(Graph, MixedPrecisionStats), MixedPrecisionError> {
    let order = src.topo_order();
    if order.len() != src.len() {
        return Err(MixedPrecisionError::Cycle {
            graph: src.name.clone(),
            in_order: order.len(),
            nodes: src.len(),
        });
    }
    let mut rw = Rewrite {
        src,
        cfg,
        names: src.value_names(),
        dst: Graph::new(src.name.clone()),
        map: HashMap::with_capacity(src.len()),
        converted: HashMap::new(),
        stats: MixedPrecisionStats::default(),
    };
    for &n in &order {
        rw.node(n)?;
    }
    rw.outputs()?;
    rw.stats.casts_folded += fold_casts(&mut rw.dst);
    rw.remove_unused();
    rw.tally();
    Ok((rw.dst, rw.stats))
}

impl Rewrite<'_> {
    fn build_error(&self, n: NodeId, dtype: Option<DType>, e: IrError) -> MixedPrecisionError {
        let node = self.src.node(n);
        MixedPrecisionError::Build {
            node: printed_name(self.src, &self.names, n),
            op: node.op.name(),
            scope: node.scope.clone(),
            dtype: dtype.map_or_else(|| "its own type".to_string(), |d| d.to_string()),
            source: Box::new(e),
        }
    }

    /// The rewritten node of source node `n` (present for every node earlier in
    /// topological order).
    fn mapped(&self, n: NodeId) -> Result<NodeId, MixedPrecisionError> {
        self.map
            .get(&n)
            .copied()
            .ok_or_else(|| MixedPrecisionError::Cycle {
                graph: self.src.name.clone(),
                in_order: self.map.len(),
                nodes: self.src.len(),
            })
    }

    /// The type node `n` (with operands `operands`) computes in, or `None` to leave it in
    /// its own types.
    fn target(&self, n: NodeId, op: &Op, operands: &[NodeId]) -> Option<DType> {
        let node = self.src.node(n);
        let float_operands: Vec<DType> = operands
            .iter()
            .filter(|&&o| self.src.node(o).ty.dtype.is_float())
            .filter_map(|o| self.map.get(o))
            .map(|&m| self.dst.node(m).ty.dtype)
            .collect();
        if float_operands.is_empty() && !node.ty.dtype.is_float() {
            return None;
        }
        let (class, _) = op_precision(op);
        if class == OpPrecision::Keep {
            return None;
        }
        if self.cfg.in_fp32_scope(&node.scope) {
            return Some(DType::F32);
        }
        match class {
            OpPrecision::Fp16 => Some(DType::F16),
            OpPrecision::Fp32 => Some(DType::F32),
            OpPrecision::Follow if float_operands.is_empty() => None,
            OpPrecision::Follow if float_operands.contains(&DType::F32) => Some(DType::F32),
            OpPrecision::Follow => Some(DType::F16),
            OpPrecision::Keep => None,
        }
    }

    /// Rewrites source node `n`.
    fn node(&mut self, n: NodeId) -> Result<(), MixedPrecisionError> {
        let node = self.src.node(n);
        let operands = self.src.operands(n);
        let (op, new_operands, target) = match &node.op {
            Op::Param { name, ty }
                if ty.dtype == DType::F32 && self.cfg.master_weights == MasterWeights::F16 =>
            {
                let bytes = 4 * ty.num_elements() as u64;
                self.stats.params_in_fp16 += 1;
                self.stats.param_bytes_moved_to_fp16 += bytes;
                let op = Op::Param {
                    name: name.clone(),
                    ty: ty.with_dtype(DType::F16),
                };
                (op, Vec::new(), Some(DType::F16))
            }
            op if op.is_leaf() => (op.clone(), Vec::new(), None),
            op => {
                let target = self.target(n, op, &operands);
                let mut new_operands = Vec::with_capacity(operands.len());
                for &o in &operands {
                    let float = self.src.node(o).ty.dtype.is_float();
                    let m = match target {
                        Some(t) if float && !matches!(op, Op::Cast { .. }) => self.convert(o, t)?,
                        _ => self.mapped(o)?,
                    };
                    new_operands.push(m);
                }
                let op = match op {
                    Op::MatMul {
                        transpose_a,
                        transpose_b,
                        ..
                    } if target == Some(DType::F16) => Op::MatMul {
                        transpose_a: *transpose_a,
                        transpose_b: *transpose_b,
                        half_partials: self.cfg.half_partials,
                    },
                    op => op.clone(),
                };
                (op, new_operands, target)
            }
        };
        let id = self
            .dst
            .add(op, &new_operands, node.scope.clone())
            .map_err(|e| self.build_error(n, target, e))?;
        self.dst.node_mut(id).annot = node.annot.clone();
        self.map.insert(n, id);
        Ok(())
    }

    /// The value of source node `o` in type `t`: the rewritten node itself, a re-typed
    /// constant, the f16 value a widening cast came from, or a new (cached) cast.
    fn convert(&mut self, o: NodeId, t: DType) -> Result<NodeId, MixedPrecisionError> {
        let cur = self.mapped(o)?;
        if self.dst.node(cur).ty.dtype == t {
            return Ok(cur);
        }
        if let Some(&c) = self.converted.get(&(o, t)) {
            return Ok(c);
        }
        let src_node = self.src.node(o);
        let scope = src_node.scope.clone();
        let new = match &src_node.op {
            Op::Full { value, ty } if ty.dtype.is_float() => {
                let v = if t == DType::F16 && value.is_finite() && value.abs() > F16_MAX {
                    self.stats.constants_saturated += 1;
                    F16_MAX.copysign(*value)
                } else {
                    *value
                };
                self.stats.constants_retyped += 1;
                let op = Op::Full {
                    value: v,
                    ty: ty.with_dtype(t),
                };
                self.dst
                    .add(op, &[], scope)
                    .map_err(|e| self.build_error(o, Some(t), e))?
            }
            _ => {
                if let Some(y) = self.widened_from(cur, t) {
                    self.stats.casts_folded += 1;
                    self.converted.insert((o, t), y);
                    return Ok(y);
                }
                self.stats.casts_inserted += 1;
                self.dst
                    .add(Op::Cast { to: t }, &[cur], scope)
                    .map_err(|e| self.build_error(o, Some(t), e))?
            }
        };
        self.dst.node_mut(new).annot = src_node.annot.clone();
        self.converted.insert((o, t), new);
        Ok(new)
    }

    /// When `cur` is a lossless cast of a value of type `t`, that value.
    fn widened_from(&self, cur: NodeId, t: DType) -> Option<NodeId> {
        let node = self.dst.node(cur);
        if !matches!(node.op, Op::Cast { .. }) {
            return None;
        }
        let [y] = self.dst.operands(cur)[..] else {
            return None;
        };
        let y_ty = self.dst.node(y).ty.dtype;
        (y_ty == t && lossless(t, node.ty.dtype)).then_some(y)
    }

    /// Sets the outputs: each in its source type, `grad.<p>` in its parameter's type.
    fn outputs(&mut self) -> Result<(), MixedPrecisionError> {
        let mut outputs = Vec::with_capacity(self.src.outputs().len());
        for o in self.src.outputs() {
            let mut want = self.src.node(o.node).ty.dtype;
            if let Some(p) = o.name.strip_prefix(GRAD_PREFIX) {
                if let Ok(pid) = self.dst.param_by_name(p) {
                    let p_ty = self.dst.node(pid).ty.dtype;
                    if p_ty.is_float() && want.is_float() {
                        want = p_ty;
                    }
                }
            }
            let node = if want.is_float() {
                self.convert(o.node, want)?
            } else {
                self.mapped(o.node)?
            };
            outputs.push(Output {
                name: o.name.clone(),
                node,
            });
        }
        self.dst.set_outputs(outputs);
        Ok(())
    }

    /// Removes nodes without users that the rewrite made unused (originals replaced by
    /// re-typed constants, casts bypassed by folding); parameters, inputs and nodes that
    /// were already unused in the source graph stay.
    fn remove_unused(&mut self) {
        let src_outputs: HashSet<NodeId> = self.src.outputs().iter().map(|o| o.node).collect();
        let keep: HashSet<NodeId> = self
            .map
            .iter()
            .filter(|(&s, _)| self.src.users(s).is_empty() && !src_outputs.contains(&s))
            .map(|(_, &d)| d)
            .collect();
        let outputs: HashSet<NodeId> = self.dst.outputs().iter().map(|o| o.node).collect();
        let mut work: Vec<NodeId> = self.dst.node_ids().collect();
        while let Some(n) = work.pop() {
            let removable = self.dst.contains(n)
                && !keep.contains(&n)
                && !outputs.contains(&n)
                && !matches!(self.dst.node(n).op, Op::Input { .. } | Op::Param { .. })
                && self.dst.users(n).is_empty();
            if removable {
                work.extend(self.dst.operands(n));
                self.dst.remove(n);
            }
        }
    }

    /// Counts nodes per precision and the activation bytes moved to f16.
    fn tally(&mut self) {
        for n in self.dst.node_ids() {
            let node = self.dst.node(n);
            if node.op.is_leaf() {
                continue;
            }
            match node.ty.dtype {
                DType::F16 => self.stats.nodes_in_fp16 += 1,
                DType::F32 => self.stats.nodes_in_fp32 += 1,
                _ => {}
            }
            if matches!(
                node.op,
                Op::MatMul {
                    half_partials: true,
                    ..
                }
            ) && node.ty.dtype == DType::F16
            {
                self.stats.half_partials_matmuls += 1;
            }
        }
        for (&s, &d) in &self.map {
            let src_ty = &self.src.node(s).ty;
            let moved = self.dst.contains(d)
                && !self.src.node(s).op.is_leaf()
                && src_ty.dtype == DType::F32
                && self.dst.node(d).ty.dtype == DType::F16;
            if moved {
                self.stats.activation_bytes_moved_to_fp16 += 4 * src_ty.num_elements() as u64;
            }
        }
        self.stats.bytes_moved_to_fp16 =
            self.stats.param_bytes_moved_to_fp16 + self.stats.activation_bytes_moved_to_fp16;
    }
}
