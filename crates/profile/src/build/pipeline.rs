//! The pipeline figures of a pipelined training plan ([`crate::model::PipelineInfo`]): each
//! segment costed with the plan's `costs` over its supersteps, the schedule's cycles laid out
//! on the chips, utilisation and its complement (bubble, imbalance, sync), the step time and
//! the predicted samples/s. See [`crate::model`]'s pipeline documentation for the model.

use crate::error::{ProfileError, Result};
use crate::model::{PipelineChip, PipelineCycle, PipelineInfo, SegmentInfo, SegmentRun};
use std::ops::Range;
use tessera_passes::lower::program::pipeline::{segment_name, PipelineProgram, SegmentKind};
use tessera_passes::lower::program::StepCost;
use tessera_target::Target;

/// How a pipelined plan's step runs: micro-batches per replica and replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    /// Micro-batches per step and replica `G` (the gradient accumulation).
    pub micro_batches: u64,
    /// Data-parallel replicas `R`.
    pub replicas: u64,
}

impl Default for Parallelism {
    /// One micro-batch on one replica: the step as the plan's `step` program runs it.
    fn default() -> Self {
        Parallelism {
            micro_batches: 1,
            replicas: 1,
        }
    }
}

/// Cycles of the supersteps `r` of `step`; `piece` names the range in errors.
pub(crate) fn range_cycles(costs: &[StepCost], r: &Range<usize>, piece: &str) -> Result<u64> {
    let slice = costs
        .get(r.clone())
        .ok_or_else(|| ProfileError::PipelineRange {
            piece: piece.to_string(),
            start: r.start,
            end: r.end,
            steps: costs.len(),
        })?;
    Ok(slice
        .iter()
        .map(|c| c.compute_cycles + c.exchange_cycles + c.sync_cycles)
        .sum())
}

/// Checks that the program's segments are the schedule's (count and stages).
pub(crate) fn check_shape(prog: &PipelineProgram) -> Result<()> {
    let schedule = prog.schedule;
    if prog.segments.len() != schedule.segments() {
        return Err(ProfileError::PipelineShape {
            problem: format!(
                "{} segment(s) for a {}-stage schedule of {} segments",
                prog.segments.len(),
                schedule.stages,
                schedule.segments()
            ),
        });
    }
    for (i, s) in prog.segments.iter().enumerate() {
        if (s.stage, s.kind) != schedule.segment(i) {
            return Err(ProfileError::PipelineShape {
                problem: format!(
                    "segment {i} ({}) is the {:?} of stage {}, the schedule says {:?} of stage {}",
                    segment_name(&schedule, i),
                    s.kind,
                    s.stage,
                    schedule.segment(i).1,
                    schedule.segment(i).0
                ),
            });
        }
    }
    Ok(())
}

