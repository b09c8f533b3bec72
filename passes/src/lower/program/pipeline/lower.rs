//! The pipelined lowering driver (see the parent module): segments in order, each framed by
//! restores of the values it reads and by the copies that keep its own values for later;
//! the pieces it collects are in [`super::parts`].

use super::analysis::{analyse, storage_root};
use super::optimizer::{merge_optimizer, OptimizerBinding};
use crate::autodiff::GRAD_PREFIX;
use crate::lower::error::LowerError;
use crate::lower::program::builder::{emit_range, Category};
use crate::lower::program::lowering::{check, Ctx};
use crate::lower::program::{HostTensor, LowerOptions, TilePlan};
use crate::optim::split_shard_name;
use std::collections::HashMap;
use tessera_ir::{DType, Graph, NodeId, TensorType};
use tessera_runtime::program::HostBuffer;
use tessera_target::Target;

use super::assemble::build;
use super::boundary::{accumulate, boundary_buffers, finish_segment};
use super::opt_segment::lower_optimizer;
use super::parts::*;

/// Lowers a placed training graph to a pipelined [`TilePlan`] (see the module docs).
///
/// Errors: those of [`crate::lower::program::lower_program`], and
/// [`LowerError::Pipeline`] when a value flows against the schedule.
pub fn lower_pipelined(
    graph: &Graph,
    target: &Target,
    opts: &LowerOptions,
) -> Result<TilePlan, LowerError> {
    lower_pipelined_with(graph, None, target, opts)
}

