//! Exchange fused with the next superstep's compute phase, for supersteps whose copies
//! replicate a few source bytes to many tiles (a matmul's operand blocks).
//!
//! One *task per tile* delivers that tile's copies into its memory and immediately runs the
//! tile's vertices of the next superstep, while the bytes just delivered are still in the
//! core's cache. The exchange semantics ask that every copy read the memory as the compute
//! phase left it, so the tasks run in two parallel *waves*:
//!
//! 1. the *direct* wave: the tasks of tiles that hold no source of the exchange. A task holds
//!    `&mut` to its own tile and reads its sources straight from the source tiles, which no
//!    task of this wave writes (they are borrowed shared for the wave: a split borrow, as in
//!    [`super::direct`]);
//! 2. the *staged* wave: the tasks of the source tiles themselves, whose compute may overwrite
//!    their sources. Their deliveries read a snapshot: before the waves, a *gather* pass copies
//!    the distinct source ranges these deliveries need once into the staging buffer.
//!
//! Most of a matmul's bytes are weight and operand blocks replicated onto tiles that hold no
//! source, so most deliveries take the direct wave and are copied once, not twice. A phase
//! whose direct wave would deliver little ([`DIRECT_WAVE_BYTES`]) stages every task instead,
//! in one pass.
//!
//! The order of effects is that of the unfused program: a tile's vertices of the next
//! superstep run after all its deliveries; the direct wave reads sources that nothing has
//! changed yet (it writes other tiles only), and the staged wave reads the snapshot. The load
//! decides to fuse only when nothing happens between the two phases (no tile → host copies
//! after this exchange, no host → tile copies before the next compute). Every tile belongs to
//! one task, so the result never depends on threads.

use crate::trace::TraceMode;
use rayon::prelude::*;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::{min_len, DELIVERY_UNITS_PER_BYTE, JOB_UNITS};

/// The fewest bytes the direct wave must deliver to run as a wave of its own (below, its tasks
/// join the staged wave). The second pass's fork and join cost more than staging 160 KB here
/// (lxmert-tiny's largest fused phases ran 5 % slower split), while lxmert-base's matmul
/// phases deliver 10–45 MB each. Either way the result is the same; the unit tests split every
/// phase with a direct delivery, so that their small random programs run both waves.
const DIRECT_WAVE_BYTES: u64 = if cfg!(test) { 1 } else { 1 << 20 };

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

/// One delivery into a task's tile (adjacent copies merged).
#[derive(Debug, Clone, Copy)]
struct Delivery {
    /// The direct wave: index of the source tile in [`FusedPlan::source_tiles`] (unused by the
    /// staged wave, which reads staging).
    part: u32,
    /// First source byte: in the source tile (direct wave) or in staging (staged wave).
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
    /// Its deliveries in its wave's [`Wave::copies`].
    copies: Range<usize>,
    /// Index into the next superstep's `compute` list, if the tile runs vertices there.
    compute: Option<usize>,
}

/// The tasks of one wave, by tile, and their deliveries.
#[derive(Debug, Clone, Default)]
struct Wave {
    tasks: Vec<Task>,
    copies: Vec<Delivery>,
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
    /// Flat tiles holding a source of any copy, increasing.
    source_tiles: Vec<usize>,
    /// The staged wave's distinct sources.
    sources: Vec<Source>,
    /// Sources per parallel gather job (0: gather on the calling thread).
    gather_min_len: usize,
    /// Staging bytes needed (sum of the staged wave's sources' lengths).
    pub(crate) staging_bytes: usize,
    direct: Wave,
    staged: Wave,
    /// Tasks per parallel job.
    task_min_len: usize,
    /// Bytes the copies move.
    pub(crate) bytes: u64,
    /// The share of the task pass's time attributed to compute when only the whole phase is
    /// timed ([`TraceMode::On`]): the next compute's work over that work plus the deliveries'
    /// ([`DELIVERY_UNITS_PER_BYTE`] per byte).
    pub(crate) compute_share: f64,
}

