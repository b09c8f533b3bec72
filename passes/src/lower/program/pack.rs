//! Packing the stage list into supersteps, and the plan's memory and cost figures, with the
//! out-of-memory check (every tile's peak plus its code and vertex state, [`super::code_state`]).
//!
//! A superstep runs compute, then exchange. Consecutive compute stages share one compute
//! phase (a tile runs its vertices in order, and a vertex only reads its own tile, so an op
//! can read the previous op's result on the same tile in the same phase); an exchange stage
//! closes the superstep, since the next op's vertices need its bytes. Inputs stream in before
//! the first superstep's compute, outputs stream out after the last exchange.

use super::builder::{to_u32, Category, Stage};
use super::code_state::{code_state, CodeState};
use super::layout::Layout;
use super::lowering::Ctx;
use super::{HostTensor, MemoryByCategory, StepCost, TileMemory, TilePlan};
use crate::lower::error::{LowerError, OutOfMemory, TileTensor};
use std::collections::HashMap;
use tessera_ir::NodeId;
use tessera_runtime::program::{
    HostBuffer, Region, StreamCopy, Superstep, TileCompute, TileProgram, TileRef, TileRegion,
};
use tessera_runtime::vertex::{Elem, Vertex};
use tessera_target::Target;

/// Estimated cycles of one vertex on the target: MACs at the AMP rate for matmuls, bytes
/// read and written at the workers' load/store rate for the others.
pub fn vertex_cycles(v: &Vertex, target: &Target) -> u64 {
    let workers = f64::from(target.worker_threads_per_tile.max(1));
    let ls = target.load_store_bytes_per_cycle_per_worker.max(1e-9) * workers;
    let streamed = |bytes: u64| (bytes as f64 / ls).ceil() as u64;
    match v {
        Vertex::MatMul(mm) => {
            let rate = u64::from(match (mm.input, mm.partials) {
                (Elem::F16, Elem::F16) => target.macs_per_cycle_f16_f16_partials,
                (Elem::F16, _) => target.macs_per_cycle_f16_f32_partials,
                _ => target.macs_per_cycle_f32,
            })
            .max(1);
            (u64::from(mm.m) * u64::from(mm.k) * u64::from(mm.n)).div_ceil(rate)
        }
        Vertex::Unary { src, dst, .. } => streamed(u64::from(src.len) + u64::from(dst.len)),
        Vertex::Binary { a, b, dst, .. } => {
            streamed(u64::from(a.len) + u64::from(b.len) + 2 * u64::from(dst.len))
        }
        Vertex::AddPartials { dst, srcs, .. } => {
            streamed(2 * u64::from(dst.len) + srcs.iter().map(|s| u64::from(s.len)).sum::<u64>())
        }
        Vertex::Cast { src, dst, .. }
        | Vertex::Copy { src, dst }
        | Vertex::Expand { src, dst, .. }
        | Vertex::Softmax { src, dst, .. } => {
            streamed(u64::from(src.len) + u64::from(dst.len))
                * if matches!(v, Vertex::Softmax { .. }) {
                    3
                } else {
                    1
                }
        }
        Vertex::LayerNorm { x, dst, .. } => streamed(3 * u64::from(x.len) + u64::from(dst.len)),
        Vertex::Gather { dst, indices, .. } => {
            streamed(2 * u64::from(dst.len) + u64::from(indices.len))
        }
        Vertex::Fill { dst, .. } => streamed(u64::from(dst.len)),
        Vertex::Compare { a, b, dst, .. } | Vertex::Select { a, b, dst, .. } => {
            streamed(u64::from(a.len) + u64::from(b.len) + 2 * u64::from(dst.len))
        }
        Vertex::ReduceRows { src, dst, .. } | Vertex::ReduceCols { src, dst, .. } => {
            streamed(u64::from(src.len) + u64::from(dst.len))
        }
        Vertex::ScatterAdd {
            updates,
            dst,
            indices,
            ..
        } => streamed(2 * u64::from(dst.len) + u64::from(updates.len) + u64::from(indices.len)),
    }
}

