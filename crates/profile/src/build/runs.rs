//! Measured segment runs of a pipelined step (`PipelineSession::step` with tracing on) mapped
//! onto the profile: each run's wall time onto its [`crate::model::SegmentRun`], each traced
//! superstep onto the superstep of `step` it is a copy of (a stash slot other than 0 onto
//! slot 0's superstep), for per-superstep means (per-tile times too, when recorded), and the
//! whole step's sums.

use super::tiles::{Folder, TileMean};
use crate::error::{ProfileError, Result};
use crate::model::{Measured, MeasuredStep, PipelineInfo};
use std::collections::HashMap;
use std::time::Duration;
use tessera_passes::lower::program::pipeline::{MicroBatchRun, PipelineProgram, StashCopies};
use tessera_runtime::SuperstepTrace;

/// What the runs add to a profile.
pub(crate) struct RunMeasurements {
    /// Per superstep of `step`: the mean over the runs that include it.
    pub steps: Vec<Option<MeasuredStep>>,
    /// Sums over every run.
    pub totals: Measured,
    /// Per superstep of `step`: each tile's mean times over the runs that include it, when
    /// the runs recorded per-tile times.
    pub tiles: Option<Vec<Vec<TileMean>>>,
}

/// The supersteps of `step` a stash copy's trace records stand for: slot 0's range, or for
/// another slot (one superstep of its own) slot 0's first superstep.
fn stash_steps(s: &StashCopies, m: usize, out: &mut Vec<Option<usize>>) {
    if s.slot(m) == 0 {
        out.extend(s.slot0.clone().map(Some));
    } else {
        out.push(Some(s.slot0.start).filter(|_| !s.slot0.is_empty()));
    }
}

fn total(t: &SuperstepTrace) -> Duration {
    t.host_to_tile + t.compute + t.exchange + t.tile_to_host
}

/// Maps `runs` onto `info` (its runs' `measured_us`, its `measured_seconds`) and returns
/// the per-superstep means and sums. `steps` is the number of supersteps of `step`.
pub(crate) fn apply(
    prog: &PipelineProgram,
    info: &mut PipelineInfo,
    runs: &[MicroBatchRun],
    steps: usize,
) -> Result<RunMeasurements> {
    let g = info.micro_batches;
    let expected = prog.segments.len() * usize::try_from(g).unwrap_or(usize::MAX);
    if runs.len() != expected {
        return Err(ProfileError::RunCount {
            runs: runs.len(),
            segments: prog.segments.len(),
            micro_batches: g,
            expected,
        });
    }
    let mut where_: HashMap<(u64, u64), (usize, usize)> = HashMap::new();
    for (ci, c) in info.cycles.iter().enumerate() {
        for (ri, r) in c.runs.iter().enumerate() {
            where_.insert((r.segment, r.micro_batch), (ci, ri));
        }
    }
    let mut sums = vec![(SuperstepTrace::default(), 0u32); steps];
    let mut folder = Folder::new(steps);
    let mut totals = SuperstepTrace::default();
    for run in runs {
        let bad = |problem: String| ProfileError::RunMismatch {
            segment: run.segment,
            micro_batch: run.micro_batch,
            cycle: run.cycle,
            problem,
        };
        let key = (run.segment as u64, run.micro_batch as u64);
        let (Some(&(ci, ri)), Some(seg)) = (where_.get(&key), prog.segments.get(run.segment))
        else {
            return Err(bad(format!(
                "not a run of the schedule for {g} micro-batch(es)"
            )));
        };
        let Some(slot) = info.cycles.get_mut(ci).and_then(|c| {
            let index = c.index;
            c.runs.get_mut(ri).map(|r| (index, r))
        }) else {
            return Err(bad("not in the schedule".into()));
        };
        let (cycle, target) = slot;
        if cycle != run.cycle as u64 {
            return Err(bad(format!("the schedule runs it in cycle {cycle}")));
        }
        if target.measured_us.is_some() {
            return Err(bad("measured twice".into()));
        }
        let mut mapped = Vec::new();
        for r in &seg.restores {
            stash_steps(r, run.micro_batch, &mut mapped);
        }
        mapped.extend(seg.run.clone().map(Some));
        if let Some(sv) = &seg.save {
            stash_steps(sv, run.micro_batch, &mut mapped);
        }
        if mapped.len() != run.trace.supersteps.len() {
            return Err(bad(format!(
                "its trace has {} superstep record(s), its restores, run and saves have {}",
                run.trace.supersteps.len(),
                mapped.len()
            )));
        }
        let mut wall = Duration::ZERO;
        for (rec, idx) in run.trace.supersteps.iter().zip(mapped) {
            wall += total(rec);
            add(&mut totals, rec);
            if let Some(i) = idx {
                folder.add(i, &rec.tiles);
            }
            if let Some((sum, n)) = idx.and_then(|i| sums.get_mut(i)) {
                add(sum, rec);
                *n += 1;
            }
        }
        target.measured_us = Some(wall.as_secs_f64() * 1e6);
    }
    let us = |d: Duration, n: u32| d.as_secs_f64() * 1e6 / f64::from(n.max(1));
    let steps = sums
        .into_iter()
        .map(|(s, n)| {
            (n > 0).then(|| MeasuredStep {
                host_to_tile_us: us(s.host_to_tile, n),
                compute_us: us(s.compute, n),
                exchange_us: us(s.exchange, n),
                tile_to_host_us: us(s.tile_to_host, n),
            })
        })
        .collect();
    let m = Measured {
        host_to_tile_seconds: totals.host_to_tile.as_secs_f64(),
        compute_seconds: totals.compute.as_secs_f64(),
        exchange_seconds: totals.exchange.as_secs_f64(),
        tile_to_host_seconds: totals.tile_to_host.as_secs_f64(),
        total_seconds: total(&totals).as_secs_f64(),
    };
    info.measured_seconds = Some(m.total_seconds);
    Ok(RunMeasurements {
        steps,
        totals: m,
        tiles: folder.finish(),
    })
}

fn add(sum: &mut SuperstepTrace, rec: &SuperstepTrace) {
    sum.host_to_tile += rec.host_to_tile;
    sum.compute += rec.compute;
    sum.exchange += rec.exchange;
    sum.tile_to_host += rec.tile_to_host;
}
