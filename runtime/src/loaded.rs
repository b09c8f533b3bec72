//! A validated program plus the schedule the executor follows: compute sets in tile order and
//! the exchange's plan ([`crate::exchange`]: direct, through a staging buffer, or fused with the
//! next superstep's compute). Building this once at load keeps the per-superstep bookkeeping
//! small.

use crate::error::{Problem, ProgramError, Site};
use crate::exchange::fused::FusedPlan;
use crate::exchange::{copies, min_len, ExchangePlan, JOB_UNITS, VERTEX_UNITS};
use crate::program::{Superstep, TileProgram, TileRef};
use crate::validate::{
    check_in_tile, check_machine, check_stream, check_tile, check_vertex, find_overlap,
};
use crate::vertex::Vertex;
use rayon::prelude::*;

/// The precomputed schedule of one superstep.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepPlan {
    /// `(flat tile, index into compute)` of the tiles with vertices, sorted by flat tile.
    pub compute: Vec<(usize, usize)>,
    /// The compute phase runs inside the previous superstep's fused exchange.
    pub compute_fused: bool,
    /// Estimated work of the compute phase (see [`crate::exchange::JOB_UNITS`]).
    pub work: u64,
    /// Compute sets per parallel job.
    pub compute_min_len: usize,
    /// How the exchange runs (planned once every superstep is validated).
    pub exchange: ExchangePlan,
    /// Bytes moved by exchange.
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Vertices in the compute phase.
    pub vertices: u64,
    /// Floating-point operations of the compute phase.
    pub flops: u64,
}

/// A program that passed [`crate::validate`], ready to run on a matching [`crate::Machine`].
#[derive(Debug, Clone)]
pub struct LoadedProgram {
    pub(crate) program: TileProgram,
    pub(crate) plans: Vec<StepPlan>,
    pub(crate) staging_bytes: usize,
}

impl LoadedProgram {
    /// Validates `program` and builds its schedule (supersteps in parallel on the current
    /// rayon pool; the error reported is that of the first failing superstep).
    pub fn load(program: TileProgram) -> Result<Self, ProgramError> {
        check_machine(&program)?;
        let checked: Vec<Result<StepPlan, ProgramError>> = program
            .supersteps
            .par_iter()
            .enumerate()
            .map(|(s, step)| plan_step(&program, s, step))
            .collect();
        let mut plans = checked.into_iter().collect::<Result<Vec<_>, _>>()?;
        let exchanges: Vec<(ExchangePlan, bool)> = (0..plans.len())
            .into_par_iter()
            .map(|s| plan_exchange(&program, &plans, s))
            .collect();
        for (s, (exchange, fused)) in exchanges.into_iter().enumerate() {
            if let Some(plan) = plans.get_mut(s) {
                plan.exchange = exchange;
            }
            if let Some(next) = plans.get_mut(s + 1).filter(|_| fused) {
                next.compute_fused = true;
            }
        }
        let staging_bytes = plans
            .iter()
            .map(|plan| plan.exchange.staging_bytes())
            .max()
            .unwrap_or(0);
        Ok(LoadedProgram {
            program,
            plans,
            staging_bytes,
        })
    }

    /// The program as given (after [`LoadedProgram::compact`], without the copy lists it
    /// dropped).
    pub fn program(&self) -> &TileProgram {
        &self.program
    }

    /// Drops the exchange copy lists that the precomputed plans have made redundant (every
    /// superstep whose exchange runs direct or fused keeps its own copy of them; a staged
    /// exchange still reads its list), and returns how many copies were dropped. Running is
    /// unchanged: the plans, not the lists, drive the exchange, and errors name a copy by
    /// its index in the original list. A large training plan holds hundreds of millions of
    /// copies; without this the emulator would hold each of them twice.
    pub fn compact(&mut self) -> u64 {
        let mut dropped = 0u64;
        for (step, plan) in self.program.supersteps.iter_mut().zip(&self.plans) {
            if !matches!(plan.exchange, ExchangePlan::Staged(_)) {
                dropped += step.exchange.len() as u64;
                step.exchange = Vec::new();
            }
        }
        dropped
    }

