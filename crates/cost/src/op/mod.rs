//! The cost of one node run on a given number of tiles of one chip: [`op_cost`].
//!
//! An op runs as one or more BSP supersteps; each superstep is a compute phase (every
//! tile runs its vertices; the phase lasts as long as the busiest tile), a sync, and an
//! exchange phase (statically scheduled copies between tiles). Costs are in tile cycles of
//! the [`Target`], split into `compute`, `exchange` and `sync` ([`Cycles`]). Notation:
//! `T` tiles offered, `U ≤ T` tiles actually used, `s(x)` the element size of `x`,
//! `ceil` rounding up, `ls` = the target's load/store bytes per cycle per tile (all
//! workers), `xb` = its exchange bytes per cycle per tile.
//!
//! **Every superstep** pays `sync_cycles + exchange_overhead_cycles` once, in `sync`. An op
//! that does any work therefore costs at least one superstep: that is the floor of small
//! ops.
//!
//! **Matmul** (`[.., M, K] x [.., K, N]`, batch `Bt`; see [`matmul`] for the planner):
//! the result is cut into blocks of `gm × gn` elements and the contraction into `gk`
//! grains ([`Assumptions`]: poplin-style grains, partial grains padded); a plan splits
//! batch, M, N and K over `pb·pm·pn·pk ≤ T` tiles, so no more tiles are useful than
//! output blocks × K grains. For the busiest tile holding `cb` batch entries, `m_t` rows,
//! `n_t` columns and `k_t` contraction elements (padded to grains):
//! - compute = `ceil(cb·m_t·n_t·k_t / macs_per_cycle(precision))`, precision from the
//!   operands' dtype and `half_partials` (fp32 → `F32`; fp16 → `F16HalfPartials` or
//!   `F16FloatPartials`);
//! - exchange = `ceil((A slice + B slice bytes) / xb)`: the operand elements the tile uses
//!   must move to it (operands are laid out by their producers, not for this matmul; an
//!   operand without batch axes is the same slice for every batch entry);
//! - if K is split (`pk > 1`), a second superstep reduces partial sums (`f32` partials, or
//!   the operand type with `half_partials`): each of the `pk` tiles of a result block
//!   reduces `1/pk` of it, receiving `(pk−1)·ceil(block/pk)·s(partial)` bytes (exchange)
//!   and loading `pk` partials and storing one result per element at `ls` (compute).
//!
//! The planner keeps the plan of least total cycles among those that do not raise compute
//! as the tile budget grows ([`matmul`]), so offering more tiles never costs more total
//! cycles nor more compute cycles.
//!
//! **Memory-bound ops** (elementwise, cast, compare, select, reductions, softmax, layer
//! norm, scatter-add, one-hot; see [`memory`]): `U = min(T, useful pieces)` and
//! compute = `ceil(bytes loaded + stored by the busiest tile / ls)`; pieces are vectors of
//! `vector_bytes` (elementwise), rows (softmax, layer norm: a row stays on one tile), or
//! outputs (reductions; a reduction whose inputs span tiles adds a second superstep that
//! combines `f32` partials). Broadcast operands are exchanged to every tile that needs
//! them. Softmax and layer norm are three passes (three supersteps) each.
//!
//! **Data movement** (see [`movement`]): reshape and broadcast are views (zero cost);
//! transpose, gather, slice, pad and concat move the result's bytes over the exchange:
//! exchange = `ceil(result bytes on the busiest tile / xb)`, one superstep. Leaves
//! (inputs, parameters, constants) cost nothing here: they are placed before the program
//! runs (host streaming of inputs is outside the per-op model).
//!
//! FLOPs follow [`tessera_ir::flops`] so that FLOP totals agree with the rest of Tessera.

pub mod matmul;
pub mod memory;
pub mod movement;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_props;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::AddAssign;
use tessera_ir::flops::node_flops;
use tessera_ir::{Graph, NodeId, Op, TensorType};
use tessera_target::{MatmulPrecision, Target};

use crate::error::describe;
use crate::{Assumptions, CostError};

