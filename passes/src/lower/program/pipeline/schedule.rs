//! The pipeline schedule: which segment runs which micro-batch in which pipeline cycle.
//!
//! A training step with `P` stages has `2P` segments: the forward of each stage (`F0 … F(P−1)`)
//! and its backward, recomputation included (`B(P−1) … B0`); segment indices follow that
//! order, which is also the order of one micro-batch through the machine. Micro-batch `m`
//! runs `Fs` in cycle `m + s` and `Bs` in cycle `m + 2(P−1) − s` (PopART's schedule: the last
//! stage runs a micro-batch's forward and backward in the same cycle). A step of `G`
//! micro-batches takes `G + 2(P−1)` cycles: `P − 1` cycles filling the forward, `P − 1` more
//! before the first backward reaches stage 0, the steady state, and `2(P−1)` flushing. Each of
//! the `2(P−1)` fill and flush cycles runs only part of the machine, so in full-cycle
//! equivalents the step weighs `2(P−1) + (G − (P−1)) = G + P − 1`, the figure the cost model
//! uses.
//!
//! Within a cycle the emulator runs segments one after another in [`Schedule::cycle_order`]:
//! `B0 … B(P−2), F(P−1), B(P−1), F(P−2) … F0`, so that a segment reading a value produced one
//! cycle earlier runs before the producer overwrites it, and `B(P−1)` runs after `F(P−1)` of
//! the same micro-batch. On the chips the segments of a cycle run concurrently, each chip its
//! own; the emulation order only decides which of a value's copies are still intact.

use serde::{Deserialize, Serialize};

/// Forward or backward half of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SegmentKind {
    /// The stage's forward (loss included on the last stage).
    Forward,
    /// The stage's backward, recomputation and stash restores included.
    Backward,
}

/// The schedule of a `stages`-stage pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Pipeline stages `P` (one chip each).
    pub stages: u32,
}

impl Schedule {
    /// Number of segments (`2P`).
    pub fn segments(&self) -> usize {
        2 * self.stages as usize
    }

    /// Index of the `kind` segment of `stage`.
    pub fn index(&self, stage: u32, kind: SegmentKind) -> usize {
        match kind {
            SegmentKind::Forward => stage as usize,
            SegmentKind::Backward => self.segments() - 1 - stage as usize,
        }
    }

    /// Stage and kind of segment `seg`.
    pub fn segment(&self, seg: usize) -> (u32, SegmentKind) {
        let p = self.stages as usize;
        if seg < p {
            (seg as u32, SegmentKind::Forward)
        } else {
            (
                (2 * p).saturating_sub(1 + seg) as u32,
                SegmentKind::Backward,
            )
        }
    }

    /// The cycle in which segment `seg` runs micro-batch 0 (micro-batch `m` runs `m` later).
    pub fn offset(&self, seg: usize) -> usize {
        let (s, kind) = self.segment(seg);
        let last = self.stages.saturating_sub(1) as usize;
        match kind {
            SegmentKind::Forward => s as usize,
            SegmentKind::Backward => 2 * last - s as usize,
        }
    }

    /// The emulator's order of segments within a cycle (see the module documentation).
    pub fn cycle_order(&self) -> Vec<usize> {
        let p = self.stages;
        let mut order: Vec<usize> = (0..p.saturating_sub(1))
            .map(|s| self.index(s, SegmentKind::Backward))
            .collect();
        if p > 0 {
            order.push(self.index(p - 1, SegmentKind::Forward));
            order.push(self.index(p - 1, SegmentKind::Backward));
        }
        order.extend(
            (0..p.saturating_sub(1))
                .rev()
                .map(|s| self.index(s, SegmentKind::Forward)),
        );
        order
    }

    /// Position of `seg` in [`Schedule::cycle_order`].
    pub fn position(&self, seg: usize) -> usize {
        self.cycle_order()
            .iter()
            .position(|&s| s == seg)
            .unwrap_or(usize::MAX)
    }

