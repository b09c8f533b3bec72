//! Step-long buffers of values read across segments, and the end of a segment: its values
//! copied out for later segments, its gradients accumulated, its outputs streamed.

use super::analysis::{segment_name, storage_root, Analysis};
use crate::lower::error::LowerError;
use crate::lower::program::builder::{emit_range, to_u32, Category};
use crate::lower::program::layout::Layout;
use crate::lower::program::lowering::Ctx;
use std::collections::HashMap;
use tessera_ir::{DType, NodeId};
use tessera_runtime::program::{Exchange, Region, StreamCopy, Superstep, TileRegion};
use tessera_runtime::vertex::{Elem, Vertex};

use super::parts::*;

/// Allocates every crossing value's step-long buffers (category `stash`).
pub(super) fn boundary_buffers(
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
pub(super) fn finish_segment(
    cx: &mut Ctx<'_>,
    an: &Analysis,
    seg: usize,
    boundaries: &HashMap<NodeId, Boundary>,
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

    // Per-micro-batch outputs stream out at the end of the segment.
    for (name, node, buffer) in per_micro {
        if an.seg.get(&storage_root(cx.graph, *node)) != Some(&seg) {
            continue;
        }
        stream_out(cx, name, *node, (*buffer, 0), &mut part.stream_out)?;
        produced.push(*node);
    }
    for id in produced {
        if let Some(buf) = cx.buf_of(storage_root(cx.graph, id)) {
            cx.free_buf_now(buf)?;
        }
    }
    Ok(())
}

pub(super) fn region(offset: u64, len: u64) -> Result<Region, LowerError> {
    Ok(Region::new(
        to_u32(offset, "offset")?,
        to_u32(len, "length")?,
    ))
}

/// Appends the copies streaming output `name` (node `node`, linearly laid out) into host
/// buffer `buffer` from byte `offset` on.
pub(super) fn stream_out(
    cx: &Ctx<'_>,
    name: &str,
    node: NodeId,
    (buffer, offset): (u32, u64),
    out: &mut Vec<StreamCopy>,
) -> Result<(), LowerError> {
    let v = cx.val(node)?;
    let Layout::Linear(pieces) = &v.layout else {
        return Err(cx.unsupported(node, format!("output `{name}` is not laid out linearly")));
    };
    for p in pieces {
        out.push(StreamCopy::contiguous(
            buffer,
            offset + p.start * v.eb(),
            TileRegion {
                tile: p.tile,
                region: region(p.offset, (p.end - p.start) * v.eb())?,
            },
        ));
    }
    Ok(())
}

/// A superstep that only exchanges.
pub(super) fn exchange_step(copies: Vec<Exchange>) -> Superstep {
    Superstep {
        exchange: copies,
        ..Superstep::default()
    }
}

/// Adds gradient output `a` (just computed) into its accumulator: an exchange into the
/// accumulator's tiles, a cast to f32 if needed and an add, in their own superstep, so
/// that the gradient's bytes (and the scratch) are free again right after it is produced
/// rather than all of a segment's gradients living until its end.
pub(super) fn accumulate(cx: &mut Ctx<'_>, a: &Accumulator) -> Result<(), LowerError> {
    let v = cx.val(a.node)?.clone();
    let eb = v.eb();
    let Some(pieces) = a.layout.pieces() else {
        return Ok(());
    };
    let mut copies = Vec::new();
    let mut work = Vec::new();
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
    cx.push_stages(&format!("accumulate {}", a.name), copies, work);
    cx.b.free_layout(&t, eb)?;
    if let Some(w) = wide {
        cx.b.free_layout(&w, 4)?;
    }
    if let Some(buf) = cx.buf_of(storage_root(cx.graph, a.node)) {
        cx.free_buf_if_unread(buf)?;
    }
    Ok(())
}
