//! A validated program plus the schedule the executor follows: compute sets in tile order and
//! exchange copies grouped by destination tile, each group owning a contiguous slice of a
//! staging buffer. Building this once at load keeps the per-superstep bookkeeping small.

use crate::error::{Problem, ProgramError, Site};
use crate::program::{Superstep, TileProgram, TileRef};
use crate::validate::{
    check_in_tile, check_machine, check_stream, check_tile, check_vertex, find_overlap,
};
use std::ops::Range;

/// Exchange copies landing on one destination tile.
#[derive(Debug, Clone)]
pub(crate) struct DstGroup {
    /// Flat index of the destination tile.
    pub dst: usize,
    /// Indices into the superstep's `exchange` list.
    pub copies: Vec<usize>,
    /// This group's bytes in the staging buffer (copies laid out in `copies` order).
    pub staging: Range<usize>,
}

/// The precomputed schedule of one superstep.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepPlan {
    /// `(flat tile, index into compute)` of the tiles with vertices, sorted by flat tile.
    pub compute: Vec<(usize, usize)>,
    /// Exchange groups sorted by destination tile.
    pub groups: Vec<DstGroup>,
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
    /// Validates `program` and builds its schedule.
    pub fn load(program: TileProgram) -> Result<Self, ProgramError> {
        check_machine(&program)?;
        let mut plans = Vec::with_capacity(program.supersteps.len());
        let mut staging_bytes = 0usize;
        for (s, step) in program.supersteps.iter().enumerate() {
            let plan = plan_step(&program, s, step)?;
            let bytes = plan.groups.last().map_or(0, |g| g.staging.end);
            staging_bytes = staging_bytes.max(bytes);
            plans.push(plan);
        }
        Ok(LoadedProgram {
            program,
            plans,
            staging_bytes,
        })
    }

    /// The program as given.
    pub fn program(&self) -> &TileProgram {
        &self.program
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
    let (mut vertices, mut flops) = (0u64, 0u64);
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
    let compute = compute
        .into_iter()
        .filter(|c| c.2)
        .map(|(t, ci, _)| (t, ci))
        .collect();

    let mut by_dst: Vec<(usize, usize)> = Vec::with_capacity(step.exchange.len());
    let (mut bytes, mut inter) = (0u64, 0u64);
    for (i, x) in step.exchange.iter().enumerate() {
        let site = Site::Exchange(i);
        check_tile(p, x.src.tile).map_err(at(x.src.tile, site.clone()))?;
        check_tile(p, x.dst_tile).map_err(at(x.dst_tile, site.clone()))?;
        check_in_tile("source", x.src.region, p.bytes_per_tile)
            .map_err(at(x.src.tile, site.clone()))?;
        check_in_tile("destination", x.dst_region(), p.bytes_per_tile)
            .map_err(at(x.dst_tile, site))?;
        by_dst.push((flat(p, x.dst_tile), i));
        bytes += u64::from(x.src.region.len);
        if x.src.tile.chip != x.dst_tile.chip {
            inter += u64::from(x.src.region.len);
        }
    }
    by_dst.sort_unstable();
    let mut groups: Vec<DstGroup> = Vec::new();
    let mut cursor = 0usize;
    for (dst, i) in by_dst {
        let len = step
            .exchange
            .get(i)
            .map_or(0, |x| x.src.region.len as usize);
        match groups.last_mut() {
            Some(g) if g.dst == dst => {
                g.copies.push(i);
                g.staging.end += len;
            }
            _ => groups.push(DstGroup {
                dst,
                copies: vec![i],
                staging: cursor..cursor + len,
            }),
        }
        cursor += len;
    }
    for g in &groups {
        let ranges = g
            .copies
            .iter()
            .filter_map(|&i| step.exchange.get(i).map(|x| (i, x.dst_region())))
            .map(|(i, r)| (u64::from(r.offset), r.end(), i))
            .collect();
        if let Some((a, b)) = find_overlap(ranges) {
            if let (Some(xa), Some(xb)) = (step.exchange.get(a), step.exchange.get(b)) {
                return Err(at(xb.dst_tile, Site::Exchange(b))(Problem::Overlap {
                    what_a: "destination",
                    a: xb.dst_region(),
                    what_b: "destination of an earlier copy",
                    b: xa.dst_region(),
                }));
            }
        }
    }
    Ok(StepPlan {
        compute,
        groups,
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
