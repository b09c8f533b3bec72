//! The lowering driver: values, buffers with liveness, sources (parameters, inputs,
//! constants), and the dispatch of every op to its emitter.

use super::builder::{Builder, Category};
use super::layout::Layout;
use super::matmul::weights::Member;
use super::matmul::weights::WeightBlock;
use super::matmul::MmPlan;
use super::{HostConstant, HostTensor, LowerOptions, TilePlan};
use crate::lower::error::LowerError;
use std::collections::HashMap;
use tessera_ir::{DType, Graph, NodeId, Op};
use tessera_runtime::program::{HostBuffer, StreamCopy, TileRef};
use tessera_runtime::vertex::{Elem, Vertex};
use tessera_target::Target;

/// A lowered value: where its elements are and which buffer owns the bytes.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub layout: Layout,
    pub dtype: DType,
    pub chip: u32,
    pub(crate) buf: usize,
}

impl Val {
    /// Bytes per element.
    pub fn eb(&self) -> u64 {
        self.dtype.size_bytes() as u64
    }
}

/// Bytes owned by one or more values (a reshape aliases its operand's buffer).
#[derive(Debug)]
struct Buf {
    layout: Layout,
    elem_bytes: u64,
    /// Remaining operand uses of all values aliasing it.
    uses: usize,
    /// Never freed by liveness (always-live values and graph outputs).
    pinned: bool,
    /// Already returned to the allocators.
    freed: bool,
    /// What the bytes hold (for the memory report when they are freed).
    category: Category,
}

/// The lowering's state while walking the graph.
pub(crate) struct Ctx<'g> {
    pub graph: &'g Graph,
    pub target: &'g Target,
    pub opts: &'g LowerOptions,
    pub b: Builder,
    pub(crate) vals: HashMap<NodeId, Val>,
    bufs: Vec<Buf>,
    names: HashMap<NodeId, String>,
    uses: HashMap<NodeId, usize>,
    pub(crate) outputs: Vec<NodeId>,
    /// Host buffers, stream copies and fills of the `load` program.
    pub load_buffers: Vec<HostBuffer>,
    pub load_copies: Vec<StreamCopy>,
    pub load_fills: Vec<(TileRef, Vertex)>,
    pub params: Vec<HostTensor>,
    pub constants: Vec<HostConstant>,
    /// Host buffers and input stream copies of the `step` program.
    pub step_buffers: Vec<HostBuffer>,
    pub step_in: Vec<StreamCopy>,
    pub inputs: Vec<HostTensor>,
    /// Matmuls whose split was planned with their weight's layout.
    pub mm_plans: HashMap<NodeId, MmPlan>,
    /// Fused sibling products: every member's group (the first member leads).
    pub(crate) mm_groups: HashMap<NodeId, Vec<Member>>,
    /// Weights laid out for their matmul: layout and host-streamed blocks.
    pub(crate) weights: HashMap<NodeId, (Layout, Vec<WeightBlock>)>,
    /// Gather tables (looked through casts): the most indices one lookup takes.
    pub(crate) lookups: HashMap<NodeId, u64>,
    /// Operand slots per (value, chip of the reading node), for landings.
    pub(crate) chip_uses: HashMap<(NodeId, u32), usize>,
    /// Values copied to another chip for the nodes there ([`super::landing`]).
    pub(crate) landings: HashMap<(NodeId, u32), super::landing::Landing>,
}

/// The runtime element type of a dtype (every dtype has one; `Option` keeps callers ready
/// for types tile memory cannot hold).
pub(crate) fn elem_of(dtype: DType) -> Option<Elem> {
    match dtype {
        DType::F32 => Some(Elem::F32),
        DType::F16 => Some(Elem::F16),
        DType::I64 => Some(Elem::I64),
        DType::Bool => Some(Elem::Bool),
    }
}

impl<'g> Ctx<'g> {
    /// How many operand slots read `id`.
    pub fn use_count(&self, id: NodeId) -> usize {
        self.uses.get(&id).copied().unwrap_or(0)
    }

