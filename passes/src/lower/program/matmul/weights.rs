//! Weights laid out for their matmul, as Poplar's `createMatMulInputRHS` does.
//!
//! A parameter read only as the right operand of `Linear`-style products is not given a
//! generic linear layout: the products' split is planned first ([`super::plan`]), and each
//! of its B blocks is stored (row-major, as the vertex reads it) on the tile of the first
//! work item that uses it. The block products then read their weights in place, with no
//! exchange; only items that share a block across a row split fetch it. The host streams
//! each block with one strided copy. The B of fused products is their weights concatenated
//! along `N`: a block may straddle two weights, and is then stored as the rows of each,
//! back to back, streamed by one copy per weight.

use super::{MmShape, Split};
use crate::lower::error::LowerError;
use crate::lower::program::builder::Category;
use crate::lower::program::layout::{Layout, Piece};
use crate::lower::program::lowering::Ctx;
use tessera_ir::NodeId;
use tessera_runtime::program::TileRef;

/// A matmul's split decided before lowering (its weight was laid out for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MmPlan {
    /// Block sizes.
    pub split: Split,
    /// Tile (within the chip) of the first work item.
    pub start: u64,
}

/// One product of a fused group: the matmul, its first column in the concatenation, and
/// its number of columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub id: NodeId,
    pub col: u64,
    pub n: u64,
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

/// A weight laid out for its product: the parameter, its layout and its streamed blocks.
pub(crate) type PlannedWeight = (NodeId, Layout, Vec<WeightBlock>);

impl Ctx<'_> {
    /// Allocates the B blocks of the first row of items (mi = 0) of a product whose B is the
    /// weights of `cols` concatenated along N (one weight unless B is transposed); returns
    /// each weight's pieces and streamed blocks.
    pub(super) fn weight_blocks(
        &mut self,
        sh: &MmShape,
        split: &Split,
        chip: u32,
        start: u64,
        cols: &[Member],
        weights: &[(NodeId, String)],
    ) -> Result<Vec<PlannedWeight>, LowerError> {
        let d = sh.dims;
        let (_, cn, ck) = split.counts(&d);
        let eb = u64::from(sh.input.size());
        let tiles = u64::from(self.b.tiles.max(1));
        let mut pieces: Vec<Vec<Piece>> = vec![Vec::new(); cols.len()];
        let mut blocks: Vec<Vec<WeightBlock>> = vec![Vec::new(); cols.len()];
        for ni in 0..cn {
            let (n0, n1) = (ni * split.bn, ((ni + 1) * split.bn).min(d.n));
            // The weights this column block takes rows from, with the rows' global range.
            let parts: Vec<(usize, u64, u64)> = cols
                .iter()
                .enumerate()
                .filter_map(|(j, m)| {
                    let (a, b) = (n0.max(m.col), n1.min(m.col + m.n));
                    (a < b).then_some((j, a, b))
                })
                .collect();
            let name = parts
                .iter()
                .filter_map(|&(j, _, _)| weights.get(j).map(|w| w.1.as_str()))
                .collect::<Vec<_>>()
                .join(" + ");
            for ki in 0..ck {
                let (k0, k1) = (ki * split.bk, ((ki + 1) * split.bk).min(d.k));
                // Item index of (t = 0, mi = 0, ni, ki), in the lowering's enumeration order.
                let item = ni * ck + ki;
                let tile = TileRef::new(chip, ((start + item) % tiles) as u32);
                let bytes = (n1 - n0) * (k1 - k0) * eb;
                let offset = self.b.alloc(tile, bytes, &name, Category::Weights)?;
                for &(j, a, b) in &parts {
                    let m = cols[j];
                    // Stored rows: W[n, k0..k1] for a transposed B ([N, K]), else B[k, n0..n1]
                    // (then there is one weight and the block is its columns).
                    let (r0, r1, c0, c1, width) = if sh.tb {
                        (a - m.col, b - m.col, k0, k1, d.k)
                    } else {
                        (k0, k1, a - m.col, b - m.col, m.n)
                    };
                    // Byte offset of this weight's first stored row in the block.
                    let base = if sh.tb {
                        offset + (a - n0) * (k1 - k0) * eb
                    } else {
                        offset
                    };
                    for r in r0..r1 {
                        pieces[j].push(Piece {
                            start: r * width + c0,
                            end: r * width + c1,
                            tile,
                            offset: base + (r - r0) * (c1 - c0) * eb,
                        });
                    }
                    blocks[j].push(WeightBlock {
                        tile,
                        offset: base,
                        bytes: (r1 - r0) * (c1 - c0) * eb,
                        host_offset: (r0 * width + c0) * eb,
                        row_bytes: (c1 - c0) * eb,
                        row_stride: width * eb,
                    });
                }
            }
        }
        Ok(weights
            .iter()
            .zip(pieces.into_iter().zip(blocks))
            .map(|((w, _), (mut p, b))| {
                p.sort_by_key(|p| p.start);
                (*w, Layout::Linear(p), b)
            })
            .collect())
    }
}
