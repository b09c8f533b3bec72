//! Exchange fused with the next superstep's compute phase, for supersteps whose copies
//! replicate a few source bytes to many tiles (a matmul's operand blocks).
//!
//! Two parallel passes: *gather* copies every distinct source range once into the staging
//! buffer (the snapshot the exchange semantics ask for: the memory as the compute phase left
//! it); then one *task per tile* delivers that tile's copies from staging into its memory and
//! immediately runs the tile's vertices of the next superstep, while the bytes just delivered
//! are still in the core's cache. A task holds `&mut` to its own tile only and reads the
//! shared staging buffer, so tiles still touch only their own memory and bytes still reach a
//! tile only through its exchange.
//!
//! The order of effects is that of the unfused program: a tile's vertices of the next
//! superstep run after all its deliveries, and no source can be changed by them because the
//! sources were snapshotted first. The load decides to fuse only when nothing happens between
//! the two phases (no tile → host copies after this exchange, no host → tile copies before
//! the next compute). Tasks touch disjoint tiles, so the result never depends on threads.

use crate::trace::TraceMode;
use rayon::prelude::*;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::{min_len, DELIVERY_UNITS_PER_BYTE, JOB_UNITS};

/// A distinct source range, copied once into staging (at the running sum of the lengths).
#[derive(Debug, Clone, Copy)]
struct Source {
    /// Flat source tile.
    tile: usize,
    /// First byte.
    start: usize,
    /// Bytes.
    len: usize,
}

/// One delivery from staging into a task's tile (adjacent copies merged).
#[derive(Debug, Clone, Copy)]
struct Delivery {
    /// First staging byte.
    from: usize,
    /// First destination byte in the tile.
    to: u32,
    /// Bytes.
    len: u32,
    /// Index in the superstep's `exchange` list of the (first) copy (for errors).
    index: u32,
}

/// One tile's part of the fused phase.
#[derive(Debug, Clone)]
struct Task {
    /// Flat tile.
    tile: usize,
    /// Its deliveries in [`FusedPlan::copies`].
    copies: Range<usize>,
    /// Index into the next superstep's `compute` list, if the tile runs vertices there.
    compute: Option<usize>,
}

/// Why a fused phase stopped.
#[derive(Debug)]
pub(crate) enum FusedError<E> {
    /// An exchange copy (index in the superstep's list) could not be made.
    Copy(usize),
    /// A tile's compute failed.
    Compute(E),
}

/// The precomputed fusion of one superstep's exchange with the next one's compute.
#[derive(Debug, Clone)]
pub(crate) struct FusedPlan {
    sources: Vec<Source>,
    /// Sources per parallel gather job (0: gather on the calling thread).
    gather_min_len: usize,
    /// Staging bytes needed (sum of the sources' lengths).
    pub(crate) staging_bytes: usize,
    tasks: Vec<Task>,
    /// Tasks per parallel job.
    task_min_len: usize,
    copies: Vec<Delivery>,
    /// Bytes the copies move.
    pub(crate) bytes: u64,
    /// The share of the task pass's time attributed to compute when only the whole phase is
    /// timed ([`TraceMode::On`]): the next compute's work over that work plus the deliveries'
    /// ([`DELIVERY_UNITS_PER_BYTE`] per byte).
    pub(crate) compute_share: f64,
}