    /// Bytes each superstep's exchange moves, and how many of them cross chips.
    pub fn exchange_bytes(&self, superstep: usize) -> Option<(u64, u64)> {
        self.plans
            .get(superstep)
            .map(|p| (p.exchange_bytes, p.inter_chip_bytes))
    }

    /// Flat index of a (validated) tile.
    pub(crate) fn flat(&self, t: TileRef) -> usize {
        flat(&self.program, t)
    }
}

/// The exchange plan of superstep `s`, and whether it is fused with the next compute.
///
/// It is fused where nothing happens in between (no tile → host copies after the exchange, no
/// host → tile copies before the next compute) and the bytes staged for the source tiles'
/// own tasks are at most half the bytes moved (staging them costs less than delivering into a
/// warm cache saves; the other tiles' tasks read the sources in place) or the copies move
/// little (then fusing saves a barrier).
fn plan_exchange(p: &TileProgram, plans: &[StepPlan], s: usize) -> (ExchangePlan, bool) {
    let Some(step) = p.supersteps.get(s) else {
        return (ExchangePlan::Empty, false);
    };
    let flat = |t| flat(p, t);
    if let (Some(next), Some(next_plan)) = (p.supersteps.get(s + 1), plans.get(s + 1)) {
        if !step.exchange.is_empty() && step.tile_to_host.is_empty() && next.host_to_tile.is_empty()
        {
            let fused = FusedPlan::build(&copies(step, flat), &next_plan.compute)
                .filter(|f| 2 * f.staging_bytes as u64 <= f.bytes || f.bytes <= JOB_UNITS)
                .map(|f| f.with_compute_work(next_plan.work));
            if let Some(f) = fused {
                return (ExchangePlan::Fused(f), true);
            }
        }
    }
    (ExchangePlan::build(p.bytes_per_tile, step, flat), false)
}

/// Bytes a vertex writes (its result), for the work estimate.
fn written(v: &Vertex) -> u64 {
    let r = match v {
        Vertex::MatMul(mm) => mm.c,
        Vertex::Unary { dst, .. }
        | Vertex::Binary { dst, .. }
        | Vertex::AddPartials { dst, .. }
        | Vertex::Cast { dst, .. }
        | Vertex::Fill { dst, .. }
        | Vertex::Copy { dst, .. }
        | Vertex::Softmax { dst, .. }
        | Vertex::LayerNorm { dst, .. }
        | Vertex::Gather { dst, .. }
        | Vertex::Compare { dst, .. }
        | Vertex::Select { dst, .. }
        | Vertex::ReduceRows { dst, .. }
        | Vertex::ReduceCols { dst, .. }
        | Vertex::ScatterAdd { dst, .. }
        | Vertex::Expand { dst, .. } => *dst,
    };
    u64::from(r.len)
}

/// `chip * tiles_per_chip + tile` (fits in usize: checked by `check_machine`).
fn flat(p: &TileProgram, t: TileRef) -> usize {
    t.chip as usize * p.tiles_per_chip as usize + t.tile as usize
}

