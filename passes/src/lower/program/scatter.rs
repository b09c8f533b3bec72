//! The adjoint of an embedding lookup: `scatter_add(indices, updates) -> [rows, D]` on the
//! tiles of column blocks. Every block's tile receives the indices and its columns of every
//! update row, and a `ScatterAdd` vertex adds the rows into its zeroed block — the layout of
//! the result mirrors the table's, so the optimizer's update of an embedding table reads its
//! gradient without exchange when both share blocks. A result that is a graph output is also
//! copied into a row layout, from which it streams to the host.

use super::builder::{emit_range, to_u32, Category};
use super::layout::Layout;
use super::lowering::Ctx;
use super::ops::Scratch;
use crate::lower::error::LowerError;
use tessera_ir::NodeId;
use tessera_runtime::program::Region;
use tessera_runtime::vertex::{Elem, Vertex};

impl Ctx<'_> {
    /// `scatter_add(indices[...], updates[..., D...]) -> [rows, D...]`.
    pub(crate) fn scatter_add(
        &mut self,
        id: NodeId,
        operands: &[NodeId],
    ) -> Result<(), LowerError> {
        let [idx_id, upd_id] = operands else {
            return Err(self.unsupported(id, "scatter_add takes indices and updates"));
        };
        if self.elem(*idx_id)? != Elem::I64 {
            return Err(self.unsupported(id, "indices must be i64"));
        }
        let node = self.graph.node(id);
        let rows = node.ty.shape.first().copied().unwrap_or(0) as u64;
        let cols: u64 = node.ty.shape.iter().skip(1).map(|&d| d as u64).product();
        let n = self.graph.node(*idx_id).ty.num_elements() as u64;
        let eb = node.ty.dtype.size_bytes() as u64;
        let elem = self.elem(id)?;
        let chip = self.chip(id)?;
        let label = self.label(id);
        let (idx, upd) = (self.val(*idx_id)?.clone(), self.val(*upd_id)?.clone());
        let table = self.column_blocks(chip, (rows, n), cols, eb, &label, Category::Activations)?;
        let Layout::Columns { blocks, .. } = &table else {
            return Err(self.unsupported(id, "expected column blocks"));
        };
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        for b in blocks.clone() {
            let width = b.c1 - b.c0;
            let indices = self.fetch(
                &idx,
                &[(0, n)],
                b.tile,
                &mut copies,
                &mut scratch,
                &format!("indices of {label}"),
            )?;
            let runs: Vec<(u64, u64)> = (0..n).map(|i| (i * cols + b.c0, width)).collect();
            let updates = self.fetch(
                &upd,
                &runs,
                b.tile,
                &mut copies,
                &mut scratch,
                &format!("updates of {label}"),
            )?;
            let bytes = rows * width * eb;
            self.b.note_vertex(
                b.tile,
                &label,
                bytes + u64::from(updates.len) + u64::from(indices.len),
            )?;
            work.push((
                b.tile,
                Vertex::ScatterAdd {
                    elem,
                    rows: to_u32(rows, "rows")?,
                    width: to_u32(width, "block width")?,
                    indices,
                    updates,
                    dst: Region::new(to_u32(b.offset, "offset")?, to_u32(bytes, "length")?),
                },
            ));
        }
        self.push_stages(&label, copies, work);
        self.free_scratch(scratch)?;
        if !self.is_output(id) {
            return self.define(id, table, false);
        }
        // An output: copy into rows, which stream to the host.
        let linear = self.b.alloc_linear(
            chip,
            rows * cols,
            eb,
            cols.max(1),
            &label,
            Category::Activations,
        )?;
        let mut copies = Vec::new();
        for p in linear.pieces().unwrap_or(&[]) {
            emit_range(
                &mut copies,
                (&table, p.start),
                (&linear, p.start),
                p.end - p.start,
                eb,
            )?;
        }
        self.push_stages(&label, copies, Vec::new());
        self.b.free_layout(&table, eb)?;
        self.define(id, linear, false)
    }
}
