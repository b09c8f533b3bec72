//! Activation memory: stashes kept for the backward pass, and the peak of the other live
//! values within a stage.
//!
//! **Stash.** A value produced by a forward node (or fed as an input) and read by a
//! backward node (recomputation included) of the same micro-batch must be kept from the
//! micro-batch's forward pass until its backward pass, on the stage of that backward
//! node. With recomputation only the checkpoints are read by backward nodes, so the stash
//! is exactly the checkpoints.
//! How many micro-batches are in flight on stage `s` of `P` follows from PopART's
//! schedule, in which the last stage runs forward and backward of a micro-batch together
//! (`2P − 1` pipeline slots): micro-batch `i` runs forward on stage `s` in slot `i + s`
//! and backward in slot `i + 2(P − 1) − s`, so in slot `t` the micro-batches between
//! their forward and backward on `s` are `t − 2(P−1) + s ≤ i ≤ t − s`, i.e.
//! `2(P − 1 − s) + 1` of them — never more than the `G` micro-batches of a step. Stage
//! `s` therefore keeps `min(2(P−1−s)+1, G)` copies of its stash.
//!
//! **Temporaries.** Every other value (not a weight, not stashed, not a gradient, which
//! has its own buffer) is live on a stage from the node that produces it there (or from
//! its first use there, when it arrives from another stage or is a leaf) to its last use
//! there; graph outputs live to the end. Views share their operand's storage. A scan over
//! the graph's topological order adds each op's own temporaries while it runs; the peak of
//! the sum is the stage's not-always-live memory for one micro-batch. Optimizer nodes run
//! after all micro-batches and are left out of the scan.

use tessera_ir::{Graph, NodeId, Op};

use super::optimizer::GRAD_PREFIX;
use super::phase::{Phase, Placement};

/// Micro-batches whose stash stage `stage` of `stages` keeps, with `grad_accum`
/// micro-batches per step.
pub fn stash_copies(stage: u32, stages: u32, grad_accum: u32) -> u64 {
    let in_flight = 2 * u64::from(stages.saturating_sub(1).saturating_sub(stage)) + 1;
    in_flight.min(u64::from(grad_accum.max(1)))
}

/// True for leaves that are not per-micro-batch data (weights and constants).
fn is_static_leaf(op: &Op) -> bool {
    matches!(op, Op::Param { .. } | Op::Full { .. } | Op::Iota { .. })
}

/// Stashed values: per storage root (by node index), the stages keeping it.
pub(crate) type Stashed = Vec<Vec<u32>>;

/// True when stage `stage` stashes storage root `r`.
fn is_stashed(stashed: &Stashed, r: NodeId, stage: u32) -> bool {
    stashed.get(r.index()).is_some_and(|s| s.contains(&stage))
}

/// The stash bytes of one micro-batch per stage, and which values each stage stashes.
/// A value is stashed on the stage of the backward node that reads it (a value produced
/// on another stage arrives there during the forward pass, or is sent for the backward
/// pass, and waits there).
pub(crate) fn stashes(graph: &Graph, pl: &Placement, num_stages: usize) -> (Vec<u64>, Stashed) {
    let mut bytes = vec![0u64; num_stages];
    let mut stashed: Stashed = vec![Vec::new(); pl.pos.len()];
    for &u in &pl.order {
        if pl.phase(u) != Phase::Backward {
            continue;
        }
        let stage = pl.stage(u);
        for &o in pl.operands(u) {
            let r = pl.root(o);
            let node = graph.node(r);
            if pl.phase(r) != Phase::Forward || is_static_leaf(&node.op) {
                continue;
            }
            let (Some(b), Some(kept)) = (bytes.get_mut(stage as usize), stashed.get_mut(r.index()))
            else {
                continue;
            };
            if !kept.contains(&stage) {
                kept.push(stage);
                *b = b.saturating_add(node.ty.size_bytes() as u64);
            }
        }
    }
    (bytes, stashed)
}

