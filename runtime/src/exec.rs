//! The bulk-synchronous executor: runs a [`LoadedProgram`] on a [`Machine`].
//!
//! Per superstep: host → tile stream copies; the compute phase (the tiles that have vertices run
//! in parallel as rayon tasks, each holding `&mut` to its own memory only); the exchange phase in
//! two parallel passes through a staging buffer (gather: read source tiles into each destination
//! group's staging slice; scatter: each destination tile copies its slice in), so every copy sees
//! the memory as the compute phase left it; tile → host stream copies. Host → tile copies may
//! be 2-D strided on the host side ([`crate::StreamCopy::pieces`]).
//!
//! Memory persists across runs: a [`Machine`] can run a `load` program once and then other
//! programs of the same machine shape that read what it left in tile memory. Each parallel pass ends
//! at a barrier (the end of the parallel iterator).
//!
//! Determinism: a tile's vertices run in order on one thread and exchange destinations are
//! disjoint, so results never depend on the number of threads. The whole program runs inside one
//! `install` of the given pool ([`Machine::run_in`]); phases with no work are skipped.

use crate::error::{RunError, Site};
use crate::kernels::{run_vertex, KernelError};
use crate::loaded::{DstGroup, LoadedProgram, StepPlan};
use crate::machine::Machine;
use crate::program::{Superstep, TileProgram};
use crate::trace::{SuperstepTrace, Trace, TraceMode};
use rayon::prelude::*;
use std::time::{Duration, Instant};

impl Machine {
    /// Runs `program` on this machine in `pool` (entered once for the whole program).
    /// `host` holds the program's host buffers, in declaration order and of declared sizes.
    pub fn run_in(
        &mut self,
        pool: &rayon::ThreadPool,
        program: &LoadedProgram,
        host: &mut [Vec<u8>],
        mode: TraceMode,
    ) -> Result<Trace, RunError> {
        pool.install(|| self.run(program, host, mode))
    }

    /// Runs `program` on this machine in the current rayon pool; see [`Machine::run_in`].
    pub fn run(
        &mut self,
        program: &LoadedProgram,
        host: &mut [Vec<u8>],
        mode: TraceMode,
    ) -> Result<Trace, RunError> {
        self.check_matches(program)?;
        check_host(program.program(), host)?;
        if self.staging.len() < program.staging_bytes {
            self.staging.resize(program.staging_bytes, 0);
        }
        let mut trace = Trace::default();
        let p = program.program();
        for (s, (step, plan)) in p.supersteps.iter().zip(&program.plans).enumerate() {
            let mut t = SuperstepTrace {
                exchange_bytes: plan.exchange_bytes,
                inter_chip_bytes: plan.inter_chip_bytes,
                vertices: plan.vertices,
                flops: plan.flops,
                ..SuperstepTrace::default()
            };
            t.host_to_tile = timed(mode, || self.host_to_tile(program, s, step, host))?;
            t.compute = timed(mode, || self.compute(s, step, plan))?;
            t.exchange = timed(mode, || self.exchange(program, s, step, plan))?;
            t.tile_to_host = timed(mode, || self.tile_to_host(program, s, step, host))?;
            if mode == TraceMode::On {
                trace.supersteps.push(t);
            }
        }
        Ok(trace)
    }

    fn compute(&mut self, s: usize, step: &Superstep, plan: &StepPlan) -> Result<(), RunError> {
        if plan.compute.is_empty() {
            return Ok(());
        }
        let mut work = Vec::with_capacity(plan.compute.len());
        let mut wanted = plan.compute.iter().peekable();
        for (i, mem) in self.tiles.iter_mut().enumerate() {
            if let Some(&(_, ci)) = wanted.next_if(|(t, _)| *t == i) {
                if let Some(tc) = step.compute.get(ci) {
                    work.push((mem, tc));
                }
            }
        }
        work.into_par_iter().try_for_each(|(mem, tc)| {
            tc.vertices.iter().enumerate().try_for_each(|(vi, v)| {
                run_vertex(mem, v).map_err(|e| match e {
                    KernelError::Operand(detail) => RunError::Kernel {
                        superstep: s,
                        tile: tc.tile,
                        vertex: vi,
                        detail,
                    },
                    KernelError::Index { index, rows } => RunError::IndexOutOfRange {
                        superstep: s,
                        tile: tc.tile,
                        vertex: vi,
                        index,
                        rows,
                    },
                })
            })
        })
    }