    /// Whether `id` is a graph output.
    pub fn is_output(&self, id: NodeId) -> bool {
        self.outputs.contains(&id)
    }

    /// `%12`-style name of a node.
    pub fn name(&self, id: NodeId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("{id:?}"))
    }

    /// Name and scope for labels: `%12 @scope`.
    pub fn label(&self, id: NodeId) -> String {
        format!(
            "{} {} @{}",
            self.name(id),
            self.graph.node(id).op.name(),
            self.graph.node(id).scope
        )
    }

    /// An [`LowerError::Unsupported`] for node `id`.
    pub fn unsupported(&self, id: NodeId, reason: impl Into<String>) -> LowerError {
        LowerError::Unsupported {
            node: self.name(id),
            op: self.graph.node(id).op.name(),
            scope: self.graph.node(id).scope.clone(),
            reason: reason.into(),
        }
    }

    /// The lowered value of `id`.
    pub fn val(&self, id: NodeId) -> Result<&Val, LowerError> {
        self.vals
            .get(&id)
            .ok_or_else(|| self.unsupported(id, "operand used before it was lowered"))
    }

    /// The chip of node `id` (its pipeline stage), checked against the machine.
    pub fn chip(&self, id: NodeId) -> Result<u32, LowerError> {
        let stage = self.graph.node(id).annot.stage.unwrap_or(0);
        if stage >= self.b.chips {
            return Err(LowerError::StageOutOfRange {
                node: self.name(id),
                scope: self.graph.node(id).scope.clone(),
                stage,
                chips: self.b.chips,
            });
        }
        Ok(stage)
    }

    /// The element type of node `id`'s result, or an error naming it.
    pub fn elem(&self, id: NodeId) -> Result<Elem, LowerError> {
        let dt = self.graph.node(id).ty.dtype;
        elem_of(dt).ok_or_else(|| self.unsupported(id, format!("tile memory has no {dt:?} type")))
    }

    /// Records `layout` as node `id`'s value in a new buffer.
    pub fn define(&mut self, id: NodeId, layout: Layout, pinned: bool) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let eb = node.ty.dtype.size_bytes() as u64;
        let pinned = pinned || self.outputs.contains(&id);
        let uses = self.uses.get(&id).copied().unwrap_or(0);
        self.bufs.push(Buf {
            layout: layout.clone(),
            elem_bytes: eb,
            uses,
            pinned,
            freed: false,
            category: Category::Activations,
        });
        let buf = self.bufs.len() - 1;
        self.vals.insert(
            id,
            Val {
                layout,
                dtype: node.ty.dtype,
                chip: self.chip(id)?,
                buf,
            },
        );
        if uses == 0 && !pinned {
            self.drop_buf(buf)?;
        }
        Ok(())
    }

    /// Node `id` is `of`'s bytes under another shape (reshape).
    pub(crate) fn alias(&mut self, id: NodeId, of: NodeId) -> Result<(), LowerError> {
        let v = self.val(of)?.clone();
        let extra = self.uses.get(&id).copied().unwrap_or(0);
        let pinned = self.outputs.contains(&id);
        if let Some(b) = self.bufs.get_mut(v.buf) {
            b.uses += extra;
            b.pinned |= pinned;
        }
        self.vals.insert(
            id,
            Val {
                chip: self.chip(id)?,
                ..v
            },
        );
        Ok(())
    }

    fn drop_buf(&mut self, buf: usize) -> Result<(), LowerError> {
        let Some(b) = self.bufs.get_mut(buf) else {
            return Ok(());
        };
        if b.freed {
            return Ok(());
        }
        b.freed = true;
        let (layout, eb, category) = (b.layout.clone(), b.elem_bytes, b.category);
        self.b.free_layout_as(&layout, eb, category)
    }

    /// As [`Ctx::define`] for bytes allocated as `category` (freed as such).
    pub(crate) fn define_as(
        &mut self,
        id: NodeId,
        layout: Layout,
        category: Category,
    ) -> Result<(), LowerError> {
        self.define(id, layout, false)?;
        if let Some(b) = self.vals.get(&id).and_then(|v| self.bufs.get_mut(v.buf)) {
            b.category = category;
        }
        Ok(())
    }

    /// A buffer of `layout` (already allocated) owned by no node yet; `pinned` buffers are
    /// only freed by [`Ctx::free_buf_now`].
    pub(crate) fn new_buf(&mut self, layout: Layout, elem_bytes: u64, pinned: bool) -> usize {
        self.bufs.push(Buf {
            layout,
            elem_bytes,
            uses: 0,
            pinned,
            freed: false,
            category: Category::Activations,
        });
        self.bufs.len() - 1
    }

    /// Makes node `id` (already lowered) read buffer `buf` from now on: the bytes of a value
    /// computed in another pipeline segment, copied there.
    pub(crate) fn redirect(&mut self, id: NodeId, buf: usize) {
        let Some(layout) = self.bufs.get(buf).map(|b| b.layout.clone()) else {
            return;
        };
        if let Some(v) = self.vals.get_mut(&id) {
            v.layout = layout;
            v.buf = buf;
        }
    }

    /// Returns buffer `buf`'s bytes to the allocators now, whatever its remaining uses.
    pub(crate) fn free_buf_now(&mut self, buf: usize) -> Result<(), LowerError> {
        self.drop_buf(buf)
    }

    /// Frees buffer `buf` now if no reader is left (pinned or not): a graph output that
    /// has been consumed.
    pub(crate) fn free_buf_if_unread(&mut self, buf: usize) -> Result<(), LowerError> {
        if self.bufs.get(buf).is_some_and(|b| b.uses == 0) {
            self.drop_buf(buf)?;
        }
        Ok(())
    }

    /// The buffer holding node `id`'s value, if it was lowered.
    pub(crate) fn buf_of(&self, id: NodeId) -> Option<usize> {
        self.vals.get(&id).map(|v| v.buf)
    }

    /// Whether the node being lowered, which reads `id` `reads` times, may overwrite `id`'s
    /// bytes: no other read of them is pending and they are an activation (not a weight, an
    /// output, an always-live value or another chip's landed copy).
    pub(crate) fn dies_here(&self, id: NodeId, reads: usize) -> bool {
        self.vals.get(&id).is_some_and(|v| {
            !self.is_landing(v.buf)
                && self.bufs.get(v.buf).is_some_and(|b| {
                    b.uses == reads && !b.pinned && !b.freed && b.category == Category::Activations
                })
        })
    }

    /// Whether node `id` has been lowered.
    pub(crate) fn is_lowered(&self, id: NodeId) -> bool {
        self.vals.contains_key(&id)
    }

    /// One use of `id` is done; frees its bytes after the last one.
    fn release(&mut self, id: NodeId) -> Result<(), LowerError> {
        let Some(buf) = self.vals.get(&id).map(|v| v.buf) else {
            return Ok(());
        };
        let free = match self.bufs.get_mut(buf) {
            Some(b) if b.uses > 0 => {
                b.uses -= 1;
                b.uses == 0 && !b.pinned
            }
            _ => false,
        };
        if free {
            self.drop_buf(buf)?;
        }
        Ok(())
    }

    /// The grain (elements per piece unit) of a linear layout for `shape`: whole rows.
    pub fn grain(shape: &[usize]) -> u64 {
        shape.last().copied().unwrap_or(1).max(1) as u64
    }
}