    /// Pipeline cycles of a step of `micro_batches` micro-batches: `G + 2(P−1)`.
    pub fn cycles(&self, micro_batches: usize) -> usize {
        if micro_batches == 0 {
            return 0;
        }
        micro_batches + 2 * self.stages.saturating_sub(1) as usize
    }

    /// The `(segment, micro-batch)` runs of cycle `cycle`, in emulation order.
    pub fn runs(&self, cycle: usize, micro_batches: usize) -> Vec<(usize, usize)> {
        self.cycle_order()
            .into_iter()
            .filter_map(|seg| {
                let m = cycle.checked_sub(self.offset(seg))?;
                (m < micro_batches).then_some((seg, m))
            })
            .collect()
    }

    /// How many times the producer segment `p` runs again after producing micro-batch `m`'s
    /// value and before consumer `q` reads it (so a value read across segments needs that
    /// many + 1 stash slots), or `None` when `q` would run before `p` for the same
    /// micro-batch (no schedule can satisfy such a read).
    pub fn runs_between(&self, p: usize, q: usize) -> Option<usize> {
        let d = self.offset(q).checked_sub(self.offset(p))?;
        let before = self.position(p) < self.position(q);
        match d {
            0 => before.then_some(0),
            _ => Some(d - 1 + usize::from(before)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Replays the schedule and checks every data dependency of the segment chain by hand:
    /// each run happens once, in a cycle after (or, ordered, in) its predecessor's.
    #[test]
    fn every_micro_batch_runs_every_segment_once_in_dependency_order() {
        for p in 1..=5u32 {
            for g in 1..=9usize {
                let s = Schedule { stages: p };
                let mut when: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
                for c in 0..s.cycles(g) {
                    for (i, (seg, m)) in s.runs(c, g).into_iter().enumerate() {
                        assert!(when.insert((seg, m), (c, i)).is_none());
                    }
                }
                assert_eq!(when.len(), s.segments() * g, "P={p} G={g}");
                for m in 0..g {
                    for seg in 1..s.segments() {
                        assert!(when[&(seg - 1, m)] < when[&(seg, m)], "P={p} G={g}");
                    }
                }
                // The last cycle runs B0 of the last micro-batch.
                let last = s.runs(s.cycles(g) - 1, g);
                assert_eq!(last.last(), Some(&(s.segments() - 1, g - 1)));
            }
        }
    }

    #[test]
    fn stash_slots_count_the_producer_runs_in_between() {
        let s = Schedule { stages: 4 };
        let f = |st| s.index(st, SegmentKind::Forward);
        let b = |st| s.index(st, SegmentKind::Backward);
        // Neighbours read directly: F0→F1 (next cycle, F1 runs first), F3→B3 (same cycle).
        assert_eq!(s.runs_between(f(0), f(1)), Some(0));
        assert_eq!(s.runs_between(f(3), b(3)), Some(0));
        assert_eq!(s.runs_between(b(2), b(1)), Some(0));
        // F0's activations wait for B0, 6 cycles later, B0 running before F0 in a cycle:
        // F0 runs 5 more times in between (6 slots).
        assert_eq!(s.runs_between(f(0), b(0)), Some(5));
        assert_eq!(s.runs_between(f(2), b(2)), Some(1));
        // Backwards in time is impossible.
        assert_eq!(s.runs_between(b(0), f(0)), None);
        // Counting by simulation agrees for every pair.
        for p in 0..s.segments() {
            for q in p + 1..s.segments() {
                let g = 12;
                let mut produced = 0usize;
                let mut seen = None;
                for c in 0..s.cycles(g) {
                    for (seg, m) in s.runs(c, g) {
                        if seg == p && m > 3 && seen.is_none() {
                            produced += 1;
                        }
                        if seg == q && m == 3 {
                            seen = Some(produced);
                        }
                    }
                }
                assert_eq!(s.runs_between(p, q), seen, "p={p} q={q}");
            }
        }
        assert_eq!(s.cycles(8), 14);
    }
}
