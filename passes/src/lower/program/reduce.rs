//! Reductions on tiles: the operand is viewed with the kept axes first and the reduced axes
//! last, so that each output element's inputs are one contiguous row of that view, in
//! increasing input order (the evaluator's summation order). Each output piece's rows are
//! brought to its tile by exchange (read in place when already there, e.g. a reduction over
//! the last axis of a row-laid-out value) and reduced by a `ReduceRows` vertex.

use super::access::Access;
use super::builder::{to_u32, Category};
use super::lowering::Ctx;
use super::ops::Scratch;
use super::reduce_tree::Reduction;
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op, ReduceKind};
use tessera_runtime::program::Region;
use tessera_runtime::vertex::Vertex;

impl Ctx<'_> {
    /// `reduce(x) {kind, axes, keep_dims}`.
    pub(crate) fn reduce(&mut self, id: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let Op::Reduce { kind, axes, .. } = &node.op else {
            return Err(self.unsupported(id, "not a reduction"));
        };
        let kind = *kind;
        let src = *operands
            .first()
            .ok_or_else(|| self.unsupported(id, "no operand"))?;
        let in_shape = self.graph.node(src).ty.shape.to_vec();
        let mut perm: Vec<usize> = (0..in_shape.len()).filter(|a| !axes.contains(a)).collect();
        perm.extend(axes.iter().copied());
        let cols: u64 = axes
            .iter()
            .filter_map(|&a| in_shape.get(a))
            .map(|&d| d as u64)
            .product();
        if cols == 0 {
            return Err(self.unsupported(id, "reduction over an empty axis"));
        }
        let view = Access::transpose(&in_shape, &perm);
        let v = self.val(src)?.clone();
        let elem = self.elem(id)?;
        let label = self.label(id);
        let chip = self.chip(id)?;
        let eb = node.ty.dtype.size_bytes() as u64;
        let n = node.ty.num_elements() as u64;
        // Whole output rows, unless a row's operand would crowd a tile: each output element
        // gathers its `cols` inputs onto its tile (a bias gradient reduces all the rows of a
        // [tokens, features] activation), so pieces are cut finer to spread the operand.
        let budget = (self.target.bytes_per_tile / 16).max(1);
        let per_elem = cols.saturating_mul(eb).max(1);
        // A row larger than the budget, contiguous in the operand: reduced where it lies.
        if per_elem > budget
            && view.is_identity()
            && matches!(kind, ReduceKind::Sum | ReduceKind::Max)
        {
            return self.reduce_tree(&Reduction {
                id,
                src: &v,
                kind,
                elem,
                rows: n,
                cols,
            });
        }
        // Leading axes reduced (a bias gradient): columns of a `[rows, n]` view, reduced
        // where the rows lie and then across tiles.
        let mut sorted = axes.clone();
        sorted.sort_unstable();
        let leading = sorted.iter().enumerate().all(|(i, &a)| i == a);
        if leading
            && cols > 1
            && n > 1
            && matches!(kind, ReduceKind::Sum | ReduceKind::Max)
            && self.reduce_cols(&Reduction {
                id,
                src: &v,
                kind,
                elem,
                rows: cols,
                cols: n,
            })?
        {
            return Ok(());
        }
        let grain = Self::grain(&node.ty.shape).min((budget / per_elem).max(1));
        let layout = self
            .b
            .alloc_linear(chip, n, eb, grain, &label, Category::Activations)?;
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let cols32 = to_u32(cols, "reduced elements")?;
        for p in layout.pieces().unwrap_or(&[]) {
            let src_region = self.operand_on(
                &v,
                &view,
                p.tile,
                (p.start * cols, p.end * cols),
                false,
                &mut copies,
                &mut scratch,
                &format!("operand of {label}"),
            )?;
            let dst = Region::new(
                to_u32(p.offset, "offset")?,
                to_u32((p.end - p.start) * eb, "length")?,
            );
            self.b.note_vertex(
                p.tile,
                &label,
                u64::from(src_region.len) + u64::from(dst.len),
            )?;
            work.extend(scratch.take_expansions());
            work.push((
                p.tile,
                Vertex::ReduceRows {
                    kind,
                    elem,
                    cols: cols32,
                    src: src_region,
                    dst,
                },
            ));
        }
        self.push_stages(&label, copies, work);
        self.free_scratch(scratch)?;
        self.define(id, layout, false)
    }
}