impl FusedPlan {
    /// The fused plan of a superstep's (validated) `copies` (see [`super::Copy`]) followed by
    /// the compute sets `next` (`(flat tile, index into the next superstep's compute)`, sorted
    /// by tile without repeats), or `None` if an index does not fit the plan's `u32` fields.
    pub(crate) fn build(copies: &[super::Copy], next: &[(usize, usize)]) -> Option<FusedPlan> {
        // Distinct sources: overlapping or touching ranges on one tile are merged.
        let mut ranges: Vec<(usize, usize, usize)> = copies
            .iter()
            .filter(|c| c.4 > 0)
            .map(|c| (c.0, c.1, c.1 + c.4))
            .collect();
        ranges.sort_unstable();
        let mut sources: Vec<Source> = Vec::new();
        let mut staged: Vec<usize> = Vec::new();
        let mut staging_bytes = 0usize;
        for (tile, start, end) in ranges {
            match sources.last_mut() {
                Some(s) if s.tile == tile && start <= s.start + s.len => {
                    let grown = end.max(s.start + s.len) - s.start;
                    staging_bytes += grown - s.len;
                    s.len = grown;
                }
                _ => {
                    staged.push(staging_bytes);
                    sources.push(Source {
                        tile,
                        start,
                        len: end - start,
                    });
                    staging_bytes += end - start;
                }
            }
        }
        // Deliveries sorted by destination; each source range lies in one merged source.
        let mut list: Vec<(usize, usize, usize, usize, usize)> = Vec::with_capacity(copies.len());
        let mut bytes = 0u64;
        for &(src, src_off, dst, dst_off, len, index) in copies.iter().filter(|c| c.4 > 0) {
            let at = sources.partition_point(|s| (s.tile, s.start) <= (src, src_off));
            let j = at.checked_sub(1)?;
            let from = staged.get(j)? + (src_off - sources.get(j)?.start);
            list.push((dst, dst_off, len, from, index));
            bytes += len as u64;
        }
        list.sort_unstable();
        let mut tasks: Vec<Task> = Vec::new();
        let mut deliveries: Vec<Delivery> = Vec::with_capacity(list.len());
        let mut next_sets = next.iter().peekable();
        let mut push_task = |tasks: &mut Vec<Task>, tile: usize, copies: Range<usize>| {
            // Compute-only tiles before this one get their own tasks.
            while let Some(&&(t, ci)) = next_sets.peek() {
                if t > tile {
                    break;
                }
                next_sets.next();
                if t < tile {
                    tasks.push(Task {
                        tile: t,
                        copies: copies.start..copies.start,
                        compute: Some(ci),
                    });
                } else {
                    tasks.push(Task {
                        tile,
                        copies: copies.clone(),
                        compute: Some(ci),
                    });
                    return;
                }
            }
            tasks.push(Task {
                tile,
                copies,
                compute: None,
            });
        };
        let mut i = 0usize;
        while let Some(&(tile, ..)) = list.get(i) {
            let first = deliveries.len();
            while let Some(&(t, to, len, from, index)) = list.get(i) {
                if t != tile {
                    break;
                }
                let (to32, len32) = (u32::try_from(to).ok()?, u32::try_from(len).ok()?);
                let fresh = deliveries.len() == first;
                match deliveries.last_mut().filter(|_| !fresh) {
                    Some(d)
                        if d.from + d.len as usize == from
                            && d.to as usize + d.len as usize == to =>
                    {
                        d.len = d.len.checked_add(len32)?;
                    }
                    _ => deliveries.push(Delivery {
                        from,
                        to: to32,
                        len: len32,
                        index: u32::try_from(index).ok()?,
                    }),
                }
                i += 1;
            }
            push_task(&mut tasks, tile, first..deliveries.len());
        }
        let end = deliveries.len();
        for &(t, ci) in next_sets {
            tasks.push(Task {
                tile: t,
                copies: end..end,
                compute: Some(ci),
            });
        }
        let gather_min_len = if (staging_bytes as u64) < 2 * JOB_UNITS {
            0
        } else {
            min_len(staging_bytes as u64, sources.len())
        };
        Some(FusedPlan {
            sources,
            gather_min_len,
            staging_bytes,
            tasks,
            task_min_len: 1,
            copies: deliveries,
            bytes,
            compute_share: 0.0,
        })
    }

    /// Sets the tasks' grain from the work of the next compute phase (see
    /// [`super::min_len`]; the deliveries count one unit per byte) and the compute share of
    /// the task pass's time ([`FusedPlan::compute_share`]).
    pub(crate) fn with_compute_work(mut self, work: u64) -> Self {
        self.task_min_len = super::min_len(work + self.bytes, self.tasks.len());
        let delivery = self.bytes as f64 * DELIVERY_UNITS_PER_BYTE;
        let total = work as f64 + delivery;
        self.compute_share = if total > 0.0 {
            work as f64 / total
        } else {
            0.0
        };
        self
    }

    /// Bytes of distinct sources (what the gather pass copies).
    pub(crate) fn distinct_bytes(&self) -> usize {
        self.staging_bytes
    }

