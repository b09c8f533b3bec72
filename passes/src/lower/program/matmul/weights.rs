//! Weights laid out for their matmul, as Poplar's `createMatMulInputRHS` does, and sibling
//! products fused into one.
//!
//! A parameter read only as the right operand of one `Linear`-style product is not given a
//! generic linear layout: the product's split is planned first, and each of its B blocks is
//! stored (row-major, as the vertex reads it) on the tile of the first work item that uses it.
//! The block products then read their weights in place, with no exchange; only items that
//! share a block across a row split fetch it. The host streams each block with one strided copy.
//!
//! Sibling products — `Linear` layers on one chip reading the same activation `A` with
//! transposed weights `[N_j, K]`, such as an attention layer's query, key and value — are
//! fused (XLA's horizontal fusion of sibling dots): they are planned as one product of
//! `A` by the weights concatenated along `N`, so that `A` is broadcast to the tiles once
//! rather than once per product, and the tiles share one split. A B block may straddle two
//! weights: it is stored as the rows of each, back to back, streamed by one copy per
//! weight. Each product keeps its own result value (and liveness); all are computed where
//! the first is.
//!
//! A weight read by several products (LXMERT's cross-attention runs in both directions with
//! one set of weights) is laid out once, on one grid of blocks (the same column and
//! contraction blocks) chosen for all of its readers together, so that each reads it in
//! place; each keeps its own row blocks. [`super::super::LowerOptions::fuse_matmuls`] turns
//! both off.

use super::split::choose_shared;
use super::{MmShape, Split};
use crate::lower::error::LowerError;
use crate::lower::program::builder::Category;
use crate::lower::program::layout::{Layout, Piece};
use crate::lower::program::lowering::Ctx;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::TileRef;
use tessera_runtime::vertex::Elem;

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

/// What makes products siblings: the same `A`, chip, sizes and element types.
type SiblingKey = (NodeId, u32, u64, u64, Elem, Elem, Elem);

/// Products planned together.
enum Entry {
    /// Products with one sibling key (`None`: a product never fused), in order.
    Group(Option<SiblingKey>, Vec<(NodeId, MmShape)>),
    /// The readers of one weight shared by several products, in order.
    Shared(Vec<(NodeId, MmShape)>),
}

/// A weight laid out for its product: the parameter, its layout and its streamed blocks.
pub(crate) type PlannedWeight = (NodeId, Layout, Vec<WeightBlock>);

