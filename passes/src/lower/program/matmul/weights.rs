//! Weights laid out for their matmul, as Poplar's `createMatMulInputRHS` does.
//!
//! A parameter read only as the right operand of one `Linear`-style product is not given a
//! generic linear layout: the product's split is planned first, and each of its B blocks is
//! stored (row-major, as the vertex reads it) on the tile of the first work item that uses it.
//! The block products then read their weights in place, with no exchange; only items that
//! share a block across a row split fetch it. The host streams each block with one strided copy.

use super::{MmShape, Split};
use crate::lower::error::LowerError;
use crate::lower::program::builder::Category;
use crate::lower::program::layout::{Layout, Piece};
use crate::lower::program::lowering::Ctx;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::TileRef;

/// A matmul's split decided before lowering (its weight was laid out for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MmPlan {
    /// Block sizes.
    pub split: Split,
    /// Tile (within the chip) of the first work item.
    pub start: u64,
}

/// One block of a weight: where it sits and how the host streams it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightBlock {
    pub tile: TileRef,
    pub offset: u64,
    pub bytes: u64,
    /// First host byte, bytes per row, host bytes between rows.
    pub host_offset: u64,
    pub row_bytes: u64,
    pub row_stride: u64,
}

impl Ctx<'_> {
    /// Plans every eligible matmul and lays out its weight; returns the weights' layouts and
    /// blocks by parameter node. Must run before any other allocation.
    pub(crate) fn plan_weights(
        &mut self,
        order: &[NodeId],
        gather_tables: &[NodeId],
    ) -> Result<Vec<(NodeId, Layout, Vec<WeightBlock>)>, LowerError> {
        let mut out = Vec::new();
        for &id in order {
            if !matches!(self.graph.node(id).op, Op::MatMul { .. }) {
                continue;
            }
            let sh = self.mm_shape(id)?;
            let w = sh.b;
            let eligible = matches!(self.graph.node(w).op, Op::Param { .. })
                && sh.fold
                && sh.b_batch.is_empty()
                && sh.a != w
                && !gather_tables.contains(&w)
                && self.graph.users(w).len() == 1
                && self.use_count(w) == 1
                && !self.is_output(w);
            if !eligible {
                continue;
            }
            let split = self.choose(&sh, true);
            let (_, cn, ck) = split.counts(&sh.dims);
            let chip = self.chip(id)?;
            let items = sh.dims.batches * split.counts(&sh.dims).0 * cn * ck;
            let start = u64::from(
                self.b
                    .reserve_tiles(chip, items.min(u64::from(self.b.tiles))),
            );
            self.mm_plans.insert(id, MmPlan { split, start });
            let (layout, blocks) = self.weight_blocks(&sh, &split, chip, start, &self.label(w))?;
            out.push((w, layout, blocks));
        }
        Ok(out)
    }

    /// Allocates the B blocks of the first row of items (mi = 0) and the weight's pieces.
    fn weight_blocks(
        &mut self,
        sh: &MmShape,
        split: &Split,
        chip: u32,
        start: u64,
        name: &str,
    ) -> Result<(Layout, Vec<WeightBlock>), LowerError> {
        let d = sh.dims;
        let (_, cn, ck) = split.counts(&d);
        let eb = u64::from(sh.input.size());
        let tiles = u64::from(self.b.tiles.max(1));
        let mut pieces = Vec::new();
        let mut blocks = Vec::new();
        for ni in 0..cn {
            let (n0, n1) = (ni * split.bn, ((ni + 1) * split.bn).min(d.n));
            for ki in 0..ck {
                let (k0, k1) = (ki * split.bk, ((ki + 1) * split.bk).min(d.k));
                // Item index of (t = 0, mi = 0, ni, ki), in the lowering's enumeration order.
                let item = ni * ck + ki;
                let tile = TileRef::new(chip, ((start + item) % tiles) as u32);
                let bytes = (n1 - n0) * (k1 - k0) * eb;
                let offset = self.b.alloc(tile, bytes, name, Category::Weights)?;
                // Stored rows: W[n, k0..k1] for a transposed B ([N, K]), else B[k, n0..n1].
                let (rows, (r0, r1), (c0, c1), width) = if sh.tb {
                    (d.n, (n0, n1), (k0, k1), d.k)
                } else {
                    (d.k, (k0, k1), (n0, n1), d.n)
                };
                let _ = rows;
                for r in r0..r1 {
                    pieces.push(Piece {
                        start: r * width + c0,
                        end: r * width + c1,
                        tile,
                        offset: offset + (r - r0) * (c1 - c0) * eb,
                    });
                }
                blocks.push(WeightBlock {
                    tile,
                    offset,
                    bytes,
                    host_offset: (r0 * width + c0) * eb,
                    row_bytes: (c1 - c0) * eb,
                    row_stride: width * eb,
                });
            }
        }
        pieces.sort_by_key(|p| p.start);
        Ok((Layout::Linear(pieces), blocks))
    }
}
