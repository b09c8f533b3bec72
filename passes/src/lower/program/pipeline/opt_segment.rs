//! Lowering the optimizer segment: each weight's state streamed onto the tiles just before
//! its update, the new weight copied over the old, the new state streamed out and its bytes
//! freed before the next weight's — as PopART's per-variable remote load / update / store.
//!
//! Only one weight's state is on the tiles at a time, so the optimizer needs the state of its
//! largest weight, not of all the weights of a chip (the seed configuration's Adam moments
//! alone are ~45 % of a chip). [`order_by_weight`] puts the nodes that belong to no single
//! weight first (the global gradient norm, the schedule's scalars), then each weight's update
//! in turn; an optimizer whose nodes do not separate that way is lowered as one group with all
//! of its state streamed in at the start.

use super::analysis::{storage_root, Analysis};
use super::optimizer::OptimizerBinding;
use crate::lower::error::LowerError;
use crate::lower::program::builder::{emit_range, Category, Stage};

use crate::lower::program::lowering::Ctx;
use std::collections::HashMap;
use tessera_ir::{Graph, NodeId, Op};
use tessera_runtime::program::{StreamCopy, TileRegion};

use super::boundary::{region, stream_out};
use super::parts::*;

/// The optimizer's non-leaf nodes split for lowering: `global` first, then each group.
#[derive(Debug, Default, PartialEq)]
pub(super) struct WeightOrder {
    /// Nodes of no single weight's update, in lowering order.
    pub global: Vec<NodeId>,
    /// Per weight (in order of first use): the indices of its state inputs in the state list,
    /// and its nodes in lowering order.
    pub groups: Vec<(Vec<usize>, Vec<NodeId>)>,
}

/// Splits `order` (the optimizer's non-leaf nodes, topologically) by weight: a node belongs to
/// weight `p`'s group when it reads `p`'s state (`<kind>.<p>`, `state[k]` with node
/// `state_nodes[k]`), directly or through nodes of the group, or when every reader of it is in
/// `p`'s group (and it is no graph output). `None` when the split is not a valid lowering order
/// (a node reads two weights' state, or a global node reads a group's value).
pub(super) fn order_by_weight(
    graph: &Graph,
    order: &[NodeId],
    state: &[String],
    state_nodes: &[NodeId],
) -> Option<WeightOrder> {
    let mut keys: Vec<&str> = Vec::new();
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    let mut state_of: Vec<Vec<usize>> = Vec::new();
    for (k, (name, &node)) in state.iter().zip(state_nodes).enumerate() {
        let p = name.split_once('.').map_or(name.as_str(), |(_, p)| p);
        let g = keys.iter().position(|&q| q == p).unwrap_or_else(|| {
            keys.push(p);
            state_of.push(Vec::new());
            keys.len() - 1
        });
        state_of[g].push(k);
        group_of.insert(node, g);
    }
    // Forward: a node reading one group's values joins it.
    for &n in order {
        let mut gs: Vec<usize> = graph
            .operands(n)
            .iter()
            .filter_map(|o| group_of.get(o).copied())
            .collect();
        gs.sort_unstable();
        gs.dedup();
        match gs[..] {
            [] => {}
            [g] => {
                group_of.insert(n, g);
            }
            _ => return None,
        }
    }
    // Backward: a node only one group reads joins it.
    let outputs: std::collections::HashSet<NodeId> =
        graph.outputs().iter().map(|o| o.node).collect();
    let in_order: std::collections::HashSet<NodeId> = order.iter().copied().collect();
    for &n in order.iter().rev() {
        if group_of.contains_key(&n) || outputs.contains(&n) {
            continue;
        }
        let users = graph.users(n);
        let mut gs = users.iter().map(|u| {
            if in_order.contains(u) {
                group_of.get(u).copied()
            } else {
                None
            }
        });
        if let Some(Some(g)) = gs.next() {
            if gs.all(|x| x == Some(g)) {
                group_of.insert(n, g);
            }
        }
    }
    let mut out = WeightOrder {
        global: Vec::new(),
        groups: state_of.into_iter().map(|s| (s, Vec::new())).collect(),
    };
    for &n in order {
        match group_of.get(&n) {
            Some(&g) => out.groups[g].1.push(n),
            None => out.global.push(n),
        }
    }
    // Valid when every operand in the segment comes before its reader.
    let pos: HashMap<NodeId, usize> = out
        .global
        .iter()
        .chain(out.groups.iter().flat_map(|(_, ns)| ns))
        .enumerate()
        .map(|(i, &n)| (n, i))
        .collect();
    let valid = pos.iter().all(|(&n, &at)| {
        graph
            .operands(n)
            .iter()
            .all(|o| pos.get(o).is_none_or(|&before| before < at))
    });
    valid.then_some(out)
}