/// Lowers `graph` to a [`TilePlan`] for `target` (see the module docs).
///
/// Errors: [`LowerError::NoTiles`], [`LowerError::InvalidOption`] (a proportion outside
/// (0, 1]), [`LowerError::StageOutOfRange`] (a stage beyond `opts.chips`),
/// [`LowerError::Unsupported`] (an op without tile vertices), and
/// [`LowerError::OutOfMemory`] unless `opts.allow_oom`.
pub fn lower_program(
    graph: &Graph,
    target: &Target,
    opts: &LowerOptions,
) -> Result<TilePlan, LowerError> {
    let order = graph.topo_order();
    let (mut cx, gather_tables) = Ctx::setup(graph, target, opts, &order, &HashMap::new())?;
    cx.lower_sources(&order, &gather_tables)?;
    for &n in &order {
        cx.lower_node(n)?;
    }
    let outputs: Vec<(String, NodeId)> = graph
        .outputs()
        .iter()
        .map(|o| (o.name.clone(), o.node))
        .collect();
    super::pack::finish(cx, &outputs)
}

/// Checks the options and the target; the number of pipeline stages of `order`.
pub(crate) fn check(
    graph: &Graph,
    target: &Target,
    opts: &LowerOptions,
    order: &[NodeId],
) -> Result<u32, LowerError> {
    if target.tiles_per_chip == 0 {
        return Err(LowerError::NoTiles {
            target: target.name.clone(),
        });
    }
    if !(opts.matmul_proportion > 0.0 && opts.matmul_proportion <= 1.0) {
        return Err(LowerError::InvalidOption {
            option: "matmul_proportion",
            reason: format!("{} is not in (0, 1]", opts.matmul_proportion),
        });
    }
    Ok(order
        .iter()
        .map(|&n| graph.node(n).annot.stage.unwrap_or(0))
        .max()
        .map_or(1, |s| s + 1))
}

