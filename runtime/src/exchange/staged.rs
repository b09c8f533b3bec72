//! Staged exchange, for supersteps where some copy reads bytes another copy writes: two
//! parallel passes through a staging buffer (gather: every destination group's slice is filled
//! from the shared source tiles; scatter: each destination tile copies its slice in), so every
//! copy still sees the memory as the compute phase left it.

use crate::program::{Superstep, TileRef};
use rayon::prelude::*;
use std::ops::Range;
use std::time::{Duration, Instant};

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

/// Groups `step`'s non-empty copies (destination tiles given by `dst`, one per copy) by
/// destination tile, each group with its own slice of the staging buffer.
pub(crate) fn groups(step: &Superstep, dst: impl Fn(TileRef) -> usize) -> Vec<DstGroup> {
    let mut by_dst: Vec<(usize, usize)> = step
        .exchange
        .iter()
        .enumerate()
        .filter(|(_, x)| x.src.region.len > 0)
        .map(|(i, x)| (dst(x.dst_tile), i))
        .collect();
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
    groups
}

/// Runs `groups` (of `step`) on `tiles` through `staging` (at least as long as the last
/// group's end); with `per_tile`, returns each destination tile's gather plus scatter time as
/// `(flat tile, time)`, by tile (else nothing). On failure (only reachable with a plan built
/// for another machine) returns the index of a copy that could not be made.
pub(crate) fn run(
    tiles: &mut [Box<[u8]>],
    staging: &mut [u8],
    step: &Superstep,
    groups: &[DstGroup],
    flat: impl Fn(TileRef) -> usize + Sync,
    per_tile: bool,
) -> Result<Vec<(usize, Duration)>, usize> {
    // Gather: every group's staging slice is filled from (shared) source tiles.
    let mut chunks: Vec<(&DstGroup, &mut [u8])> = Vec::with_capacity(groups.len());
    let mut rest = &mut *staging;
    for g in groups {
        let (head, tail) = rest.split_at_mut(g.staging.len().min(rest.len()));
        chunks.push((g, head));
        rest = tail;
    }
    let shared = &*tiles;
    let gather = |(g, chunk): (&DstGroup, &mut [u8])| -> Result<(), usize> {
        let mut at = 0usize;
        for &i in &g.copies {
            let x = step.exchange.get(i).ok_or(i)?;
            let (o, len) = (x.src.region.offset as usize, x.src.region.len as usize);
            let src = shared
                .get(flat(x.src.tile))
                .and_then(|m| m.get(o..o + len))
                .ok_or(i)?;
            chunk.get_mut(at..at + len).ok_or(i)?.copy_from_slice(src);
            at += len;
        }
        Ok(())
    };
    let mut times: Vec<(usize, Duration)> = if per_tile {
        chunks
            .into_par_iter()
            .map(|(g, chunk)| timed(g.dst, || gather((g, chunk))))
            .collect::<Result<_, _>>()?
    } else {
        chunks.into_par_iter().try_for_each(gather)?;
        Vec::new()
    };
    // Scatter: each destination tile copies its staging slice in.
    let mut work = Vec::with_capacity(groups.len());
    let mut wanted = groups.iter().peekable();
    for (i, mem) in tiles.iter_mut().enumerate() {
        if let Some(g) = wanted.next_if(|g| g.dst == i) {
            work.push((mem, g));
        }
    }
    let staging = &*staging;
    let scatter = |(mem, g): (&mut Box<[u8]>, &DstGroup)| -> Result<(), usize> {
        let mut at = g.staging.start;
        for &i in &g.copies {
            let x = step.exchange.get(i).ok_or(i)?;
            let (o, len) = (x.dst_offset as usize, x.src.region.len as usize);
            let src = staging.get(at..at + len).ok_or(i)?;
            mem.get_mut(o..o + len).ok_or(i)?.copy_from_slice(src);
            at += len;
        }
        Ok(())
    };
    if per_tile {
        let scattered: Vec<(usize, Duration)> = work
            .into_par_iter()
            .map(|(mem, g)| timed(g.dst, || scatter((mem, g))))
            .collect::<Result<_, _>>()?;
        times.extend(scattered);
        times.sort_by_key(|t| t.0);
    } else {
        work.into_par_iter().try_for_each(scatter)?;
    }
    Ok(times)
}

/// Runs `f`, returning `(tile, its wall time)`.
fn timed(tile: usize, f: impl FnOnce() -> Result<(), usize>) -> Result<(usize, Duration), usize> {
    let start = Instant::now();
    f().map(|()| (tile, start.elapsed()))
}