/// [`lower_pipelined`] with the optimizer graph `optimizer` (`tessera_passes::optim`) run on
/// the tiles once per step after the flush, its state streamed (see [`super::optimizer`]).
pub fn lower_pipelined_with(
    graph: &Graph,
    optimizer: Option<&Graph>,
    target: &Target,
    opts: &LowerOptions,
) -> Result<TilePlan, LowerError> {
    let merged;
    let (graph, binding) = match optimizer {
        Some(o) => {
            let (g, b) = merge_optimizer(graph, o)?;
            merged = g;
            (&merged, b)
        }
        None => (graph, OptimizerBinding::default()),
    };
    let topo = graph.topo_order();
    let stages = check(graph, target, opts, &topo)?;
    let an = analyse(graph, stages, &binding.nodes)?;
    let (mut cx, gather_tables) = Ctx::setup(graph, target, opts, &topo, &HashMap::new())?;
    // Bound and streamed optimizer inputs are not always-live sources.
    let sources: Vec<NodeId> = topo
        .iter()
        .copied()
        .filter(|n| !binding.grad_inputs.contains_key(n) && !binding.state_inputs.contains(n))
        .collect();
    let input_streams = cx.lower_sources(&sources, &gather_tables)?;
    cx.step_in.clear();

    // Per-micro-batch outputs, then the gradient accumulators, as host buffers of `step`.
    let mut out_tensors = Vec::new();
    let mut per_micro = Vec::new();
    let mut accs = Vec::new();
    let chip_of = |id: NodeId| graph.node(id).annot.stage.unwrap_or(0);
    let seg_of = |id: NodeId| {
        let root = storage_root(graph, id);
        an.seg
            .get(&root)
            .copied()
            .unwrap_or_else(|| an.schedule.index(chip_of(id), super::SegmentKind::Backward))
    };
    for o in graph.outputs() {
        if o.name.starts_with(GRAD_PREFIX) || binding.outputs.contains(&o.name) {
            continue;
        }
        let ty = graph.node(o.node).ty.clone();
        let buffer = cx.step_buffers.len() as u32;
        cx.step_buffers.push(HostBuffer {
            name: o.name.clone(),
            bytes: ty.size_bytes() as u64,
        });
        out_tensors.push(HostTensor {
            name: o.name.clone(),
            ty,
            buffer,
        });
        per_micro.push((o.name.clone(), o.node, buffer));
    }
    let micro_buffers = cx.step_buffers.len() as u32;
    for o in graph.outputs() {
        if !o.name.starts_with(GRAD_PREFIX) {
            continue;
        }
        let ty = graph.node(o.node).ty.clone();
        let buffer = cx.step_buffers.len() as u32;
        let acc_ty = ty.with_dtype(DType::F32);
        cx.step_buffers.push(HostBuffer {
            name: o.name.clone(),
            bytes: acc_ty.size_bytes() as u64,
        });
        let layout = cx.b.alloc_linear(
            chip_of(o.node),
            acc_ty.num_elements() as u64,
            4,
            Ctx::grain(&acc_ty.shape),
            &format!("accumulator {}", o.name),
            Category::Gradients,
        )?;
        out_tensors.push(HostTensor {
            name: o.name.clone(),
            ty: acc_ty.clone(),
            buffer,
        });
        accs.push(Accumulator {
            name: o.name.clone(),
            node: o.node,
            seg: seg_of(o.node),
            layout,
            ty: acc_ty,
            buffer,
        });
    }
    for (&input, out) in &binding.grad_inputs {
        let acc = accs
            .iter()
            .find(|a| &a.name == out)
            .ok_or_else(|| cx.unsupported(input, format!("no accumulator for `{out}`")))?;
        cx.define(input, acc.layout.clone(), true)?;
    }
    let grad_end = cx.step_buffers.len() as u32;
    let mut opt = OptimizerParts::default();
    let state: Vec<(String, NodeId)> = binding
        .state_inputs
        .iter()
        .map(|&i| match &graph.node(i).op {
            tessera_ir::Op::Input { name, .. } => (name.clone(), i),
            _ => (cx.name(i), i),
        })
        .collect();
    for (base, slices) in host_slices(graph, &state, &mut cx.step_buffers) {
        opt.state.push(base);
        opt.inputs.extend(slices);
    }
    let outputs: Vec<(String, NodeId)> = binding
        .outputs
        .iter()
        .filter_map(|name| {
            let o = graph.outputs().iter().find(|o| &o.name == name)?;
            Some((name.clone(), o.node))
        })
        .collect();
    for (base, slices) in host_slices(graph, &outputs, &mut cx.step_buffers) {
        opt.output_names.push(base.name.clone());
        out_tensors.push(base);
        opt.outputs.extend(slices);
    }
    let boundaries = boundary_buffers(&mut cx, &an)?;
    let mut aliases: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &n in &an.order {
        aliases.entry(storage_root(graph, n)).or_default().push(n);
    }

    let mut parts: Vec<SegmentParts> = Vec::new();
    for seg in 0..an.schedule.segments() {
        let mut part = SegmentParts::default();
        let q_chip = an.schedule.segment(seg).0;
        // Values of earlier segments: the boundary buffer, or a restore of the ring's slot.
        let mut restored = Vec::new();
        for c in an.crossings.values().filter(|c| c.consumers.contains(&seg)) {
            let Some(b) = boundaries.get(&c.root) else {
                continue;
            };
            let buf = if c.runs_between == 0 {
                b.bufs.first().copied()
            } else {
                let ty = &graph.node(c.root).ty;
                let layout = cx.b.alloc_linear(
                    q_chip,
                    ty.num_elements() as u64,
                    b.elem_bytes,
                    Ctx::grain(&ty.shape),
                    &format!("restore of {}", cx.label(c.root)),
                    Category::Activations,
                )?;
                let mut per_slot = Vec::new();
                for src in &b.layouts {
                    let mut copies = Vec::new();
                    emit_range(
                        &mut copies,
                        (src, 0),
                        (&layout, 0),
                        ty.num_elements() as u64,
                        b.elem_bytes,
                    )?;
                    per_slot.push(copies);
                }
                match part.restores.iter_mut().find(|(p, _)| *p == c.producer) {
                    Some((_, slots)) => {
                        for (all, mine) in slots.iter_mut().zip(per_slot) {
                            all.extend(mine);
                        }
                    }
                    None => part.restores.push((c.producer, per_slot)),
                }
                let buf = cx.new_buf(layout, b.elem_bytes, true);
                restored.push(buf);
                Some(buf)
            };
            if let Some(buf) = buf {
                for &x in aliases.get(&c.root).into_iter().flatten() {
                    if cx.is_lowered(x) {
                        cx.redirect(x, buf);
                    }
                }
            }
        }
        if let Some(inputs) = an.inputs_read.get(seg) {
            for i in inputs {
                part.stream_in
                    .extend(input_streams.get(i).into_iter().flatten().cloned());
            }
        }
        let first_stage = cx.b.stages.len();
        let mut accumulated = Vec::new();
        for &n in an.order.iter().filter(|n| an.seg.get(n) == Some(&seg)) {
            cx.lower_node(n)?;
            for a in accs.iter().filter(|a| a.node == n) {
                accumulate(&mut cx, a)?;
                accumulated.push(a.node);
            }
        }
        // A gradient that is not computed by a node of its segment (e.g. a constant).
        for a in accs
            .iter()
            .filter(|a| a.seg == seg && !accumulated.contains(&a.node))
        {
            accumulate(&mut cx, a)?;
        }
        cx.drop_landings()?;
        finish_segment(&mut cx, &an, seg, &boundaries, &per_micro, &mut part)?;
        for buf in restored {
            cx.free_buf_now(buf)?;
        }
        part.stages = cx.b.stages.split_off(first_stage);
        part.timeline =
            cx.b.timeline
                .split_off(first_stage.min(cx.b.timeline.len()));
        parts.push(part);
    }
    let optimizer_part = if binding.nodes.is_empty() {
        None
    } else {
        Some(lower_optimizer(
            &mut cx,
            &an,
            &binding,
            &opt,
            &input_streams,
        )?)
    };
    let groups = HostGroups {
        micro: micro_buffers,
        grads: grad_end,
    };
    let io = StepIo {
        accs,
        per_micro,
        out_tensors,
        groups,
    };
    build(cx, an, parts, io, optimizer_part.map(|p| (p, opt)))
}