/// `ranges` (`(tile, start, end)`) merged where they overlap or touch on one tile, with each
/// merged source's staging offset (the running sum of the lengths before it).
fn merge(mut ranges: Vec<(usize, usize, usize)>) -> (Vec<Source>, Vec<usize>, usize) {
    ranges.sort_unstable();
    let mut sources: Vec<Source> = Vec::new();
    let mut staged: Vec<usize> = Vec::new();
    let mut total = 0usize;
    for (tile, start, end) in ranges {
        match sources.last_mut() {
            Some(s) if s.tile == tile && start <= s.start + s.len => {
                let grown = end.max(s.start + s.len) - s.start;
                total += grown - s.len;
                s.len = grown;
            }
            _ => {
                staged.push(total);
                sources.push(Source {
                    tile,
                    start,
                    len: end - start,
                });
                total += end - start;
            }
        }
    }
    (sources, staged, total)
}

impl FusedPlan {
    /// The fused plan of a superstep's (validated) `copies` (see [`super::Copy`]) followed by
    /// the compute sets `next` (`(flat tile, index into the next superstep's compute)`, sorted
    /// by tile without repeats), or `None` if an index does not fit the plan's `u32` fields.
    pub(crate) fn build(copies: &[super::Copy], next: &[(usize, usize)]) -> Option<FusedPlan> {
        let live: Vec<&super::Copy> = copies.iter().filter(|c| c.4 > 0).collect();
        let range = |c: &&super::Copy| (c.0, c.1, c.1 + c.4);
        let mut source_tiles: Vec<usize> = live.iter().map(|c| c.0).collect();
        source_tiles.sort_unstable();
        source_tiles.dedup();
        let holds_source = |t: usize| source_tiles.binary_search(&t).is_ok();
        // A direct wave is a second parallel pass: worth it only when it spares staging a
        // good many bytes (else every task is staged, as one pass).
        let direct_bytes: u64 = live
            .iter()
            .filter(|c| !holds_source(c.2))
            .map(|c| c.4 as u64)
            .sum();
        let split = direct_bytes >= DIRECT_WAVE_BYTES;
        let staged_tile = |t: usize| !split || holds_source(t);
        // The staged wave's sources: those its deliveries (into source tiles) read.
        let (sources, staged_at, staging_bytes) = merge(
            live.iter()
                .filter(|c| staged_tile(c.2))
                .map(range)
                .collect(),
        );
        // Deliveries sorted by destination: (dst, dst offset, len, part, from, index).
        let mut list: Vec<(usize, usize, usize, u32, usize, usize)> =
            Vec::with_capacity(live.len());
        let mut bytes = 0u64;
        for &&(src, src_off, dst, dst_off, len, index) in &live {
            let (part, from) = if staged_tile(dst) {
                let at = sources.partition_point(|s| (s.tile, s.start) <= (src, src_off));
                let j = at.checked_sub(1)?;
                (
                    u32::MAX,
                    staged_at.get(j)? + (src_off - sources.get(j)?.start),
                )
            } else {
                let part = source_tiles.binary_search(&src).ok()?;
                (u32::try_from(part).ok()?, src_off)
            };
            list.push((dst, dst_off, len, part, from, index));
            bytes += len as u64;
        }
        list.sort_unstable();
        // Every tile with deliveries or vertices gets one task, in the wave its sources decide.
        let (mut direct, mut staged) = (Wave::default(), Wave::default());
        let (mut i, mut n) = (0usize, 0usize);
        loop {
            let tile = match (list.get(i).map(|c| c.0), next.get(n).map(|c| c.0)) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            let wave = if staged_tile(tile) {
                &mut staged
            } else {
                &mut direct
            };
            let first = wave.copies.len();
            while let Some(&(t, to, len, part, from, index)) = list.get(i) {
                if t != tile {
                    break;
                }
                let (to32, len32) = (u32::try_from(to).ok()?, u32::try_from(len).ok()?);
                let fresh = wave.copies.len() == first;
                match wave.copies.last_mut().filter(|_| !fresh) {
                    Some(d)
                        if d.part == part
                            && d.from + d.len as usize == from
                            && d.to as usize + d.len as usize == to =>
                    {
                        d.len = d.len.checked_add(len32)?;
                    }
                    _ => wave.copies.push(Delivery {
                        part,
                        from,
                        to: to32,
                        len: len32,
                        index: u32::try_from(index).ok()?,
                    }),
                }
                i += 1;
            }
            let compute = match next.get(n) {
                Some(&(t, ci)) if t == tile => {
                    n += 1;
                    Some(ci)
                }
                _ => None,
            };
            wave.tasks.push(Task {
                tile,
                copies: first..wave.copies.len(),
                compute,
            });
        }
        let gather_min_len = if (staging_bytes as u64) < 2 * JOB_UNITS {
            0
        } else {
            min_len(staging_bytes as u64, sources.len())
        };
        Some(FusedPlan {
            source_tiles,
            sources,
            gather_min_len,
            staging_bytes,
            direct,
            staged,
            task_min_len: 1,
            bytes,
            compute_share: 0.0,
        })
    }

