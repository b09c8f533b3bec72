//! Automatic placement: the contiguous partition of the units into `P` stages with the best
//! predicted throughput that fits every chip.
//!
//! Candidates are ranked by the per-segment model of [`super::segments`]:
//! - when there are at most [`EXHAUSTIVE_LIMIT`] partitions (`C(n−1, P−1)` for `n` units),
//!   all of them are enumerated, depth first, pruning a branch as soon as a segment does
//!   not fit its chip (memory only grows as a segment grows) or the maxima so far already
//!   make it worse than the [`CANDIDATES`]-th best — exact under the model;
//! - otherwise a dynamic programme over (stage, end of segment) minimises the largest
//!   per-stage `(G+P−1)·t + t_opt + t_allreduce` under the memory limits (a bound on the
//!   true objective, whose maxima may fall on different stages), and a local search then
//!   moves single stage boundaries while the true objective improves.
//!
//! The best [`CANDIDATES`] are then placed and costed for real ([`super::place`]); the
//! fastest one that fits wins.

use super::segments::{unit_costs, Table};
use super::traffic::transfers;
use super::{worst_stage, PipelineError, Placed, Planner};
use crate::layers::Units;
use crate::pipeline::report::{memory_detail, SearchStats};

/// Enumerate every partition when there are at most this many.
pub const EXHAUSTIVE_LIMIT: u128 = 2_000_000;

/// Candidates costed on the real placed graph.
pub const CANDIDATES: usize = 4;

/// A partition: the first unit of each stage.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    starts: Vec<usize>,
    step_s: f64,
}

/// The best `k` candidates seen, best first.
pub(crate) struct Best {
    k: usize,
    list: Vec<Candidate>,
}

impl Best {
    /// An empty list keeping the best `k`.
    pub(crate) fn new(k: usize) -> Best {
        Best {
            k,
            list: Vec::new(),
        }
    }

    /// The best step time seen.
    pub(crate) fn best_step_s(&self) -> Option<f64> {
        self.list.first().map(|c| c.step_s)
    }

    fn worst(&self) -> f64 {
        if self.list.len() < self.k {
            f64::INFINITY
        } else {
            self.list.last().map_or(f64::INFINITY, |c| c.step_s)
        }
    }

    fn offer(&mut self, starts: &[usize], step_s: f64) {
        if step_s >= self.worst() {
            return;
        }
        let at = self.list.partition_point(|c| c.step_s <= step_s);
        self.list.insert(
            at,
            Candidate {
                starts: starts.to_vec(),
                step_s,
            },
        );
        self.list.truncate(self.k);
    }
}

/// `C(n, k)`, saturating.
fn binomial(n: u128, k: u128) -> u128 {
    let k = k.min(n.saturating_sub(k));
    let mut r: u128 = 1;
    for i in 0..k {
        r = r.saturating_mul(n - i) / (i + 1);
    }
    r
}

/// Places `graph`'s `units` automatically (see the module documentation).
pub(crate) fn auto(
    planner: &Planner<'_>,
    units: &Units,
) -> Result<(Placed, SearchStats), PipelineError> {
    let (cfg, target, graph) = (planner.cfg, planner.target, &planner.est);
    let p = cfg.stages();
    let n = units.len();
    if (p as usize) > n {
        return Err(PipelineError::TooManyStages {
            stages: p,
            available: n,
            what: "units",
        });
    }
    let costs = unit_costs(graph, units, target, &cfg.cost)?;
    let table = Table::new(&costs, &transfers(graph, units), target, &cfg.cost);
    let partitions = binomial(n as u128 - 1, u128::from(p) - 1);
    let mut best = Best::new(CANDIDATES);
    let exhaustive = partitions <= EXHAUSTIVE_LIMIT;
    let mut visited = 0u64;
    if exhaustive {
        let mut starts = Vec::with_capacity(p as usize);
        enumerate(
            &table,
            0,
            (0.0, 0.0, 0.0),
            &mut starts,
            &mut best,
            &mut visited,
        );
    } else if let Some(starts) = dynamic(&table) {
        let starts = local_search(&table, starts, &mut visited);
        let step = table.evaluate(&starts);
        best.offer(&starts, step);
    }
    let estimated = best.best_step_s().map(|s| table.samples_per_s(s));
    // Cost the candidates for real; keep the fastest that fits.
    let mut chosen: Option<Placed> = None;
    let mut fullest: Option<Placed> = None;
    let candidates = if best.list.is_empty() {
        // Nothing fits by the estimate: cost the balanced-by-time partition anyway, so
        // that the error reports real figures.
        vec![even_time(&table)]
    } else {
        best.list.iter().map(|c| c.starts.clone()).collect()
    };
    for starts in &candidates {
        let assignment = assignment_of(starts, n);
        let placed = planner.place(units, &assignment, cfg.insert_stash)?;
        let fits = placed.cost.stages.iter().all(|s| s.memory.fits);
        if fits {
            let better = chosen
                .as_ref()
                .is_none_or(|c| placed.throughput.samples_per_s > c.throughput.samples_per_s);
            if better {
                chosen = Some(placed);
            }
        } else if fullest.is_none() {
            fullest = Some(placed);
        }
    }
    let stats = SearchStats {
        units: n,
        partitions: u64::try_from(partitions).unwrap_or(u64::MAX),
        exhaustive,
        visited,
        estimated_samples_per_s: estimated.unwrap_or(0.0),
    };
    match chosen {
        Some(placed) => Ok((placed, stats)),
        None => {
            let (stage, m) = fullest
                .as_ref()
                .and_then(|f| worst_stage(&f.cost))
                .unwrap_or((0, tessera_cost::MemoryBreakdown::default()));
            Err(PipelineError::NothingFits {
                units: n,
                stages: p,
                stage,
                needed: m.total,
                capacity: m.capacity,
                over: m.total.saturating_sub(m.capacity),
                detail: memory_detail(&m),
            })
        }
    }
}

