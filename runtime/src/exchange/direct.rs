//! Direct exchange: every copy goes from its source tile straight into its destination tile in
//! one parallel pass, with no staging buffer.
//!
//! This is only correct when no copy reads bytes another copy of the same superstep writes
//! (then every copy sees the memory as the compute phase left it, whatever the order). The
//! load-time [`DirectPlan::build`] checks that and returns `None` otherwise (the executor then
//! stages that superstep, see [`super::staged`]).
//!
//! How the borrows are split safely: on every tile the superstep touches, the destination
//! ranges (adjacent copies' destinations merged into *runs*) are cut out of the tile's memory
//! as `&mut` pieces, and the gaps between them become shared `&[u8]` *parts*. Every source
//! range lies inside one gap (that is the check above), so at run time a copy reads
//! `parts[src_part][src_off..]` and writes `pieces[run][dst_off..]`. Pieces are disjoint, so
//! runs are copied in parallel; the result never depends on the number of threads.

use super::{min_len, JOB_UNITS};
use rayon::prelude::*;
use std::ops::Range;
use std::time::{Duration, Instant};

/// One copy of a direct plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DirectCopy {
    /// The shared part (gap) holding the source bytes.
    src_part: u32,
    /// First source byte within that part.
    src_off: u32,
    /// First destination byte within the copy's run.
    dst_off: u32,
    /// Bytes copied.
    len: u32,
    /// Index of the copy in the superstep's `exchange` list (for errors).
    index: u32,
}

/// Adjacent destination ranges on one tile, written by one parallel job.
#[derive(Debug, Clone)]
struct Run {
    /// Flat destination tile.
    tile: usize,
    /// First byte in the tile.
    start: usize,
    /// Bytes.
    len: usize,
    /// Its copies in [`DirectPlan::copies`].
    copies: Range<usize>,
}

/// A tile the superstep's exchange touches, with its runs (possibly none: a source only).
#[derive(Debug, Clone)]
struct Cut {
    /// Flat tile index.
    tile: usize,
    /// Its runs in [`DirectPlan::runs`], sorted by offset.
    runs: Range<usize>,
}

/// The precomputed direct exchange of one superstep.
#[derive(Debug, Clone)]
pub(crate) struct DirectPlan {
    /// Touched tiles in increasing flat index.
    cuts: Vec<Cut>,
    /// Destination runs, in tile then offset order.
    runs: Vec<Run>,
    /// Copies, grouped by run.
    copies: Vec<DirectCopy>,
    /// Shared parts: every cut has one more gap than runs.
    parts: usize,
    /// Runs per parallel job (0: the whole exchange runs on the calling thread).
    min_len: usize,
}

impl DirectPlan {
    /// The direct plan of a superstep's `copies` (see [`super::Copy`]; validated: inside
    /// their tiles of `bytes_per_tile` bytes, destinations disjoint), or `None` if a source
    /// range overlaps a destination range (or an index does not fit the plan's `u32` fields).
    pub(crate) fn build(bytes_per_tile: u32, copies: &[super::Copy]) -> Option<DirectPlan> {
        // (dst tile, dst offset, len, src tile, src offset, index), empty copies dropped.
        let mut list: Vec<(usize, usize, usize, usize, usize, u32)> = Vec::new();
        let mut bytes = 0u64;
        for &(src, src_off, dst, dst_off, len, index) in copies.iter().filter(|c| c.4 > 0) {
            list.push((dst, dst_off, len, src, src_off, u32::try_from(index).ok()?));
            bytes += len as u64;
        }
        list.sort_unstable();
        // Runs: destinations that continue the previous one on the same tile are merged.
        let mut runs: Vec<(usize, Run)> = Vec::new();
        for (at, &(tile, off, len, ..)) in list.iter().enumerate() {
            match runs.last_mut() {
                Some((t, r)) if *t == tile && r.start + r.len == off => {
                    r.len += len;
                    r.copies.end = at + 1;
                }
                _ => runs.push((
                    tile,
                    Run {
                        tile,
                        start: off,
                        len,
                        copies: at..at + 1,
                    },
                )),
            }
        }
        let mut tiles: Vec<usize> = list.iter().flat_map(|c| [c.0, c.3]).collect();
        tiles.sort_unstable();
        tiles.dedup();
        let mut cuts = Vec::with_capacity(tiles.len());
        // Per touched tile: its first shared part and its runs.
        let mut first_part = Vec::with_capacity(tiles.len());
        let (mut r, mut parts) = (0usize, 0usize);
        for &tile in &tiles {
            let start = r;
            while runs.get(r).is_some_and(|(t, _)| *t == tile) {
                r += 1;
            }
            cuts.push(Cut {
                tile,
                runs: start..r,
            });
            first_part.push(parts);
            parts += r - start + 1;
        }
        let runs_of = |cut: &Cut| runs.get(cut.runs.clone()).unwrap_or(&[]);
        let bytes_per_tile = bytes_per_tile as usize;
        let mut copies = Vec::with_capacity(list.len());
        for (_, run) in &runs {
            for &(_, off, len, src, src_off, index) in list.get(run.copies.clone())? {
                let c = tiles.binary_search(&src).ok()?;
                let tile_runs = runs_of(cuts.get(c)?);
                // The source must lie in the gap before the first run ending after its start.
                let g = tile_runs.partition_point(|(_, r)| r.start + r.len <= src_off);
                let gap_start = g
                    .checked_sub(1)
                    .and_then(|j| tile_runs.get(j))
                    .map_or(0, |(_, r)| r.start + r.len);
                let gap_end = tile_runs.get(g).map_or(bytes_per_tile, |(_, r)| r.start);
                if src_off + len > gap_end {
                    return None;
                }
                copies.push(DirectCopy {
                    src_part: u32::try_from(first_part.get(c)? + g).ok()?,
                    src_off: u32::try_from(src_off - gap_start).ok()?,
                    dst_off: u32::try_from(off - run.start).ok()?,
                    len: u32::try_from(len).ok()?,
                    index,
                });
            }
        }
        let runs: Vec<Run> = runs.into_iter().map(|(_, r)| r).collect();
        // Exchanges too small for two jobs run on the calling thread.
        let min_len = if bytes < 2 * JOB_UNITS {
            0
        } else {
            min_len(bytes, runs.len())
        };
        Some(DirectPlan {
            cuts,
            runs,
            copies,
            parts,
            min_len,
        })
    }

