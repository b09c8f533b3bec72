//! Emitters for elementwise ops, data movement, and row ops (softmax, layer norm).
//!
//! Each output piece is computed on the tile that holds it. An operand whose elements for the
//! piece already sit contiguously on that tile is read in place; otherwise an exchange copies
//! exactly the elements the vertex reads into a scratch block on the tile, freed after the
//! compute. A suffix-broadcast operand (a bias, a scalar, a mask row) is copied once per piece
//! and read cyclically by the vertex.

use super::access::Access;
use super::builder::{emit_runs, to_u32, Category, Stage};
use super::layout::{Layout, Piece, Segment};
use super::lowering::{Ctx, Val};
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::{Exchange, Region, TileRef};
use tessera_runtime::vertex::{Elem, Vertex};

/// Scratch blocks of one op, freed after its compute, and the on-tile expansions its
/// operands need before its vertex runs.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub blocks: Vec<(TileRef, u64, u64, Category)>,
    /// [`Vertex::Expand`]s of trailing-broadcast operands, to run (on their tile, in the same
    /// compute set) before the vertex that reads them: callers move them into their work
    /// list with [`Scratch::take_expansions`] before pushing the op's vertex.
    pub expansions: Vec<(TileRef, Vertex)>,
}

impl Scratch {
    /// The expansions collected since the last call.
    pub fn take_expansions(&mut self) -> Vec<(TileRef, Vertex)> {
        std::mem::take(&mut self.expansions)
    }
}

