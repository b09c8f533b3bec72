//! Matrix products on tiles: choosing the split, and emitting blocks, partial sums and the
//! result layout.
//!
//! A (batched) product `C[t] = A[t]·B[t]` is cut into work items `(t, m-block, n-block,
//! k-block)`, one per tile (round-robin when there are more items than tiles). Each item's
//! tile receives its `A` and `B` blocks by exchange (transposed operands are fetched as stored
//! and the vertex reads them transposed) and computes its `C` block in the partials type.
//! With a split contraction, the other k-blocks' partial sums are exchanged to the first one's
//! tile and added there (`AddPartials`). The finished blocks, cast to the result type, are then
//! exchanged into the result's row layout.
//!
//! The split minimises the cycle estimate — the busiest tile's MACs at the target's AMP rate
//! plus the bytes it receives at the exchange rate, plus a superstep for a K-split reduction —
//! among the splits whose blocks fit in `matmul_proportion` of a tile (Poplar's
//! `availableMemoryProportion`); when none fits, the one needing least memory is taken and the
//! memory plan reports the tile.

mod plan;
mod split;
pub(crate) mod weights;

pub(crate) use split::{choose_split, macs_rate, Costing, Dims, Split};
use weights::Member;
pub(crate) use weights::MmPlan;

use super::access::Access;
use super::builder::{emit_runs, to_u32, Category};
use super::layout::{Layout, Piece, Segment};
use super::lowering::{Ctx, Val};
use super::ops::Scratch;
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::{Exchange, Region, TileRef, TileRegion};
use tessera_runtime::vertex::{Elem, MatMul, Vertex};

/// The region of `tile` holding `runs` of `v` back to back, if they are all there already.
fn in_place(v: &Val, runs: &[(u64, u64)], tile: TileRef) -> Result<Option<Region>, LowerError> {
    let eb = v.eb();
    let mut segs: Vec<Segment> = Vec::new();
    for &(first, len) in runs {
        v.layout.segments(first, len, eb, &mut segs);
    }
    let Some(head) = segs.first() else {
        return Ok(None);
    };
    let mut at = head.offset;
    for s in &segs {
        if s.tile != tile || s.offset != at {
            return Ok(None);
        }
        at += s.len * eb;
    }
    let total: u64 = runs.iter().map(|r| r.1).sum::<u64>() * eb;
    if at - head.offset != total {
        return Ok(None);
    }
    Ok(Some(Region::new(
        to_u32(head.offset, "offset")?,
        to_u32(total, "length")?,
    )))
}

/// A matmul's operands, transposes, sizes and element types.
#[derive(Debug, Clone)]
pub(crate) struct MmShape {
    pub a: NodeId,
    pub b: NodeId,
    pub ta: bool,
    pub tb: bool,
    /// A's batch axes folded into its rows (B is one matrix).
    pub fold: bool,
    pub dims: Dims,
    /// The per-batch `(m, k, n)` before folding.
    pub mkn: (u64, u64, u64),
    pub a_batch: Vec<usize>,
    pub b_batch: Vec<usize>,
    pub o_batch: Vec<usize>,
    pub input: Elem,
    pub partials: Elem,
    pub out: Elem,
}

/// The tile that finishes one output block: its first k-block's item, and the other
/// k-blocks' partial sums.
struct Owner {
    t: u64,
    mi: u64,
    ni: u64,
    tile: TileRef,
    c: Region,
    parts: Vec<(TileRef, Region)>,
}

