//! The pipelined lowering driver (see the parent module): segments in order, each framed by
//! restores of the values it reads and by the copies that keep its own values for later.

use super::analysis::{analyse, segment_name, storage_root, Analysis};
use super::{PipelineProgram, SegmentProgram, StashCopies};
use crate::autodiff::GRAD_PREFIX;
use crate::lower::error::LowerError;
use crate::lower::program::builder::{emit_range, to_u32, Category, Stage};
use crate::lower::program::layout::Layout;
use crate::lower::program::lowering::{check, Ctx};
use crate::lower::program::pack::{assemble, pack_stages, step_costs};
use crate::lower::program::{HostTensor, LowerOptions, TilePlan};
use std::collections::HashMap;
use tessera_ir::{DType, Graph, NodeId, TensorType};
use tessera_runtime::program::{
    Exchange, HostBuffer, Region, StreamCopy, Superstep, TileProgram, TileRef, TileRegion,
};
use tessera_runtime::vertex::{Elem, Vertex};
use tessera_target::Target;

/// Step-long buffers of one crossing value: one boundary buffer, or the stash ring.
struct Boundary {
    /// Buffer ids (in the lowering's buffer table), one per slot.
    bufs: Vec<usize>,
    layouts: Vec<Layout>,
    elem_bytes: u64,
}

/// A gradient output and its accumulator.
struct Accumulator {
    name: String,
    node: NodeId,
    seg: usize,
    layout: Layout,
    ty: TensorType,
    buffer: u32,
}

/// What the segment loop collects for building the programs.
#[derive(Default)]
struct SegmentParts {
    stages: Vec<Stage>,
    timeline: Vec<Vec<u64>>,
    stream_in: Vec<StreamCopy>,
    stream_out: Vec<StreamCopy>,
    /// Restore copies per producing segment, per slot.
    restores: Vec<(usize, Vec<Vec<Exchange>>)>,
    /// Save copies per slot.
    saves: Vec<Vec<Exchange>>,
}

/// Lowers a placed training graph to a pipelined [`TilePlan`] (see the module docs).
///
/// Errors: those of [`crate::lower::program::lower_program`], and
/// [`LowerError::Pipeline`] when a value flows against the schedule.
pub fn lower_pipelined(
    graph: &Graph,
    target: &Target,
    opts: &LowerOptions,
) -> Result<TilePlan, LowerError> {
    let topo = graph.topo_order();
    let stages = check(graph, target, opts, &topo)?;
    let an = analyse(graph, stages)?;
    let (mut cx, gather_tables) = Ctx::setup(graph, target, opts, &topo, &HashMap::new())?;
    let input_streams = cx.lower_sources(&topo, &gather_tables)?;
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
        if o.name.starts_with(GRAD_PREFIX) {
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
        for &n in an.order.iter().filter(|n| an.seg.get(n) == Some(&seg)) {
            cx.lower_node(n)?;
        }
        finish_segment(&mut cx, &an, seg, &boundaries, &accs, &per_micro, &mut part)?;
        for buf in restored {
            cx.free_buf_now(buf)?;
        }
        part.stages = cx.b.stages.split_off(first_stage);
        part.timeline =
            cx.b.timeline
                .split_off(first_stage.min(cx.b.timeline.len()));
        parts.push(part);
    }
    build(cx, an, parts, accs, per_micro, out_tensors, micro_buffers)
}