/// The optimizer segment (see the module docs).
pub(super) fn lower_optimizer(
    cx: &mut Ctx<'_>,
    an: &Analysis,
    binding: &OptimizerBinding,
    opt: &OptimizerParts,
    input_streams: &HashMap<NodeId, Vec<StreamCopy>>,
) -> Result<SegmentParts, LowerError> {
    let seg = an.schedule.segments();
    let graph = cx.graph;
    let mut part = SegmentParts::default();
    if let Some(inputs) = an.inputs_read.get(seg) {
        for i in inputs {
            part.stream_in
                .extend(input_streams.get(i).into_iter().flatten().cloned());
        }
    }
    let order: Vec<NodeId> = an
        .order
        .iter()
        .copied()
        .filter(|n| an.seg.get(n) == Some(&seg))
        .collect();
    let names: Vec<String> = opt.inputs.iter().map(|h| h.name.clone()).collect();
    let nodes: Vec<NodeId> = opt.inputs.iter().map(|h| h.node).collect();
    let split = order_by_weight(graph, &order, &names, &nodes).unwrap_or_else(|| WeightOrder {
        global: Vec::new(),
        groups: vec![((0..opt.inputs.len()).collect(), order.clone())],
    });
    // Each write and output with the group that computes it (none: after every group).
    let out_node: HashMap<&str, NodeId> = graph
        .outputs()
        .iter()
        .map(|o| (o.name.as_str(), o.node))
        .collect();
    let mut group_at: HashMap<NodeId, usize> = HashMap::new();
    for (g, (_, nodes)) in split.groups.iter().enumerate() {
        group_at.extend(nodes.iter().map(|&n| (n, g)));
    }
    let group_of = |o: NodeId| {
        group_at
            .get(&o)
            .or_else(|| group_at.get(&storage_root(graph, o)))
            .copied()
    };
    let groups = split.groups.len();
    let (mut writes_at, mut outs_at) = (vec![Vec::new(); groups + 1], vec![Vec::new(); groups + 1]);
    for (k, (name, _, _)) in binding.writes.iter().enumerate() {
        let g = out_node.get(name.as_str()).and_then(|&o| group_of(o));
        writes_at[g.unwrap_or(groups)].push(k);
    }
    for (k, o) in opt.outputs.iter().enumerate() {
        outs_at[group_of(o.node).unwrap_or(groups)].push(k);
    }
    let mut streamed: std::collections::HashSet<usize> = Default::default();
    let first_stage = cx.b.stages.len();
    for n in &split.global {
        cx.lower_node(*n)?;
    }
    for (g, (state, nodes)) in split.groups.iter().enumerate() {
        stream_state(cx, opt, state)?;
        for n in nodes {
            cx.lower_node(*n)?;
        }
        // This weight's new value over the old, once nothing later reads the old (a later
        // shard's slice of other rows is no reader of these).
        let (now, later): (Vec<usize>, Vec<usize>) = std::mem::take(&mut writes_at[g])
            .into_iter()
            .partition(|&k| {
                let (name, w, offset) = &binding.writes[k];
                let n = out_node
                    .get(name.as_str())
                    .map_or(0, |&o| graph.node(o).ty.num_elements() as u64);
                graph
                    .users(*w)
                    .iter()
                    .all(|&u| cx.is_lowered(u) || reads_outside(graph, u, *offset..*offset + n))
            });
        // A deferred write reads its new value at the end: kept until then.
        let kept: std::collections::HashSet<NodeId> = later
            .iter()
            .filter_map(|&k| out_node.get(binding.writes[k].0.as_str()))
            .map(|&o| storage_root(graph, o))
            .collect();
        writes_at[groups].extend(later);
        write_weights(cx, binding, &out_node, &now)?;
        let mut copies = Vec::new();
        for &k in &outs_at[g] {
            let o = &opt.outputs[k];
            stream_out(cx, &o.name, o.node, (o.buffer, o.offset), &mut copies)?;
        }
        if !copies.is_empty() {
            cx.b.stages.push(Stage::StreamOut {
                label: "optimizer: stream state out".into(),
                copies,
            });
            cx.b.snapshot();
        }
        for k in std::mem::take(&mut outs_at[g]) {
            let root = storage_root(graph, opt.outputs[k].node);
            if kept.contains(&root) {
                outs_at[groups].push(k);
                streamed.insert(k);
            } else if let Some(buf) = cx.buf_of(root) {
                cx.free_buf_now(buf)?;
            }
        }
    }
    cx.drop_landings()?;
    write_weights(cx, binding, &out_node, &writes_at[groups])?;
    for &k in outs_at[groups].iter().filter(|k| !streamed.contains(k)) {
        let o = &opt.outputs[k];
        stream_out(
            cx,
            &o.name,
            o.node,
            (o.buffer, o.offset),
            &mut part.stream_out,
        )?;
    }
    for &k in &outs_at[groups] {
        if let Some(buf) = cx.buf_of(storage_root(graph, opt.outputs[k].node)) {
            cx.free_buf_now(buf)?;
        }
    }
    part.stages = cx.b.stages.split_off(first_stage);
    part.timeline =
        cx.b.timeline
            .split_off(first_stage.min(cx.b.timeline.len()));
    Ok(part)
}

