//! The `auto` policy: per layer and stage, the checkpoint granularity that stores the
//! fewest extra FLOPs' worth of activations under a memory budget per chip.
//!
//! Each (layer, stage) pair is an *item* with three options, each analysed exactly on the
//! graph ([`super::analysis`]):
//! - `keep`: no recomputation — every activation its backward pass reads is stashed;
//! - `sub-layer`: checkpoints at the outputs of the layer's sub-modules (attention,
//!   feed-forward, ...), recomputing inside each;
//! - `layer`: checkpoints at the layer's outputs only, recomputing the whole layer.
//!
//! An option only changes which of the item's own values are kept (values read by another
//! unit or stage are checkpoints under every option), so items are independent: an
//! item's stash is what its backward and recomputed nodes read from the stash, and its
//! extra FLOPs those of its recomputed nodes. Per chip, the pass then solves the
//! multiple-choice knapsack *minimise Σ extra FLOPs subject to Σ stash × in-flight copies
//! ≤ budget* exactly with a Pareto frontier of (stash, FLOPs) pairs, item by item. The
//! frontier is thinned to [`FRONTIER_LIMIT`] points (keeping its cheapest and its
//! lightest ends) if it ever grows beyond, which makes the result approximate only for
//! graphs with hundreds of layers per chip. The reported activation memory is recomputed
//! on the final graph, so a value read by two items is counted once there.

use super::analysis::{analyze, Analysis, Info};
use super::policy::{kept, unit_boundaries};
use super::RecomputeError;
use crate::layers::Units;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use tessera_ir::flops::node_flops;
use tessera_ir::{Graph, NodeId};

/// Largest Pareto frontier kept while solving one chip's knapsack.
pub const FRONTIER_LIMIT: usize = 4096;

/// The options of an item, in order of decreasing stash.
const OPTIONS: [&str; 3] = ["keep", "sub-layer", "layer"];

/// The granularity `auto` chose for one layer on one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoChoice {
    /// The layer.
    pub layer: String,
    /// Its stage (`None` in an unplaced graph).
    pub stage: Option<u32>,
    /// `keep`, `sub-layer` or `layer`.
    pub choice: String,
    /// Stash of one micro-batch with that choice, bytes.
    pub stash_bytes: u64,
    /// Extra FLOPs of that choice.
    pub extra_flops: u64,
}

/// An item: a layer unit (`None`: nodes without one) on a stage (`None`: unplaced).
type ItemKey = (Option<usize>, Option<u32>);

/// (stash bytes, extra FLOPs) of each option of an item, in [`OPTIONS`] order.
type ItemOptions = [(u64, u64); 3];

/// Budget and in-flight stash copies of a stage.
pub(crate) type StageLimits<'a> = &'a dyn Fn(Option<u32>) -> Result<(u64, u64), RecomputeError>;

/// Chooses an option per item; returns the checkpoint table and the choices.
pub(crate) fn choose(
    graph: &Graph,
    info: &Info,
    layers: &Units,
    subs: &Units,
    limits: StageLimits<'_>,
) -> Result<(Vec<bool>, Vec<AutoChoice>), RecomputeError> {
    let size = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
    let tables = [
        vec![true; size],
        unit_boundaries(graph, subs),
        unit_boundaries(graph, layers),
    ];
    let item_of = |id: NodeId| (layers.unit_of(id), graph.node(id).annot.stage);
    let mut items: BTreeMap<ItemKey, ItemOptions> = BTreeMap::new();
    for id in graph.node_ids() {
        if !graph.node(id).op.is_leaf() {
            items.entry(item_of(id)).or_insert([(0, 0); 3]);
        }
    }
    for (o, table) in tables.iter().enumerate() {
        let a: Analysis = analyze(graph, info, &|v| kept(table, v));
        for &v in &a.recomputed {
            if let Some(opts) = items.get_mut(&item_of(v)) {
                opts[o].1 += node_flops(graph, v).total();
            }
        }
        let mut seen: HashSet<(ItemKey, NodeId)> = HashSet::new();
        for &((root, _), reader) in &a.stash_reader {
            let item = item_of(reader);
            if seen.insert((item, root)) {
                if let Some(opts) = items.get_mut(&item) {
                    opts[o].0 += graph.node(root).ty.size_bytes() as u64;
                }
            }
        }
    }
    let mut by_stage: BTreeMap<Option<u32>, Vec<(Option<usize>, ItemOptions)>> = BTreeMap::new();
    for (&(unit, stage), &opts) in &items {
        by_stage.entry(stage).or_default().push((unit, opts));
    }
    let mut choice_of: BTreeMap<ItemKey, usize> = BTreeMap::new();
    let mut report = Vec::new();
    for (stage, list) in &by_stage {
        let (budget, copies) = limits(*stage)?;
        let cap = budget / copies.max(1);
        let options: Vec<ItemOptions> = list.iter().map(|(_, o)| *o).collect();
        let Some(picked) = knapsack(&options, cap) else {
            let least: u64 = options
                .iter()
                .map(|o| o.iter().map(|x| x.0).min().unwrap_or(0))
                .sum();
            return Err(RecomputeError::NothingFits {
                stage: *stage,
                needed_bytes: least.saturating_mul(copies.max(1)),
                budget_bytes: budget,
                copies: copies.max(1),
            });
        };
        for ((unit, opts), &o) in list.iter().zip(&picked) {
            choice_of.insert((*unit, *stage), o);
            let layer = unit
                .and_then(|u| layers.units().get(u))
                .map(|u| u.name.clone())
                .unwrap_or_default();
            report.push(AutoChoice {
                layer,
                stage: *stage,
                choice: OPTIONS.get(o).copied().unwrap_or("keep").to_string(),
                stash_bytes: opts[o].0,
                extra_flops: opts[o].1,
            });
        }
    }
    let mut keep = vec![true; size];
    for id in graph.node_ids() {
        let o = choice_of.get(&item_of(id)).copied().unwrap_or(0);
        if let (Some(k), Some(table)) = (keep.get_mut(id.index()), tables.get(o)) {
            *k = kept(table, id);
        }
    }
    Ok((keep, report))
}