/// Tile cycles of an op (or a sum of ops), by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycles {
    /// Compute phases: the busiest tile's vertices.
    pub compute: u64,
    /// Exchange phases: bytes moved between tiles, excluding the fixed overhead.
    pub exchange: u64,
    /// Syncs plus the fixed overhead of each exchange phase, once per superstep.
    pub sync: u64,
}

impl Cycles {
    /// All cycles.
    pub fn total(&self) -> u64 {
        self.compute
            .saturating_add(self.exchange)
            .saturating_add(self.sync)
    }
}

impl AddAssign for Cycles {
    fn add_assign(&mut self, rhs: Cycles) {
        self.compute = self.compute.saturating_add(rhs.compute);
        self.exchange = self.exchange.saturating_add(rhs.exchange);
        self.sync = self.sync.saturating_add(rhs.sync);
    }
}

/// The cost of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCost {
    /// FLOPs ([`tessera_ir::flops`] convention: a multiply-add is 2).
    pub flops: u64,
    /// The part of `flops` done by matrix products.
    pub matmul_flops: u64,
    /// Cycles by phase.
    pub cycles: Cycles,
    /// Bytes of the operands (dense tensors, each counted once).
    pub bytes_in: u64,
    /// Bytes of the result the op materialises (0 for views: reshape, broadcast).
    pub bytes_out: u64,
    /// Bytes the op needs only while it runs (rearranged operand copies, partial sums).
    pub temp_bytes: u64,
    /// Tiles the op uses (at most the tiles offered).
    pub tiles_used: u32,
    /// BSP supersteps (each one sync and one exchange phase).
    pub supersteps: u32,
}

/// The cost of node `node` of `graph` spread over `tiles` tiles of one chip of `target`,
/// with the default [`Assumptions`]. See the module documentation for the formulas.
pub fn op_cost(
    graph: &Graph,
    node: NodeId,
    tiles: u32,
    target: &Target,
) -> Result<OpCost, CostError> {
    op_cost_with(graph, node, tiles, target, &Assumptions::default())
}

/// [`op_cost`] with explicit modelling assumptions.
pub fn op_cost_with(
    graph: &Graph,
    node: NodeId,
    tiles: u32,
    target: &Target,
    assumptions: &Assumptions,
) -> Result<OpCost, CostError> {
    let mut model = Model::new(target, assumptions)?;
    model.cost(graph, node, tiles)
}

/// The target's rates as the formulas use them, checked once.
#[derive(Debug, Clone)]
pub(crate) struct Rates {
    /// Load plus store bytes per cycle per tile, all workers busy.
    pub ls: f64,
    /// Exchange bytes per cycle per tile.
    pub xb: f64,
    /// Cycles of one superstep's sync and fixed exchange overhead.
    pub step: u64,
    /// Worker threads per tile (vertices per tile per compute set).
    pub workers: u64,
}

impl Rates {
    /// Cycles to move `bytes` at `rate` bytes per cycle, rounded up.
    pub fn cycles(bytes: u64, rate: f64) -> u64 {
        // `rate` is finite and positive (the target was validated), so the quotient is a
        // finite non-negative number and the cast saturates at worst.
        (bytes as f64 / rate).ceil() as u64
    }
}

/// A checked target and assumptions, with a cache of matmul plans (costing a graph meets
/// the same matmul shapes many times).
pub(crate) struct Model<'t> {
    pub target: &'t Target,
    pub assumptions: Assumptions,
    pub rates: Rates,
    plans: HashMap<(matmul::MatmulShape, u64), matmul::MatmulPlan>,
}

impl<'t> Model<'t> {
    /// Validates `target` and `assumptions`.
    pub fn new(target: &'t Target, assumptions: &Assumptions) -> Result<Self, CostError> {
        target.validate().map_err(|e| CostError::InvalidTarget {
            target: target.name.clone(),
            reason: e.to_string(),
        })?;
        assumptions.validate()?;
        Ok(Model {
            target,
            assumptions: assumptions.clone(),
            rates: Rates {
                ls: target.load_store_bytes_per_cycle_per_tile(),
                xb: target.exchange_bytes_per_cycle_per_tile,
                step: u64::from(target.sync_cycles) + u64::from(target.exchange_overhead_cycles),
                workers: u64::from(target.worker_threads_per_tile),
            },
            plans: HashMap::new(),
        })
    }