    fn exchange(
        &mut self,
        program: &LoadedProgram,
        s: usize,
        step: &Superstep,
        plan: &StepPlan,
    ) -> Result<(), RunError> {
        if plan.groups.is_empty() {
            return Ok(());
        }
        let err = |i: usize| RunError::Copy {
            superstep: s,
            site: Site::Exchange(i),
        };
        // Gather: every group's staging slice is filled from (shared) source tiles.
        let mut chunks: Vec<(&DstGroup, &mut [u8])> = Vec::with_capacity(plan.groups.len());
        let mut rest = self.staging.as_mut_slice();
        for g in &plan.groups {
            let (head, tail) = rest.split_at_mut(g.staging.len().min(rest.len()));
            chunks.push((g, head));
            rest = tail;
        }
        let tiles = &self.tiles;
        chunks.into_par_iter().try_for_each(|(g, chunk)| {
            let mut at = 0usize;
            for &i in &g.copies {
                let x = step.exchange.get(i).ok_or_else(|| err(i))?;
                let (o, len) = (x.src.region.offset as usize, x.src.region.len as usize);
                let src = tiles
                    .get(program.flat(x.src.tile))
                    .and_then(|m| m.get(o..o + len))
                    .ok_or_else(|| err(i))?;
                chunk
                    .get_mut(at..at + len)
                    .ok_or_else(|| err(i))?
                    .copy_from_slice(src);
                at += len;
            }
            Ok(())
        })?;
        // Scatter: each destination tile copies its staging slice in.
        let mut work = Vec::with_capacity(plan.groups.len());
        let mut groups = plan.groups.iter().peekable();
        for (i, mem) in self.tiles.iter_mut().enumerate() {
            if let Some(g) = groups.next_if(|g| g.dst == i) {
                work.push((mem, g));
            }
        }
        let staging = &self.staging;
        work.into_par_iter().try_for_each(|(mem, g)| {
            let mut at = g.staging.start;
            for &i in &g.copies {
                let x = step.exchange.get(i).ok_or_else(|| err(i))?;
                let (o, len) = (x.dst_offset as usize, x.src.region.len as usize);
                let src = staging.get(at..at + len).ok_or_else(|| err(i))?;
                mem.get_mut(o..o + len)
                    .ok_or_else(|| err(i))?
                    .copy_from_slice(src);
                at += len;
            }
            Ok(())
        })
    }

    fn host_to_tile(
        &mut self,
        program: &LoadedProgram,
        s: usize,
        step: &Superstep,
        host: &[Vec<u8>],
    ) -> Result<(), RunError> {
        for (i, c) in step.host_to_tile.iter().enumerate() {
            let err = || copy_err(s, Site::HostToTile(i));
            let src = host.get(c.buffer as usize).ok_or_else(err)?;
            let mem = self
                .tiles
                .get_mut(program.flat(c.tile.tile))
                .ok_or_else(err)?;
            for (h, t, len) in c.pieces().ok_or_else(err)? {
                let from = range(h, len).and_then(|r| src.get(r)).ok_or_else(err)?;
                range(u64::from(t), len)
                    .and_then(|r| mem.get_mut(r))
                    .ok_or_else(err)?
                    .copy_from_slice(from);
            }
        }
        Ok(())
    }

    fn tile_to_host(
        &self,
        program: &LoadedProgram,
        s: usize,
        step: &Superstep,
        host: &mut [Vec<u8>],
    ) -> Result<(), RunError> {
        for (i, c) in step.tile_to_host.iter().enumerate() {
            let err = || copy_err(s, Site::TileToHost(i));
            if c.row_bytes != 0 {
                return Err(err());
            }
            let len = c.tile.region.len;
            let src = range(u64::from(c.tile.region.offset), len)
                .and_then(|r| self.tiles.get(program.flat(c.tile.tile))?.get(r))
                .ok_or_else(err)?;
            range(c.buffer_offset, len)
                .and_then(|r| host.get_mut(c.buffer as usize)?.get_mut(r))
                .ok_or_else(err)?
                .copy_from_slice(src);
        }
        Ok(())
    }
}

/// The byte range `[start, start + len)` as `usize` indices, if it fits.
fn range(start: u64, len: u32) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(start).ok()?;
    Some(start..start.checked_add(len as usize)?)
}

fn copy_err(superstep: usize, site: Site) -> RunError {
    RunError::Copy { superstep, site }
}

/// Runs `f`, timing it only when tracing.
fn timed(mode: TraceMode, f: impl FnOnce() -> Result<(), RunError>) -> Result<Duration, RunError> {
    match mode {
        TraceMode::Off => f().map(|()| Duration::ZERO),
        TraceMode::On => {
            let start = Instant::now();
            f().map(|()| start.elapsed())
        }
    }
}

/// The host buffers must match the program's declarations in number and size.
fn check_host(p: &TileProgram, host: &[Vec<u8>]) -> Result<(), RunError> {
    if host.len() != p.host_buffers.len() {
        return Err(RunError::HostBufferCount {
            expected: p.host_buffers.len(),
            got: host.len(),
        });
    }
    for (index, (decl, buf)) in p.host_buffers.iter().zip(host).enumerate() {
        if decl.bytes != buf.len() as u64 {
            return Err(RunError::HostBufferSize {
                index,
                name: decl.name.clone(),
                expected: decl.bytes,
                got: buf.len() as u64,
            });
        }
    }
    Ok(())
}