/// One point of a Pareto frontier: total weight and cost, and how it was reached.
#[derive(Debug, Clone, Copy)]
struct Point {
    weight: u64,
    cost: u64,
    prev: usize,
    option: usize,
}

/// The option per item minimising total cost with total weight at most `cap`, or `None`
/// if no combination fits. Items are `[(weight, cost); 3]`.
pub(crate) fn knapsack(items: &[ItemOptions], cap: u64) -> Option<Vec<usize>> {
    let mut fronts: Vec<Vec<Point>> = vec![vec![Point {
        weight: 0,
        cost: 0,
        prev: 0,
        option: 0,
    }]];
    for item in items {
        let front = fronts.last()?;
        let mut next: Vec<Point> = Vec::with_capacity(front.len() * item.len());
        for (pi, p) in front.iter().enumerate() {
            for (o, &(w, c)) in item.iter().enumerate() {
                let weight = p.weight.saturating_add(w);
                if weight <= cap {
                    next.push(Point {
                        weight,
                        cost: p.cost.saturating_add(c),
                        prev: pi,
                        option: o,
                    });
                }
            }
        }
        next.sort_by_key(|p| (p.weight, p.cost));
        let mut pruned: Vec<Point> = Vec::with_capacity(next.len());
        for p in next {
            if pruned.last().is_none_or(|q: &Point| p.cost < q.cost) {
                pruned.push(p);
            }
        }
        if pruned.is_empty() {
            return None;
        }
        if pruned.len() > FRONTIER_LIMIT {
            pruned = thin(&pruned);
        }
        fronts.push(pruned);
    }
    // Costs fall as weights rise along a frontier: the last point is the cheapest.
    let last = fronts.last()?;
    let mut at = last.len().checked_sub(1)?;
    let mut picked = vec![0; items.len()];
    for (i, front) in fronts.iter().enumerate().skip(1).rev() {
        let p = front.get(at)?;
        picked[i - 1] = p.option;
        at = p.prev;
    }
    Some(picked)
}

/// Keeps [`FRONTIER_LIMIT`] points of a frontier, evenly spread, both ends included.
fn thin(front: &[Point]) -> Vec<Point> {
    let n = front.len();
    let k = FRONTIER_LIMIT.max(2);
    (0..k)
        .map(|i| i * (n - 1) / (k - 1))
        .filter_map(|i| front.get(i).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over every combination, for comparison.
    fn brute(items: &[[(u64, u64); 3]], cap: u64) -> Option<u64> {
        let n = items.len();
        let mut best: Option<u64> = None;
        for code in 0..3usize.pow(n as u32) {
            let (mut w, mut c, mut k) = (0, 0, code);
            for item in items {
                let (iw, ic) = item[k % 3];
                w += iw;
                c += ic;
                k /= 3;
            }
            if w <= cap && best.is_none_or(|b| c < b) {
                best = Some(c);
            }
        }
        best
    }

    #[test]
    fn knapsack_matches_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let n = rng.gen_range(1..7);
            let items: Vec<[(u64, u64); 3]> = (0..n)
                .map(|_| {
                    let w0 = rng.gen_range(10..100);
                    let w1 = rng.gen_range(5..=w0);
                    let w2 = rng.gen_range(0..=w1);
                    [
                        (w0, 0),
                        (w1, rng.gen_range(0..50)),
                        (w2, rng.gen_range(0..100)),
                    ]
                })
                .collect();
            let cap = rng.gen_range(0..400);
            let got = knapsack(&items, cap);
            let want = brute(&items, cap);
            match (got, want) {
                (None, None) => {}
                (Some(p), Some(best)) => {
                    let w: u64 = p.iter().zip(&items).map(|(&o, it)| it[o].0).sum();
                    let c: u64 = p.iter().zip(&items).map(|(&o, it)| it[o].1).sum();
                    assert!(w <= cap);
                    assert_eq!(c, best, "items {items:?} cap {cap}");
                }
                other => panic!("feasibility differs: {other:?} for {items:?} cap {cap}"),
            }
        }
    }

    #[test]
    fn knapsack_prefers_free_options_when_everything_fits() {
        let items = [[(10, 0), (5, 3), (1, 9)]; 3];
        assert_eq!(knapsack(&items, 30), Some(vec![0, 0, 0]));
        // 16 bytes: one item must drop to 5 (cost 3), the others stay... 10+5+1 = 16 costs
        // 12, 5+5+5 = 15 costs 9: the latter is cheaper.
        let p = knapsack(&items, 16).unwrap();
        let c: u64 = p.iter().map(|&o| items[0][o].1).sum();
        assert_eq!(c, 9);
        assert_eq!(knapsack(&items, 2), None);
    }
}