fn compute_entry<'a>(
    step: &'a mut Superstep,
    index: &mut HashMap<TileRef, usize>,
    tile: TileRef,
) -> &'a mut Vec<Vertex> {
    let i = *index.entry(tile).or_insert_with(|| {
        step.compute.push(TileCompute {
            tile,
            vertices: Vec::new(),
        });
        step.compute.len() - 1
    });
    // `i` always indexes an entry pushed above.
    let last = step.compute.len() - 1;
    &mut step.compute[i.min(last)].vertices
}

/// Builds the plan from the finished lowering.
pub(crate) fn finish(
    mut cx: Ctx<'_>,
    outputs: &[(String, NodeId)],
) -> Result<TilePlan, LowerError> {
    let target = cx.target;
    let (chips, tiles) = (cx.b.chips, cx.b.tiles);
    let bytes_per_tile = to_u32(target.bytes_per_tile, "bytes per tile")?;

    // Outputs: host buffers after the inputs.
    let mut step_buffers = std::mem::take(&mut cx.step_buffers);
    let mut out_tensors = Vec::new();
    let mut out_copies = Vec::new();
    for (name, val, ty) in cx.output_vals(outputs)? {
        let buffer = step_buffers.len() as u32;
        step_buffers.push(HostBuffer {
            name: name.clone(),
            bytes: ty.size_bytes() as u64,
        });
        out_tensors.push(HostTensor { name, ty, buffer });
        let eb = val.eb();
        let Layout::Linear(pieces) = &val.layout else {
            return Err(LowerError::InvalidOption {
                option: "outputs",
                reason: "an output laid out in column blocks (a gather table) cannot stream out"
                    .into(),
            });
        };
        for p in pieces {
            out_copies.push(StreamCopy::contiguous(
                buffer,
                p.start * eb,
                TileRegion {
                    tile: p.tile,
                    region: Region::new(
                        to_u32(p.offset, "offset")?,
                        to_u32((p.end - p.start) * eb, "length")?,
                    ),
                },
            ));
        }
    }

    // Supersteps of `step`.
    let timeline = std::mem::take(&mut cx.b.timeline);
    let stages = std::mem::take(&mut cx.b.stages);
    let mut packed = pack_stages(stages, &timeline, chips);
    if let Some(first) = packed.steps.first_mut() {
        first.host_to_tile = std::mem::take(&mut cx.step_in);
    }
    if let Some(last) = packed.steps.last_mut() {
        last.tile_to_host = out_copies;
    }
    let Packed {
        steps,
        labels,
        live_bytes,
    } = packed;

    let costs = step_costs(&steps, &labels, target);
    let step = TileProgram {
        chips,
        tiles_per_chip: tiles,
        bytes_per_tile,
        host_buffers: step_buffers,
        supersteps: steps,
    };
    assemble(cx, step, out_tensors, costs, live_bytes)
}

/// The plan around a finished `step` program: the `load` program, every tile's memory, and
/// the out-of-memory check.
pub(crate) fn assemble(
    mut cx: Ctx<'_>,
    step: TileProgram,
    outputs: Vec<HostTensor>,
    costs: Vec<StepCost>,
    live_bytes: Vec<Vec<u64>>,
) -> Result<TilePlan, LowerError> {
    let target = cx.target;
    let tiles = cx.b.tiles;
    // The load program: one superstep streaming weights and constants, filling constants.
    let mut load_step = Superstep {
        host_to_tile: std::mem::take(&mut cx.load_copies),
        ..Superstep::default()
    };
    let mut li = HashMap::new();
    for (tile, v) in std::mem::take(&mut cx.load_fills) {
        compute_entry(&mut load_step, &mut li, tile).push(v);
    }
    let memory: Vec<TileMemory> = cx.b.books.iter().map(tile_memory).collect();
    let mut plan = TilePlan {
        load: TileProgram {
            host_buffers: std::mem::take(&mut cx.load_buffers),
            supersteps: vec![load_step],
            ..TileProgram::new(step.chips, step.tiles_per_chip, step.bytes_per_tile)
        },
        step,
        params: std::mem::take(&mut cx.params),
        constants: std::mem::take(&mut cx.constants),
        inputs: std::mem::take(&mut cx.inputs),
        outputs,
        costs,
        memory,
        live_bytes,
        oom: None,
        clock_hz: target.clock_hz,
        pipeline: None,
    };
    // The memory check: each tile's peak plus its code and vertex state (always live).
    let code = code_state(&[&plan.load, &plan.step], plan.memory.len());
    if let Some((i, m, c)) = fullest_with_code(&plan.memory, &code) {
        if m.peak + c.total() > target.bytes_per_tile {
            let per_chip = tiles.max(1) as usize;
            let (chip, tile) = ((i / per_chip) as u32, (i % per_chip) as u32);
            let book = cx.b.books.get(i);
            let named = |list: &[super::builder::Named]| {
                list.iter()
                    .map(|n| TileTensor {
                        name: n.name.clone(),
                        scope: String::new(),
                        bytes: n.bytes,
                    })
                    .collect::<Vec<_>>()
            };
            let oom = OutOfMemory {
                chip,
                tile,
                used: m.peak + c.total(),
                capacity: target.bytes_per_tile,
                code_bytes: c.code,
                vertex_state_bytes: c.vertex_state,
                largest: book.map(|b| named(&b.largest)).unwrap_or_default(),
                largest_vertices: book.map(|b| named(&b.largest_vertices)).unwrap_or_default(),
                at_peak: m.at_peak.named(),
            };
            if !cx.opts.allow_oom {
                return Err(LowerError::OutOfMemory(Box::new(oom)));
            }
            plan.oom = Some(oom);
        }
    }
    Ok(plan)
}

