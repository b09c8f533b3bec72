//! The partition of a graph's computed nodes into [`Units`], in a topological order.
//!
//! How a node finds its unit:
//! 1. its module scope ([`super::module_scope`]) goes through the [`LayerRule`]; with
//!    [`Granularity::SubLayer`] the unit is the layer's direct sub-module
//!    (`lxmert.encoder.layer.0.attention`), or the layer itself for nodes scoped exactly
//!    at the layer;
//! 2. a node the rule does not cover joins the unit of its first user in topological order
//!    (so a helper value, e.g. an attention mask, is computed where it is first needed),
//!    else that of its last operand, else a catch-all unit `(unscoped)`;
//! 3. units whose forward nodes depend on each other in a cycle are merged (their names
//!    joined with `+`), so that the units form a DAG under forward data flow;
//! 4. units are ordered by Kahn's algorithm on that DAG, taking among the ready units the
//!    one whose first node placed by the rule (not attached in step 2) comes first in
//!    [`Graph::topo_order`] — for models built in the order their Python `forward` runs
//!    (LXMERT: embeddings, visual projection, language layers, object layers, cross
//!    layers, pooler, head, loss) this is that order. Units with no forward data flow to
//!    or from any other unit (loss-scale arithmetic) come last.
//!
//! Leaves (inputs, parameters, constants) belong to no unit: they are placed with their
//! users. Backward edges (gradients flowing to earlier units) do not constrain the order.
//! [`Units::topological`] is the fallback for graphs without usable scopes: chunks of the
//! forward topological order of about equal FLOPs.

use super::attach::{attach_uncovered, index_bound, positions, sub_module};
use super::rule::{is_number, LayerRule};
use super::{is_forward_compute, module_scope};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use tessera_ir::flops::node_flops;
use tessera_ir::{Graph, NodeId};

/// Marks a node without a unit in the per-node tables.
pub(super) const NONE: u32 = u32::MAX;

/// How fine the units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One unit per layer.
    Layer,
    /// One unit per direct sub-module of a layer (placement may cut inside layers).
    SubLayer,
}

/// A group of computed nodes that recomputation and placement treat as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name: its layer, or its sub-module (`<layer>.<component>`).
    pub name: String,
    /// The layer the unit belongs to.
    pub layer: String,
    /// The layer is an element of a module list (its last component is a number): an
    /// encoder layer, as `layers_per_ipu` counts them.
    pub numbered: bool,
    /// The unit's non-leaf nodes (forward and backward), in topological order.
    pub nodes: Vec<NodeId>,
}

/// How a partition was made, to make the same partition of another graph.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// [`Units::new`] with this rule and granularity.
    Rule(LayerRule, Granularity),
    /// [`Units::topological`] with this many chunks.
    Topological(usize),
}

/// The units of a graph, in a topological order of forward data flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    units: Vec<Unit>,
    /// Unit per node index (`NONE` for leaves and vacant indices).
    of: Vec<u32>,
    /// How the partition was made.
    origin: Origin,
}

/// A provisional unit before merging and ordering.
pub(super) struct Key {
    pub(super) name: String,
    pub(super) layer: String,
    /// Topological position of the first node the rule put in it (not attached to it);
    /// `usize::MAX` for units made only of attached nodes.
    pub(super) first: usize,
}

