//! Lowering the optimizer segment: its state streamed onto the tiles, the update, the new
//! weights copied over the old, state and results streamed out.

use super::analysis::{storage_root, Analysis};
use super::optimizer::OptimizerBinding;
use crate::lower::error::LowerError;
use crate::lower::program::builder::{emit_range, Category};

use crate::lower::program::lowering::Ctx;
use std::collections::HashMap;
use tessera_ir::NodeId;
use tessera_runtime::program::{StreamCopy, TileRegion};

use super::boundary::{region, stream_out};
use super::parts::*;

/// The optimizer segment: state streamed in, the update, the new weights copied over the
/// old, state and results streamed out.
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
    // Optimizer state: on the tiles only while the optimizer runs.
    for (h, &i) in opt.state.iter().zip(&opt.state_nodes) {
        let eb = h.ty.dtype.size_bytes() as u64;
        let chip = graph.node(i).annot.stage.unwrap_or(0);
        let layout = cx.b.alloc_linear(
            chip,
            h.ty.num_elements() as u64,
            eb,
            Ctx::grain(&h.ty.shape),
            &format!("optimizer state {}", h.name),
            Category::OptimizerState,
        )?;
        for p in layout.pieces().unwrap_or_default() {
            part.stream_in.push(StreamCopy::contiguous(
                h.buffer,
                p.start * eb,
                TileRegion {
                    tile: p.tile,
                    region: region(p.offset, (p.end - p.start) * eb)?,
                },
            ));
        }
        cx.define_as(i, layout, Category::OptimizerState)?;
    }
    let first_stage = cx.b.stages.len();
    for &n in an.order.iter().filter(|n| an.seg.get(n) == Some(&seg)) {
        cx.lower_node(n)?;
    }
    cx.drop_landings()?;
    // The new weights over the old.
    let mut copies = Vec::new();
    for (name, w) in &binding.writes {
        let Some(o) = graph.outputs().iter().find(|o| &o.name == name) else {
            continue;
        };
        let (new, old) = (cx.val(o.node)?.clone(), cx.val(*w)?.clone());
        if new.dtype != old.dtype {
            return Err(cx.unsupported(
                o.node,
                format!(
                    "`{name}` is {:?} but the weight is {:?}",
                    new.dtype, old.dtype
                ),
            ));
        }
        let n = graph.node(*w).ty.num_elements() as u64;
        emit_range(&mut copies, (&new.layout, 0), (&old.layout, 0), n, new.eb())?;
    }
    cx.push_stages("write the updated weights", copies, Vec::new());
    for (name, node, buffer) in &opt.outputs {
        stream_out(cx, name, *node, *buffer, &mut part.stream_out)?;
    }
    for (_, node, _) in &opt.outputs {
        if let Some(buf) = cx.buf_of(storage_root(graph, *node)) {
            cx.free_buf_now(buf)?;
        }
    }
    part.stages = cx.b.stages.split_off(first_stage);
    part.timeline =
        cx.b.timeline
            .split_off(first_stage.min(cx.b.timeline.len()));
    Ok(part)
}
