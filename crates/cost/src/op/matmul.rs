//! Matmul planning: how a batched matrix product is split over tiles, and what that costs.
//!
//! Blocking assumption (poplin-style; grains from [`Assumptions`]): the result
//! `[Bt, M, N]` is cut into blocks of `gm` rows × `gn` columns and the contraction into
//! grains of `gk`; a grain larger than its extent shrinks to the extent, and a partial
//! grain is padded (the AMP works on whole grains). A plan gives each of `pb·pm·pn·pk`
//! tiles a box of `cb = ceil(Bt/pb)` batch entries, `cm = ceil(M blocks/pm)` row blocks,
//! `cn` column blocks and `ck` contraction grains. Only the distinct values of each
//! `ceil(blocks/p)` matter (with the smallest `p` giving it), so the planner enumerates
//! those for the batch, M, N and K.
//!
//! Choice rule: the plans are swept in order of the tiles they use, and a plan replaces
//! the current choice when it is cheaper in total cycles and not dearer in compute
//! cycles. The plan chosen for `T` tiles is thus the cheapest in total among the plans on
//! at most `T` tiles that keep compute non-increasing along the sweep, and offering more
//! tiles never costs more total cycles nor more compute cycles. (Plain total-cycle
//! minimisation would sometimes trade a few compute cycles for fewer exchange cycles when
//! tiles are added — e.g. `[133,113]x[113,113]` in fp16/fp32 partials gets 8 more compute
//! cycles for 38 fewer exchange cycles going from 618 to 704 tiles; the rule above keeps
//! the previous plan in such cases, so each cost is monotone on its own.)
//!
//! Costs of a plan, for its busiest tile (formulas in the [`super`] module doc): compute
//! `ceil(cb·m_t·n_t·k_t / mac_rate)` with padded extents; exchange of the operand slices
//! the box needs; and, when `pk > 1`, a second superstep that exchanges and adds the
//! partial sums.

use tessera_ir::{Graph, NodeId, TensorType};
use tessera_target::{MatmulPrecision, Target};

use super::{ceil_div, elem_size, precision_of, OpCost, Rates};
use crate::error::malformed;
use crate::{Assumptions, CostError};

/// The sizes of a matmul that its cost depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MatmulShape {
    /// Product of the result's batch extents.
    pub batch: u64,
    /// Result rows.
    pub m: u64,
    /// Result columns.
    pub n: u64,
    /// Contraction length.
    pub k: u64,
    /// Product of the first operand's batch extents (1: shared by every batch entry).
    pub a_batch: u64,
    /// Product of the second operand's batch extents.
    pub b_batch: u64,
    /// Operand element size, bytes.
    pub operand_size: u64,
    /// Result element size, bytes.
    pub out_size: u64,
    /// Partial-sum element size, bytes (4 for f32 partials, 2 for fp16 partials).
    pub partial_size: u64,
    /// Multiply-accumulates per cycle per tile in the matmul's precision.
    pub mac_rate: u64,
}

/// `[batch.., rows, cols]` split into the batch product and the last two extents.
fn matrix(shape: &[usize]) -> Option<(u64, u64, u64)> {
    match shape {
        [batch @ .., rows, cols] => Some((
            batch.iter().map(|&d| d as u64).product(),
            *rows as u64,
            *cols as u64,
        )),
        _ => None,
    }
}

impl MatmulShape {
    /// The shape of matmul node `id` with operand types `types`.
    pub fn of(
        graph: &Graph,
        id: NodeId,
        types: &[&TensorType],
        (transpose_a, transpose_b): (bool, bool),
        half_partials: bool,
        target: &Target,
    ) -> Result<Self, CostError> {
        let (a, b) = match types {
            [a, b] => (*a, *b),
            _ => {
                return Err(malformed(
                    graph,
                    id,
                    format!("matmul takes 2 operands, it has {}", types.len()),
                ))
            }
        };
        if a.dtype != b.dtype {
            return Err(malformed(
                graph,
                id,
                format!("operand types differ: {a} vs {b}"),
            ));
        }
        let precision = precision_of(a.dtype, half_partials)
            .ok_or_else(|| malformed(graph, id, format!("matmul of non-float operands {a}")))?;
        let rank_error = || malformed(graph, id, format!("matmul of {a} and {b} needs rank >= 2"));
        let (a_batch, a_rows, a_cols) = matrix(&a.shape).ok_or_else(rank_error)?;
        let (b_batch, b_rows, b_cols) = matrix(&b.shape).ok_or_else(rank_error)?;
        let (m, ka) = if transpose_a {
            (a_cols, a_rows)
        } else {
            (a_rows, a_cols)
        };
        let (kb, n) = if transpose_b {
            (b_cols, b_rows)
        } else {
            (b_rows, b_cols)
        };
        if ka != kb {
            return Err(malformed(
                graph,
                id,
                format!("contraction extents differ: {ka} (of {a}) vs {kb} (of {b})"),
            ));
        }
        let out = &graph.node(id).ty;
        let (batch, _, _) = matrix(&out.shape)
            .ok_or_else(|| malformed(graph, id, format!("matmul result {out} has rank < 2")))?;
        let partial_size = match precision {
            MatmulPrecision::F16HalfPartials => 2,
            MatmulPrecision::F16FloatPartials | MatmulPrecision::F32 => 4,
        };
        Ok(MatmulShape {
            batch,
            m,
            n,
            k: ka,
            a_batch,
            b_batch,
            operand_size: elem_size(a),
            out_size: elem_size(out),
            partial_size,
            mac_rate: u64::from(target.macs_per_cycle(precision)),
        })
    }
}