    /// Sets the tasks' grain from the work of the next compute phase (see
    /// [`super::min_len`]; the deliveries count one unit per byte) and the compute share of
    /// the task pass's time ([`FusedPlan::compute_share`]).
    pub(crate) fn with_compute_work(mut self, work: u64) -> Self {
        let tasks = self.direct.tasks.len() + self.staged.tasks.len();
        self.task_min_len = super::min_len(work + self.bytes, tasks);
        let delivery = self.bytes as f64 * DELIVERY_UNITS_PER_BYTE;
        let total = work as f64 + delivery;
        self.compute_share = if total > 0.0 {
            work as f64 / total
        } else {
            0.0
        };
        self
    }

    /// Tasks in the `(direct, staged)` waves.
    #[cfg(test)]
    pub(crate) fn waves(&self) -> (usize, usize) {
        (self.direct.tasks.len(), self.staged.tasks.len())
    }

    /// Runs the fused phase on `tiles` (flat-indexed memories) with `staging` (at least
    /// [`FusedPlan::staging_bytes`] long): gather, then the direct and the staged wave, each
    /// task its tile's deliveries and `compute(memory, compute index)`. With `mode`
    /// recording, returns the wall time of the gather and of the waves; with
    /// [`TraceMode::Tiles`] also every task's delivery and compute time.
    pub(crate) fn run<E: Send>(
        &self,
        tiles: &mut [Box<[u8]>],
        staging: &mut [u8],
        mode: TraceMode,
        compute: impl Fn(&mut [u8], usize) -> Result<(), E> + Sync,
    ) -> Result<FusedTimes, FusedError<E>> {
        let first = self.direct.copies.first().or(self.staged.copies.first());
        let fail = || FusedError::Copy(first.map_or(0, |c| c.index as usize));
        let start = mode.records().then(Instant::now);
        // Gather the staged wave's sources.
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
        let mut times = FusedTimes::default();
        // The direct wave: its tiles borrowed `&mut`, the source tiles shared.
        if !self.direct.tasks.is_empty() {
            let (work, parts) =
                split_tiles(tiles, &self.direct.tasks, &self.source_tiles).ok_or_else(fail)?;
            let parts = &parts;
            let copies = &self.direct.copies;
            self.wave(work, copies, mode, &mut times, &compute, |mem, d| {
                let (from, to, len) = (d.from, d.to as usize, d.len as usize);
                let src = parts
                    .get(d.part as usize)
                    .and_then(|p| p.get(from..from + len))?;
                mem.get_mut(to..to + len)?.copy_from_slice(src);
                Some(())
            })?;
        }
        // The staged wave, from the snapshot.
        if !self.staged.tasks.is_empty() {
            let staging = &*staging;
            let (work, _) = split_tiles(tiles, &self.staged.tasks, &[]).ok_or_else(fail)?;
            let copies = &self.staged.copies;
            self.wave(work, copies, mode, &mut times, &compute, |mem, d| {
                let (from, to, len) = (d.from, d.to as usize, d.len as usize);
                let src = staging.get(from..from + len)?;
                mem.get_mut(to..to + len)?.copy_from_slice(src);
                Some(())
            })?;
        }
        if let (Some(start), Some(gathered)) = (start, gathered) {
            times.gather = gathered - start;
            times.tasks = gathered.elapsed();
        }
        if mode.per_tile() {
            times.deliveries.sort_unstable_by_key(|x| x.0);
            times.computes.sort_unstable_by_key(|x| x.0);
        }
        Ok(times)
    }