impl Ctx<'_> {
    /// A region on `tile` holding the operand elements that output elements `[s, e)` read
    /// through `access` (cyclically, if `cyclic` and the access is a suffix broadcast that the
    /// range is aligned to). Copies go to `copies`, scratch blocks to `scratch`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn operand_on(
        &mut self,
        v: &Val,
        access: &Access,
        tile: TileRef,
        (s, e): (u64, u64),
        cyclic: bool,
        copies: &mut Vec<Exchange>,
        scratch: &mut Scratch,
        name: &str,
    ) -> Result<Region, LowerError> {
        let eb = v.eb();
        let period = access
            .period()
            .filter(|&l| cyclic && s % l == 0 && (e - s) % l == 0 && l < e - s);
        if period.is_none() {
            let elem = super::lowering::elem_of(v.dtype);
            if let (Some((compact, r)), Some(elem)) = (access.inner_repeat(), elem) {
                if s % r == 0 && e % r == 0 && e > s {
                    let within = (s / r, e / r);
                    return self.expanded_on(
                        v,
                        (&compact, r, elem),
                        tile,
                        within,
                        (copies, scratch),
                        name,
                    );
                }
            }
        }
        let runs = match period {
            Some(l) => access.runs(0, l),
            None => access.runs(s, e),
        };
        if let [(first, len)] = runs.as_slice() {
            let mut segs: Vec<Segment> = Vec::new();
            v.layout.segments(*first, *len, eb, &mut segs);
            if let [seg] = segs.as_slice() {
                if seg.tile == tile && seg.len == *len {
                    return Ok(Region::new(
                        to_u32(seg.offset, "offset")?,
                        to_u32(len * eb, "length")?,
                    ));
                }
            }
        }
        let total: u64 = runs.iter().map(|r| r.1).sum();
        let bytes = total * eb;
        let offset = self.b.alloc(tile, bytes, name, Category::ExchangeBuffers)?;
        scratch
            .blocks
            .push((tile, offset, bytes, Category::ExchangeBuffers));
        emit_runs(copies, &v.layout, eb, &runs, tile, offset)?;
        Ok(Region::new(
            to_u32(offset, "offset")?,
            to_u32(bytes, "length")?,
        ))
    }

    /// A trailing-broadcast operand for output elements `[s·r, e·r)`: its compact elements
    /// `[s, e)` of `compact` (read in place or exchanged in one run per source segment), then
    /// a [`Vertex::Expand`] on `tile` into a scratch block of `r` copies of each.
    fn expanded_on(
        &mut self,
        v: &Val,
        (compact, r, elem): (&Access, u64, Elem),
        tile: TileRef,
        (s, e): (u64, u64),
        (copies, scratch): (&mut Vec<Exchange>, &mut Scratch),
        name: &str,
    ) -> Result<Region, LowerError> {
        let src = self.operand_on(v, compact, tile, (s, e), false, copies, scratch, name)?;
        let bytes = (e - s) * r * v.eb();
        let offset = self.b.alloc(tile, bytes, name, Category::ExchangeBuffers)?;
        scratch
            .blocks
            .push((tile, offset, bytes, Category::ExchangeBuffers));
        let dst = Region::new(to_u32(offset, "offset")?, to_u32(bytes, "length")?);
        scratch.expansions.push((
            tile,
            Vertex::Expand {
                elem,
                repeat: to_u32(r, "repeat")?,
                src,
                dst,
            },
        ));
        Ok(dst)
    }

    /// The regions of every operand for output piece `p` (see [`Ctx::operand_on`]) and their
    /// total bytes.
    fn operands_on(
        &mut self,
        vals: &[Val],
        accesses: &[Access],
        p: &Piece,
        cyclic: bool,
        (copies, scratch): (&mut Vec<Exchange>, &mut Scratch),
        label: &str,
    ) -> Result<(Vec<Region>, u64), LowerError> {
        let mut regions = Vec::with_capacity(vals.len());
        let mut bytes = 0;
        for (v, a) in vals.iter().zip(accesses) {
            let r = self.operand_on(
                v,
                a,
                p.tile,
                (p.start, p.end),
                cyclic,
                copies,
                scratch,
                &format!("operand of {label}"),
            )?;
            bytes += u64::from(r.len);
            regions.push(r);
        }
        Ok((regions, bytes))
    }

    /// Frees an op's scratch blocks.
    pub(crate) fn free_scratch(&mut self, scratch: Scratch) -> Result<(), LowerError> {
        for (tile, offset, bytes, category) in scratch.blocks {
            self.b.free(tile, offset, bytes, category)?;
        }
        Ok(())
    }

    /// Pushes an exchange stage (if any copies) and a compute stage (if any work).
    pub(crate) fn push_stages(
        &mut self,
        label: &str,
        mut copies: Vec<Exchange>,
        work: Vec<(TileRef, Vertex)>,
    ) {
        // The plan keeps every copy list: no spare capacity (a large training plan holds
        // hundreds of millions of copies).
        copies.shrink_to_fit();
        if !copies.is_empty() {
            self.b.stages.push(Stage::Exchange {
                label: label.to_string(),
                copies,
            });
            self.b.snapshot();
        }
        if !work.is_empty() {
            self.b.stages.push(Stage::Compute {
                label: label.to_string(),
                work,
            });
            self.b.snapshot();
        }
    }

    /// The output layout of an op computed piecewise: the pieces of a same-shaped operand on
    /// the same chip whose pieces are whole `row`s, else a fresh linear layout.
    fn output_layout(
        &mut self,
        id: NodeId,
        operands: &[NodeId],
        row: u64,
    ) -> Result<Layout, LowerError> {
        let node = self.graph.node(id);
        let shape = node.ty.shape.to_vec();
        let eb = node.ty.dtype.size_bytes() as u64;
        let chip = self.chip(id)?;
        let name = self.label(id);
        let like: Option<Vec<Piece>> = operands.iter().find_map(|&o| {
            let v = self.val(o).ok()?;
            let same = self.graph.node(o).ty.shape.to_vec() == shape && v.chip == chip;
            let pieces = v.layout.pieces()?;
            let aligned = pieces
                .iter()
                .all(|p| p.start % row == 0 && (p.end - p.start) % row == 0);
            (same && aligned).then(|| pieces.to_vec())
        });
        match like {
            Some(pieces) => self.b.alloc_like(&pieces, eb, &name),
            None => {
                let n = node.ty.num_elements() as u64;
                self.b
                    .alloc_linear(chip, n, eb, row, &name, Category::Activations)
            }
        }
    }

    /// Unary, binary and cast ops.
    pub(crate) fn elementwise(
        &mut self,
        id: NodeId,
        operands: &[NodeId],
    ) -> Result<(), LowerError> {
        if self.elementwise_columns(id, operands)? {
            return Ok(());
        }
        let node = self.graph.node(id);
        let op = node.op.clone();
        let shape = node.ty.shape.to_vec();
        let out_elem = self.elem(id)?;
        let label = self.label(id);
        let row = Self::grain(&shape);
        let layout = self.output_layout(id, operands, row)?;
        let vals: Vec<Val> = operands
            .iter()
            .map(|&o| self.val(o).cloned())
            .collect::<Result<_, _>>()?;
        let accesses: Vec<Access> = operands
            .iter()
            .map(|&o| Access::broadcast(&self.graph.node(o).ty.shape, &shape))
            .collect();
        let in_elems = operands
            .iter()
            .map(|&o| self.elem(o))
            .collect::<Result<Vec<_>, _>>()?;
        let pieces = layout.pieces().unwrap_or(&[]).to_vec();
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let out_eb = node.ty.dtype.size_bytes() as u64;
        for p in &pieces {
            let dst = Region::new(
                to_u32(p.offset, "offset")?,
                to_u32((p.end - p.start) * out_eb, "length")?,
            );
            let cyclic = matches!(op, Op::Binary(_) | Op::Compare(_) | Op::Select);
            let (regions, bytes) = self.operands_on(
                &vals,
                &accesses,
                p,
                cyclic,
                (&mut copies, &mut scratch),
                &label,
            )?;
            let bytes = bytes + u64::from(dst.len);
            let vertex = elementwise_vertex(&op, &regions, &in_elems, out_elem, dst)
                .ok_or_else(|| self.unsupported(id, "unexpected operands"))?;
            self.b.note_vertex(p.tile, &label, bytes)?;
            work.extend(scratch.take_expansions());
            work.push((p.tile, vertex));
        }
        self.push_stages(&label, copies, work);
        self.free_scratch(scratch)?;
        self.define(id, layout, false)
    }

    /// Transpose, slice and broadcast: exchange only (identity maps alias their operand).
    pub(crate) fn movement(&mut self, id: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let src = *operands
            .first()
            .ok_or_else(|| self.unsupported(id, "no operand"))?;
        let in_shape = self.graph.node(src).ty.shape.to_vec();
        let access = match &node.op {
            Op::Transpose { perm } => Access::transpose(&in_shape, perm),
            Op::Slice { axis, start, end } => Access::slice(&in_shape, *axis, *start, *end),
            Op::BroadcastTo { shape } => Access::broadcast(&in_shape, shape),
            _ => return Err(self.unsupported(id, "not a data-movement op")),
        };
        let v = self.val(src)?.clone();
        let chip = self.chip(id)?;
        // Only a whole operand is aliased: a leading part (a shard of a weight's rows) would
        // carry the whole operand's layout, whose pieces ops take for their results.
        let whole = node.ty.num_elements() == self.graph.node(src).ty.num_elements();
        if access.is_identity() && whole && v.chip == chip && !self.is_landing(v.buf) {
            return self.alias(id, src);
        }
        let shape = node.ty.shape.to_vec();
        let eb = v.eb();
        let n = node.ty.num_elements() as u64;
        let name = self.label(id);
        let layout = self.b.alloc_linear(
            chip,
            n,
            eb,
            Self::grain(&shape),
            &name,
            Category::Activations,
        )?;
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let repeat = access.inner_repeat().zip(super::lowering::elem_of(v.dtype));
        for p in layout.pieces().unwrap_or(&[]) {
            // A trailing broadcast: the compact elements once, expanded on the tile.
            if let Some(((compact, r), elem)) = &repeat {
                if p.start % r == 0 && p.end % r == 0 && p.end > p.start {
                    let src = self.operand_on(
                        &v,
                        compact,
                        p.tile,
                        (p.start / r, p.end / r),
                        false,
                        &mut copies,
                        &mut scratch,
                        &name,
                    )?;
                    let dst = Region::new(
                        to_u32(p.offset, "offset")?,
                        to_u32((p.end - p.start) * eb, "length")?,
                    );
                    self.b
                        .note_vertex(p.tile, &name, u64::from(src.len) + u64::from(dst.len))?;
                    let repeat = to_u32(*r, "repeat")?;
                    work.push((
                        p.tile,
                        Vertex::Expand {
                            elem: *elem,
                            repeat,
                            src,
                            dst,
                        },
                    ));
                    continue;
                }
            }
            let runs = access.runs(p.start, p.end);
            emit_runs(&mut copies, &v.layout, eb, &runs, p.tile, p.offset)?;
        }
        self.push_stages(&name, copies, work);
        self.free_scratch(scratch)?;
        self.define(id, layout, false)
    }

    /// Softmax and layer norm over the last axis, on whole rows per tile.
    pub(crate) fn rows(&mut self, id: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let op = node.op.clone();
        let shape = node.ty.shape.to_vec();
        let elem = self.elem(id)?;
        let cols = Self::grain(&shape);
        let label = self.label(id);
        let layout = self.output_layout(id, &operands[..1.min(operands.len())], cols)?;
        let vals: Vec<Val> = operands
            .iter()
            .map(|&o| self.val(o).cloned())
            .collect::<Result<_, _>>()?;
        let accesses: Vec<Access> = operands
            .iter()
            .map(|&o| Access::broadcast(&self.graph.node(o).ty.shape, &shape))
            .collect();
        let eb = node.ty.dtype.size_bytes() as u64;
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let pieces = layout.pieces().unwrap_or(&[]).to_vec();
        let cols32 = to_u32(cols, "row length")?;
        for p in &pieces {
            let dst = Region::new(
                to_u32(p.offset, "offset")?,
                to_u32((p.end - p.start) * eb, "length")?,
            );
            let (regions, bytes) = self.operands_on(
                &vals,
                &accesses,
                p,
                true,
                (&mut copies, &mut scratch),
                &label,
            )?;
            let bytes = bytes + u64::from(dst.len);
            let vertex = match (&op, regions.as_slice()) {
                (Op::Softmax, [src]) => Vertex::Softmax {
                    elem,
                    cols: cols32,
                    src: *src,
                    dst,
                },
                (Op::LayerNorm { eps }, [x, gamma, beta]) => Vertex::LayerNorm {
                    elem,
                    cols: cols32,
                    eps: *eps,
                    x: *x,
                    gamma: *gamma,
                    beta: *beta,
                    dst,
                },
                _ => return Err(self.unsupported(id, "unexpected operands")),
            };
            self.b.note_vertex(p.tile, &label, bytes)?;
            work.extend(scratch.take_expansions());
            work.push((p.tile, vertex));
        }
        self.push_stages(&label, copies, work);
        self.free_scratch(scratch)?;
        self.define(id, layout, false)
    }
}