/// Validates superstep `s` and builds its plan.
fn plan_step(p: &TileProgram, s: usize, step: &Superstep) -> Result<StepPlan, ProgramError> {
    let at = |tile: TileRef, site: Site| {
        move |problem: Problem| ProgramError::At {
            superstep: s,
            tile,
            site: site.clone(),
            problem,
        }
    };
    for (i, c) in step.host_to_tile.iter().enumerate() {
        check_stream(p, c, s, Site::HostToTile(i))?;
    }
    let mut host_writes = Vec::new();
    for (i, c) in step.tile_to_host.iter().enumerate() {
        check_stream(p, c, s, Site::TileToHost(i))?;
        let start = c.buffer_offset;
        let end = start + u64::from(c.tile.region.len);
        host_writes.push((u64::from(c.buffer), start, end, i));
    }
    check_host_overlap(p, s, step, host_writes)?;

    let mut compute = Vec::with_capacity(step.compute.len());
    let (mut vertices, mut flops, mut work) = (0u64, 0u64, 0u64);
    for (ci, tc) in step.compute.iter().enumerate() {
        check_tile(p, tc.tile).map_err(at(tc.tile, Site::Compute))?;
        for (vi, v) in tc.vertices.iter().enumerate() {
            let site = Site::Vertex {
                index: vi,
                kind: v.kind(),
            };
            check_vertex(v, p.bytes_per_tile).map_err(at(tc.tile, site))?;
            vertices += 1;
            flops += v.flops();
            work += v.flops() + written(v) + VERTEX_UNITS;
        }
        // Tiles with nothing to run get no task (but still count for the duplicate check).
        compute.push((flat(p, tc.tile), ci, !tc.vertices.is_empty()));
    }
    compute.sort_unstable();
    if let Some(w) = compute
        .windows(2)
        .find(|w| matches!(w, [a, b] if a.0 == b.0))
    {
        let tile = w
            .first()
            .and_then(|(_, ci, _)| step.compute.get(*ci))
            .map_or(TileRef::new(0, 0), |tc| tc.tile);
        return Err(at(tile, Site::Compute)(Problem::DuplicateTile));
    }
    let compute: Vec<(usize, usize)> = compute
        .into_iter()
        .filter(|c| c.2)
        .map(|(t, ci, _)| (t, ci))
        .collect();

    let (mut bytes, mut inter) = (0u64, 0u64);
    let mut dsts = Vec::with_capacity(step.exchange.len());
    for (i, x) in step.exchange.iter().enumerate() {
        let site = Site::Exchange(i);
        check_tile(p, x.src.tile).map_err(at(x.src.tile, site.clone()))?;
        check_tile(p, x.dst_tile).map_err(at(x.dst_tile, site.clone()))?;
        check_in_tile("source", x.src.region, p.bytes_per_tile)
            .map_err(at(x.src.tile, site.clone()))?;
        check_in_tile("destination", x.dst_region(), p.bytes_per_tile)
            .map_err(at(x.dst_tile, site))?;
        let r = x.dst_region();
        if r.len > 0 {
            dsts.push((flat(p, x.dst_tile), u64::from(r.offset), r.end(), i));
        }
        bytes += u64::from(x.src.region.len);
        if x.src.tile.chip != x.dst_tile.chip {
            inter += u64::from(x.src.region.len);
        }
    }
    // Destinations on one tile must be disjoint: among non-empty ranges sorted by tile and
    // start, any overlap shows between neighbours.
    dsts.sort_unstable();
    let clash = dsts.windows(2).find_map(|w| match w {
        [a, b] if a.0 == b.0 && b.1 < a.2 => Some((a.3, b.3)),
        _ => None,
    });
    if let Some((a, b)) = clash {
        if let (Some(xa), Some(xb)) = (step.exchange.get(a), step.exchange.get(b)) {
            return Err(at(xb.dst_tile, Site::Exchange(b))(Problem::Overlap {
                what_a: "destination",
                a: xb.dst_region(),
                what_b: "destination of an earlier copy",
                b: xa.dst_region(),
            }));
        }
    }
    Ok(StepPlan {
        compute_min_len: min_len(work, compute.len()),
        compute,
        compute_fused: false,
        work,
        exchange: ExchangePlan::Empty,
        exchange_bytes: bytes,
        inter_chip_bytes: inter,
        vertices,
        flops,
    })
}

/// Tile → host copies of one superstep must not write the same host bytes.
fn check_host_overlap(
    p: &TileProgram,
    s: usize,
    step: &Superstep,
    writes: Vec<(u64, u64, u64, usize)>,
) -> Result<(), ProgramError> {
    for (b, buffer) in p.host_buffers.iter().enumerate() {
        let ranges = writes
            .iter()
            .filter(|w| w.0 == b as u64)
            .map(|w| (w.1, w.2, w.3))
            .collect();
        if let Some((first, second)) = find_overlap(ranges) {
            let tile = step
                .tile_to_host
                .get(second)
                .map_or(TileRef::new(0, 0), |c| c.tile.tile);
            return Err(ProgramError::At {
                superstep: s,
                tile,
                site: Site::TileToHost(second),
                problem: Problem::HostOverlap {
                    name: buffer.name.clone(),
                    other: first,
                },
            });
        }
    }
    Ok(())
}