    /// Runs one wave's tasks in parallel: each its `copies` (by `deliver`, `None` for a copy
    /// out of range), then its compute; with [`TraceMode::Tiles`], adds every task's delivery
    /// and compute time to `times`.
    fn wave<E: Send>(
        &self,
        mut work: Vec<Job>,
        copies: &[Delivery],
        mode: TraceMode,
        times: &mut FusedTimes,
        compute: &(impl Fn(&mut [u8], usize) -> Result<(), E> + Sync),
        deliver: impl Fn(&mut [u8], &Delivery) -> Option<()> + Sync,
    ) -> Result<(), FusedError<E>> {
        let deliver_all = |mem: &mut [u8], task: &Task| -> Result<(), FusedError<E>> {
            let mine = copies.get(task.copies.clone()).ok_or(FusedError::Copy(0))?;
            for d in mine {
                deliver(mem, d).ok_or(FusedError::Copy(d.index as usize))?;
            }
            Ok(())
        };
        if !mode.per_tile() {
            return work
                .into_par_iter()
                .with_min_len(self.task_min_len)
                .try_for_each(|(mem, task)| {
                    deliver_all(mem, task)?;
                    match task.compute {
                        Some(ci) => compute(mem, ci).map_err(FusedError::Compute),
                        None => Ok(()),
                    }
                });
        }
        // Jobs of `task_min_len` tasks; two clock reads per task (the previous task's last
        // read is the next one's start).
        let mut per_task = vec![(Duration::ZERO, Duration::ZERO); work.len()];
        let min = self.task_min_len.max(1);
        work.par_chunks_mut(min)
            .zip(per_task.par_chunks_mut(min))
            .try_for_each(|(jobs, slots)| {
                let mut last = Instant::now();
                for ((mem, task), slot) in jobs.iter_mut().zip(slots) {
                    deliver_all(mem, task)?;
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
        for ((_, task), (d, c)) in work.iter().zip(per_task) {
            if !task.copies.is_empty() {
                times.deliveries.push((task.tile, d));
            }
            if task.compute.is_some() {
                times.computes.push((task.tile, c));
            }
        }
        Ok(())
    }
}

/// A task with its tile's memory.
type Job<'m, 't> = (&'m mut [u8], &'t Task);

/// `tiles` borrowed for a wave: each task's tile `&mut` (in task order) and each of the
/// `shared` tiles `&` (both by increasing tile and disjoint), or `None` if a tile is missing.
fn split_tiles<'m, 't>(
    tiles: &'m mut [Box<[u8]>],
    tasks: &'t [Task],
    shared: &[usize],
) -> Option<(Vec<Job<'m, 't>>, Vec<&'m [u8]>)> {
    let mut work: Vec<Job> = Vec::with_capacity(tasks.len());
    let mut parts: Vec<&[u8]> = Vec::with_capacity(shared.len());
    let (mut it, mut at) = (tiles.iter_mut(), 0usize);
    let (mut s, mut t) = (shared.iter().peekable(), tasks.iter().peekable());
    loop {
        let (tile, task) = match (s.peek(), t.peek()) {
            (Some(&&st), Some(x)) if st < x.tile => (st, None),
            (Some(&&st), None) => (st, None),
            (_, Some(&x)) => (x.tile, Some(x)),
            (None, None) => break,
        };
        let mem = it.nth(tile.checked_sub(at)?)?;
        at = tile + 1;
        match task {
            Some(x) => {
                work.push((mem, x));
                t.next();
            }
            None => {
                parts.push(mem);
                s.next();
            }
        }
    }
    Some((work, parts))
}

/// What a fused phase measured (all zero / empty when not recording).
#[derive(Debug, Default)]
pub(crate) struct FusedTimes {
    /// Wall time of the gather pass (staging the staged wave's sources).
    pub gather: Duration,
    /// Wall time of the two waves (deliveries and compute).
    pub tasks: Duration,
    /// Per tile with deliveries: `(flat tile, delivery time)`, by tile ([`TraceMode::Tiles`]).
    pub deliveries: Vec<(usize, Duration)>,
    /// Per tile with vertices: `(flat tile, compute time)`, by tile ([`TraceMode::Tiles`]).
    pub computes: Vec<(usize, Duration)>,
}
