//! The bulk-synchronous executor: runs a [`LoadedProgram`] on a [`Machine`].
//!
//! Per superstep: host → tile stream copies; the compute phase (the tiles that have vertices run
//! in parallel as rayon tasks, each holding `&mut` to its own memory only); the exchange phase
//! as the load planned it ([`crate::exchange`]): straight from sources to destinations in one
//! parallel pass, or through a staging buffer when a copy reads bytes another one writes, or
//! — when its copies replicate their sources and nothing happens in between — fused with the
//! next superstep's compute (sources staged once, then each tile's task takes its deliveries and
//! runs its vertices); in every case each copy sees the memory as the compute phase left it;
//! then tile → host stream copies. Host → tile copies may be 2-D strided on the host side
//! ([`crate::StreamCopy::pieces`]).
//!
//! Memory persists across runs: a [`Machine`] can run a `load` program once and then other
//! programs of the same machine shape that read what it left in tile memory. Each parallel pass ends
//! at a barrier (the end of the parallel iterator).
//!
//! Determinism: a tile's vertices run in order on one thread and exchange destinations are
//! disjoint, so results never depend on the number of threads. The whole program runs inside one
//! `install` of the given pool ([`Machine::run_in`]); phases with no work are skipped.
//!
//! Tracing: a fused phase's wall time is split between the exchange and the next compute in
//! proportion to the time its tasks spent delivering and computing (gathering the sources
//! counts as exchange).

use crate::error::{RunError, Site};
use crate::exchange::fused::{FusedError, FusedPlan};
use crate::exchange::{staged, ExchangePlan};
use crate::kernels::{run_vertex, KernelError};
use crate::loaded::{LoadedProgram, StepPlan};
use crate::machine::Machine;
use crate::program::{Superstep, TileCompute, TileProgram, TileRef};
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
        // Compute time of the next superstep, when its compute ran fused with this exchange.
        let mut fused_compute = Duration::ZERO;
        for (s, (step, plan)) in p.supersteps.iter().zip(&program.plans).enumerate() {
            let mut t = SuperstepTrace {
                exchange_bytes: plan.exchange_bytes,
                inter_chip_bytes: plan.inter_chip_bytes,
                vertices: plan.vertices,
                flops: plan.flops,
                ..SuperstepTrace::default()
            };
            t.host_to_tile = timed(mode, || self.host_to_tile(program, s, step, host))?;
            t.compute = if plan.compute_fused {
                std::mem::take(&mut fused_compute)
            } else {
                timed(mode, || self.compute(s, step, plan))?
            };
            t.exchange = match &plan.exchange {
                ExchangePlan::Fused(f) => {
                    let next = p
                        .supersteps
                        .get(s + 1)
                        .ok_or_else(|| copy_err(s, Site::Exchange(0)))?;
                    let (exchange, compute) = self.fused(s, f, next, mode)?;
                    fused_compute = compute;
                    exchange
                }
                _ => timed(mode, || self.exchange(program, s, step, plan))?,
            };
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
        // `plan.compute` is sorted by tile without repeats, so each tile is reached by
        // skipping ahead (`nth` on a slice iterator is O(1)).
        let (mut it, mut next) = (self.tiles.iter_mut(), 0usize);
        for &(t, ci) in &plan.compute {
            let (Some(mem), Some(tc)) = (
                t.checked_sub(next).and_then(|skip| it.nth(skip)),
                step.compute.get(ci),
            ) else {
                return Err(missing_set(s, step, ci));
            };
            next = t + 1;
            work.push((mem, tc));
        }
        work.into_par_iter()
            .with_min_len(plan.compute_min_len)
            .try_for_each(|(mem, tc)| run_set(s, mem, tc))
    }

    /// Exchange `s` fused with the compute of `next` (superstep `s + 1`); returns the time to
    /// record for the exchange and for the next compute. Both share one parallel phase, whose
    /// wall time is split between them in proportion to the time the tasks spent delivering
    /// and computing (the gather pass counts as exchange).
    fn fused(
        &mut self,
        s: usize,
        f: &FusedPlan,
        next: &Superstep,
        mode: TraceMode,
    ) -> Result<(Duration, Duration), RunError> {
        let start = (mode == TraceMode::On).then(Instant::now);
        let staging = self
            .staging
            .get_mut(..f.staging_bytes)
            .ok_or_else(|| copy_err(s, Site::Exchange(0)))?;
        let (deliver, compute) = f
            .run(&mut self.tiles, staging, start.is_some(), |mem, ci| {
                let tc = next
                    .compute
                    .get(ci)
                    .ok_or_else(|| missing_set(s + 1, next, ci))?;
                run_set(s + 1, mem, tc)
            })
            .map_err(|e| match e {
                FusedError::Copy(i) => copy_err(s, Site::Exchange(i)),
                FusedError::Compute(e) => e,
            })?;
        let Some(start) = start else {
            return Ok((Duration::ZERO, Duration::ZERO));
        };
        let wall = start.elapsed();
        let busy = (deliver + compute).as_secs_f64();
        let share = if busy > 0.0 {
            compute.as_secs_f64() / busy
        } else {
            0.0
        };
        let compute = wall.mul_f64(share);
        Ok((wall.saturating_sub(compute), compute))
    }

    fn exchange(
        &mut self,
        program: &LoadedProgram,
        s: usize,
        step: &Superstep,
        plan: &StepPlan,
    ) -> Result<(), RunError> {
        let done = match &plan.exchange {
            // A fused exchange runs in `fused`, with the next superstep's compute.
            ExchangePlan::Empty | ExchangePlan::Fused(_) => Ok(()),
            ExchangePlan::Direct(d) => d.run(&mut self.tiles),
            ExchangePlan::Staged(groups) => {
                staged::run(&mut self.tiles, &mut self.staging, step, groups, |t| {
                    program.flat(t)
                })
            }
        };
        done.map_err(|i| RunError::Copy {
            superstep: s,
            site: Site::Exchange(i),
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

/// Runs one tile's compute set of superstep `s` on its memory, in order.
fn run_set(s: usize, mem: &mut [u8], tc: &TileCompute) -> Result<(), RunError> {
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
}

/// The error for a compute set the plan lists but cannot reach (only with a plan built for
/// another machine).
fn missing_set(s: usize, step: &Superstep, ci: usize) -> RunError {
    RunError::Kernel {
        superstep: s,
        tile: step
            .compute
            .get(ci)
            .map_or(TileRef::new(0, 0), |tc| tc.tile),
        vertex: 0,
        detail: "compute set of a tile outside the machine".into(),
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
