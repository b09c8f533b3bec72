//! What a checkpoint set implies, computed without changing the graph: which forward
//! nodes the backward pass must recompute, what they cost, and which activations are
//! stashed from the forward to the backward pass.
//!
//! Given `keep(v)` (v is a checkpoint: its value is stored for the backward pass), a
//! forward computed node `v` is *recomputed* when a backward node, or another recomputed
//! node, on the same stage reads it and `keep(v)` is false. Reads across stages are left
//! alone (the pipeline pass copies those values between chips). The *stash* is the set of
//! (storage root, stage) pairs of non-static forward values — activations and graph
//! inputs, not weights or constants — that backward or recomputed nodes on that stage read
//! without recomputing them; views (reshape, broadcast) share their operand's storage, as
//! in the cost model.

use crate::layers::{is_forward_compute, is_static_leaf, phase, Phase};
use std::collections::{BTreeMap, HashSet};
use tessera_ir::flops::node_flops;
use tessera_ir::{Graph, NodeId, Op};

/// Per-node facts shared by the analyses, indexed by node index.
pub(crate) struct Info {
    /// The graph's topological order.
    pub order: Vec<NodeId>,
    /// Position of each node index in `order`.
    pub pos: Vec<usize>,
    /// Storage root of each node index.
    pub root: Vec<NodeId>,
}

impl Info {
    pub fn new(graph: &Graph) -> Info {
        let order = graph.topo_order();
        let size = graph.node_ids().map(|id| id.index() + 1).max().unwrap_or(0);
        let mut pos = vec![usize::MAX; size];
        let mut root: Vec<NodeId> = (0..size).map(NodeId::new).collect();
        for (i, &id) in order.iter().enumerate() {
            pos[id.index()] = i;
            if matches!(
                graph.node(id).op,
                Op::Reshape { .. } | Op::BroadcastTo { .. }
            ) {
                if let Some(src) = graph.operands(id).first() {
                    root[id.index()] = root[src.index()];
                }
            }
        }
        Info { order, pos, root }
    }

    /// The storage root of `id`.
    pub fn root(&self, id: NodeId) -> NodeId {
        self.root.get(id.index()).copied().unwrap_or(id)
    }
}

/// The consequences of one checkpoint set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Analysis {
    /// Forward nodes to recompute, in topological order.
    pub recomputed: Vec<NodeId>,
    /// Their FLOPs per stage (`None` = unstaged).
    pub extra_flops: BTreeMap<Option<u32>, u64>,
    /// Stashed (storage root, stage) pairs.
    pub stash: HashSet<(NodeId, Option<u32>)>,
    /// The node whose read put each stash entry there first (to attribute it to a unit).
    pub stash_reader: Vec<((NodeId, Option<u32>), NodeId)>,
}

impl Analysis {
    /// Bytes of the stash per stage.
    pub fn stash_bytes(&self, graph: &Graph) -> BTreeMap<Option<u32>, u64> {
        let mut out = BTreeMap::new();
        for &(root, stage) in &self.stash {
            *out.entry(stage).or_insert(0u64) += graph.node(root).ty.size_bytes() as u64;
        }
        out
    }

    /// Total extra FLOPs.
    pub fn total_extra_flops(&self) -> u64 {
        self.extra_flops.values().sum()
    }
}

/// Analyses the checkpoint set `keep` on `graph` (see the module documentation).
pub(crate) fn analyze(graph: &Graph, info: &Info, keep: &dyn Fn(NodeId) -> bool) -> Analysis {
    let stage = |id: NodeId| graph.node(id).annot.stage;
    let recompute_candidate = |v: NodeId, reader: NodeId| {
        is_forward_compute(graph.node(v)) && stage(v) == stage(reader) && !keep(v)
    };
    let mut marked: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = Vec::new();
    for &b in &info.order {
        if graph.node(b).op.is_leaf() || phase(graph.node(b)) != Phase::Backward {
            continue;
        }
        for o in graph.operands(b) {
            if recompute_candidate(o, b) && marked.insert(o) {
                stack.push(o);
            }
        }
    }
    while let Some(v) = stack.pop() {
        for w in graph.operands(v) {
            if recompute_candidate(w, v) && marked.insert(w) {
                stack.push(w);
            }
        }
    }
    let mut recomputed: Vec<NodeId> = marked.iter().copied().collect();
    recomputed.sort_by_key(|id| info.pos.get(id.index()).copied().unwrap_or(usize::MAX));
    let mut a = Analysis {
        recomputed,
        ..Analysis::default()
    };
    for &v in &a.recomputed {
        *a.extra_flops.entry(stage(v)).or_insert(0) += node_flops(graph, v).total();
    }
    // Readers: backward nodes, and the recomputed copies (which sit on their original's
    // stage). A read of a recomputed value is served by its copy; any other read of a
    // per-micro-batch forward value is served from the stash.
    let readers = info
        .order
        .iter()
        .copied()
        .filter(|&b| !graph.node(b).op.is_leaf() && phase(graph.node(b)) == Phase::Backward)
        .chain(a.recomputed.iter().copied());
    let mut stash_reader = Vec::new();
    for r in readers.collect::<Vec<_>>() {
        let rs = stage(r);
        for o in graph.operands(r) {
            if marked.contains(&o) && stage(o) == rs {
                continue;
            }
            let root = info.root(o);
            if is_static_leaf(&graph.node(root).op) || phase(graph.node(o)) != Phase::Forward {
                continue;
            }
            let key = (root, rs);
            if a.stash.insert(key) {
                stash_reader.push((key, r));
            }
        }
    }
    a.stash_reader = stash_reader;
    a
}
