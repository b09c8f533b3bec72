//! The bulk-synchronous executor: runs a [`LoadedProgram`] on a [`Machine`].
//!
//! Per superstep: host → tile stream copies; the compute phase (the tiles that have vertices run
//! in parallel as rayon tasks, each holding `&mut` to its own memory only); the exchange phase
//! as the load planned it ([`crate::exchange`]): straight from sources to destinations in one
//! parallel pass, or through a staging buffer when a copy reads bytes another one writes, or
//! — when its copies replicate their sources and nothing happens in between — fused with the
//! next superstep's compute (each tile's task takes its deliveries and runs its vertices: first
//! the tiles that hold no source, reading the sources in place, then the source tiles, reading a
//! snapshot of the sources they need); in every case each copy sees the memory as the compute phase left it;
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
//! Tracing ([`TraceMode`]): `On` times each phase that has work as a whole (no per-tile clock
//! reads); a fused phase is timed once (its gather pass apart) and split between the exchange
//! and the next compute by the load's work estimate (see [`SuperstepTrace::fused`]). `Tiles`
//! also times every tile's task of every parallel phase and keeps the records per superstep
//! ([`crate::trace::TileTime`]); its fused phases are split by the tasks' measured times.

use crate::error::{RunError, Site};
use crate::exchange::fused::{FusedError, FusedPlan, FusedTimes};
use crate::exchange::{staged, ExchangePlan};
use crate::kernels::{run_vertex, KernelError};
use crate::loaded::{LoadedProgram, StepPlan};
use crate::machine::Machine;
use crate::program::{Superstep, TileCompute, TileProgram, TileRef};
use crate::trace::{tile_times, SuperstepTrace, Trace, TraceMode};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Per-tile times of a phase, `(flat tile, time)` by tile (empty unless [`TraceMode::Tiles`]).
type TileList = Vec<(usize, Duration)>;

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
        // The next superstep's compute time (and per-tile times), when its compute ran fused
        // with this exchange.
        let mut fused_compute = (Duration::ZERO, TileList::new());
        for (s, (step, plan)) in p.supersteps.iter().zip(&program.plans).enumerate() {
            let mut t = SuperstepTrace {
                exchange_bytes: plan.exchange_bytes,
                inter_chip_bytes: plan.inter_chip_bytes,
                vertices: plan.vertices,
                flops: plan.flops,
                fused: matches!(plan.exchange, ExchangePlan::Fused(_)),
                ..SuperstepTrace::default()
            };
            t.host_to_tile = timed(mode, !step.host_to_tile.is_empty(), || {
                self.host_to_tile(program, s, step, host)
            })?;
            let (compute, tile_compute) = if plan.compute_fused {
                std::mem::take(&mut fused_compute)
            } else {
                self.compute(s, step, plan, mode)?
            };
            t.compute = compute;
            let tile_exchange = match &plan.exchange {
                ExchangePlan::Fused(f) => {
                    let next = p
                        .supersteps
                        .get(s + 1)
                        .ok_or_else(|| copy_err(s, Site::Exchange(0)))?;
                    let times = self.fused(s, f, next, mode)?;
                    let (exchange, compute) = split_fused(mode, f, &times);
                    t.exchange = exchange;
                    fused_compute = (compute, times.computes);
                    times.deliveries
                }
                _ => {
                    let (exchange, tiles) = self.exchange(program, s, step, plan, mode)?;
                    t.exchange = exchange;
                    tiles
                }
            };
            t.tile_to_host = timed(mode, !step.tile_to_host.is_empty(), || {
                self.tile_to_host(program, s, step, host)
            })?;
            if mode.per_tile() {
                t.tiles = tile_times(&tile_compute, &tile_exchange);
            }
            if mode.records() {
                trace.supersteps.push(t);
            }
        }
        Ok(trace)
    }

    /// The compute phase of superstep `s`: its time when recording, and per tile with
    /// [`TraceMode::Tiles`].
    fn compute(
        &mut self,
        s: usize,
        step: &Superstep,
        plan: &StepPlan,
        mode: TraceMode,
    ) -> Result<(Duration, TileList), RunError> {
        if plan.compute.is_empty() {
            return Ok((Duration::ZERO, TileList::new()));
        }
        let start = mode.records().then(Instant::now);
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
            work.push((t, mem, tc));
        }
        let tiles = if mode.per_tile() {
            // Jobs of `compute_min_len` tiles, each timed by one clock read per tile (the
            // previous read is the next tile's start).
            let mut times: TileList = vec![(0, Duration::ZERO); work.len()];
            let min = plan.compute_min_len.max(1);
            work.par_chunks_mut(min)
                .zip(times.par_chunks_mut(min))
                .try_for_each(|(jobs, slots)| {
                    let mut last = Instant::now();
                    for ((t, mem, tc), slot) in jobs.iter_mut().zip(slots) {
                        run_set(s, mem, tc)?;
                        let now = Instant::now();
                        *slot = (*t, now - last);
                        last = now;
                    }
                    Ok::<(), RunError>(())
                })?;
            times
        } else {
            work.into_par_iter()
                .with_min_len(plan.compute_min_len)
                .try_for_each(|(_, mem, tc)| run_set(s, mem, tc))?;
            TileList::new()
        };
        Ok((start.map_or(Duration::ZERO, |t| t.elapsed()), tiles))
    }

    /// Exchange `s` fused with the compute of `next` (superstep `s + 1`): one parallel phase
    /// ([`FusedPlan::run`]), with what it measured.
    fn fused(
        &mut self,
        s: usize,
        f: &FusedPlan,
        next: &Superstep,
        mode: TraceMode,
    ) -> Result<FusedTimes, RunError> {
        let staging = self
            .staging
            .get_mut(..f.staging_bytes)
            .ok_or_else(|| copy_err(s, Site::Exchange(0)))?;
        f.run(&mut self.tiles, staging, mode, |mem, ci| {
            let tc = next
                .compute
                .get(ci)
                .ok_or_else(|| missing_set(s + 1, next, ci))?;
            run_set(s + 1, mem, tc)
        })
        .map_err(|e| match e {
            FusedError::Copy(i) => copy_err(s, Site::Exchange(i)),
            FusedError::Compute(e) => e,
        })
    }

    /// A direct or staged exchange phase: its time when recording, and per destination tile
    /// with [`TraceMode::Tiles`].
    fn exchange(
        &mut self,
        program: &LoadedProgram,
        s: usize,
        step: &Superstep,
        plan: &StepPlan,
        mode: TraceMode,
    ) -> Result<(Duration, TileList), RunError> {
        let start = mode.records().then(Instant::now);
        let per_tile = mode.per_tile();
        let done = match &plan.exchange {
            // A fused exchange runs in `fused`, with the next superstep's compute.
            ExchangePlan::Empty | ExchangePlan::Fused(_) => {
                return Ok((Duration::ZERO, TileList::new()))
            }
            ExchangePlan::Direct(d) => d.run(&mut self.tiles, per_tile),
            ExchangePlan::Staged(groups) => staged::run(
                &mut self.tiles,
                &mut self.staging,
                step,
                groups,
                |t| program.flat(t),
                per_tile,
            ),
        };
        let tiles = done.map_err(|i| RunError::Copy {
            superstep: s,
            site: Site::Exchange(i),
        })?;
        Ok((start.map_or(Duration::ZERO, |t| t.elapsed()), tiles))
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

/// Runs `f`, timing it only when recording and `work` (a phase with nothing to do is not
/// timed: it takes no time worth two clock reads).
fn timed(
    mode: TraceMode,
    work: bool,
    f: impl FnOnce() -> Result<(), RunError>,
) -> Result<Duration, RunError> {
    if mode.records() && work {
        let start = Instant::now();
        f().map(|()| start.elapsed())
    } else {
        f().map(|()| Duration::ZERO)
    }
}

/// The `(exchange, compute)` times of a fused phase (see [`SuperstepTrace::fused`]): the
/// gather pass is exchange; the task pass is split by the load's compute share with `On`, by
/// the tasks' measured delivery and compute times with `Tiles` (and then its compute part is
/// at least the slowest tile's compute, which it contains).
pub(crate) fn split_fused(
    mode: TraceMode,
    f: &FusedPlan,
    times: &FusedTimes,
) -> (Duration, Duration) {
    let share = if mode.per_tile() {
        let sum = |l: &TileList| l.iter().map(|x| x.1).sum::<Duration>().as_secs_f64();
        let (d, c) = (sum(&times.deliveries), sum(&times.computes));
        if d + c > 0.0 {
            c / (d + c)
        } else {
            0.0
        }
    } else {
        f.compute_share
    };
    let mut compute = times.tasks.mul_f64(share.clamp(0.0, 1.0));
    if mode.per_tile() {
        let slowest = times.computes.iter().map(|x| x.1).max().unwrap_or_default();
        compute = compute.max(slowest).min(times.tasks);
    }
    (times.gather + (times.tasks - compute), compute)
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
