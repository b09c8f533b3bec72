//! Assembling the `step` program from the segments' pieces (accumulator reset, restores,
//! runs, saves, gradient streams, optimizer) and the plan around it.

use super::analysis::{segment_name, Analysis};
use super::{PipelineProgram, SegmentProgram, StashCopies};
use crate::lower::error::LowerError;
use crate::lower::program::builder::to_u32;
use crate::lower::program::builder::Stage;
use crate::lower::program::lowering::Ctx;
use crate::lower::program::pack::{assemble, pack_stages, step_costs};
use crate::lower::program::TilePlan;
use tessera_ir::Graph;
use tessera_runtime::program::{StreamCopy, Superstep, TileProgram, TileRef, TileRegion};
use tessera_runtime::vertex::{Elem, Vertex};

use super::boundary::{exchange_step, region};
use super::parts::*;

/// Assembles `step` from the pieces, and the plan around it.
pub(super) fn build(
    mut cx: Ctx<'_>,
    an: Analysis,
    parts: Vec<SegmentParts>,
    io: StepIo,
    optimizer: Option<(SegmentParts, OptimizerParts)>,
) -> Result<TilePlan, LowerError> {
    let StepIo {
        accs,
        per_micro,
        out_tensors,
        groups,
    } = io;
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
        out.push_part(
            part.stages,
            &part.timeline,
            part.stream_in,
            part.stream_out,
            &name,
        );
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
    let write = Superstep {
        host_to_tile: read
            .tile_to_host
            .iter()
            .map(|c| StreamCopy { ..*c })
            .collect(),
        ..Superstep::default()
    };
    out.push(read, "stream gradients out".into());
    let read_range = r0..out.steps.len();
    let w0 = out.steps.len();
    out.push(write, "stream all-reduced gradients in".into());
    let write_range = w0..out.steps.len();
    let mut opt_range = None;
    let mut state = Vec::new();
    let mut opt_outputs = Vec::new();
    if let Some((part, parts)) = optimizer {
        let start = out.steps.len();
        out.push_part(
            part.stages,
            &part.timeline,
            part.stream_in,
            part.stream_out,
            "optimizer",
        );
        opt_range = Some(start..out.steps.len());
        state = parts.state;
        opt_outputs = parts.output_names;
    }

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
        micro_buffers: groups.micro,
        grad_buffers_end: groups.grads,
        write_grads: write_range,
        optimizer: opt_range,
        optimizer_state: state,
        optimizer_outputs: opt_outputs,
        optimizer_only: optimizer_only(&an, cx.graph),
    };
    let mut plan = assemble(cx, step, out_tensors, costs, live)?;
    plan.pipeline = Some(pipeline);
    Ok(plan)
}

/// The `step` program's supersteps as they are assembled, with labels and live bytes.
#[derive(Default)]
pub(super) struct Steps {
    chips: u32,
    steps: Vec<Superstep>,
    labels: Vec<Vec<String>>,
    live: Vec<Vec<u64>>,
}

impl Steps {
    /// Appends a segment's stages packed into supersteps, its input streams before the first
    /// and its output streams after the last.
    fn push_part(
        &mut self,
        stages: Vec<Stage>,
        timeline: &[Vec<u64>],
        stream_in: Vec<StreamCopy>,
        stream_out: Vec<StreamCopy>,
        name: &str,
    ) {
        let mut packed = pack_stages(stages, timeline, self.chips);
        if let Some(first) = packed.steps.first_mut() {
            first.host_to_tile.splice(0..0, stream_in);
        }
        if let Some(last) = packed.steps.last_mut() {
            last.tile_to_host.extend(stream_out);
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
            self.steps.push(s);
            self.labels.push(l);
            self.live.push(lb);
        }
    }

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
pub(super) fn merge_tiles(step: &mut Superstep) {
    let mut by_tile: std::collections::BTreeMap<TileRef, Vec<Vertex>> = Default::default();
    for tc in step.compute.drain(..) {
        by_tile.entry(tc.tile).or_default().extend(tc.vertices);
    }
    step.compute = by_tile
        .into_iter()
        .map(|(tile, vertices)| tessera_runtime::program::TileCompute { tile, vertices })
        .collect();
}

/// Names of the inputs only the optimizer segment reads.
pub(super) fn optimizer_only(an: &Analysis, graph: &Graph) -> Vec<String> {
    let opt = an.schedule.segments();
    let Some(read) = an.inputs_read.get(opt) else {
        return Vec::new();
    };
    read.iter()
        .filter(|i| !an.inputs_read[..opt].iter().any(|s| s.contains(i)))
        .filter_map(|&i| match &graph.node(i).op {
            tessera_ir::Op::Input { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}
