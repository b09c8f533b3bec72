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

use super::access::Access;
use super::builder::{emit_runs, to_u32};
use super::layout::Segment;
use super::lowering::{Ctx, Val};
use super::ops::Scratch;
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::{Exchange, Region, TileRef, TileRegion};
use tessera_runtime::vertex::{Elem, MatMul, Vertex};
use tessera_target::Target;

/// Sizes of one product: batches and the matrix dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batches: u64,
    pub m: u64,
    pub k: u64,
    pub n: u64,
}

/// A chosen split: block sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    pub bm: u64,
    pub bn: u64,
    pub bk: u64,
}

impl Split {
    fn counts(&self, d: &Dims) -> (u64, u64, u64) {
        (
            d.m.div_ceil(self.bm),
            d.n.div_ceil(self.bn),
            d.k.div_ceil(self.bk),
        )
    }
}

fn candidates(d: u64, linear_up_to: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (1..=d.min(linear_up_to)).map(|p| d.div_ceil(p)).collect();
    let mut p = 1;
    while p <= d {
        v.push(d.div_ceil(p));
        p *= 2;
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Estimated `(cycles, bytes per tile)` of a split.
pub(crate) fn split_cost(
    d: &Dims,
    s: &Split,
    in_b: u64,
    part_b: u64,
    out_b: u64,
    macs_per_cycle: u64,
    target: &Target,
) -> (f64, u64) {
    let (cm, cn, ck) = s.counts(d);
    let items = d.batches * cm * cn * ck;
    let tiles = u64::from(target.tiles_per_chip.max(1));
    let per_tile = items.div_ceil(tiles);
    let operands = (s.bm * s.bk + s.bk * s.bn) * in_b;
    let c = s.bm * s.bn * part_b;
    let cast = if part_b != out_b {
        s.bm * s.bn * out_b
    } else {
        0
    };
    let reduce_in = if ck > 1 { (ck - 1) * c } else { 0 };
    let mem = per_tile * (operands + c + cast) + reduce_in;
    let macs = per_tile * s.bm * s.bn * s.bk;
    let exch_rate = target.exchange_bytes_per_cycle_per_tile.max(1e-9);
    let mut cycles = macs as f64 / macs_per_cycle.max(1) as f64
        + (per_tile * operands + reduce_in + s.bm * s.bn * out_b) as f64 / exch_rate;
    if ck > 1 {
        cycles += f64::from(target.sync_cycles) + (reduce_in / part_b.max(1)) as f64;
    }
    (cycles, mem)
}

/// The split of `d` with the fewest estimated cycles within `budget` bytes per tile (or the
/// smallest footprint if none fits).
pub(crate) fn choose_split(
    d: &Dims,
    in_b: u64,
    part_b: u64,
    out_b: u64,
    macs_per_cycle: u64,
    target: &Target,
    budget: u64,
) -> Split {
    let mut best: Option<(f64, u64, Split)> = None;
    let mut smallest: Option<(u64, Split)> = None;
    let ks: Vec<u64> = {
        let mut v = Vec::new();
        let mut p = 1;
        while p <= d.k.max(1) && p <= 64 {
            v.push(d.k.max(1).div_ceil(p));
            p *= 2;
        }
        v.dedup();
        v
    };
    for &bm in &candidates(d.m.max(1), 64) {
        for &bn in &candidates(d.n.max(1), 128) {
            for &bk in &ks {
                let s = Split { bm, bn, bk };
                let (cm, cn, ck) = s.counts(d);
                let items = d.batches * cm * cn * ck;
                let (cycles, mem) = split_cost(d, &s, in_b, part_b, out_b, macs_per_cycle, target);
                if smallest.is_none_or(|(m, _)| mem < m) {
                    smallest = Some((mem, s));
                }
                if mem <= budget
                    && best.is_none_or(|(c, i, _)| cycles < c || (cycles == c && items < i))
                {
                    best = Some((cycles, items, s));
                }
            }
        }
    }
    best.map(|b| b.2)
        .or(smallest.map(|s| s.1))
        .unwrap_or(Split {
            bm: 1,
            bn: 1,
            bk: 1,
        })
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

/// MACs per cycle per tile for these operand and partials types.
fn macs_rate(target: &Target, input: Elem, partials: Elem) -> u64 {
    u64::from(match (input, partials) {
        (Elem::F16, Elem::F16) => target.macs_per_cycle_f16_f16_partials,
        (Elem::F16, _) => target.macs_per_cycle_f16_f32_partials,
        _ => target.macs_per_cycle_f32,
    })
}

impl Ctx<'_> {
    /// Elements `runs` of `v` in a block on `tile`: in place if they are one contiguous run
    /// already there, else exchanged into scratch.
    fn fetch(
        &mut self,
        v: &Val,
        runs: &[(u64, u64)],
        tile: TileRef,
        copies: &mut Vec<Exchange>,
        scratch: &mut Scratch,
        name: &str,
    ) -> Result<Region, LowerError> {
        let eb = v.eb();
        if let [(first, len)] = runs {
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
        let bytes: u64 = runs.iter().map(|r| r.1).sum::<u64>() * eb;
        let offset = self.b.alloc(tile, bytes, name, false)?;
        scratch.blocks.push((tile, offset, bytes));
        emit_runs(copies, &v.layout, eb, runs, tile, offset)?;
        Ok(Region::new(
            to_u32(offset, "offset")?,
            to_u32(bytes, "length")?,
        ))
    }

    /// `matmul(a, b)` with transposes and broadcast batch axes.
    pub(crate) fn matmul(&mut self, id: NodeId, operands: &[NodeId]) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let Op::MatMul {
            transpose_a: ta,
            transpose_b: tb,
            half_partials,
        } = node.op
        else {
            return Err(self.unsupported(id, "not a matmul"));
        };
        let [a_id, b_id] = operands else {
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
        let (a_batch, b_batch, o_batch) =
            (&a_shape[..ra - 2], &b_shape[..rb - 2], &out_shape[..ro - 2]);
        let b_single = b_batch.iter().product::<usize>() == 1;
        // Fold A's batch axes into its rows when B is one matrix (a Linear layer).
        let fold = b_single && !ta;
        let dims = if fold {
            Dims {
                batches: 1,
                m: o_batch.iter().product::<usize>() as u64 * m,
                k,
                n,
            }
        } else {
            Dims {
                batches: o_batch.iter().product::<usize>() as u64,
                m,
                k,
                n,
            }
        };
        let (a, b) = (self.val(*a_id)?.clone(), self.val(*b_id)?.clone());
        let input = self.elem(*a_id)?;
        let out_elem = self.elem(id)?;
        let partials = if half_partials && input == Elem::F16 {
            Elem::F16
        } else {
            Elem::F32
        };
        let (in_b, part_b, out_b) = (
            u64::from(input.size()),
            u64::from(partials.size()),
            u64::from(out_elem.size()),
        );
        let budget = (self.target.bytes_per_tile as f64 * self.opts.matmul_proportion) as u64;
        let rate = macs_rate(self.target, input, partials);
        let split = choose_split(&dims, in_b, part_b, out_b, rate, self.target, budget);
        let (cm, cn, ck) = split.counts(&dims);
        let chip = self.chip(id)?;
        let label = self.label(id);
        let a_acc = Access::broadcast(a_batch, o_batch);
        let b_acc = Access::broadcast(b_batch, o_batch);
        let items = dims.batches * cm * cn * ck;
        let start = u64::from(
            self.b
                .reserve_tiles(chip, items.min(u64::from(self.b.tiles))),
        );
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
                        let c_off =
                            self.b
                                .alloc(tile, c_bytes, &format!("C block of {label}"), false)?;
                        scratch.blocks.push((tile, c_off, c_bytes));
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
                    false,
                )?;
                scratch.blocks.push((*tile, off, u64::from(pr.len)));
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
                let off = self
                    .b
                    .alloc(*tile, bytes, &format!("result block of {label}"), false)?;
                scratch.blocks.push((*tile, off, bytes));
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

        // Stage 3: blocks into the result's row layout.
        let name = self.label(id);
        let total = node.ty.num_elements() as u64;
        let layout = self
            .b
            .alloc_linear(chip, total, out_b, dims.n.max(1), &name, false)?;
        let mut copies: Vec<Exchange> = Vec::new();
        let mut segs: Vec<Segment> = Vec::new();
        for (t, mi, ni, tile, r) in finals {
            let (m0, m1) = (mi * split.bm, ((mi + 1) * split.bm).min(dims.m));
            let (n0, n1) = (ni * split.bn, ((ni + 1) * split.bn).min(dims.n));
            let width = n1 - n0;
            for mm in m0..m1 {
                let flat = t * dims.m * dims.n + mm * dims.n + n0;
                segs.clear();
                layout.segments(flat, width, out_b, &mut segs);
                let mut src = u64::from(r.offset) + (mm - m0) * width * out_b;
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
        self.push_stages(&label, copies, Vec::new());
        self.free_scratch(scratch)?;
        self.define(id, layout, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_the_memory_budget_and_prefers_fewer_cycles() {
        let t = tessera_target::target::presets::mk2();
        // lxmert-base FFN: [20, 768] x [768, 3072].
        let d = Dims {
            batches: 1,
            m: 20,
            k: 768,
            n: 3072,
        };
        let budget = (t.bytes_per_tile as f64 * 0.6) as u64;
        let s = choose_split(&d, 4, 4, 4, u64::from(t.macs_per_cycle_f32), &t, budget);
        let (_, mem) = split_cost(&d, &s, 4, 4, 4, u64::from(t.macs_per_cycle_f32), &t);
        assert!(mem <= budget, "{s:?} needs {mem} bytes");
        let (cm, cn, ck) = s.counts(&d);
        assert!(cm * cn * ck <= u64::from(t.tiles_per_chip), "{s:?}");
        // A tighter budget forces smaller blocks.
        let tight = choose_split(&d, 4, 4, 4, u64::from(t.macs_per_cycle_f32), &t, 64 * 1024);
        let (_, tmem) = split_cost(&d, &tight, 4, 4, 4, u64::from(t.macs_per_cycle_f32), &t);
        assert!(tmem <= 64 * 1024, "{tight:?} needs {tmem}");
        assert!(tmem < mem || tight == s, "{tight:?} vs {s:?}");
        // Every block of the chosen split is within the dimensions and covers them.
        for (dim, block) in [(d.m, s.bm), (d.n, s.bn), (d.k, s.bk)] {
            assert!(block >= 1 && block <= dim);
        }
    }
}