/// Whether node `u` reads only elements of its operand outside `range` (a slice of other
/// rows).
fn reads_outside(graph: &Graph, u: NodeId, range: std::ops::Range<u64>) -> bool {
    let Op::Slice {
        axis: 0,
        start,
        end,
    } = graph.node(u).op
    else {
        return false;
    };
    let Some(&src) = graph.operands(u).first() else {
        return false;
    };
    let shape = &graph.node(src).ty.shape;
    let row: u64 = shape.iter().skip(1).map(|&d| d as u64).product();
    let (a, b) = (start as u64 * row, end as u64 * row);
    b <= range.start || a >= range.end
}

/// Allocates the state inputs `which` (indices into `opt.inputs`) on their chips and streams
/// them in.
fn stream_state(cx: &mut Ctx<'_>, opt: &OptimizerParts, which: &[usize]) -> Result<(), LowerError> {
    let mut copies = Vec::new();
    for &k in which {
        let h = &opt.inputs[k];
        let eb = h.ty.dtype.size_bytes() as u64;
        let chip = cx.graph.node(h.node).annot.stage.unwrap_or(0);
        let layout = cx.b.alloc_linear(
            chip,
            h.ty.num_elements() as u64,
            eb,
            Ctx::grain(&h.ty.shape),
            &format!("optimizer state {}", h.name),
            Category::OptimizerState,
        )?;
        for p in layout.pieces().unwrap_or_default() {
            copies.push(StreamCopy::contiguous(
                h.buffer,
                h.offset + p.start * eb,
                TileRegion {
                    tile: p.tile,
                    region: region(p.offset, (p.end - p.start) * eb)?,
                },
            ));
        }
        cx.define_as(h.node, layout, Category::OptimizerState)?;
    }
    if !copies.is_empty() {
        cx.b.stages.push(Stage::StreamIn {
            label: "optimizer: stream state in".into(),
            copies,
        });
        cx.b.snapshot();
    }
    Ok(())
}

