//! Zero padding along one axis (the adjoint of a slice): the result's pieces are filled with
//! zeros by `Fill` vertices, and the same superstep's exchange copies the operand's rows into
//! place (a superstep's exchange follows its compute, so the copies land on the zeros).

use super::access::row_major;
use super::builder::{emit_range, to_u32, Category};
use super::lowering::Ctx;
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::Region;
use tessera_runtime::vertex::Vertex;

impl Ctx<'_> {
    /// `pad(x) {axis, before, after}`.
    pub(crate) fn pad(&mut self, id: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let Op::Pad { axis, before, .. } = node.op else {
            return Err(self.unsupported(id, "not a pad"));
        };
        let src = *operands
            .first()
            .ok_or_else(|| self.unsupported(id, "no operand"))?;
        let in_shape = self.graph.node(src).ty.shape.to_vec();
        let out_shape = node.ty.shape.to_vec();
        let rank = in_shape.len();
        if axis >= rank {
            return Err(self.unsupported(id, "pad axis out of range"));
        }
        let v = self.val(src)?.clone();
        let elem = self.elem(id)?;
        let label = self.label(id);
        let chip = self.chip(id)?;
        let eb = node.ty.dtype.size_bytes() as u64;
        let n = node.ty.num_elements() as u64;
        let layout = self.b.alloc_linear(
            chip,
            n,
            eb,
            Self::grain(&out_shape),
            &label,
            Category::Activations,
        )?;
        let mut work = Vec::new();
        for p in layout.pieces().unwrap_or(&[]) {
            work.push((
                p.tile,
                Vertex::Fill {
                    elem,
                    dst: Region::new(
                        to_u32(p.offset, "offset")?,
                        to_u32((p.end - p.start) * eb, "length")?,
                    ),
                    value: 0.0,
                },
            ));
        }
        // The operand's rows: runs along the last axis (the whole row moves together unless
        // the padded axis is the last one, where it shifts by `before`).
        let row = in_shape.last().copied().unwrap_or(1).max(1) as u64;
        let rows = v_len(&in_shape) / row;
        let (in_rm, out_rm) = (row_major(&in_shape), row_major(&out_shape));
        let mut copies = Vec::new();
        for r in 0..rows {
            let first = r * row;
            // Output flat index of the operand's element `first`.
            let mut out_flat = 0;
            for ax in 0..rank {
                let i = (first / in_rm[ax]) % in_shape[ax].max(1) as u64;
                let i = if ax == axis { i + before as u64 } else { i };
                out_flat += i * out_rm[ax];
            }
            emit_range(
                &mut copies,
                (&v.layout, first),
                (&layout, out_flat),
                row,
                eb,
            )?;
        }
        self.push_stages(&label, Vec::new(), work);
        self.push_stages(&label, copies, Vec::new());
        self.define(id, layout, false)
    }
}

fn v_len(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}
