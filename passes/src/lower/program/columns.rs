//! Elementwise ops on a value laid out in column blocks (an embedding table, its fp16
//! working copy, its gradient): the result keeps the blocks, one vertex per block.
//!
//! The table's gradient is `select(row == padding_idx, 0, scatter_add(...))`: in a linear
//! result layout each block row would be one exchange copy (30,522 rows × 384 blocks = 11.7 M
//! copies for lxmert-base's word embeddings). Kept in the blocks, the table operand is read
//! in place; a scalar operand is fetched once per block and read cyclically; a per-row
//! operand (`[rows, 1]`, the padding mask) is fetched once per block and expanded on the
//! tile by a `Vertex::Expand`. A table operand of the result's type whose last read this is
//! is overwritten in place. Any other operand, a graph output (streamed to the host from a
//! linear layout), and a new result whose blocks would outgrow the quarter tile the table's
//! blocks were sized into (an f32 copy of an fp16 table), fall back to the linear layout.

use super::builder::{to_u32, Category};
use super::layout::{ColBlock, Layout};
use super::lowering::{elem_of, Ctx, Val};
use super::ops::{elementwise_vertex, Scratch};
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::Region;
use tessera_runtime::vertex::Vertex;

/// How one operand is read by the blocks.
enum Role {
    /// The same blocks, read in place.
    Blocks(Vec<ColBlock>),
    /// One element, read cyclically.
    Scalar,
    /// One element per row, expanded across the block's columns.
    PerRow,
}

