//! Which segment every node runs in, and which values cross from one segment to another.
//!
//! A node's segment is its stage's forward or backward ([`crate::layers::phase`]; the
//! pipeline pass's stash restores belong to the backward that reads them). Values are
//! tracked by their *storage root* (the value a chain of reshapes views), since the
//! lowering gives a reshape its operand's bytes. A root read by another segment than its
//! own is a [`Crossing`]: it is copied out at the end of its segment, into one boundary
//! buffer when no later run of its producer can overwrite it before the last reader ran
//! ([`Schedule::runs_between`] = 0), else into a ring of stash slots, one per micro-batch
//! in flight. Graph inputs are streamed again into every segment that reads them.

use super::schedule::{Schedule, SegmentKind};
use crate::layers::{phase, Phase, STASH_MARKER};
use crate::lower::error::LowerError;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tessera_ir::{Graph, NodeId, Op};

/// A value read outside the segment that computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Crossing {
    /// The storage root.
    pub root: NodeId,
    /// Its segment.
    pub producer: usize,
    /// The other segments reading it, ascending.
    pub consumers: Vec<usize>,
    /// Producer runs between production and the last read (0: one boundary buffer); the
    /// same for every ringed value of a producer (its deepest).
    pub runs_between: usize,
}

/// The segment structure of a placed training graph.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    /// The schedule.
    pub schedule: Schedule,
    /// Segment of every non-leaf node.
    pub seg: HashMap<NodeId, usize>,
    /// Non-leaf nodes in lowering order: by segment, topologically within one.
    pub order: Vec<NodeId>,
    /// Values read across segments, by root.
    pub crossings: BTreeMap<NodeId, Crossing>,
    /// Graph inputs each segment reads (directly or through reshapes).
    pub inputs_read: Vec<BTreeSet<NodeId>>,
}

/// The value `id` views: through reshapes to the first non-reshape.
pub(crate) fn storage_root(g: &Graph, mut id: NodeId) -> NodeId {
    while matches!(g.node(id).op, Op::Reshape { .. }) {
        match g.operands(id).first() {
            Some(&o) => id = o,
            None => break,
        }
    }
    id
}

fn describe(g: &Graph, id: NodeId, reason: String) -> LowerError {
    LowerError::Pipeline {
        node: g
            .value_names()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("{id:?}")),
        scope: g.node(id).scope.clone(),
        reason,
    }
}

/// Segments and crossings of `g` for a `stages`-stage pipeline; the `optimizer` nodes form
/// one more segment (index `2P`), run once per step after the flush.
pub(crate) fn analyse(
    g: &Graph,
    stages: u32,
    optimizer: &HashSet<NodeId>,
) -> Result<Analysis, LowerError> {
    let schedule = Schedule { stages };
    let topo = g.topo_order();
    let mut seg = HashMap::new();
    for &n in &topo {
        let node = g.node(n);
        if node.op.is_leaf() {
            continue;
        }
        let stage = node.annot.stage.unwrap_or(0);
        if stage >= stages {
            return Err(describe(
                g,
                n,
                format!("stage {stage} is beyond the {stages}-stage pipeline"),
            ));
        }
        if optimizer.contains(&n) {
            seg.insert(n, schedule.segments());
            continue;
        }
        let stash = node.scope.rsplit('.').next() == Some(STASH_MARKER);
        let kind = match phase(node) {
            Phase::Forward if !stash => SegmentKind::Forward,
            Phase::Forward | Phase::Backward => SegmentKind::Backward,
            Phase::Optimizer => {
                return Err(describe(
                    g,
                    n,
                    "optimizer nodes are not part of a micro-batch's pipeline".into(),
                ))
            }
        };
        seg.insert(n, schedule.index(stage, kind));
    }
    let mut order: Vec<NodeId> = seg.keys().copied().collect();
    let rank: HashMap<NodeId, usize> = topo.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    order.sort_by_key(|n| (seg.get(n).copied(), rank.get(n).copied()));

    let mut crossings: BTreeMap<NodeId, Crossing> = BTreeMap::new();
    let mut inputs_read = vec![BTreeSet::new(); schedule.segments() + 1];
    for &n in &order {
        if matches!(g.node(n).op, Op::Reshape { .. }) {
            continue;
        }
        let q = seg.get(&n).copied().unwrap_or(0);
        for o in g.operands(n) {
            let r = storage_root(g, o);
            match g.node(r).op {
                // Bound and streamed optimizer inputs are lowered by the optimizer segment.
                Op::Input { .. } if optimizer.contains(&r) => {}
                Op::Input { .. } => {
                    if let Some(set) = inputs_read.get_mut(q) {
                        set.insert(r);
                    }
                }
                Op::Param { .. } | Op::Full { .. } | Op::Iota { .. } => {}
                _ => {
                    let p = seg.get(&r).copied().unwrap_or(0);
                    if p == q {
                        continue;
                    }
                    if q >= schedule.segments() || p >= schedule.segments() {
                        return Err(describe(
                            g,
                            n,
                            "the optimizer step reads only weights, its inputs and the \
                             accumulated gradients, not a micro-batch's values"
                                .into(),
                        ));
                    }
                    let between = schedule.runs_between(p, q).ok_or_else(|| {
                        describe(
                            g,
                            n,
                            format!(
                                "it reads a value of segment {} in segment {}, which runs \
                                 before it for the same micro-batch",
                                segment_name(&schedule, p),
                                segment_name(&schedule, q)
                            ),
                        )
                    })?;
                    let c = crossings.entry(r).or_insert(Crossing {
                        root: r,
                        producer: p,
                        consumers: Vec::new(),
                        runs_between: 0,
                    });
                    if !c.consumers.contains(&q) {
                        c.consumers.push(q);
                        c.consumers.sort_unstable();
                    }
                    c.runs_between = c.runs_between.max(between);
                }
            }
        }
    }
    // One ring size per producing segment (micro-batch `m` uses slot `m % slots` for all of
    // a segment's stashed values): the deepest of its values' rings.
    let mut depth: HashMap<usize, usize> = HashMap::new();
    for c in crossings.values() {
        let d = depth.entry(c.producer).or_default();
        *d = (*d).max(c.runs_between);
    }
    for c in crossings.values_mut() {
        if c.runs_between > 0 {
            c.runs_between = depth.get(&c.producer).copied().unwrap_or(c.runs_between);
        }
    }
    Ok(Analysis {
        schedule,
        seg,
        order,
        crossings,
        inputs_read,
    })
}

/// `F2` / `B0`: a segment's short name.
pub fn segment_name(schedule: &Schedule, seg: usize) -> String {
    if seg >= schedule.segments() {
        return "optimizer".into();
    }
    let (s, kind) = schedule.segment(seg);
    match kind {
        SegmentKind::Forward => format!("F{s}"),
        SegmentKind::Backward => format!("B{s}"),
    }
}