impl<'g> Ctx<'g> {
    /// A fresh lowering of `graph` (nodes in `order`), with `extra_uses` added to the
    /// operand counts; returns it with the gather tables (looked through casts).
    pub(crate) fn setup(
        graph: &'g Graph,
        target: &'g Target,
        opts: &'g LowerOptions,
        order: &[NodeId],
        extra_uses: &HashMap<NodeId, usize>,
    ) -> Result<(Self, Vec<NodeId>), LowerError> {
        let stages = check(graph, target, opts, order)?;
        let chips = if opts.chips == 0 { stages } else { opts.chips };
        let mut uses: HashMap<NodeId, usize> = extra_uses.clone();
        let mut chip_uses: HashMap<(NodeId, u32), usize> = HashMap::new();
        let mut gather_tables = Vec::new();
        let mut lookups: HashMap<NodeId, u64> = HashMap::new();
        for &n in order {
            let ops = graph.operands(n);
            if matches!(graph.node(n).op, Op::Gather { .. }) {
                let count = ops
                    .get(1)
                    .map_or(0, |&i| graph.node(i).ty.num_elements() as u64);
                // The table, looking through casts (fp16 working copies of an f32 table): the
                // parameter gets column blocks and the casts keep them.
                let mut t = ops.first().copied();
                while let Some(id) = t {
                    gather_tables.push(id);
                    let l = lookups.entry(id).or_default();
                    *l = (*l).max(count);
                    t = match graph.node(id).op {
                        Op::Cast { .. } => graph.operands(id).first().copied(),
                        _ => None,
                    };
                }
            }
            let chip = graph.node(n).annot.stage.unwrap_or(0);
            for o in ops {
                *uses.entry(o).or_default() += 1;
                *chip_uses.entry((o, chip)).or_default() += 1;
            }
        }
        let cx = Ctx {
            graph,
            target,
            opts,
            b: Builder::new(chips, target.tiles_per_chip),
            vals: HashMap::new(),
            bufs: Vec::new(),
            names: graph.value_names(),
            uses,
            outputs: graph.outputs().iter().map(|o| o.node).collect(),
            load_buffers: Vec::new(),
            load_copies: Vec::new(),
            load_fills: Vec::new(),
            params: Vec::new(),
            constants: Vec::new(),
            step_buffers: Vec::new(),
            step_in: Vec::new(),
            inputs: Vec::new(),
            mm_plans: HashMap::new(),
            mm_groups: HashMap::new(),
            weights: HashMap::new(),
            lookups,
            chip_uses,
            landings: HashMap::new(),
        };
        Ok((cx, gather_tables))
    }