/// A chosen split and its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatmulPlan {
    /// Tiles along batch, M, N and K.
    pub parts: [u64; 4],
    /// Tiles used (`pb·pm·pn·pk`).
    pub used: u64,
    /// Compute cycles (MACs, plus the partial-sum additions when K is split).
    pub compute: u64,
    /// Exchange cycles (operands, plus partial sums when K is split).
    pub exchange: u64,
    /// Supersteps: 1, or 2 when K is split.
    pub supersteps: u32,
    /// Rearranged operand copies and partial sums, bytes over all used tiles.
    pub temp: u64,
    /// Result bytes.
    pub out_bytes: u64,
}

impl MatmulPlan {
    /// Total cycles with `step` cycles of sync and overhead per superstep.
    fn total(&self, step: u64) -> u64 {
        self.compute
            .saturating_add(self.exchange)
            .saturating_add(u64::from(self.supersteps).saturating_mul(step))
    }

    /// The plan as an [`OpCost`] (FLOPs and input bytes are filled in by the caller).
    pub fn op_cost(&self, rates: &Rates) -> OpCost {
        OpCost {
            cycles: super::Cycles {
                compute: self.compute,
                exchange: self.exchange,
                sync: u64::from(self.supersteps).saturating_mul(rates.step),
            },
            bytes_out: self.out_bytes,
            temp_bytes: self.temp,
            tiles_used: u32::try_from(self.used).unwrap_or(u32::MAX),
            supersteps: self.supersteps,
            ..OpCost::default()
        }
    }
}

/// The effective grain of an extent and the distinct splits `(parts, blocks per tile)`,
/// each with the fewest parts that give it, in increasing order of parts.
fn splits(extent: u64, grain: u64) -> (u64, Vec<(u64, u64)>) {
    let g = grain.min(extent).max(1);
    let blocks = ceil_div(extent, g);
    let mut out = Vec::new();
    let mut p = 1;
    while p <= blocks {
        let c = ceil_div(blocks, p);
        out.push((p, c));
        if c <= 1 {
            break;
        }
        // The fewest parts that give fewer than `c` blocks per tile.
        p = ceil_div(blocks, c - 1);
    }
    (g, out)
}

/// The extents of one tile's box along one axis: padded (for MACs) and real (for bytes).
fn extent(blocks: u64, grain: u64, real: u64) -> (u64, u64) {
    let padded = blocks.saturating_mul(grain);
    (padded, padded.min(real))
}

/// The cost of the plan giving each tile `cb` batch entries and `(cm, cn, ck)` blocks.
fn evaluate(
    s: &MatmulShape,
    rates: &Rates,
    grains: (u64, u64, u64),
    parts: [u64; 4],
    boxes: [u64; 4],
) -> MatmulPlan {
    let [pb, pm, pn, pk] = parts;
    let [cb, cm, cn, ck] = boxes;
    let (m_pad, m_t) = extent(cm, grains.0, s.m);
    let (n_pad, n_t) = extent(cn, grains.1, s.n);
    let (k_pad, k_t) = extent(ck, grains.2, s.k);
    let macs = cb
        .saturating_mul(m_pad)
        .saturating_mul(n_pad)
        .saturating_mul(k_pad);
    let mut compute = ceil_div(macs, s.mac_rate);
    let a_entries = if s.a_batch <= 1 { 1 } else { cb.min(s.a_batch) };
    let b_entries = if s.b_batch <= 1 { 1 } else { cb.min(s.b_batch) };
    let in_bytes = (a_entries.saturating_mul(m_t).saturating_mul(k_t))
        .saturating_add(b_entries.saturating_mul(k_t).saturating_mul(n_t))
        .saturating_mul(s.operand_size);
    let mut exchange = Rates::cycles(in_bytes, rates.xb);
    let used = pb.saturating_mul(pm).saturating_mul(pn).saturating_mul(pk);
    let mut temp = in_bytes.saturating_mul(used);
    let mut supersteps = 1;
    if pk > 1 {
        let block = cb.saturating_mul(m_t).saturating_mul(n_t);
        let slice = ceil_div(block, pk);
        let received = (pk - 1)
            .saturating_mul(slice)
            .saturating_mul(s.partial_size);
        exchange = exchange.saturating_add(Rates::cycles(received, rates.xb));
        let loads = pk.saturating_mul(slice).saturating_mul(s.partial_size);
        let stores = slice.saturating_mul(s.out_size);
        compute = compute.saturating_add(Rates::cycles(loads.saturating_add(stores), rates.ls));
        temp = temp.saturating_add(used.saturating_mul(block).saturating_mul(s.partial_size));
        supersteps = 2;
    }
    MatmulPlan {
        parts,
        used,
        compute,
        exchange,
        supersteps,
        temp,
        out_bytes: s
            .batch
            .saturating_mul(s.m)
            .saturating_mul(s.n)
            .saturating_mul(s.out_size),
    }
}

