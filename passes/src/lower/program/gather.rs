//! Embedding lookups on tiles, the way popops' `multiSlice` does it when it splits the
//! embedding (unsliced) dimension: every tile that holds a column block of the table receives
//! all indices, looks up its columns of every requested row with a `Gather` vertex, and the
//! blocks are then exchanged into the output's row layout. All exchanges are static: no copy
//! depends on the index values.

use super::builder::{to_u32, Category};
use super::layout::Layout;
use super::lowering::Ctx;
use super::ops::Scratch;
use crate::lower::error::LowerError;
use tessera_ir::NodeId;
use tessera_runtime::program::{Exchange, Region, TileRegion};
use tessera_runtime::vertex::{Elem, Vertex};

impl Ctx<'_> {
    /// `gather(table[V, H], indices[...]) -> [..., H]`.
    pub(crate) fn gather(&mut self, id: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let [table_id, idx_id] = operands else {
            return Err(self.unsupported(id, "gather takes a table and indices"));
        };
        let table = self.val(*table_id)?.clone();
        let idx = self.val(*idx_id)?.clone();
        let Layout::Columns { rows, cols, blocks } = table.layout.clone() else {
            return Err(self.unsupported(
                id,
                "the table must be a 2-D parameter (laid out in column blocks)",
            ));
        };
        let elem = self.elem(id)?;
        if self.elem(*idx_id)? != Elem::I64 {
            return Err(self.unsupported(id, "indices must be i64"));
        }
        let label = self.label(id);
        let node = self.graph.node(id);
        let eb = node.ty.dtype.size_bytes() as u64;
        let n = self.graph.node(*idx_id).ty.num_elements() as u64;
        let chip = self.chip(id)?;
        let name = self.label(id);

        // Stage 1: indices to every block's tile; a lookup vertex per block.
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let mut outs = Vec::with_capacity(blocks.len());
        for b in &blocks {
            let width = b.c1 - b.c0;
            let indices = self.fetch(
                &idx,
                &[(0, n)],
                b.tile,
                &mut copies,
                &mut scratch,
                &format!("indices of {label}"),
            )?;
            let out_bytes = n * width * eb;
            let out = self.b.alloc(
                b.tile,
                out_bytes,
                &format!("lookup of {label}"),
                Category::Temporaries,
            )?;
            scratch
                .blocks
                .push((b.tile, out, out_bytes, Category::Temporaries));
            outs.push(out);
            self.b
                .note_vertex(b.tile, &label, out_bytes + u64::from(indices.len))?;
            work.push((
                b.tile,
                Vertex::Gather {
                    elem,
                    rows: to_u32(rows, "table rows")?,
                    width: to_u32(width, "block width")?,
                    table: Region::new(
                        to_u32(b.offset, "offset")?,
                        to_u32(rows * width * eb, "length")?,
                    ),
                    indices,
                    dst: Region::new(to_u32(out, "offset")?, to_u32(out_bytes, "length")?),
                },
            ));
        }
        self.push_stages(&label, copies, work);

        // Stage 2: blocks into the output's row layout.
        let layout = self.b.alloc_linear(
            chip,
            n * cols,
            eb,
            cols.max(1),
            &name,
            Category::Activations,
        )?;
        let mut copies: Vec<Exchange> = Vec::new();
        for p in layout.pieces().unwrap_or(&[]) {
            for r in p.start / cols.max(1)..p.end.div_ceil(cols.max(1)) {
                for (b, &out) in blocks.iter().zip(&outs) {
                    let width = b.c1 - b.c0;
                    let flat = r * cols + b.c0;
                    if flat < p.start || flat + width > p.end {
                        continue;
                    }
                    copies.push(Exchange {
                        src: TileRegion {
                            tile: b.tile,
                            region: Region::new(
                                to_u32(out + r * width * eb, "offset")?,
                                to_u32(width * eb, "length")?,
                            ),
                        },
                        dst_tile: p.tile,
                        dst_offset: to_u32(p.offset + (flat - p.start) * eb, "offset")?,
                    });
                }
            }
        }
        self.push_stages(&label, copies, Vec::new());
        self.free_scratch(scratch)?;
        self.define(id, layout, false)
    }
}