/// One host buffer per whole tensor of `values` (`(name, node)`; the shards
/// `<name>@<k>` of a sharded one share their whole tensor's, each at its rows' bytes), in
/// order of first appearance, with the slices that stream from or to it.
fn host_slices(
    graph: &Graph,
    values: &[(String, NodeId)],
    buffers: &mut Vec<HostBuffer>,
) -> Vec<(HostTensor, Vec<HostSlice>)> {
    let mut order: Vec<String> = Vec::new();
    let mut parts: HashMap<String, Vec<(usize, String, NodeId)>> = HashMap::new();
    for (name, node) in values {
        let (base, k) = split_shard_name(name).unwrap_or((name.as_str(), 0));
        if !parts.contains_key(base) {
            order.push(base.to_string());
        }
        parts
            .entry(base.to_string())
            .or_default()
            .push((k, name.clone(), *node));
    }
    let mut out = Vec::with_capacity(order.len());
    for base in order {
        let mut shards = parts.remove(&base).unwrap_or_default();
        shards.sort_by_key(|(k, _, _)| *k);
        let buffer = buffers.len() as u32;
        let mut slices = Vec::with_capacity(shards.len());
        let mut ty: Option<TensorType> = None;
        let mut offset = 0u64;
        for (_, name, node) in shards {
            let t = graph.node(node).ty.clone();
            ty = Some(match ty {
                None => t.clone(),
                Some(whole) => {
                    let mut shape = whole.shape.to_vec();
                    if let (Some(a), Some(b)) = (shape.first_mut(), t.shape.first()) {
                        *a += b;
                    }
                    TensorType::new(whole.dtype, shape)
                }
            });
            let bytes = t.size_bytes() as u64;
            slices.push(HostSlice {
                name,
                node,
                ty: t,
                buffer,
                offset,
            });
            offset += bytes;
        }
        let ty = ty.unwrap_or_else(|| TensorType::scalar(tessera_ir::DType::F32));
        buffers.push(HostBuffer {
            name: base.clone(),
            bytes: offset,
        });
        out.push((
            HostTensor {
                name: base,
                ty,
                buffer,
            },
            slices,
        ));
    }
    out
}
