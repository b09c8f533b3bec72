//! The pipeline figures of a pipelined training plan: lxmert-tiny's training step (batch 2,
//! 7 tokens, 5 objects) placed on 4 stages and lowered as a pipeline for an mk2 cut down to
//! 128 tiles. Expected figures are recomputed here from the plan's `costs`, its pipeline
//! ranges and PopART's schedule as documented (micro-batch `m` runs `Fs` in cycle `m + s` and
//! `Bs` in cycle `m + 2(P−1) − s`), not from the profiler's own layout.

use crate::{summary_text, Parallelism, Profile, ProfileMeta};
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::OnceLock;
use tessera_ir::{DType, TensorType};
use tessera_passes::lower::program::pipeline::lower_pipelined;
use tessera_passes::lower::program::{LowerOptions, TilePlan};
use tessera_passes::{LayerRule, PipelineConfig, Placement};
use tessera_target::Target;

pub(super) const STAGES: usize = 4;
pub(super) const BATCH: usize = 2;

pub(super) fn small_target() -> Target {
    let mut t = super::target();
    t.tiles_per_chip = 128;
    t.bytes_per_tile = 512 * 1024;
    t
}

pub(super) fn config() -> tessera_lxmert::LxmertConfig {
    tessera_lxmert::LxmertConfig::preset("lxmert-tiny").unwrap()
}

/// The pipelined plan, lowered once per test binary.
pub(super) fn plan() -> &'static TilePlan {
    static PLAN: OnceLock<TilePlan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let config = config();
        let shapes = tessera_lxmert::Shapes {
            batch: BATCH,
            seq_len: 7,
            num_objects: 5,
        };
        let opts = tessera_lxmert::BuildOptions::default();
        let fwd = tessera_lxmert::build(&config, &shapes, &opts).unwrap();
        let labels = TensorType::new(DType::F32, vec![BATCH, config.num_qa_labels]);
        let with_loss = tessera_passes::attach_vqa_loss(&fwd, &labels).unwrap();
        let grads = tessera_passes::autodiff(&with_loss, &Default::default()).unwrap();
        let cost = tessera_cost::CostOptions::new(tessera_cost::PipelineConfig {
            stages: STAGES as u32,
            grad_accum: 8,
            micro_batch: BATCH as u32,
            ..Default::default()
        });
        let cfg = PipelineConfig {
            rule: LayerRule::lxmert(),
            ..PipelineConfig::new(Placement::Auto, cost)
        };
        let (placed, _) = tessera_passes::pipeline(&grads, &cfg, &super::target()).unwrap();
        lower_pipelined(&placed, &small_target(), &LowerOptions::default()).unwrap()
    })
}

pub(super) fn meta() -> ProfileMeta {
    ProfileMeta {
        model: "lxmert-tiny".into(),
        batch: BATCH as u64,
        settings: Default::default(),
    }
}

pub(super) fn pipelined(g: u64, r: u64) -> Profile {
    let par = Parallelism {
        micro_batches: g,
        replicas: r,
    };
    Profile::pipelined(plan(), &small_target(), par, None, meta()).unwrap()
}

fn cycles(r: &Range<usize>) -> u64 {
    plan().costs[r.clone()]
        .iter()
        .map(|c| c.compute_cycles + c.exchange_cycles + c.sync_cycles)
        .sum()
}

/// Cycles of one run of each segment: its restores, run and saves (slot 0's supersteps).
fn segment_cycles() -> Vec<u64> {
    let prog = plan().pipeline.as_ref().unwrap();
    prog.segments
        .iter()
        .map(|s| {
            s.restores.iter().map(|r| cycles(&r.slot0)).sum::<u64>()
                + cycles(&s.run)
                + s.save.as_ref().map_or(0, |sv| cycles(&sv.slot0))
        })
        .collect()
}

/// `(stage, is_forward)` of segment `i`: `F0 … F3, B3 … B0`.
pub(super) fn stage_of(i: usize) -> (usize, bool) {
    if i < STAGES {
        (i, true)
    } else {
        (2 * STAGES - 1 - i, false)
    }
}