impl Units {
    /// Partitions `graph`'s computed nodes with `rule` at `granularity` (see the module
    /// documentation).
    pub fn new(graph: &Graph, rule: &LayerRule, granularity: Granularity) -> Units {
        let order = graph.topo_order();
        let size = index_bound(graph);
        let mut keys: Vec<Key> = Vec::new();
        let mut by_name: HashMap<String, u32> = HashMap::new();
        let mut prov = vec![NONE; size];
        for (i, &id) in order.iter().enumerate() {
            let node = graph.node(id);
            if node.op.is_leaf() {
                continue;
            }
            let ms = module_scope(&node.scope);
            let Some(layer) = rule.layer_of(ms) else {
                continue;
            };
            let name = match granularity {
                Granularity::Layer => layer,
                Granularity::SubLayer => sub_module(ms, layer),
            };
            let k = *by_name.entry(name.to_string()).or_insert_with(|| {
                keys.push(Key {
                    name: name.to_string(),
                    layer: layer.to_string(),
                    first: i,
                });
                (keys.len() - 1) as u32
            });
            prov[id.index()] = k;
        }
        let pos = positions(&order, size);
        attach_uncovered(graph, &order, &pos, &mut prov, &mut keys);
        let origin = Origin::Rule(rule.clone(), granularity);
        Units::finish(graph, &order, &pos, &prov, keys, origin)
    }

    /// The same kind of partition (rule and granularity, or chunk count) of `graph`: for
    /// a transformed version of the partitioned graph, whose unit names it shares.
    pub fn same_on(&self, graph: &Graph) -> Units {
        match &self.origin {
            Origin::Rule(rule, granularity) => Units::new(graph, rule, *granularity),
            Origin::Topological(chunks) => Units::topological(graph, *chunks),
        }
    }

    /// The fallback partition: the forward nodes' topological order cut into `chunks`
    /// contiguous pieces of about equal FLOPs (`topo.0`, `topo.1`, ...); every other
    /// computed node joins the unit of its latest forward operand (else of its latest
    /// operand with a unit).
    pub fn topological(graph: &Graph, chunks: usize) -> Units {
        let order = graph.topo_order();
        let size = index_bound(graph);
        let pos = positions(&order, size);
        let forward: Vec<NodeId> = order
            .iter()
            .copied()
            .filter(|&id| is_forward_compute(graph.node(id)))
            .collect();
        let chunks = chunks.clamp(1, forward.len().max(1));
        let weight = |id: NodeId| node_flops(graph, id).total().saturating_add(1);
        let total: u64 = forward.iter().map(|&id| weight(id)).sum();
        let mut prov = vec![NONE; size];
        let mut acc = 0u64;
        for &id in &forward {
            // The chunk whose share of the total FLOPs this node's midpoint falls in.
            let w = weight(id);
            let mid = acc.saturating_add(w / 2);
            let c = ((u128::from(mid) * chunks as u128) / u128::from(total.max(1))) as usize;
            prov[id.index()] = c.min(chunks - 1) as u32;
            acc = acc.saturating_add(w);
        }
        let mut keys: Vec<Key> = (0..chunks)
            .map(|i| Key {
                name: format!("topo.{i}"),
                layer: format!("topo.{i}"),
                first: usize::MAX,
            })
            .collect();
        attach_uncovered(graph, &order, &pos, &mut prov, &mut keys);
        Units::finish(
            graph,
            &order,
            &pos,
            &prov,
            keys,
            Origin::Topological(chunks),
        )
    }

