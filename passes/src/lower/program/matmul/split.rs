//! Choosing a matmul's split over tiles with the target's cycle model (see [`super`]).

use tessera_runtime::vertex::Elem;
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
    pub(crate) fn counts(&self, d: &Dims) -> (u64, u64, u64) {
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

/// Fixed cycles of one matmul vertex (AMP setup and the worker loop around it), so that splits
/// into many tiny blocks are not free.
const VERTEX_OVERHEAD_CYCLES: u64 = 100;

/// Block sizes of the contraction worth trying: `k` halved up to 64 ways.
fn k_candidates(k: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut p = 1;
    while p <= k.max(1) && p <= 64 {
        v.push(k.max(1).div_ceil(p));
        p *= 2;
    }
    v.dedup();
    v
}

/// Element sizes, MAC rate and machine that every split of one product is costed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Costing<'t> {
    /// Bytes per operand element.
    pub in_b: u64,
    /// Bytes per partial sum.
    pub part_b: u64,
    /// Bytes per result element.
    pub out_b: u64,
    /// MACs per cycle per tile for these types.
    pub macs_per_cycle: u64,
    /// The machine (tiles, exchange rate, sync).
    pub target: &'t Target,
    /// Bytes per tile the blocks may use.
    pub budget: u64,
}

impl Costing<'_> {
    /// Estimated `(cycles, bytes per tile)` of split `s` of `d`; `b_in_place`: B's blocks
    /// are laid out where the first row of items reads them.
    pub(crate) fn cost(&self, d: &Dims, s: &Split, b_in_place: bool) -> (f64, u64) {
        let (in_b, part_b, out_b) = (self.in_b, self.part_b, self.out_b);
        let (cm, cn, ck) = s.counts(d);
        let items = d.batches * cm * cn * ck;
        let tiles = u64::from(self.target.tiles_per_chip.max(1));
        let per_tile = items.div_ceil(tiles);
        let operands = (s.bm * s.bk + s.bk * s.bn) * in_b;
        // Bytes a tile receives for its operands: B is already there when laid out for this
        // plan, but only on the first row of items (with a row split, the others fetch it).
        let fetched = if b_in_place && cm == 1 {
            s.bm * s.bk * in_b
        } else {
            operands
        };
        let c = s.bm * s.bn * part_b;
        let cast = if part_b != out_b {
            s.bm * s.bn * out_b
        } else {
            0
        };
        let reduce_in = if ck > 1 { (ck - 1) * c } else { 0 };
        let mem = per_tile * (operands + c + cast) + reduce_in;
        let macs = per_tile * s.bm * s.bn * s.bk;
        let exch_rate = self.target.exchange_bytes_per_cycle_per_tile.max(1e-9);
        let mut cycles = macs as f64 / self.macs_per_cycle.max(1) as f64
            + (per_tile * VERTEX_OVERHEAD_CYCLES) as f64
            + (per_tile * fetched + reduce_in + s.bm * s.bn * out_b) as f64 / exch_rate;
        if ck > 1 {
            cycles += f64::from(self.target.sync_cycles) + (reduce_in / part_b.max(1)) as f64;
        }
        (cycles, mem)
    }
}

/// Whether a split of `cycles` and `items` work items is better than `best`: fewer cycles,
/// then fewer items.
fn beats(best: Option<(f64, u64, Split)>, cycles: f64, items: u64) -> bool {
    best.is_none_or(|(bc, bi, _)| cycles < bc || (cycles == bc && items < bi))
}

/// The split of `d` with the fewest estimated cycles within the budget (or the smallest
/// footprint if none fits).
pub(crate) fn choose_split(d: &Dims, c: &Costing, b_in_place: bool) -> Split {
    let mut best: Option<(f64, u64, Split)> = None;
    let mut smallest: Option<(u64, Split)> = None;
    for &bm in &candidates(d.m.max(1), 64) {
        for &bn in &candidates(d.n.max(1), 128) {
            for &bk in &k_candidates(d.k) {
                let s = Split { bm, bn, bk };
                let (cm, cn, ck) = s.counts(d);
                let items = d.batches * cm * cn * ck;
                let (cycles, mem) = c.cost(d, &s, b_in_place);
                if smallest.is_none_or(|(m, _)| mem < m) {
                    smallest = Some((mem, s));
                }
                if mem <= c.budget && beats(best, cycles, items) {
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

/// Splits of several products of one weight (`[k, n]` in each of `ds`) on one grid of
/// weight blocks (the same `bn` and `bk`), so that every product reads the blocks in place:
/// the grid with the fewest estimated cycles summed over the products, each with its best
/// row block within the budget. `None` when no grid fits every product.
pub(crate) fn choose_shared(ds: &[Dims], c: &Costing) -> Option<Vec<Split>> {
    let first = ds.first()?;
    let mut best: Option<(f64, Vec<Split>)> = None;
    for &bn in &candidates(first.n.max(1), 128) {
        for &bk in &k_candidates(first.k) {
            let mut total = 0.0;
            let mut splits = Vec::with_capacity(ds.len());
            for d in ds {
                let mut pick: Option<(f64, u64, Split)> = None;
                for &bm in &candidates(d.m.max(1), 64) {
                    let s = Split { bm, bn, bk };
                    let (cm, cn, ck) = s.counts(d);
                    let items = d.batches * cm * cn * ck;
                    let (cycles, mem) = c.cost(d, &s, true);
                    if mem <= c.budget && beats(pick, cycles, items) {
                        pick = Some((cycles, items, s));
                    }
                }
                let Some((cycles, _, s)) = pick else {
                    total = f64::INFINITY;
                    break;
                };
                total += cycles;
                splits.push(s);
            }
            if total.is_finite() && best.as_ref().is_none_or(|(t, _)| total < *t) {
                best = Some((total, splits));
            }
        }
    }
    best.map(|b| b.1)
}

/// MACs per cycle per tile for these operand and partials types.
pub(crate) fn macs_rate(target: &Target, input: Elem, partials: Elem) -> u64 {
    u64::from(match (input, partials) {
        (Elem::F16, Elem::F16) => target.macs_per_cycle_f16_f16_partials,
        (Elem::F16, _) => target.macs_per_cycle_f16_f32_partials,
        _ => target.macs_per_cycle_f32,
    })
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
        let c = Costing {
            in_b: 4,
            part_b: 4,
            out_b: 4,
            macs_per_cycle: u64::from(t.macs_per_cycle_f32),
            target: &t,
            budget,
        };
        let s = choose_split(&d, &c, false);
        let (_, mem) = c.cost(&d, &s, false);
        assert!(mem <= budget, "{s:?} needs {mem} bytes");
        let (cm, cn, ck) = s.counts(&d);
        assert!(cm * cn * ck <= u64::from(t.tiles_per_chip), "{s:?}");
        // A tighter budget forces smaller blocks.
        let tight_c = Costing {
            budget: 64 * 1024,
            ..c
        };
        let tight = choose_split(&d, &tight_c, false);
        let (_, tmem) = c.cost(&d, &tight, false);
        assert!(tmem <= 64 * 1024, "{tight:?} needs {tmem}");
        assert!(tmem < mem || tight == s, "{tight:?} vs {s:?}");
        // Every block of the chosen split is within the dimensions and covers them.
        for (dim, block) in [(d.m, s.bm), (d.n, s.bn), (d.k, s.bk)] {
            assert!(block >= 1 && block <= dim);
        }
    }
}
