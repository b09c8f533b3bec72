//! Reductions of rows too large for one tile: reduced where they lie, then across tiles.
//!
//! A single-level reduction brings each output element's whole row to the output's tile.
//! For a row of millions of elements (the optimizer's global gradient norm sums the squares
//! of a whole weight) that is more than a tile holds. When the reduced axes are the trailing
//! ones (each row is contiguous in the operand's flat order), each row is cut at the
//! operand's own pieces: every tile reduces the part of the row it already holds into one
//! partial result (no exchange), and the partials — one per piece — are gathered on the
//! output's tile and reduced again, as popops' multi-stage reductions do. Partials are kept
//! in the result's type, so the result is rounded once per stage instead of once (sums
//! differ from the single-level order by rounding only).

use super::builder::{emit_runs, to_u32, Category};
use super::layout::Segment;
use super::lowering::{Ctx, Val};
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, ReduceKind};
use tessera_runtime::program::{Region, TileRef};
use tessera_runtime::vertex::{Elem, Vertex};

/// A reduction whose operand is viewed as a row-major `[rows, cols]` matrix: a two-level
/// reduction (here) reduces each row, a column reduction ([`super::reduce_cols`]) each
/// column.
pub(crate) struct Reduction<'a> {
    /// The reduction node.
    pub id: NodeId,
    /// Its operand's value (flat element `r·cols + c` is row `r`, column `c`).
    pub src: &'a Val,
    /// Sum or max (a mean's second stage would divide by the wrong count).
    pub kind: ReduceKind,
    /// Element type of operand and result.
    pub elem: Elem,
    /// Rows of the view.
    pub rows: u64,
    /// Columns of the view.
    pub cols: u64,
}

impl Ctx<'_> {
    /// A partial result of `bytes` on segment `seg`'s tile, to be reduced from the segment
    /// where it lies: allocates it (recorded in `temps` for the caller to free), notes the
    /// vertex's operands, and returns the vertex's source and destination regions.
    pub(crate) fn partial_of(
        &mut self,
        seg: &Segment,
        bytes: u64,
        eb: u64,
        label: &str,
        temps: &mut Vec<(TileRef, u64, u64)>,
    ) -> Result<(Region, Region), LowerError> {
        let at = self
            .b
            .alloc(seg.tile, bytes, label, Category::ExchangeBuffers)?;
        temps.push((seg.tile, at, bytes));
        let src = Region::new(
            to_u32(seg.offset, "offset")?,
            to_u32(seg.len * eb, "length")?,
        );
        let dst = Region::new(to_u32(at, "offset")?, to_u32(bytes, "length")?);
        self.b
            .note_vertex(seg.tile, label, u64::from(src.len) + bytes)?;
        Ok((src, dst))
    }

    /// Lowers `r` as a two-level reduction (see the module docs) and defines its value.
    pub(crate) fn reduce_tree(&mut self, r: &Reduction<'_>) -> Result<(), LowerError> {
        let label = self.label(r.id);
        let chip = self.chip(r.id)?;
        let eb = u64::from(r.elem.size());
        // Stage 1: one partial per (row, operand segment), on the segment's tile.
        let mut partials: Vec<Vec<(TileRef, u64)>> = Vec::with_capacity(r.rows as usize);
        let mut work = Vec::new();
        let mut stage1: Vec<(TileRef, u64, u64)> = Vec::new();
        for row in 0..r.rows {
            let mut segs: Vec<Segment> = Vec::new();
            r.src.layout.segments(row * r.cols, r.cols, eb, &mut segs);
            let mut mine = Vec::with_capacity(segs.len());
            for s in segs {
                let (src, dst) = self.partial_of(&s, eb, eb, &label, &mut stage1)?;
                work.push((
                    s.tile,
                    Vertex::ReduceRows {
                        kind: r.kind,
                        elem: r.elem,
                        cols: to_u32(s.len, "reduced elements")?,
                        src,
                        dst,
                    },
                ));
                mine.push((s.tile, u64::from(dst.offset)));
            }
            partials.push(mine);
        }
        self.push_stages(&format!("{label} (partials)"), Vec::new(), work);

        // Stage 2: each row's partials gathered on its output element's tile and reduced.
        let layout = self
            .b
            .alloc_linear(chip, r.rows, eb, 1, &label, Category::Activations)?;
        let (mut copies, mut work, mut stage2) = (Vec::new(), Vec::new(), Vec::new());
        for p in layout.pieces().unwrap_or(&[]) {
            for row in p.start..p.end {
                let parts = partials.get(row as usize).map_or(&[][..], |v| v.as_slice());
                let bytes = parts.len() as u64 * eb;
                let at = self
                    .b
                    .alloc(p.tile, bytes.max(eb), &label, Category::ExchangeBuffers)?;
                stage2.push((p.tile, at, bytes.max(eb)));
                for (k, &(tile, off)) in parts.iter().enumerate() {
                    let one = super::layout::Layout::Linear(vec![super::layout::Piece {
                        start: 0,
                        end: 1,
                        tile,
                        offset: off,
                    }]);
                    emit_runs(&mut copies, &one, eb, &[(0, 1)], p.tile, at + k as u64 * eb)?;
                }
                let dst_at = p.offset + (row - p.start) * eb;
                self.b.note_vertex(p.tile, &label, bytes + eb)?;
                work.push((
                    p.tile,
                    Vertex::ReduceRows {
                        kind: r.kind,
                        elem: r.elem,
                        cols: to_u32(parts.len() as u64, "partials")?,
                        src: Region::new(to_u32(at, "offset")?, to_u32(bytes, "length")?),
                        dst: Region::new(to_u32(dst_at, "offset")?, to_u32(eb, "length")?),
                    },
                ));
            }
        }
        self.push_stages(&label, copies, work);
        for (tile, at, bytes) in stage1.into_iter().chain(stage2) {
            self.b.free(tile, at, bytes, Category::ExchangeBuffers)?;
        }
        self.define(r.id, layout, false)
    }
}