    /// Merges cyclic units, orders them and builds the tables.
    fn finish(
        graph: &Graph,
        order: &[NodeId],
        pos: &[usize],
        prov: &[u32],
        keys: Vec<Key>,
        origin: Origin,
    ) -> Units {
        let k = keys.len();
        // Forward data flow between provisional units.
        let mut dag: DiGraph<(), ()> = DiGraph::with_capacity(k, k);
        for _ in 0..k {
            dag.add_node(());
        }
        let unit = |id: NodeId| prov.get(id.index()).copied().unwrap_or(NONE);
        for &id in order {
            if !is_forward_compute(graph.node(id)) || unit(id) == NONE {
                continue;
            }
            for o in graph.operands(id) {
                let (a, b) = (unit(o), unit(id));
                if a != NONE && a != b && is_forward_compute(graph.node(o)) {
                    dag.update_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), ());
                }
            }
        }
        // Merge strongly connected units.
        let sccs = tarjan_scc(&dag);
        let mut comp = vec![0usize; k];
        for (c, members) in sccs.iter().enumerate() {
            for m in members {
                comp[m.index()] = c;
            }
        }
        let nc = sccs.len();
        // Order key of a unit: its first node the rule placed there, else its first node.
        let mut first = vec![usize::MAX; nc];
        let mut any = vec![usize::MAX; nc];
        for (key, &c) in keys.iter().zip(&comp) {
            first[c] = first[c].min(key.first);
        }
        for &id in order {
            let u = unit(id);
            if u != NONE {
                let c = comp[u as usize];
                any[c] = any[c].min(pos[id.index()]);
            }
        }
        for (f, a) in first.iter_mut().zip(&any) {
            if *f == usize::MAX {
                *f = *a;
            }
        }
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nc];
        let mut indeg = vec![0usize; nc];
        for e in dag.raw_edges() {
            let (a, b) = (comp[e.source().index()], comp[e.target().index()]);
            if a != b && !succ[a].contains(&b) {
                succ[a].push(b);
                indeg[b] += 1;
            }
        }
        // A unit no forward data enters or leaves (e.g. loss-scale arithmetic on a graph
        // input, read by backward nodes only) has no place in the forward order: last.
        for c in 0..nc {
            if indeg[c] == 0 && succ[c].is_empty() && nc > 1 {
                first[c] = usize::MAX;
            }
        }
        let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..nc)
            .filter(|&c| indeg[c] == 0)
            .map(|c| Reverse((first[c], c)))
            .collect();
        let mut rank = vec![0usize; nc];
        let mut next = 0;
        while let Some(Reverse((_, c))) = ready.pop() {
            rank[c] = next;
            next += 1;
            for &s in &succ[c] {
                indeg[s] -= 1;
                if indeg[s] == 0 {
                    ready.push(Reverse((first[s], s)));
                }
            }
        }
        // Names of merged units, members in order of first appearance.
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); nc];
        for (key, &c) in comp.iter().enumerate() {
            members[c].push(key);
        }
        let mut units: Vec<Unit> = (0..nc)
            .map(|_| Unit {
                name: String::new(),
                layer: String::new(),
                numbered: false,
                nodes: Vec::new(),
            })
            .collect();
        for (c, ms) in members.iter().enumerate() {
            let u = &mut units[rank[c]];
            let names: Vec<&str> = ms.iter().map(|&m| keys[m].name.as_str()).collect();
            let mut layers: Vec<&str> = ms.iter().map(|&m| keys[m].layer.as_str()).collect();
            layers.dedup();
            u.name = names.join("+");
            u.layer = layers.join("+");
            u.numbered = layers.len() == 1
                && layers
                    .first()
                    .and_then(|l| l.rsplit('.').next())
                    .is_some_and(is_number);
        }
        let mut of = vec![NONE; prov.len()];
        for &id in order {
            let u = unit(id);
            if u != NONE {
                let r = rank[comp[u as usize]];
                of[id.index()] = r as u32;
                units[r].nodes.push(id);
            }
        }
        units.retain(|u| !u.nodes.is_empty());
        // Re-index after dropping empty units (none in practice: every key has a node).
        let mut remap = HashMap::new();
        for (i, u) in units.iter().enumerate() {
            for &n in &u.nodes {
                remap.insert(n, i as u32);
            }
        }
        for (&n, &i) in &remap {
            of[n.index()] = i;
        }
        Units { units, of, origin }
    }

    /// The units, in topological order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when the graph has no computed node.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The unit of a computed node (`None` for leaves and unknown ids).
    pub fn unit_of(&self, id: NodeId) -> Option<usize> {
        self.of
            .get(id.index())
            .copied()
            .filter(|&u| u != NONE)
            .map(|u| u as usize)
    }

    /// The index of the unit called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.units.iter().position(|u| u.name == name)
    }
}