/// Copies the new weights `which` (indices into `binding.writes`) over the old.
fn write_weights(
    cx: &mut Ctx<'_>,
    binding: &OptimizerBinding,
    out_node: &HashMap<&str, NodeId>,
    which: &[usize],
) -> Result<(), LowerError> {
    let graph = cx.graph;
    let mut copies = Vec::new();
    for &k in which {
        let (name, w, offset) = &binding.writes[k];
        let Some(&node) = out_node.get(name.as_str()) else {
            continue;
        };
        let (new, old) = (cx.val(node)?.clone(), cx.val(*w)?.clone());
        if new.dtype != old.dtype {
            return Err(cx.unsupported(
                node,
                format!(
                    "`{name}` is {:?} but the weight is {:?}",
                    new.dtype, old.dtype
                ),
            ));
        }
        let n = graph.node(node).ty.num_elements() as u64;
        emit_range(
            &mut copies,
            (&new.layout, 0),
            (&old.layout, *offset),
            n,
            new.eb(),
        )?;
    }
    cx.push_stages("write the updated weights", copies, Vec::new());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{build_optimizer_graph_sharded, AdamWConfig, OptimParam, OptimPrecision};
    use tessera_ir::{DType, TensorType};

    fn split(g: &Graph) -> Option<WeightOrder> {
        let order: Vec<NodeId> = g
            .topo_order()
            .into_iter()
            .filter(|&n| !matches!(g.node(n).op, Op::Input { .. } | Op::Param { .. }))
            .collect();
        let (names, nodes): (Vec<String>, Vec<NodeId>) = g
            .inputs()
            .into_iter()
            .filter_map(|i| match &g.node(i).op {
                Op::Input { name, .. } if name.starts_with("adam_") => Some((name.clone(), i)),
                _ => None,
            })
            .unzip();
        order_by_weight(g, &order, &names, &nodes)
    }

    fn scope_of(g: &Graph, n: NodeId) -> String {
        g.node(n).scope.to_string()
    }

    #[test]
    fn each_weight_and_shard_is_one_group_after_the_shared_nodes() {
        let ps = [("a", vec![6, 4]), ("b", vec![5])].map(|(name, shape)| OptimParam {
            name: name.into(),
            ty: TensorType::new(DType::F32, shape),
            weight_decay: true,
        });
        let cfg = AdamWConfig {
            total_steps: 10,
            max_grad_norm: Some(1.0),
            ..crate::testing::adamw_config()
        };
        for shards in [1, 2] {
            let prec = OptimPrecision {
                skip_non_finite: true,
                ..OptimPrecision::default()
            };
            let g = build_optimizer_graph_sharded(&ps, &cfg, &prec, shards).unwrap();
            let w = split(&g).expect("separable");
            assert_eq!(w.groups.len(), 2 * shards);
            for (state, nodes) in &w.groups {
                // One weight's two moments (one shard's), its nodes all in its scope.
                assert_eq!(state.len(), 2);
                let scopes: std::collections::BTreeSet<String> =
                    nodes.iter().map(|&n| scope_of(&g, n)).collect();
                assert_eq!(scopes.len(), 1, "{scopes:?}");
            }
            // The norm and the guard read every gradient: shared, lowered first.
            let sqrt = w
                .global
                .iter()
                .any(|&n| matches!(g.node(n).op, Op::Unary(tessera_ir::UnaryOp::Sqrt)));
            assert!(sqrt, "the global norm is shared");
            let total = w.global.len() + w.groups.iter().map(|(_, n)| n.len()).sum::<usize>();
            let non_leaf = g
                .topo_order()
                .into_iter()
                .filter(|&n| !matches!(g.node(n).op, Op::Input { .. } | Op::Param { .. }))
                .count();
            assert_eq!(total, non_leaf);
        }
    }

    #[test]
    fn a_node_reading_two_weights_state_is_not_split() {
        let mut g = Graph::new("g");
        let ty = TensorType::new(DType::F32, vec![3]);
        let m = g.input("adam_m.a", ty.clone()).unwrap();
        let v = g.input("adam_m.b", ty).unwrap();
        let s = g
            .add(Op::Binary(tessera_ir::BinaryOp::Add), &[m, v], "")
            .unwrap();
        g.set_output("x", s).unwrap();
        let names = vec!["adam_m.a".to_string(), "adam_m.b".to_string()];
        assert_eq!(order_by_weight(&g, &[s], &names, &[m, v]), None);
    }
}