/// One enumerated plan: (tiles used, total cycles, compute cycles, parts, boxes).
type Candidate = (u64, u64, u64, [u64; 4], [u64; 4]);

/// The plan of `s` on at most `tiles` tiles (see the module doc for the choice rule).
pub(crate) fn plan(s: &MatmulShape, tiles: u64, rates: &Rates, a: &Assumptions) -> MatmulPlan {
    if s.batch == 0 || s.m == 0 || s.n == 0 || s.k == 0 {
        return MatmulPlan {
            parts: [0; 4],
            used: 0,
            compute: 0,
            exchange: 0,
            supersteps: 0,
            temp: 0,
            out_bytes: 0,
        };
    }
    let (_, bs) = splits(s.batch, 1);
    let (gm, ms) = splits(s.m, u64::from(a.matmul_grain_m));
    let (gn, ns) = splits(s.n, u64::from(a.matmul_grain_n));
    let (gk, ks) = splits(s.k, u64::from(a.matmul_grain_k));
    let grains = (gm, gn, gk);
    let mut candidates: Vec<Candidate> = Vec::new();
    for &(pb, cb) in &bs {
        for &(pk, ck) in &ks {
            let bk = pb.saturating_mul(pk);
            if bk > tiles {
                break;
            }
            for &(pm, cm) in &ms {
                let bkm = bk.saturating_mul(pm);
                if bkm > tiles {
                    break;
                }
                for &(pn, cn) in &ns {
                    let used = bkm.saturating_mul(pn);
                    if used > tiles {
                        break;
                    }
                    let parts = [pb, pm, pn, pk];
                    let boxes = [cb, cm, cn, ck];
                    let p = evaluate(s, rates, grains, parts, boxes);
                    candidates.push((used, p.total(rates.step), p.compute, parts, boxes));
                }
            }
        }
    }
    // Sweep the tile budget upwards: a plan replaces the current one only if it is
    // cheaper in total and no dearer in compute. Among the plans using the same number of
    // tiles, the first replacement in (total, compute, split) order is the one kept, as no
    // later plan of that group can beat it on both counts.
    let mut order: Vec<(u64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.0, i))
        .collect();
    order.sort_unstable();
    let mut current: Option<Candidate> = None;
    let mut group = order.as_slice();
    while let Some(&(used, _)) = group.first() {
        let len = group.iter().take_while(|(u, _)| *u == used).count();
        let (this, rest) = group.split_at(len);
        group = rest;
        let eligible =
            this.iter()
                .filter_map(|&(_, i)| candidates.get(i))
                .filter(|c| match &current {
                    None => true,
                    Some(cur) => c.2 <= cur.2 && (c.1 < cur.1 || (c.1 == cur.1 && c.2 < cur.2)),
                });
        if let Some(best) = eligible.min_by_key(|c| (c.1, c.2, c.3, c.4)) {
            current = Some(*best);
        }
    }
    // `tiles ≥ 1` makes the all-ones split a candidate, so `current` is set; the fallback
    // only keeps this function total.
    let (parts, boxes) = current.map(|c| (c.3, c.4)).unwrap_or((
        [1, 1, 1, 1],
        [
            s.batch,
            ceil_div(s.m, gm),
            ceil_div(s.n, gn),
            ceil_div(s.k, gk),
        ],
    ));
    evaluate(s, rates, grains, parts, boxes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_list_each_distinct_box_with_its_fewest_parts() {
        // 5 blocks: 1 part → 5, 2 → 3, 3 → 2 (4 also gives 2), 5 → 1.
        assert_eq!(splits(5, 1), (1, vec![(1, 5), (2, 3), (3, 2), (5, 1)]));
        // A grain larger than the extent shrinks to it: one block.
        assert_eq!(splits(4, 16), (4, vec![(1, 1)]));
        // 40 with grain 16: 3 blocks (the last one padded).
        assert_eq!(splits(40, 16), (16, vec![(1, 3), (2, 2), (3, 1)]));
    }
}