    /// Runs the copies on `tiles` (the machine's memories, indexed by flat tile); with
    /// `per_tile`, returns each destination run's time as `(flat tile, time)`, by tile (else
    /// nothing). On failure (only reachable with a plan built for another machine) returns
    /// the index of a copy that could not be made.
    pub(crate) fn run(
        &self,
        tiles: &mut [Box<[u8]>],
        per_tile: bool,
    ) -> Result<Vec<(usize, Duration)>, usize> {
        let mut shared: Vec<&[u8]> = Vec::with_capacity(self.parts);
        let mut pieces: Vec<&mut [u8]> = Vec::with_capacity(self.runs.len());
        let fail = || self.copies.first().map_or(0, |c| c.index as usize);
        let mut it = tiles.iter_mut();
        let mut next = 0usize;
        for cut in &self.cuts {
            let mem = it
                .nth(cut.tile.checked_sub(next).ok_or_else(fail)?)
                .ok_or_else(fail)?;
            next = cut.tile + 1;
            let mut rest: &mut [u8] = mem;
            let mut at = 0usize;
            for run in self.runs.get(cut.runs.clone()).ok_or_else(fail)? {
                let gap = run.start.checked_sub(at).ok_or_else(fail)?;
                let (before, tail) = rest.split_at_mut_checked(gap).ok_or_else(fail)?;
                let (piece, tail) = tail.split_at_mut_checked(run.len).ok_or_else(fail)?;
                shared.push(before);
                pieces.push(piece);
                rest = tail;
                at = run.start + run.len;
            }
            shared.push(rest);
        }
        let job = |(piece, run): (&mut &mut [u8], &Run)| -> Result<(), usize> {
            for c in self.copies.get(run.copies.clone()).ok_or_else(fail)? {
                let err = || c.index as usize;
                let (s, d, len) = (c.src_off as usize, c.dst_off as usize, c.len as usize);
                let src = shared
                    .get(c.src_part as usize)
                    .and_then(|part| part.get(s..s + len))
                    .ok_or_else(err)?;
                piece
                    .get_mut(d..d + len)
                    .ok_or_else(err)?
                    .copy_from_slice(src);
            }
            Ok(())
        };
        let timed = |(piece, run): (&mut &mut [u8], &Run)| {
            let start = Instant::now();
            job((piece, run)).map(|()| (run.tile, start.elapsed()))
        };
        match (per_tile, self.min_len) {
            (false, 0) => pieces
                .iter_mut()
                .zip(&self.runs)
                .try_for_each(job)
                .map(|()| Vec::new()),
            (false, _) => pieces
                .par_iter_mut()
                .zip(self.runs.par_iter())
                .with_min_len(self.min_len)
                .try_for_each(job)
                .map(|()| Vec::new()),
            (true, 0) => pieces.iter_mut().zip(&self.runs).map(timed).collect(),
            (true, _) => pieces
                .par_iter_mut()
                .zip(self.runs.par_iter())
                .with_min_len(self.min_len)
                .map(timed)
                .collect(),
        }
    }
}