impl Ctx<'_> {
    /// Elements `runs` of `v` in a block on `tile`: in place if they are one contiguous run
    /// already there, else exchanged into scratch.
    pub(crate) fn fetch(
        &mut self,
        v: &Val,
        runs: &[(u64, u64)],
        tile: TileRef,
        copies: &mut Vec<Exchange>,
        scratch: &mut Scratch,
        name: &str,
    ) -> Result<Region, LowerError> {
        let eb = v.eb();
        if let Some(r) = in_place(v, runs, tile)? {
            return Ok(r);
        }
        let bytes: u64 = runs.iter().map(|r| r.1).sum::<u64>() * eb;
        let offset = self.b.alloc(tile, bytes, name, Category::ExchangeBuffers)?;
        scratch
            .blocks
            .push((tile, offset, bytes, Category::ExchangeBuffers));
        emit_runs(copies, &v.layout, eb, runs, tile, offset)?;
        Ok(Region::new(
            to_u32(offset, "offset")?,
            to_u32(bytes, "length")?,
        ))
    }

    /// The sizes and types of matmul `id` (see [`MmShape`]).
    pub(crate) fn mm_shape(&self, id: NodeId) -> Result<MmShape, LowerError> {
        let node = self.graph.node(id);
        let Op::MatMul {
            transpose_a: ta,
            transpose_b: tb,
            half_partials,
        } = node.op
        else {
            return Err(self.unsupported(id, "not a matmul"));
        };
        let operands = self.graph.operands(id);
        let [a_id, b_id] = operands.as_slice() else {
            return Err(self.unsupported(id, "matmul takes two operands"));
        };
        let (a_shape, b_shape) = (
            self.graph.node(*a_id).ty.shape.to_vec(),
            self.graph.node(*b_id).ty.shape.to_vec(),
        );
        let out_shape = node.ty.shape.to_vec();
        let (ra, rb, ro) = (a_shape.len(), b_shape.len(), out_shape.len());
        if ra < 2 || rb < 2 || ro < 2 {
            return Err(self.unsupported(id, "operands must have rank 2 or more"));
        }
        let (m, k) = if ta {
            (a_shape[ra - 1] as u64, a_shape[ra - 2] as u64)
        } else {
            (a_shape[ra - 2] as u64, a_shape[ra - 1] as u64)
        };
        let n = if tb { b_shape[rb - 2] } else { b_shape[rb - 1] } as u64;
        let o_batch = out_shape[..ro - 2].to_vec();
        let b_single = b_shape[..rb - 2].iter().product::<usize>() == 1;
        // Fold A's batch axes into its rows when B is one matrix (a Linear layer).
        let fold = b_single && !ta;
        let batches = o_batch.iter().product::<usize>() as u64;
        let dims = if fold {
            Dims {
                batches: 1,
                m: batches * m,
                k,
                n,
            }
        } else {
            Dims { batches, m, k, n }
        };
        let input = self.elem(*a_id)?;
        let out = self.elem(id)?;
        let partials = if half_partials && input == Elem::F16 {
            Elem::F16
        } else {
            Elem::F32
        };
        Ok(MmShape {
            a: *a_id,
            b: *b_id,
            ta,
            tb,
            fold,
            dims,
            mkn: (m, k, n),
            a_batch: a_shape[..ra - 2].to_vec(),
            b_batch: b_shape[..rb - 2].to_vec(),
            o_batch,
            input,
            partials,
            out,
        })
    }

    /// The split of matmul `id`: planned ahead when its weight was laid out for it, else
    /// chosen now; with the first tile of its items.
    fn mm_split(&mut self, id: NodeId, s: &MmShape) -> Result<(Split, u64), LowerError> {
        if let Some(p) = self.mm_plans.get(&id) {
            return Ok((p.split, p.start));
        }
        let split = self.choose(s, false);
        let (cm, cn, ck) = split.counts(&s.dims);
        let items = s.dims.batches * cm * cn * ck;
        let chip = self.chip(id)?;
        let start = self
            .b
            .reserve_tiles(chip, items.min(u64::from(self.b.tiles)));
        Ok((split, u64::from(start)))
    }

    /// How the splits of product `s` are costed: its element sizes and MAC rate, the
    /// target, and `matmul_proportion` of a tile.
    pub(crate) fn costing(&self, s: &MmShape) -> Costing<'_> {
        Costing {
            in_b: u64::from(s.input.size()),
            part_b: u64::from(s.partials.size()),
            out_b: u64::from(s.out.size()),
            macs_per_cycle: macs_rate(self.target, s.input, s.partials),
            target: self.target,
            budget: (self.target.bytes_per_tile as f64 * self.opts.matmul_proportion) as u64,
        }
    }

    /// The cheapest split of a product within `matmul_proportion` of a tile.
    pub(crate) fn choose(&self, s: &MmShape, b_in_place: bool) -> Split {
        choose_split(&s.dims, &self.costing(s), b_in_place)
    }

    /// `matmul(a, b)` with transposes and broadcast batch axes.
    ///
    /// A member of a fused group (see [`weights`]) is computed with the whole group when the
    /// first of them is lowered; the others then have nothing left to emit.
    pub(crate) fn matmul(&mut self, id: NodeId, _operands: &[NodeId]) -> Result<(), LowerError> {
        let group = self.mm_groups.get(&id).cloned();
        if group.is_some() && self.is_lowered(id) {
            return Ok(());
        }
        let lead = group.as_ref().and_then(|g| g.first()).map_or(id, |m| m.id);
        let mut sh = self.mm_shape(lead)?;
        let members = group.unwrap_or_else(|| {
            vec![Member {
                id,
                col: 0,
                n: sh.dims.n,
            }]
        });
        let b = if members.len() > 1 {
            let total: u64 = members.iter().map(|m| m.n).sum();
            sh.dims.n = total;
            sh.mkn.2 = total;
            self.concat_weights(lead, &members, sh.dims.k)?
        } else {
            self.val(sh.b)?.clone()
        };
        let (ta, tb, fold, dims) = (sh.ta, sh.tb, sh.fold, sh.dims);
        let (m, k, n) = sh.mkn;
        let a = self.val(sh.a)?.clone();
        let (input, partials, out_elem) = (sh.input, sh.partials, sh.out);
        let (part_b, out_b) = (u64::from(partials.size()), u64::from(out_elem.size()));
        let (split, start) = self.mm_split(lead, &sh)?;
        let (cm, cn, ck) = split.counts(&dims);
        let chip = self.chip(lead)?;
        let mut label = self.label(lead);
        if members.len() > 1 {
            let others: Vec<String> = members.iter().skip(1).map(|m| self.name(m.id)).collect();
            label = format!("{label} (fused with {})", others.join(", "));
        }
        let a_acc = Access::broadcast(&sh.a_batch, &sh.o_batch);
        let b_acc = Access::broadcast(&sh.b_batch, &sh.o_batch);
        let tiles = u64::from(self.b.tiles);

        // Stage 1: operand blocks and block products.
        let (mut copies, mut work, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        // Per output block: (tile, C region, rows, cols, partial regions from other k-blocks).
        let mut owners: Vec<Owner> = Vec::new();
        let mut item = 0u64;
        for t in 0..dims.batches {
            let a_off = if fold {
                0
            } else {
                a_acc.runs(t, t + 1).first().map_or(0, |r| r.0) * m * k
            };
            let b_off = if fold {
                0
            } else {
                b_acc.runs(t, t + 1).first().map_or(0, |r| r.0) * k * n
            };
            for mi in 0..cm {
                let (m0, m1) = (mi * split.bm, ((mi + 1) * split.bm).min(dims.m));
                for ni in 0..cn {
                    let (n0, n1) = (ni * split.bn, ((ni + 1) * split.bn).min(dims.n));
                    for ki in 0..ck {
                        let (k0, k1) = (ki * split.bk, ((ki + 1) * split.bk).min(dims.k));
                        let tile = TileRef::new(chip, ((start + item) % tiles) as u32);
                        item += 1;
                        let a_runs: Vec<(u64, u64)> = if ta {
                            (k0..k1)
                                .map(|kk| (a_off + kk * dims.m + m0, m1 - m0))
                                .collect()
                        } else {
                            (m0..m1)
                                .map(|mm| (a_off + mm * dims.k + k0, k1 - k0))
                                .collect()
                        };
                        let b_runs: Vec<(u64, u64)> = if tb {
                            (n0..n1)
                                .map(|nn| (b_off + nn * dims.k + k0, k1 - k0))
                                .collect()
                        } else {
                            (k0..k1)
                                .map(|kk| (b_off + kk * dims.n + n0, n1 - n0))
                                .collect()
                        };
                        let ar = self.fetch(
                            &a,
                            &a_runs,
                            tile,
                            &mut copies,
                            &mut scratch,
                            &format!("A block of {label}"),
                        )?;
                        let br = self.fetch(
                            &b,
                            &b_runs,
                            tile,
                            &mut copies,
                            &mut scratch,
                            &format!("B block of {label}"),
                        )?;
                        let c_bytes = (m1 - m0) * (n1 - n0) * part_b;
                        let c_off = self.b.alloc(
                            tile,
                            c_bytes,
                            &format!("C block of {label}"),
                            Category::Temporaries,
                        )?;
                        scratch
                            .blocks
                            .push((tile, c_off, c_bytes, Category::Temporaries));
                        let c = Region::new(to_u32(c_off, "offset")?, to_u32(c_bytes, "length")?);
                        self.b.note_vertex(
                            tile,
                            &label,
                            u64::from(ar.len) + u64::from(br.len) + c_bytes,
                        )?;
                        work.push((
                            tile,
                            Vertex::MatMul(MatMul {
                                m: to_u32(m1 - m0, "rows")?,
                                k: to_u32(k1 - k0, "contraction")?,
                                n: to_u32(n1 - n0, "columns")?,
                                input,
                                partials,
                                accumulate: false,
                                transpose_a: ta,
                                transpose_b: tb,
                                a: ar,
                                b: br,
                                c,
                            }),
                        ));
                        if ki == 0 {
                            owners.push(Owner {
                                t,
                                mi,
                                ni,
                                tile,
                                c,
                                parts: Vec::new(),
                            });
                        } else if let Some(o) = owners.last_mut() {
                            o.parts.push((tile, c));
                        }
                    }
                }
            }
        }
        self.push_stages(&label, copies, work);

        // Stage 2: K-split partial sums to the owner, added there; cast to the result type.
        let (mut copies, mut work) = (Vec::new(), Vec::new());
        let mut finals = Vec::with_capacity(owners.len());
        for Owner {
            t,
            mi,
            ni,
            tile,
            c,
            parts,
        } in &owners
        {
            let mut srcs = Vec::with_capacity(parts.len());
            for (pt, pr) in parts {
                let off = self.b.alloc(
                    *tile,
                    u64::from(pr.len),
                    &format!("partials of {label}"),
                    Category::ExchangeBuffers,
                )?;
                scratch
                    .blocks
                    .push((*tile, off, u64::from(pr.len), Category::ExchangeBuffers));
                copies.push(Exchange {
                    src: TileRegion {
                        tile: *pt,
                        region: *pr,
                    },
                    dst_tile: *tile,
                    dst_offset: to_u32(off, "offset")?,
                });
                srcs.push(Region::new(to_u32(off, "offset")?, pr.len));
            }
            if !srcs.is_empty() {
                work.push((
                    *tile,
                    Vertex::AddPartials {
                        elem: partials,
                        dst: *c,
                        srcs,
                    },
                ));
            }
            let result = if partials != out_elem {
                let bytes = u64::from(c.len) / part_b * out_b;
                let off = self.b.alloc(
                    *tile,
                    bytes,
                    &format!("result block of {label}"),
                    Category::Temporaries,
                )?;
                scratch
                    .blocks
                    .push((*tile, off, bytes, Category::Temporaries));
                let dst = Region::new(to_u32(off, "offset")?, to_u32(bytes, "length")?);
                work.push((
                    *tile,
                    Vertex::Cast {
                        from: partials,
                        to: out_elem,
                        src: *c,
                        dst,
                    },
                ));
                dst
            } else {
                *c
            };
            finals.push((*t, *mi, *ni, *tile, result));
        }
        self.push_stages(&label, copies, work);

        // Stage 3: blocks into each product's row layout.
        let mut outs = Vec::with_capacity(members.len());
        for mb in &members {
            let total = self.graph.node(mb.id).ty.num_elements() as u64;
            let name = self.label(mb.id);
            outs.push(self.b.alloc_linear(
                chip,
                total,
                out_b,
                mb.n.max(1),
                &name,
                Category::Activations,
            )?);
        }
        let mut copies: Vec<Exchange> = Vec::new();
        let mut segs: Vec<Segment> = Vec::new();
        for (t, mi, ni, tile, r) in finals {
            let (m0, m1) = (mi * split.bm, ((mi + 1) * split.bm).min(dims.m));
            let (n0, n1) = (ni * split.bn, ((ni + 1) * split.bn).min(dims.n));
            let width = n1 - n0;
            for mm in m0..m1 {
                let row = u64::from(r.offset) + (mm - m0) * width * out_b;
                for (mb, layout) in members.iter().zip(&outs) {
                    let (c0, c1) = (n0.max(mb.col), n1.min(mb.col + mb.n));
                    if c0 >= c1 {
                        continue;
                    }
                    let flat = t * dims.m * mb.n + mm * mb.n + (c0 - mb.col);
                    segs.clear();
                    layout.segments(flat, c1 - c0, out_b, &mut segs);
                    let mut src = row + (c0 - n0) * out_b;
                    for s in &segs {
                        copies.push(Exchange {
                            src: TileRegion {
                                tile,
                                region: Region::new(
                                    to_u32(src, "offset")?,
                                    to_u32(s.len * out_b, "length")?,
                                ),
                            },
                            dst_tile: s.tile,
                            dst_offset: to_u32(s.offset, "offset")?,
                        });
                        src += s.len * out_b;
                    }
                }
            }
        }
        self.push_stages(&label, copies, Vec::new());
        self.free_scratch(scratch)?;
        for (mb, layout) in members.iter().zip(outs) {
            self.define(mb.id, layout, false)?;
        }
        Ok(())
    }

    /// The weights of a fused group as one `[N, K]` operand: their pieces, each weight's rows
    /// after the previous weights' rows.
    fn concat_weights(&self, lead: NodeId, members: &[Member], k: u64) -> Result<Val, LowerError> {
        let mut pieces = Vec::new();
        let mut first: Option<Val> = None;
        for mb in members {
            let w = self.mm_shape(mb.id)?.b;
            let v = self.val(w)?;
            let Layout::Linear(ps) = &v.layout else {
                return Err(self.unsupported(mb.id, "a fused product's weight has column blocks"));
            };
            let shift = mb.col * k;
            pieces.extend(ps.iter().map(|p| Piece {
                start: p.start + shift,
                end: p.end + shift,
                ..*p
            }));
            first.get_or_insert_with(|| v.clone());
        }
        pieces.sort_by_key(|p| p.start);
        let v = first.ok_or_else(|| self.unsupported(lead, "an empty fused group"))?;
        Ok(Val {
            layout: Layout::Linear(pieces),
            ..v
        })
    }
}