#[test]
fn pipeline_totals_follow_the_costs_and_the_schedule() {
    let (g, r) = (8u64, 2u64);
    let p = pipelined(g, r);
    let pl = p.pipeline.as_ref().unwrap();
    let prog = plan().pipeline.as_ref().unwrap();
    let seg = segment_cycles();
    let last = STAGES - 1;
    let sync = small_target().inter_chip_sync_cycles(STAGES as u32);
    // mk2's 15 ns per hop at 1.33 GHz, 1 + (4/2)/2 = 2 hops there and back: ceil(79.8).
    assert_eq!(sync, 80);
    let n_cycles = g as usize + 2 * last;
    let mut load = [0u64; STAGES];
    for (i, &cy) in seg.iter().enumerate() {
        load[stage_of(i).0] += cy;
    }
    let (mut total, mut busy_sum, mut bubble) = (0u64, 0u64, 0u64);
    for c in 0..n_cycles {
        let mut busy = [0u64; STAGES];
        for (i, &cy) in seg.iter().enumerate() {
            let (s, fwd) = stage_of(i);
            let offset = if fwd { s } else { 2 * last - s };
            if c >= offset && c - offset < g as usize {
                busy[s] += cy;
            }
        }
        let max = *busy.iter().max().unwrap();
        assert_eq!(pl.cycles[c].busy_cycles, max, "cycle {c}");
        assert_eq!(pl.cycles[c].chip_cycles, busy.to_vec(), "cycle {c}");
        // Bubble: idle time up to the cycles of the runs the chip misses in this cycle.
        for (s, &b) in busy.iter().enumerate() {
            bubble += (max - b).min(load[s] - b);
        }
        busy_sum += busy.iter().sum::<u64>();
        total += max + sync;
    }
    assert_eq!(pl.pipeline_cycles as usize, n_cycles);
    assert_eq!(pl.schedule_cycles, total);
    let (zero, read) = (cycles(&prog.zero), cycles(&prog.read_grads));
    assert_eq!(pl.step_cycles, zero + total + read);
    assert_eq!(pl.busy_chip_cycles, busy_sum);
    assert_eq!(busy_sum, g * seg.iter().sum::<u64>(), "every run once");
    let cap = (STAGES as u64 * total) as f64;
    assert!((pl.utilisation - busy_sum as f64 / cap).abs() < 1e-12);
    assert_eq!(pl.bubble_chip_cycles, bubble);
    assert!(
        pl.bubble_chip_cycles > 0,
        "the fill and flush leave chips idle"
    );
    assert_eq!(
        pl.busy_chip_cycles
            + pl.bubble_chip_cycles
            + pl.imbalance_chip_cycles
            + pl.sync_chip_cycles,
        STAGES as u64 * total
    );
    assert!((pl.ideal_bubble_share - 3.0 / 11.0).abs() < 1e-12);
    // Throughput: 2 samples x 8 micro-batches x 2 replicas per step.
    let step_s = (zero + total + read) as f64 / 1.33e9;
    assert!((pl.step_seconds - step_s).abs() < 1e-15);
    let sps = pl.samples_per_second.unwrap();
    assert!((sps - 32.0 / step_s).abs() < 1e-9 * sps);
    assert_eq!(p.throughput.batch, 32);
    assert_eq!(p.throughput.samples_per_second, Some(sps));
    // The plan's step (one micro-batch, segments one after another) stays in the totals.
    assert_eq!(p.totals.total_cycles, plan().total_cycles());
    // Runs: every (segment, micro-batch) once, labelled, on its stage's chip.
    let mut seen = BTreeSet::new();
    for c in &pl.cycles {
        for run in &c.runs {
            let (s, fwd) = stage_of(run.segment as usize);
            let want = format!("{}{s} mb {}", if fwd { 'F' } else { 'B' }, run.micro_batch);
            assert_eq!(run.label, want);
            assert_eq!(run.chip as usize, s);
            assert_eq!(run.cycles, seg[run.segment as usize]);
            assert!(seen.insert((run.segment, run.micro_batch)));
        }
    }
    assert_eq!(seen.len(), 2 * STAGES * g as usize);
    // Per chip: busy, bubble and imbalance add up to the chip's share of the cycles.
    for chip in &pl.chips {
        let sync_part = sync * n_cycles as u64;
        assert_eq!(
            chip.busy_cycles + chip.bubble_cycles + chip.imbalance_cycles + sync_part,
            total,
            "chip {}",
            chip.chip
        );
    }
}

#[test]
fn more_micro_batches_raise_utilisation_and_shrink_the_bubble() {
    let (few, many) = (pipelined(2, 1), pipelined(32, 1));
    let diff = crate::compare(&few, &many);
    let line = diff
        .lines()
        .find(|l| l.trim_start().starts_with("pipeline utilisation"))
        .unwrap_or_else(|| panic!("no utilisation row in\n{diff}"));
    assert!(line.contains(" +"), "{line}");
    assert!(crate::compare(&many, &many).contains(crate::NO_DIFFERENCE));
    let (a, b) = (few.pipeline.unwrap(), many.pipeline.unwrap());
    assert!(
        b.utilisation > a.utilisation,
        "{} {}",
        a.utilisation,
        b.utilisation
    );
    assert!(b.bubble_share < a.bubble_share);
    // `Profile::new` profiles the plan's own step: one micro-batch on one replica.
    let one = Profile::new(plan(), &small_target(), None, meta()).unwrap();
    let pl = one.pipeline.unwrap();
    assert_eq!(
        (pl.micro_batches, pl.replicas, pl.pipeline_cycles),
        (1, 1, 7)
    );
}

#[test]
fn memory_shows_gradients_and_stash() {
    let p = pipelined(8, 1);
    for (chip, c) in p.chips.iter().enumerate() {
        let tiles = &plan().memory[chip * 128..(chip + 1) * 128];
        let grads: u64 = tiles.iter().map(|m| m.at_peak.gradients).sum();
        let stash: u64 = tiles.iter().map(|m| m.at_peak.stash).sum();
        assert_eq!((c.at_peak.gradients, c.at_peak.stash), (grads, stash));
        assert!(grads > 0, "chip {chip} accumulates its stage's gradients");
    }
    let stash: u64 = p.chips.iter().map(|c| c.at_peak.stash).sum();
    assert!(stash > 0);
    let text = summary_text(&p);
    assert!(
        text.contains("gradients") && text.contains("stash"),
        "{text}"
    );
}