impl Ctx<'_> {
    /// Plans every eligible matmul (fusing siblings, sharing weight grids) and lays out its
    /// weights; returns the weights' layouts and blocks by parameter node. Must run before
    /// any other allocation.
    pub(crate) fn plan_weights(
        &mut self,
        order: &[NodeId],
        gather_tables: &[NodeId],
    ) -> Result<Vec<PlannedWeight>, LowerError> {
        // Eligible products in order of first appearance: groups by sibling key, and the
        // readers of each shared weight.
        let mut entries: Vec<Entry> = Vec::new();
        let mut shared_seen: Vec<NodeId> = Vec::new();
        for &id in order {
            if !matches!(self.graph.node(id).op, Op::MatMul { .. }) {
                continue;
            }
            let sh = self.mm_shape(id)?;
            let w = sh.b;
            let weight = matches!(self.graph.node(w).op, Op::Param { .. })
                && sh.fold
                && sh.b_batch.is_empty()
                && sh.a != w
                && !gather_tables.contains(&w)
                && !self.is_output(w);
            if !weight {
                continue;
            }
            if self.graph.users(w).len() != 1 || self.use_count(w) != 1 {
                if self.opts.fuse_matmuls && !shared_seen.contains(&w) {
                    shared_seen.push(w);
                    if let Some(readers) = self.shared_readers(id, &sh, order)? {
                        entries.push(Entry::Shared(readers));
                    }
                }
                continue;
            }
            let key = (self.opts.fuse_matmuls && sh.tb && sh.dims.batches == 1).then_some((
                sh.a,
                self.chip(id)?,
                sh.dims.m,
                sh.dims.k,
                sh.input,
                sh.partials,
                sh.out,
            ));
            let found = entries.iter_mut().find_map(|e| match e {
                Entry::Group(k, members) if key.is_some() && *k == key => Some(members),
                _ => None,
            });
            match found {
                Some(members) => members.push((id, sh)),
                None => entries.push(Entry::Group(key, vec![(id, sh)])),
            }
        }
        let mut out = Vec::new();
        for e in entries {
            out.extend(match e {
                Entry::Group(_, members) => self.plan_group(&members)?,
                Entry::Shared(readers) => self.plan_shared(&readers)?,
            });
        }
        Ok(out)
    }

    /// Every product reading weight `sh.b` (first seen at `id`), in `order`, if each reads
    /// it once as its right operand the way `id` does, on `id`'s chip with its types.
    fn shared_readers(
        &self,
        id: NodeId,
        sh: &MmShape,
        order: &[NodeId],
    ) -> Result<Option<Vec<(NodeId, MmShape)>>, LowerError> {
        let users = self.graph.users(sh.b);
        if self.use_count(sh.b) != users.len() {
            return Ok(None);
        }
        let chip = self.chip(id)?;
        let mut readers = Vec::with_capacity(users.len());
        for &u in order.iter().filter(|n| users.contains(n)) {
            if !matches!(self.graph.node(u).op, Op::MatMul { .. }) {
                return Ok(None);
            }
            let s = self.mm_shape(u)?;
            let same = s.b == sh.b
                && s.a != sh.b
                && s.fold
                && s.b_batch.is_empty()
                && s.tb == sh.tb
                && (s.input, s.partials, s.out) == (sh.input, sh.partials, sh.out)
                && self.chip(u)? == chip;
            if !same {
                return Ok(None);
            }
            readers.push((u, s));
        }
        Ok((readers.len() == users.len()).then_some(readers))
    }

    /// Plans the products reading one weight on one grid of its blocks, laid out for all of
    /// them (each row block of each product reads them in place); when no grid fits every
    /// product, the weight is laid out for the first and the others fetch its blocks.
    fn plan_shared(
        &mut self,
        readers: &[(NodeId, MmShape)],
    ) -> Result<Vec<PlannedWeight>, LowerError> {
        let Some((lead, lead_sh)) = readers.first() else {
            return Ok(Vec::new());
        };
        let dims: Vec<_> = readers.iter().map(|(_, s)| s.dims).collect();
        let Some(splits) = choose_shared(&dims, &self.costing(lead_sh)) else {
            return self.plan_group(&readers[..1]);
        };
        let chip = self.chip(*lead)?;
        let items = readers
            .iter()
            .zip(&splits)
            .map(|((_, s), sp)| {
                let (cm, cn, ck) = sp.counts(&s.dims);
                cm * cn * ck
            })
            .max()
            .unwrap_or(1);
        let start = u64::from(
            self.b
                .reserve_tiles(chip, items.min(u64::from(self.b.tiles))),
        );
        for ((id, _), split) in readers.iter().zip(&splits) {
            self.mm_plans.insert(
                *id,
                MmPlan {
                    split: *split,
                    start,
                },
            );
        }
        let member = Member {
            id: *lead,
            col: 0,
            n: lead_sh.dims.n,
        };
        let weight = [(lead_sh.b, self.label(lead_sh.b))];
        let split = splits.first().copied().unwrap_or(Split {
            bm: 1,
            bn: 1,
            bk: 1,
        });
        self.weight_blocks(lead_sh, &split, chip, start, &[member], &weight)
    }

    /// Plans one product, or a group of fused siblings, as one split over their
    /// concatenated columns; records the plan under the first and the group under each.
    fn plan_group(
        &mut self,
        members: &[(NodeId, MmShape)],
    ) -> Result<Vec<PlannedWeight>, LowerError> {
        let Some((lead, lead_sh)) = members.first() else {
            return Ok(Vec::new());
        };
        let mut sh = lead_sh.clone();
        let mut cols = Vec::with_capacity(members.len());
        let mut total = 0;
        for (id, s) in members {
            cols.push(Member {
                id: *id,
                col: total,
                n: s.dims.n,
            });
            total += s.dims.n;
        }
        sh.dims.n = total;
        let split = self.choose(&sh, true);
        let (cm, cn, ck) = split.counts(&sh.dims);
        let chip = self.chip(*lead)?;
        let items = sh.dims.batches * cm * cn * ck;
        let start = u64::from(
            self.b
                .reserve_tiles(chip, items.min(u64::from(self.b.tiles))),
        );
        self.mm_plans.insert(*lead, MmPlan { split, start });
        if cols.len() > 1 {
            for m in &cols {
                self.mm_groups.insert(m.id, cols.clone());
            }
        }
        let weights: Vec<(NodeId, String)> = members
            .iter()
            .map(|(_, s)| (s.b, self.label(s.b)))
            .collect();
        self.weight_blocks(&sh, &split, chip, start, &cols, &weights)
    }

    /// Allocates the B blocks of the first row of items (mi = 0) of a product whose B is the
    /// weights of `cols` concatenated along N (one weight unless B is transposed); returns
    /// each weight's pieces and streamed blocks.
    fn weight_blocks(
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