    /// The cost of `id` on `tiles` tiles.
    pub fn cost(&mut self, graph: &Graph, id: NodeId, tiles: u32) -> Result<OpCost, CostError> {
        if !graph.contains(id) {
            return Err(CostError::NoSuchNode {
                index: id.index() as u32,
                graph: graph.name.clone(),
            });
        }
        if tiles == 0 {
            return Err(CostError::NoTiles {
                node: describe(graph, id),
            });
        }
        let node = graph.node(id);
        let operands = graph.operands(id);
        let types: Vec<&TensorType> = operands.iter().map(|&o| &graph.node(o).ty).collect();
        let bytes_in = types.iter().map(|t| bytes(t)).sum();
        let mut cost = match &node.op {
            Op::MatMul {
                transpose_a,
                transpose_b,
                half_partials,
            } => {
                let shape = matmul::MatmulShape::of(
                    graph,
                    id,
                    &types,
                    (*transpose_a, *transpose_b),
                    *half_partials,
                    self.target,
                )?;
                let key = (shape.clone(), u64::from(tiles));
                let plan = match self.plans.get(&key) {
                    Some(p) => p.clone(),
                    None => {
                        let p =
                            matmul::plan(&shape, u64::from(tiles), &self.rates, &self.assumptions);
                        self.plans.insert(key, p.clone());
                        p
                    }
                };
                plan.op_cost(&self.rates)
            }
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast { .. } => {
                memory::elementwise(&node.ty, &types, tiles, &self.rates, &self.assumptions)
            }
            Op::Reduce { .. } => {
                let x = first(graph, id, &types)?;
                memory::reduce(x, &node.ty, tiles, &self.rates, &self.assumptions)
            }
            Op::Softmax => memory::softmax(&node.ty, tiles, &self.rates),
            Op::LayerNorm { .. } => memory::layer_norm(&node.ty, tiles, &self.rates),
            Op::ScatterAdd { .. } => {
                memory::scatter_add(&node.ty, &types, tiles, &self.rates, &self.assumptions)
            }
            Op::OneHot { .. } => {
                memory::one_hot(&node.ty, &types, tiles, &self.rates, &self.assumptions)
            }
            Op::Transpose { .. }
            | Op::Gather { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. } => {
                movement::move_result(&node.ty, tiles, &self.rates, &self.assumptions)
            }
            Op::Reshape { .. } | Op::BroadcastTo { .. } => OpCost::default(),
            Op::Input { .. } | Op::Param { .. } | Op::Full { .. } | Op::Iota { .. } => OpCost {
                bytes_out: bytes(&node.ty),
                ..OpCost::default()
            },
        };
        let flops = node_flops(graph, id);
        cost.flops = flops.total();
        cost.matmul_flops = flops.matmul;
        cost.bytes_in = bytes_in;
        Ok(cost)
    }
}

/// The MAC rate of a matmul with operands of `dtype`, or `None` for a non-float dtype.
pub(crate) fn precision_of(
    dtype: tessera_ir::DType,
    half_partials: bool,
) -> Option<MatmulPrecision> {
    match dtype {
        tessera_ir::DType::F32 => Some(MatmulPrecision::F32),
        tessera_ir::DType::F16 => Some(MatmulPrecision::for_half_operands(half_partials)),
        tessera_ir::DType::I64 | tessera_ir::DType::Bool => None,
    }
}

/// Bytes of a dense tensor of type `t`.
pub(crate) fn bytes(t: &TensorType) -> u64 {
    t.size_bytes() as u64
}

/// Elements of a tensor of type `t`.
pub(crate) fn elems(t: &TensorType) -> u64 {
    t.num_elements() as u64
}

/// Element size of `t` in bytes.
pub(crate) fn elem_size(t: &TensorType) -> u64 {
    t.dtype.size_bytes() as u64
}

/// `ceil(a / b)` for `b ≥ 1`.
pub(crate) fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

/// The first operand's type, or an error naming the node.
fn first<'a>(
    graph: &Graph,
    id: NodeId,
    types: &[&'a TensorType],
) -> Result<&'a TensorType, CostError> {
    types
        .first()
        .copied()
        .ok_or_else(|| crate::error::malformed(graph, id, "it has no operand"))
}