    /// Runs the fused phase on `tiles` (flat-indexed memories) with `staging` (at least
    /// [`FusedPlan::staging_bytes`] long): gather, then per tile its deliveries and
    /// `compute(memory, compute index)`. With `mode` recording, returns the wall time of the
    /// gather and of the task pass; with [`TraceMode::Tiles`] also every task's delivery and
    /// compute time.
    pub(crate) fn run<E: Send>(
        &self,
        tiles: &mut [Box<[u8]>],
        staging: &mut [u8],
        mode: TraceMode,
        compute: impl Fn(&mut [u8], usize) -> Result<(), E> + Sync,
    ) -> Result<FusedTimes, FusedError<E>> {
        let fail = || FusedError::Copy(self.copies.first().map_or(0, |c| c.index as usize));
        let start = mode.records().then(Instant::now);
        // Gather.
        let mut chunks: Vec<&mut [u8]> = Vec::with_capacity(self.sources.len());
        let mut rest = &mut *staging;
        for s in &self.sources {
            let (head, tail) = rest.split_at_mut_checked(s.len).ok_or_else(fail)?;
            chunks.push(head);
            rest = tail;
        }
        let shared = &*tiles;
        let gather = |(chunk, s): (&mut &mut [u8], &Source)| {
            let src = shared
                .get(s.tile)
                .and_then(|m| m.get(s.start..s.start + s.len))
                .ok_or_else(fail)?;
            chunk.copy_from_slice(src);
            Ok(())
        };
        if self.gather_min_len == 0 {
            chunks.iter_mut().zip(&self.sources).try_for_each(gather)?;
        } else {
            chunks
                .par_iter_mut()
                .zip(self.sources.par_iter())
                .with_min_len(self.gather_min_len)
                .try_for_each(gather)?;
        }
        let gathered = start.map(|_| Instant::now());
        // Deliver and compute, one task per tile.
        let staging = &*staging;
        let mut work: Vec<(&mut [u8], &Task)> = Vec::with_capacity(self.tasks.len());
        let (mut it, mut next) = (tiles.iter_mut(), 0usize);
        for task in &self.tasks {
            let mem = task
                .tile
                .checked_sub(next)
                .and_then(|skip| it.nth(skip))
                .ok_or_else(fail)?;
            next = task.tile + 1;
            work.push((mem, task));
        }
        let deliver = |mem: &mut [u8], task: &Task| -> Result<(), FusedError<E>> {
            for d in self.copies.get(task.copies.clone()).ok_or_else(fail)? {
                let (from, to, len) = (d.from, d.to as usize, d.len as usize);
                let err = || FusedError::Copy(d.index as usize);
                let src = staging.get(from..from + len).ok_or_else(err)?;
                mem.get_mut(to..to + len)
                    .ok_or_else(err)?
                    .copy_from_slice(src);
            }
            Ok(())
        };
        let run_task = |mem: &mut [u8], task: &Task| -> Result<(), FusedError<E>> {
            deliver(mem, task)?;
            match task.compute {
                Some(ci) => compute(mem, ci).map_err(FusedError::Compute),
                None => Ok(()),
            }
        };
        let mut times = FusedTimes::default();
        if mode.per_tile() {
            // Jobs of `task_min_len` tasks; two clock reads per task (the previous task's
            // last read is the next one's start).
            let mut per_task = vec![(Duration::ZERO, Duration::ZERO); work.len()];
            let min = self.task_min_len.max(1);
            work.par_chunks_mut(min)
                .zip(per_task.par_chunks_mut(min))
                .try_for_each(|(jobs, slots)| {
                    let mut last = Instant::now();
                    for ((mem, task), slot) in jobs.iter_mut().zip(slots) {
                        deliver(mem, task)?;
                        let delivered = Instant::now();
                        if let Some(ci) = task.compute {
                            compute(mem, ci).map_err(FusedError::Compute)?;
                        }
                        let done = Instant::now();
                        *slot = (delivered - last, done - delivered);
                        last = done;
                    }
                    Ok(())
                })?;
            for (task, (d, c)) in self.tasks.iter().zip(per_task) {
                if !task.copies.is_empty() {
                    times.deliveries.push((task.tile, d));
                }
                if task.compute.is_some() {
                    times.computes.push((task.tile, c));
                }
            }
        } else {
            work.into_par_iter()
                .with_min_len(self.task_min_len)
                .try_for_each(|(mem, task)| run_task(mem, task))?;
        }
        if let (Some(start), Some(gathered)) = (start, gathered) {
            times.gather = gathered - start;
            times.tasks = gathered.elapsed();
        }
        Ok(times)
    }
}

/// What a fused phase measured (all zero / empty when not recording).
#[derive(Debug, Default)]
pub(crate) struct FusedTimes {
    /// Wall time of the gather pass (staging the distinct sources).
    pub gather: Duration,
    /// Wall time of the task pass (deliveries and compute).
    pub tasks: Duration,
    /// Per tile with deliveries: `(flat tile, delivery time)`, by tile ([`TraceMode::Tiles`]).
    pub deliveries: Vec<(usize, Duration)>,
    /// Per tile with vertices: `(flat tile, compute time)`, by tile ([`TraceMode::Tiles`]).
    pub computes: Vec<(usize, Duration)>,
}