/// Storage roots left out of the temporaries scan on every stage: weights and gradients.
pub(crate) fn excluded_roots(graph: &Graph, pl: &Placement) -> Vec<bool> {
    let mut excluded = vec![false; pl.pos.len()];
    for &id in &pl.order {
        if matches!(graph.node(id).op, Op::Param { .. }) {
            if let Some(e) = excluded.get_mut(id.index()) {
                *e = true;
            }
        }
    }
    for o in graph.outputs() {
        if o.name.starts_with(GRAD_PREFIX) && graph.contains(o.node) {
            if let Some(e) = excluded.get_mut(pl.root(o.node).index()) {
                *e = true;
            }
        }
    }
    excluded
}

/// The peak of live temporaries per stage (bytes); `op_temp` is each node's own
/// temporaries, by node index.
pub(crate) fn peak_temporaries(
    graph: &Graph,
    pl: &Placement,
    (excluded, stashed): (&[bool], &Stashed),
    op_temp: &[u64],
    num_stages: usize,
) -> Vec<u64> {
    let n = pl.order.len();
    let skip = |r: NodeId, stage: u32| {
        excluded.get(r.index()).copied().unwrap_or(true)
            || pl.phase(r) == Phase::Optimizer
            || is_stashed(stashed, r, stage)
    };
    // Per storage root: (stage, first position, last position) of each stage it is on.
    let mut live: Vec<Vec<(u32, usize, usize)>> = vec![Vec::new(); pl.pos.len()];
    let mut touch = |r: NodeId, stage: u32, at: usize| {
        let Some(spans) = live.get_mut(r.index()) else {
            return;
        };
        match spans.iter_mut().find(|(s, _, _)| *s == stage) {
            Some(span) => {
                span.1 = span.1.min(at);
                span.2 = span.2.max(at);
            }
            None => spans.push((stage, at, at)),
        }
    };
    for (i, &u) in pl.order.iter().enumerate() {
        if pl.phase(u) == Phase::Optimizer {
            continue;
        }
        let stage = pl.stage(u);
        if !graph.node(u).op.is_leaf() && pl.root(u) == u && !skip(u, stage) {
            touch(u, stage, i);
        }
        for &o in pl.operands(u) {
            let r = pl.root(o);
            if !skip(r, stage) {
                touch(r, stage, i);
            }
        }
    }
    for o in graph.outputs() {
        if o.name.starts_with(GRAD_PREFIX) || !graph.contains(o.node) {
            continue;
        }
        let (r, stage) = (pl.root(o.node), pl.stage(o.node));
        if !skip(r, stage) {
            let at = pl.pos.get(o.node.index()).copied().unwrap_or(0).min(n);
            touch(r, stage, at);
            touch(r, stage, n);
        }
    }
    let mut diff = vec![vec![0i128; n + 2]; num_stages];
    for (k, spans) in live.iter().enumerate() {
        for &(stage, start, end) in spans {
            if let Some(d) = diff.get_mut(stage as usize) {
                let b = graph.node(NodeId::new(k)).ty.size_bytes() as i128;
                d[start] += b;
                d[end + 1] -= b;
            }
        }
    }
    for (i, &u) in pl.order.iter().enumerate() {
        let t = op_temp.get(u.index()).copied().unwrap_or(0);
        if t == 0 || pl.phase(u) == Phase::Optimizer {
            continue;
        }
        if let Some(d) = diff.get_mut(pl.stage(u) as usize) {
            d[i] += i128::from(t);
            d[i + 1] -= i128::from(t);
        }
    }
    diff.iter()
        .map(|d| {
            let mut sum = 0i128;
            let mut peak = 0i128;
            for v in d {
                sum += v;
                peak = peak.max(sum);
            }
            u64::try_from(peak).unwrap_or(u64::MAX)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stash_copies_follow_the_slot_schedule() {
        // P = 4, G = 8: stages keep 7, 5, 3, 1 copies.
        let copies: Vec<u64> = (0..4).map(|s| stash_copies(s, 4, 8)).collect();
        assert_eq!(copies, vec![7, 5, 3, 1]);
        // Never more than the micro-batches of a step.
        assert_eq!(stash_copies(0, 4, 2), 2);
        // Without pipelining, the current micro-batch only.
        assert_eq!(stash_copies(0, 1, 16), 1);
    }
}