    /// Weights laid out for their matmuls, then every source (always-live bytes at the bottom
    /// of every tile). Returns each graph input's stream copies (also in `step_in`).
    pub(crate) fn lower_sources(
        &mut self,
        order: &[NodeId],
        gather_tables: &[NodeId],
    ) -> Result<HashMap<NodeId, Vec<StreamCopy>>, LowerError> {
        for (w, layout, blocks) in self.plan_weights(order, gather_tables)? {
            self.weights.insert(w, (layout, blocks));
        }
        let mut streams = HashMap::new();
        for &n in order {
            if self.graph.node(n).op.is_leaf() {
                let before = self.step_in.len();
                self.lower_source(n, gather_tables)?;
                if matches!(self.graph.node(n).op, Op::Input { .. }) {
                    streams.insert(n, self.step_in.get(before..).unwrap_or_default().to_vec());
                }
            }
        }
        Ok(streams)
    }

    /// Lowers one non-source node and releases its operands (sources are skipped).
    pub(crate) fn lower_node(&mut self, n: NodeId) -> Result<(), LowerError> {
        let graph = self.graph;
        let node = graph.node(n);
        let operands = graph.operands(n);
        let chip = self.chip(n)?;
        let swapped = match &node.op {
            Op::Param { .. } | Op::Input { .. } | Op::Full { .. } | Op::Iota { .. } => {
                return Ok(())
            }
            Op::Reshape { .. } => Vec::new(),
            _ => self.land_operands(n, chip, &operands)?,
        };
        let result = self.dispatch(n, &operands);
        self.unswap(swapped);
        result?;
        for o in operands {
            self.release(o)?;
            self.landing_read(o, chip)?;
        }
        Ok(())
    }

    /// Emits node `n`'s vertices and exchanges (its operands already where it reads them).
    fn dispatch(&mut self, n: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let node = self.graph.node(n);
        let operands = operands.to_vec();
        match &node.op {
            Op::Param { .. } | Op::Input { .. } | Op::Full { .. } | Op::Iota { .. } => {
                return Ok(())
            }
            Op::Reshape { .. } => {
                let src = *operands
                    .first()
                    .ok_or_else(|| self.unsupported(n, "reshape without operand"))?;
                self.alias(n, src)?;
            }
            Op::Unary(_) | Op::Binary(_) | Op::Cast { .. } | Op::Compare(_) | Op::Select => {
                self.elementwise(n, &operands)?
            }
            Op::Reduce { .. } => self.reduce(n, &operands)?,
            Op::ScatterAdd { .. } => self.scatter_add(n, &operands)?,
            Op::Pad { .. } => self.pad(n, &operands)?,
            Op::Transpose { .. } | Op::Slice { .. } | Op::BroadcastTo { .. } => {
                self.movement(n, &operands)?
            }
            Op::Softmax | Op::LayerNorm { .. } => self.rows(n, &operands)?,
            Op::Gather { .. } => self.gather(n, &operands)?,
            Op::MatMul { .. } => self.matmul(n, &operands)?,
            _ => {
                return Err(self.unsupported(
                    n,
                    "the tile lowering covers LXMERT's forward and backward ops (matmul, \
                     elementwise, reductions, softmax, layer_norm, gather, scatter_add, pad, \
                     data movement)",
                ))
            }
        }
        Ok(())
    }
}

impl Ctx<'_> {
    /// The value of every graph output, with its name.
    pub(crate) fn output_vals(
        &self,
        outputs: &[(String, NodeId)],
    ) -> Result<Vec<(String, Val, tessera_ir::TensorType)>, LowerError> {
        outputs
            .iter()
            .map(|(name, id)| {
                Ok((
                    name.clone(),
                    self.val(*id)?.clone(),
                    self.graph.node(*id).ty.clone(),
                ))
            })
            .collect()
    }
}