fn segments(prog: &PipelineProgram, costs: &[StepCost]) -> Result<Vec<SegmentInfo>> {
    let schedule = prog.schedule;
    let mut out = Vec::with_capacity(prog.segments.len());
    for (i, s) in prog.segments.iter().enumerate() {
        let name = segment_name(&schedule, i);
        let mut restore = 0;
        for r in &s.restores {
            let what = format!(
                "segment {name}: restore of {}",
                segment_name(&schedule, r.producer)
            );
            restore += range_cycles(costs, &r.slot0, &what)?;
        }
        let run = range_cycles(costs, &s.run, &format!("segment {name}: run"))?;
        let save = match &s.save {
            Some(sv) => range_cycles(costs, &sv.slot0, &format!("segment {name}: save"))?,
            None => 0,
        };
        out.push(SegmentInfo {
            index: i as u64,
            name,
            stage: s.stage,
            kind: match s.kind {
                SegmentKind::Forward => "forward",
                SegmentKind::Backward => "backward",
            }
            .to_string(),
            first_superstep: s.run.start as u64,
            supersteps: s.run.len() as u64,
            restore_cycles: restore,
            run_cycles: run,
            save_cycles: save,
            cycles: restore + run + save,
            stash_slots: s.save.as_ref().map_or(0, |sv| sv.slots),
            offset: schedule.offset(i) as u64,
        });
    }
    Ok(out)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The pipeline figures of `prog` (checked with [`check_shape`]) for `par`, micro-batches of
/// `batch` samples, without measurements (see [`super::runs`]).
pub(crate) fn pipeline_info(
    prog: &PipelineProgram,
    costs: &[StepCost],
    target: &Target,
    clock_hz: f64,
    par: Parallelism,
    batch: u64,
) -> Result<PipelineInfo> {
    if par.micro_batches == 0 || par.replicas == 0 {
        return Err(ProfileError::EmptyStep {
            micro_batches: par.micro_batches,
            replicas: par.replicas,
        });
    }
    let schedule = prog.schedule;
    let stages = schedule.stages.max(1);
    let p = u64::from(stages);
    let g = usize::try_from(par.micro_batches).unwrap_or(usize::MAX);
    let segs = segments(prog, costs)?;
    let zero = range_cycles(costs, &prog.zero, "accumulator reset")?;
    let read = range_cycles(costs, &prog.read_grads, "gradient read-out")?;
    let optimizer = match &prog.optimizer {
        Some(r) => range_cycles(costs, r, "optimizer")?,
        None => 0,
    };
    let sync = target.inter_chip_sync_cycles(stages);

    let mut cycles = Vec::with_capacity(schedule.cycles(g));
    // Each chip's load: one run of each of its segments (a steady-state cycle's work).
    let mut load = vec![0u64; stages as usize];
    for g in &segs {
        if let Some(l) = load.get_mut(g.stage as usize) {
            *l += g.cycles;
        }
    }
    let mut at = zero;
    let mut chips: Vec<PipelineChip> = (0..stages)
        .map(|chip| PipelineChip {
            chip,
            busy_cycles: 0,
            bubble_cycles: 0,
            imbalance_cycles: 0,
            utilisation: 0.0,
        })
        .collect();
    for c in 0..schedule.cycles(g) {
        let mut chip_cycles = vec![0u64; stages as usize];
        let mut runs = Vec::new();
        for (seg, m) in schedule.runs(c, g) {
            let Some(s) = segs.get(seg) else { continue };
            let Some(busy) = chip_cycles.get_mut(s.stage as usize) else {
                continue;
            };
            runs.push(SegmentRun {
                segment: seg as u64,
                micro_batch: m as u64,
                chip: s.stage,
                label: format!("{} mb {m}", s.name),
                start_cycle: at + *busy,
                cycles: s.cycles,
                measured_us: None,
            });
            *busy += s.cycles;
        }
        let max = chip_cycles.iter().copied().max().unwrap_or(0);
        let mut bubble_cycles = Vec::with_capacity(chips.len());
        for ((chip, &b), &l) in chips.iter_mut().zip(&chip_cycles).zip(&load) {
            // Idle time the chip's missing segment runs would fill is the fill/flush bubble;
            // what a full load would still leave idle is imbalance.
            let idle = max - b;
            let bubble = idle.min(l.saturating_sub(b));
            chip.busy_cycles += b;
            chip.bubble_cycles += bubble;
            chip.imbalance_cycles += idle - bubble;
            bubble_cycles.push(bubble);
        }
        cycles.push(PipelineCycle {
            index: c as u64,
            start_cycle: at,
            busy_cycles: max,
            sync_cycles: sync,
            chip_cycles,
            bubble_cycles,
            runs,
        });
        at += max + sync;
    }
    let schedule_cycles = at - zero;
    for chip in &mut chips {
        chip.utilisation = share(chip.busy_cycles, schedule_cycles);
    }
    let busy_all: u64 = chips.iter().map(|c| c.busy_cycles).sum();
    let bubble: u64 = chips.iter().map(|c| c.bubble_cycles).sum();
    let imbalance: u64 = chips.iter().map(|c| c.imbalance_cycles).sum();
    let step_cycles = zero + schedule_cycles + read + optimizer;
    let capacity = p * schedule_cycles;
    let sync_chip = p * sync * cycles.len() as u64;
    let step_seconds = if clock_hz > 0.0 {
        step_cycles as f64 / clock_hz
    } else {
        0.0
    };
    let samples = batch * par.micro_batches * par.replicas;
    Ok(PipelineInfo {
        stages: schedule.stages,
        micro_batches: par.micro_batches,
        replicas: par.replicas,
        micro_batch_size: batch,
        pipeline_cycles: cycles.len() as u64,
        sync_cycles_per_pipeline_cycle: sync,
        zero_cycles: zero,
        schedule_cycles,
        read_grads_cycles: read,
        optimizer_cycles: optimizer,
        step_cycles,
        step_seconds,
        busy_chip_cycles: busy_all,
        utilisation: share(busy_all, capacity),
        bubble_chip_cycles: bubble,
        bubble_share: share(bubble, capacity),
        imbalance_chip_cycles: imbalance,
        imbalance_share: share(imbalance, capacity),
        sync_chip_cycles: sync_chip,
        sync_share: share(sync_chip, capacity),
        ideal_bubble_share: (p - 1) as f64 / (par.micro_batches + p - 1) as f64,
        samples_per_step: samples,
        samples_per_second: (step_seconds > 0.0).then(|| samples as f64 / step_seconds),
        measured_seconds: None,
        chips,
        segments: segs,
        cycles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_passes::lower::program::pipeline::{Schedule, SegmentProgram};

    /// A `p`-stage program whose segments each take one superstep of `x` cycles, with one
    /// superstep of `z` cycles for the reset and the read-out.
    fn program(p: u32, x: u64, z: u64) -> (PipelineProgram, Vec<StepCost>) {
        let schedule = Schedule { stages: p };
        let cost = |c: u64| StepCost {
            label: String::new(),
            compute_cycles: c,
            exchange_cycles: 0,
            sync_cycles: 0,
            exchange_bytes: 0,
            inter_chip_bytes: 0,
            vertices: 0,
        };
        let n = schedule.segments();
        let segments = (0..n)
            .map(|i| {
                let (stage, kind) = schedule.segment(i);
                SegmentProgram {
                    stage,
                    kind,
                    run: 1 + i..2 + i,
                    restores: Vec::new(),
                    save: None,
                }
            })
            .collect();
        let mut costs = vec![cost(z)];
        costs.extend((0..n).map(|_| cost(x)));
        costs.push(cost(z));
        let prog = PipelineProgram {
            schedule,
            zero: 0..1,
            segments,
            read_grads: n + 1..n + 2,
            per_micro_batch: Vec::new(),
            micro_buffers: 0,
            grad_buffers_end: 0,
            write_grads: n + 2..n + 2,
            optimizer: None,
            optimizer_state: Vec::new(),
            optimizer_outputs: Vec::new(),
            optimizer_only: Vec::new(),
        };
        (prog, costs)
    }

    fn no_sync() -> Target {
        let mut t = tessera_target::target::presets::mk2();
        t.inter_chip_sync_latency_per_hop_s = 0.0;
        t
    }

    #[test]
    fn equal_segments_give_popart_bubble_and_no_imbalance() {
        for p in 1..=5u32 {
            for g in 1..=9u64 {
                let (prog, costs) = program(p, 100, 7);
                check_shape(&prog).unwrap();
                let par = Parallelism {
                    micro_batches: g,
                    replicas: 3,
                };
                let pl = pipeline_info(&prog, &costs, &no_sync(), 1e9, par, 2).unwrap();
                let want = f64::from(p - 1) / (g + u64::from(p) - 1) as f64;
                assert!((pl.bubble_share - want).abs() < 1e-12, "P={p} G={g}");
                assert_eq!(pl.imbalance_chip_cycles, 0, "P={p} G={g}");
                assert_eq!(pl.busy_chip_cycles, 2 * u64::from(p) * g * 100);
                // In full-cycle equivalents (2 segments of 100 cycles) the step is G + P − 1.
                assert_eq!(pl.schedule_cycles, (g + u64::from(p) - 1) * 200);
                assert_eq!(pl.step_cycles, pl.schedule_cycles + 14);
                assert_eq!(pl.samples_per_step, 6 * g);
                assert!((pl.step_seconds - pl.step_cycles as f64 / 1e9).abs() < 1e-18);
            }
        }
    }

    #[test]
    fn a_misplaced_segment_or_range_is_an_error_naming_it() {
        let (mut prog, _) = program(2, 10, 1);
        prog.segments[1].stage = 0;
        let e = check_shape(&prog).unwrap_err();
        assert!(e.to_string().contains("segment 1 (F1)"), "{e}");
        let (mut prog, costs) = program(2, 10, 1);
        prog.segments[3].run = 4..99;
        let par = Parallelism::default();
        let e = pipeline_info(&prog, &costs, &no_sync(), 1e9, par, 1).unwrap_err();
        assert!(e.to_string().contains("segment B0: run"), "{e}");
        let zero = Parallelism {
            micro_batches: 0,
            replicas: 1,
        };
        let (prog, costs) = program(2, 10, 1);
        let e = pipeline_info(&prog, &costs, &no_sync(), 1e9, zero, 1).unwrap_err();
        assert!(matches!(e, ProfileError::EmptyStep { .. }), "{e}");
    }
}