/// The vertex computing elementwise `op` into `dst` from operand `regions` (of types
/// `in_elems`), or `None` for an op or operand count it does not take.
pub(crate) fn elementwise_vertex(
    op: &Op,
    regions: &[Region],
    in_elems: &[Elem],
    out_elem: Elem,
    dst: Region,
) -> Option<Vertex> {
    Some(match (op, regions, in_elems) {
        (Op::Unary(u), [src], _) => Vertex::Unary {
            op: *u,
            elem: out_elem,
            src: *src,
            dst,
        },
        (Op::Binary(b), [a, bb], _) => Vertex::Binary {
            op: *b,
            elem: out_elem,
            a: *a,
            b: *bb,
            dst,
        },
        (Op::Compare(c), [a, bb], [from, _]) => Vertex::Compare {
            op: *c,
            elem: *from,
            a: *a,
            b: *bb,
            dst,
        },
        (Op::Select, [cond, a, bb], _) => Vertex::Select {
            elem: out_elem,
            cond: *cond,
            a: *a,
            b: *bb,
            dst,
        },
        (Op::Cast { .. }, [src], [from]) if *from == out_elem => Vertex::Copy { src: *src, dst },
        (Op::Cast { .. }, [src], [from]) => Vertex::Cast {
            from: *from,
            to: out_elem,
            src: *src,
            dst,
        },
        _ => return None,
    })
}