impl Ctx<'_> {
    /// Lowers elementwise op `id` block by block when one operand has the result's shape in
    /// column blocks and every other is one of the shapes the module docs list; `Ok(false)`,
    /// emitting nothing, otherwise.
    pub(crate) fn elementwise_columns(
        &mut self,
        id: NodeId,
        operands: &[NodeId],
    ) -> Result<bool, LowerError> {
        let node = self.graph.node(id);
        let op = node.op.clone();
        let shape = node.ty.shape.to_vec();
        let [rows, _] = shape[..] else {
            return Ok(false);
        };
        let rows = rows as u64;
        let cyclic = matches!(op, Op::Binary(_) | Op::Compare(_) | Op::Select);
        // Outputs stream to the host from a linear layout.
        if !(cyclic || matches!(op, Op::Unary(_) | Op::Cast { .. })) || self.is_output(id) {
            return Ok(false);
        }
        let chip = self.chip(id)?;
        let mut blocks: Option<(u64, Vec<ColBlock>)> = None;
        let mut roles = Vec::with_capacity(operands.len());
        for &o in operands {
            let v = self.val(o)?;
            let o_shape = &self.graph.node(o).ty.shape;
            let role = match &v.layout {
                Layout::Columns {
                    cols, blocks: b, ..
                } if o_shape.to_vec() == shape && v.chip == chip => {
                    let same = |x: &[ColBlock], y: &[ColBlock]| {
                        x.len() == y.len()
                            && x.iter()
                                .zip(y)
                                .all(|(p, q)| (p.c0, p.c1, p.tile) == (q.c0, q.c1, q.tile))
                    };
                    if blocks.as_ref().is_some_and(|(_, first)| !same(first, b)) {
                        return Ok(false);
                    }
                    blocks.get_or_insert((*cols, b.clone()));
                    Role::Blocks(b.clone())
                }
                _ if o_shape.iter().product::<usize>() == 1 && cyclic => Role::Scalar,
                _ if o_shape.to_vec() == [shape[0], 1] && cyclic => Role::PerRow,
                _ => return Ok(false),
            };
            roles.push(role);
        }
        let Some((cols, layout_blocks)) = blocks else {
            return Ok(false);
        };
        let out_elem = self.elem(id)?;
        let out_eb = u64::from(out_elem.size());
        let in_elems = operands
            .iter()
            .map(|&o| self.elem(o))
            .collect::<Result<Vec<_>, _>>()?;
        let vals: Vec<Val> = operands
            .iter()
            .map(|&o| self.val(o).cloned())
            .collect::<Result<_, _>>()?;
        let label = self.label(id);
        // A table operand of the result's type read only here is overwritten in place (the
        // table's gradient is as large as the table: a second copy would crowd its tiles).
        let dtype = node.ty.dtype;
        let cast = matches!(op, Op::Cast { .. });
        let in_place = operands
            .iter()
            .zip(&roles)
            .zip(&vals)
            .position(|((&o, role), v)| {
                !cast
                    && matches!(role, Role::Blocks(_))
                    && v.dtype == dtype
                    && self.dies_here(o, operands.iter().filter(|&&x| x == o).count())
            });
        // A new result block wider than the table's own (a cast to f32 of an fp16 table, as
        // the optimizer makes) would not fit the quarter tile the blocks were sized into:
        // such a result is spread linearly over the chip instead.
        let widest = layout_blocks.iter().map(|b| b.c1 - b.c0).max().unwrap_or(0);
        if in_place.is_none() && rows * widest * out_eb > self.target.bytes_per_tile / 4 {
            return Ok(false);
        }
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let mut out = Vec::with_capacity(layout_blocks.len());
        for (bi, b) in layout_blocks.iter().enumerate() {
            let w = b.c1 - b.c0;
            let n = rows * w;
            let offset = match in_place.and_then(|i| roles.get(i)) {
                Some(Role::Blocks(bs)) => bs.get(bi).map_or(b.offset, |x| x.offset),
                _ => self
                    .b
                    .alloc(b.tile, n * out_eb, &label, Category::Activations)?,
            };
            let dst = Region::new(to_u32(offset, "offset")?, to_u32(n * out_eb, "length")?);
            let mut regions = Vec::with_capacity(roles.len());
            let mut bytes = u64::from(dst.len);
            for ((role, v), elem) in roles.iter().zip(&vals).zip(&in_elems) {
                let eb = v.eb();
                let r = match role {
                    Role::Blocks(bs) => {
                        let at = bs.get(bi).map_or(b.offset, |x| x.offset);
                        Region::new(to_u32(at, "offset")?, to_u32(n * eb, "length")?)
                    }
                    Role::Scalar => {
                        self.fetch(v, &[(0, 1)], b.tile, &mut copies, &mut scratch, &label)?
                    }
                    Role::PerRow => {
                        let src =
                            self.fetch(v, &[(0, rows)], b.tile, &mut copies, &mut scratch, &label)?;
                        if w == 1 {
                            src
                        } else {
                            let at =
                                self.b
                                    .alloc(b.tile, n * eb, &label, Category::ExchangeBuffers)?;
                            scratch
                                .blocks
                                .push((b.tile, at, n * eb, Category::ExchangeBuffers));
                            let to = Region::new(to_u32(at, "offset")?, to_u32(n * eb, "length")?);
                            let elem = elem_of(v.dtype).unwrap_or(*elem);
                            scratch.expansions.push((
                                b.tile,
                                Vertex::Expand {
                                    elem,
                                    repeat: to_u32(w, "repeat")?,
                                    src,
                                    dst: to,
                                },
                            ));
                            to
                        }
                    }
                };
                bytes += u64::from(r.len);
                regions.push(r);
            }
            let vertex = elementwise_vertex(&op, &regions, &in_elems, out_elem, dst)
                .ok_or_else(|| self.unsupported(id, "unexpected operands"))?;
            self.b.note_vertex(b.tile, &label, bytes)?;
            work.extend(scratch.take_expansions());
            work.push((b.tile, vertex));
            out.push(ColBlock { offset, ..*b });
        }
        self.push_stages(&label, copies, work);
        self.free_scratch(scratch)?;
        if let Some(&o) = in_place.and_then(|i| operands.get(i)) {
            return self.alias(id, o).map(|()| true);
        }
        let layout = Layout::Columns {
            rows,
            cols,
            blocks: out,
        };
        self.define(id, layout, false)?;
        Ok(true)
    }
}