/// The stage of every unit for a partition starting its stages at `starts`.
fn assignment_of(starts: &[usize], n: usize) -> Vec<u32> {
    let mut out = vec![0u32; n];
    for (s, &a) in starts.iter().enumerate() {
        let b = starts.get(s + 1).copied().unwrap_or(n);
        for x in out.iter_mut().take(b).skip(a) {
            *x = s as u32;
        }
    }
    out
}

/// Depth-first enumeration of every partition of units `from..n` into the remaining
/// stages, with the maxima `(time, optimizer, all-reduce)` of the stages so far.
pub(crate) fn enumerate(
    t: &Table,
    from: usize,
    maxima: (f64, f64, f64),
    starts: &mut Vec<usize>,
    best: &mut Best,
    visited: &mut u64,
) {
    let s = starts.len() as u32;
    let last = s + 1 == t.p;
    let remaining = (t.p - s - 1) as usize;
    starts.push(from);
    let ends: Vec<usize> = if last {
        vec![t.n]
    } else {
        (from + 1..=t.n - remaining).collect()
    };
    for b in ends {
        if t.memory(from, b, s) > t.capacity {
            // Memory only grows with the segment.
            break;
        }
        let m = (
            maxima.0.max(t.time(from, b)),
            maxima.1.max(t.opt(from, b)),
            maxima.2.max(t.allreduce(from, b)),
        );
        let bound = t.step_s(m.0, m.1, m.2);
        if bound >= best.worst() {
            continue;
        }
        if last {
            *visited += 1;
            best.offer(starts, bound);
        } else {
            enumerate(t, b, m, starts, best, visited);
        }
    }
    starts.pop();
}

/// The min-max dynamic programme of the module documentation; `None` if nothing fits.
pub(crate) fn dynamic(t: &Table) -> Option<Vec<usize>> {
    let (n, p) = (t.n, t.p as usize);
    let cost = |a: usize, b: usize| t.step_s(t.time(a, b), t.opt(a, b), t.allreduce(a, b));
    // dp[s][b]: best bound for units 0..b on stages 0..=s; from[s][b]: start of stage s.
    let mut dp = vec![vec![f64::INFINITY; n + 1]; p];
    let mut from = vec![vec![0usize; n + 1]; p];
    for (b, slot) in dp[0].iter_mut().enumerate().skip(1) {
        if t.memory(0, b, 0) <= t.capacity {
            *slot = cost(0, b);
        }
    }
    for s in 1..p {
        for b in s + 1..=n {
            for a in s..b {
                let prev = dp[s - 1][a];
                if !prev.is_finite() || t.memory(a, b, s as u32) > t.capacity {
                    continue;
                }
                let v = prev.max(cost(a, b));
                if v < dp[s][b] {
                    dp[s][b] = v;
                    from[s][b] = a;
                }
            }
        }
    }
    if !dp[p - 1][n].is_finite() {
        return None;
    }
    let mut starts = vec![0usize; p];
    let mut b = n;
    for s in (0..p).rev() {
        let a = if s == 0 { 0 } else { from[s][b] };
        starts[s] = a;
        b = a;
    }
    Some(starts)
}

/// Moves single stage boundaries while the true objective improves and memory fits.
pub(crate) fn local_search(t: &Table, mut starts: Vec<usize>, visited: &mut u64) -> Vec<usize> {
    let fits = |st: &[usize]| {
        st.iter().enumerate().all(|(s, &a)| {
            let b = st.get(s + 1).copied().unwrap_or(t.n);
            a < b && t.memory(a, b, s as u32) <= t.capacity
        })
    };
    let mut current = t.evaluate(&starts);
    loop {
        let mut improved = false;
        for i in 1..starts.len() {
            for delta in [-1i64, 1] {
                let mut trial = starts.clone();
                let moved = trial[i] as i64 + delta;
                if moved <= 0 || moved as usize >= t.n {
                    continue;
                }
                trial[i] = moved as usize;
                *visited += 1;
                if !fits(&trial) {
                    continue;
                }
                let v = t.evaluate(&trial);
                if v < current {
                    current = v;
                    starts = trial;
                    improved = true;
                }
            }
        }
        if !improved {
            return starts;
        }
    }
}

/// Stage starts that split the units' time evenly, ignoring memory.
fn even_time(t: &Table) -> Vec<usize> {
    let total = t.time(0, t.n);
    let p = t.p as usize;
    let mut starts = vec![0usize];
    let mut a = 0;
    for s in 1..p {
        let goal = total * s as f64 / p as f64;
        let mut b = a + 1;
        while b < t.n - (p - s) && t.time(0, b) < goal {
            b += 1;
        }
        starts.push(b);
        a = b;
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomials() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(94, 3), 134_044);
        assert_eq!(binomial(3, 0), 1);
        assert_eq!(binomial(0, 0), 1);
    }

    #[test]
    fn assignment_covers_every_unit() {
        assert_eq!(assignment_of(&[0, 2, 3], 5), vec![0, 0, 1, 2, 2]);
    }
}