/// Allocates every crossing value's step-long buffers (category `stash`).
fn boundary_buffers(
    cx: &mut Ctx<'_>,
    an: &Analysis,
) -> Result<HashMap<NodeId, Boundary>, LowerError> {
    let mut out = HashMap::new();
    for c in an.crossings.values() {
        let node = cx.graph.node(c.root);
        let ty = node.ty.clone();
        let eb = ty.dtype.size_bytes() as u64;
        let chip = node.annot.stage.unwrap_or(0);
        let slots = c.runs_between + 1;
        let (mut bufs, mut layouts) = (Vec::new(), Vec::new());
        for k in 0..slots {
            let what = if slots == 1 {
                format!("boundary {}", cx.label(c.root))
            } else {
                format!(
                    "stash slot {k} of {} ({} → {})",
                    cx.label(c.root),
                    segment_name(&an.schedule, c.producer),
                    c.consumers
                        .iter()
                        .map(|&q| segment_name(&an.schedule, q))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let layout = cx.b.alloc_linear(
                chip,
                ty.num_elements() as u64,
                eb,
                Ctx::grain(&ty.shape),
                &what,
                Category::Stash,
            )?;
            layouts.push(layout.clone());
            bufs.push(cx.new_buf(layout, eb, true));
        }
        out.insert(
            c.root,
            Boundary {
                bufs,
                layouts,
                elem_bytes: eb,
            },
        );
    }
    Ok(out)
}

/// The end of segment `seg`: its crossing values into their boundary buffers (or saved to
/// their stash slots), its gradients added to the accumulators, its per-micro-batch outputs
/// streamed out, and every byte it allocated freed.
fn finish_segment(
    cx: &mut Ctx<'_>,
    an: &Analysis,
    seg: usize,
    boundaries: &HashMap<NodeId, Boundary>,
    accs: &[Accumulator],
    per_micro: &[(String, NodeId, u32)],
    part: &mut SegmentParts,
) -> Result<(), LowerError> {
    let mut direct = Vec::new();
    let mut produced = Vec::new();
    for c in an.crossings.values().filter(|c| c.producer == seg) {
        let (Some(b), Ok(v)) = (boundaries.get(&c.root), cx.val(c.root)) else {
            continue;
        };
        let n = cx.graph.node(c.root).ty.num_elements() as u64;
        let src = v.layout.clone();
        if c.runs_between == 0 {
            if let Some(dst) = b.layouts.first() {
                emit_range(&mut direct, (&src, 0), (dst, 0), n, b.elem_bytes)?;
            }
        } else {
            part.saves
                .resize_with(part.saves.len().max(b.layouts.len()), Vec::new);
            for (k, dst) in b.layouts.iter().enumerate() {
                if let Some(list) = part.saves.get_mut(k) {
                    emit_range(list, (&src, 0), (dst, 0), n, b.elem_bytes)?;
                }
            }
        }
        produced.push(c.root);
    }
    cx.push_stages("pipeline boundary copies", direct, Vec::new());

    // Gradients into their accumulators.
    let mut copies = Vec::new();
    let mut work = Vec::new();
    let mut scratch = Vec::new();
    for a in accs.iter().filter(|a| a.seg == seg) {
        let v = cx.val(a.node)?.clone();
        let eb = v.eb();
        let Some(pieces) = a.layout.pieces() else {
            continue;
        };
        let t =
            cx.b.alloc_like(pieces, eb, &format!("incoming {}", a.name))?;
        emit_range(
            &mut copies,
            (&v.layout, 0),
            (&t, 0),
            a.ty.num_elements() as u64,
            eb,
        )?;
        let wide = if v.dtype == DType::F32 {
            None
        } else {
            Some(cx.b.alloc_like(pieces, 4, &format!("widened {}", a.name))?)
        };
        let from = crate::lower::program::lowering::elem_of(v.dtype)
            .ok_or_else(|| cx.unsupported(a.node, "gradient of a non-float type"))?;
        for (i, p) in pieces.iter().enumerate() {
            let len = p.end - p.start;
            let (Some(tp), acc) = (
                t.pieces().and_then(|x| x.get(i)),
                region(p.offset, len * 4)?,
            ) else {
                continue;
            };
            let mut src = region(tp.offset, len * eb)?;
            if let Some(w) = wide
                .as_ref()
                .and_then(|w| w.pieces())
                .and_then(|x| x.get(i))
            {
                let dst = region(w.offset, len * 4)?;
                work.push((
                    p.tile,
                    Vertex::Cast {
                        from,
                        to: Elem::F32,
                        src,
                        dst,
                    },
                ));
                src = dst;
            }
            work.push((
                p.tile,
                Vertex::AddPartials {
                    elem: Elem::F32,
                    dst: acc,
                    srcs: vec![src],
                },
            ));
        }
        scratch.push((t, eb));
        if let Some(w) = wide {
            scratch.push((w, 4));
        }
        produced.push(a.node);
    }
    cx.push_stages("accumulate gradients", copies, work);
    for (layout, eb) in scratch {
        cx.b.free_layout(&layout, eb)?;
    }

    // Per-micro-batch outputs stream out at the end of the segment.
    for (name, node, buffer) in per_micro {
        if an.seg.get(&storage_root(cx.graph, *node)) != Some(&seg) {
            continue;
        }
        let v = cx.val(*node)?.clone();
        let Layout::Linear(pieces) = &v.layout else {
            return Err(cx.unsupported(*node, format!("output `{name}` is not laid out linearly")));
        };
        for p in pieces {
            part.stream_out.push(StreamCopy::contiguous(
                *buffer,
                p.start * v.eb(),
                TileRegion {
                    tile: p.tile,
                    region: region(p.offset, (p.end - p.start) * v.eb())?,
                },
            ));
        }
        produced.push(*node);
    }
    for id in produced {
        if let Some(buf) = cx.buf_of(storage_root(cx.graph, id)) {
            cx.free_buf_now(buf)?;
        }
    }
    Ok(())
}

fn region(offset: u64, len: u64) -> Result<Region, LowerError> {
    Ok(Region::new(
        to_u32(offset, "offset")?,
        to_u32(len, "length")?,
    ))
}

/// A superstep that only exchanges.
fn exchange_step(copies: Vec<Exchange>) -> Superstep {
    Superstep {
        exchange: copies,
        ..Superstep::default()
    }
}

/// Assembles `step` from the pieces, and the plan around it.
fn build(
    mut cx: Ctx<'_>,
    an: Analysis,
    parts: Vec<SegmentParts>,
    accs: Vec<Accumulator>,
    per_micro: Vec<(String, NodeId, u32)>,
    out_tensors: Vec<HostTensor>,
    micro_buffers: u32,
) -> Result<TilePlan, LowerError> {
    let chips = cx.b.chips;
    let mut out = Steps {
        chips,
        ..Steps::default()
    };

    // Zero the accumulators.
    let mut zero = Superstep::default();
    let mut read = Superstep::default();
    for a in &accs {
        for p in a.layout.pieces().unwrap_or_default() {
            let r = region(p.offset, (p.end - p.start) * 4)?;
            zero.compute.push(tessera_runtime::program::TileCompute {
                tile: p.tile,
                vertices: vec![Vertex::Fill {
                    elem: Elem::F32,
                    dst: r,
                    value: 0.0,
                }],
            });
            read.tile_to_host.push(StreamCopy::contiguous(
                a.buffer,
                p.start * 4,
                TileRegion {
                    tile: p.tile,
                    region: r,
                },
            ));
        }
    }
    merge_tiles(&mut zero);
    out.push(zero, "zero gradient accumulators".into());
    let zero_range = 0..out.steps.len();

    let mut segments = Vec::new();
    for (seg, part) in parts.into_iter().enumerate() {
        let (stage, kind) = an.schedule.segment(seg);
        let name = segment_name(&an.schedule, seg);
        let mut restores = Vec::new();
        for (producer, per_slot) in part.restores {
            let start = out.steps.len();
            let mut slots = per_slot.into_iter();
            if let Some(first) = slots.next() {
                out.push(
                    exchange_step(first),
                    format!(
                        "{name}: restore stash of {}",
                        segment_name(&an.schedule, producer)
                    ),
                );
            }
            let others: Vec<Superstep> = slots.map(exchange_step).collect();
            restores.push(StashCopies {
                producer,
                slots: to_u32(others.len() as u64 + 1, "stash slots")?,
                slot0: start..out.steps.len(),
                others,
            });
        }
        let start = out.steps.len();
        let mut packed = pack_stages(part.stages, &part.timeline, chips);
        if let Some(first) = packed.steps.first_mut() {
            first.host_to_tile = part.stream_in;
        }
        if let Some(last) = packed.steps.last_mut() {
            last.tile_to_host = part.stream_out;
        }
        for ((s, mut l), lb) in packed
            .steps
            .into_iter()
            .zip(packed.labels)
            .zip(packed.live_bytes)
        {
            if l.is_empty() {
                l.push(format!("{name}: streams"));
            }
            out.steps.push(s);
            out.labels.push(l);
            out.live.push(lb);
        }
        let run = start..out.steps.len();
        let save = if part.saves.is_empty() {
            None
        } else {
            let s0 = out.steps.len();
            let mut slots = part.saves.into_iter();
            if let Some(first) = slots.next() {
                out.push(exchange_step(first), format!("{name}: save stash"));
            }
            let others: Vec<Superstep> = slots.map(exchange_step).collect();
            Some(StashCopies {
                producer: seg,
                slots: to_u32(others.len() as u64 + 1, "stash slots")?,
                slot0: s0..out.steps.len(),
                others,
            })
        };
        segments.push(SegmentProgram {
            stage,
            kind,
            run,
            restores,
            save,
        });
    }
    let r0 = out.steps.len();
    out.push(read, "stream gradients out".into());
    let read_range = r0..out.steps.len();

    let Steps {
        steps,
        labels,
        live,
        ..
    } = out;
    let costs = step_costs(&steps, &labels, cx.target);
    let step = TileProgram {
        host_buffers: std::mem::take(&mut cx.step_buffers),
        supersteps: steps,
        ..TileProgram::new(
            chips,
            cx.b.tiles,
            to_u32(cx.target.bytes_per_tile, "bytes per tile")?,
        )
    };
    let pipeline = PipelineProgram {
        schedule: an.schedule,
        zero: zero_range,
        segments,
        read_grads: read_range,
        per_micro_batch: per_micro.into_iter().map(|(n, _, _)| n).collect(),
        micro_buffers,
    };
    let mut plan = assemble(cx, step, out_tensors, costs, live)?;
    plan.pipeline = Some(pipeline);
    Ok(plan)
}

/// The `step` program's supersteps as they are assembled, with labels and live bytes.
#[derive(Default)]
struct Steps {
    chips: u32,
    steps: Vec<Superstep>,
    labels: Vec<Vec<String>>,
    live: Vec<Vec<u64>>,
}

impl Steps {
    /// Appends a superstep made outside the stage list (live bytes as before it).
    fn push(&mut self, s: Superstep, label: String) {
        let prev = self
            .live
            .last()
            .cloned()
            .unwrap_or_else(|| vec![0; self.chips as usize]);
        self.steps.push(s);
        self.labels.push(vec![label]);
        self.live.push(prev);
    }
}

/// Merges compute entries of the same tile (at most one per tile in a superstep).
fn merge_tiles(step: &mut Superstep) {
    let mut by_tile: std::collections::BTreeMap<TileRef, Vec<Vertex>> = Default::default();
    for tc in step.compute.drain(..) {
        by_tile.entry(tc.tile).or_default().extend(tc.vertices);
    }
    step.compute = by_tile
        .into_iter()
        .map(|(tile, vertices)| tessera_runtime::program::TileCompute { tile, vertices })
        .collect();
}