/// The tile (global index) with the most bytes in use counting its code and vertex state
/// (the first of equals), with its figures.
fn fullest_with_code(
    memory: &[TileMemory],
    code: &[CodeState],
) -> Option<(usize, TileMemory, CodeState)> {
    memory
        .iter()
        .enumerate()
        .map(|(i, m)| (i, *m, code.get(i).copied().unwrap_or_default()))
        .max_by_key(|(i, m, c)| (m.peak + c.total(), std::cmp::Reverse(*i)))
}

/// A tile's memory figures from its book.
fn tile_memory(b: &super::builder::TileBook) -> TileMemory {
    let c = |cat: Category| b.at_peak.get(cat as usize).copied().unwrap_or(0);
    TileMemory {
        always_live: b.always_live,
        peak: b.arena.peak_end,
        vertices: b.vertices,
        at_peak: MemoryByCategory {
            weights: c(Category::Weights),
            inputs: c(Category::Inputs),
            constants: c(Category::Constants),
            activations: c(Category::Activations),
            exchange_buffers: c(Category::ExchangeBuffers),
            temporaries: c(Category::Temporaries),
            gradients: c(Category::Gradients),
            stash: c(Category::Stash),
            optimizer_state: c(Category::OptimizerState),
        },
    }
}

/// Supersteps packed from a list of stages, with their op labels and live bytes per chip.
pub(crate) struct Packed {
    pub steps: Vec<Superstep>,
    pub labels: Vec<Vec<String>>,
    pub live_bytes: Vec<Vec<u64>>,
}

/// Packs `stages` (with the live bytes per chip after each, `timeline`) into supersteps: at
/// least one, even for no stages, so that streams have a superstep to go in.
pub(crate) fn pack_stages(stages: Vec<Stage>, timeline: &[Vec<u64>], chips: u32) -> Packed {
    let mut steps: Vec<Superstep> = vec![Superstep::default()];
    let mut labels: Vec<Vec<String>> = vec![Vec::new()];
    let mut index: HashMap<TileRef, usize> = HashMap::new();
    let mut live_bytes: Vec<Vec<u64>> = vec![vec![0; chips as usize]];
    for (si, stage) in stages.into_iter().enumerate() {
        let closed = steps.last().is_some_and(|s| {
            !s.exchange.is_empty()
                || !s.tile_to_host.is_empty()
                // Streams in come first in a superstep: a later one opens a new superstep.
                || (matches!(stage, Stage::StreamIn { .. }) && !s.compute.is_empty())
        });
        if closed {
            steps.push(Superstep::default());
            live_bytes.push(vec![0; chips as usize]);
            labels.push(Vec::new());
            index.clear();
        }
        let (Some(cur), Some(lab)) = (steps.last_mut(), labels.last_mut()) else {
            break;
        };
        let label = match stage {
            Stage::Compute { label, work } => {
                for (tile, v) in work {
                    compute_entry(cur, &mut index, tile).push(v);
                }
                label
            }
            Stage::Exchange { label, copies } => {
                cur.exchange = copies;
                label
            }
            Stage::StreamIn { label, copies } => {
                cur.host_to_tile.extend(copies);
                label
            }
            Stage::StreamOut { label, copies } => {
                cur.tile_to_host.extend(copies);
                label
            }
        };
        if lab.last() != Some(&label) {
            lab.push(label);
        }
        if let (Some(now), Some(cur)) = (timeline.get(si), live_bytes.last_mut()) {
            for (c, &v) in cur.iter_mut().zip(now) {
                *c = (*c).max(v);
            }
        }
    }
    Packed {
        steps,
        labels,
        live_bytes,
    }
}

/// Estimated cost of every superstep, from the target's figures: compute = the busiest
/// tile's vertex cycles, exchange = the busiest receiving tile plus inter-chip link time.
pub(crate) fn step_costs(
    steps: &[Superstep],
    labels: &[Vec<String>],
    target: &Target,
) -> Vec<StepCost> {
    let exch_rate = target.exchange_bytes_per_cycle_per_tile.max(1e-9);
    let link_cycles_per_byte = target.clock_hz / target.link_bytes_per_s.max(1.0);
    steps
        .iter()
        .zip(labels)
        .map(|(s, l)| {
            let compute_cycles = s
                .compute
                .iter()
                .map(|tc| {
                    tc.vertices
                        .iter()
                        .map(|v| vertex_cycles(v, target))
                        .sum::<u64>()
                })
                .max()
                .unwrap_or(0);
            let mut received: HashMap<TileRef, u64> = HashMap::new();
            let (mut bytes, mut inter) = (0u64, 0u64);
            for e in &s.exchange {
                let len = u64::from(e.src.region.len);
                bytes += len;
                if e.src.tile.chip != e.dst_tile.chip {
                    inter += len;
                }
                *received.entry(e.dst_tile).or_default() += len;
            }
            let busiest = received.values().copied().max().unwrap_or(0);
            let exchange_cycles = if s.exchange.is_empty() {
                0
            } else {
                u64::from(target.exchange_overhead_cycles)
                    + (busiest as f64 / exch_rate).ceil() as u64
                    + (inter as f64 * link_cycles_per_byte).ceil() as u64
            };
            StepCost {
                label: summarise(l),
                compute_cycles,
                exchange_cycles,
                sync_cycles: u64::from(target.sync_cycles),
                exchange_bytes: bytes,
                inter_chip_bytes: inter,
                vertices: s.compute.iter().map(|tc| tc.vertices.len() as u64).sum(),
            }
        })
        .collect()
}

/// `a, b (+3 more)` for a superstep's op labels.
fn summarise(labels: &[String]) -> String {
    match labels {
        [] => "(stream)".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_runtime::program::{Region, StreamCopy, TileRegion};

    fn tile(t: u32) -> TileRef {
        TileRef::new(0, t)
    }

    fn compute(t: u32) -> Stage {
        Stage::Compute {
            label: format!("c{t}"),
            work: vec![(
                tile(t),
                Vertex::Fill {
                    elem: tessera_runtime::vertex::Elem::F32,
                    dst: Region::new(0, 4),
                    value: 1.0,
                },
            )],
        }
    }

    fn stream(t: u32, out: bool) -> Stage {
        let copies = vec![StreamCopy::contiguous(
            0,
            0,
            TileRegion {
                tile: tile(t),
                region: Region::new(0, 4),
            },
        )];
        let label = format!("s{t}");
        if out {
            Stage::StreamOut { label, copies }
        } else {
            Stage::StreamIn { label, copies }
        }
    }

    /// Streams in come before a superstep's compute, streams out after its exchange: a stream
    /// in after compute opens a superstep, anything after a stream out does too.
    #[test]
    fn stream_stages_keep_program_order() {
        let stages = vec![
            stream(0, false),
            compute(0),
            stream(1, false),
            stream(2, false),
            compute(1),
            stream(1, true),
            compute(2),
        ];
        let p = pack_stages(stages, &[], 1);
        let shape: Vec<(usize, usize, usize)> = p
            .steps
            .iter()
            .map(|s| (s.host_to_tile.len(), s.compute.len(), s.tile_to_host.len()))
            .collect();
        assert_eq!(shape, vec![(1, 1, 0), (2, 1, 1), (0, 1, 0)]);
    }
}
