//! Building a [`Profile`] from a lowered [`TilePlan`], its [`Target`] and optionally an
//! emulator [`Trace`] (or, for a pipelined plan, measured segment runs): the cost figures come
//! from the plan's own `costs` (so totals agree with `TilePlan::total_cycles()` exactly),
//! per-tile figures from re-estimating every vertex with the lowering's `vertex_cycles`,
//! memory from `TilePlan::memory` plus the code and vertex state estimate (the lowering's
//! `code_state`), the pipeline figures from `TilePlan::pipeline` ([`pipeline`], [`runs`]),
//! measured per-tile times from the trace's per-tile records ([`tiles`]).

mod heatmap;
mod memory;
mod pipeline;
mod runs;
mod scan;
pub(crate) mod tiles;

pub use heatmap::{MAX_STEP_BUCKETS, MAX_TILE_BUCKETS};
pub use memory::MAX_MEMORY_BUCKETS;
pub use pipeline::Parallelism;

use crate::error::{ProfileError, Result};
use crate::model::*;
use crate::TOP_N;
use std::collections::BTreeMap;
use tessera_passes::lower::program::pipeline::{MicroBatchRun, PipelineProgram};
use tessera_passes::lower::program::{code_state, StepCost, TilePlan};
use tessera_runtime::Trace;
use tessera_target::Target;

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Profile {
    /// Profiles `plan` (lowered for `target`), with the emulator's measured times from
    /// `trace` when given (it must have one record per superstep of `plan.step`). A pipelined
    /// plan gets its pipeline figures for [`Parallelism::default`] (one micro-batch, one
    /// replica: the step as `plan.step` runs it); [`Profile::pipelined`] takes the step's
    /// real parallelism and measured runs.
    pub fn new(
        plan: &TilePlan,
        target: &Target,
        trace: Option<&Trace>,
        meta: ProfileMeta,
    ) -> Result<Profile> {
        let (mut p, scan) = base(plan, target, trace, meta)?;
        if let Some(prog) = &plan.pipeline {
            let facts = PlanFacts::of(plan, prog);
            p.attach_pipeline(&facts, &scan, target, Parallelism::default(), None)?;
        }
        Ok(p)
    }

    /// Profiles the pipelined training plan `plan` for `par` (micro-batches of `meta.batch`
    /// samples), with the measured segment runs of one step (`PipelineSession::step` with
    /// tracing on, for `par.micro_batches` micro-batches) when given. Errors: the plan has
    /// no pipeline, the runs are not the schedule's, and those of [`Profile::new`].
    pub fn pipelined(
        plan: &TilePlan,
        target: &Target,
        par: Parallelism,
        runs: Option<&[MicroBatchRun]>,
        meta: ProfileMeta,
    ) -> Result<Profile> {
        Profile::pipelined_pending(plan, target, par, meta)?.finish(runs)
    }

    /// The part of [`Profile::pipelined`] that reads the plan's programs, done before the
    /// step runs: the plan can then be handed to the emulator, which consumes its copy
    /// lists (a seq-512 training plan holds hundreds of millions of copies, too many to keep
    /// twice), and [`PendingProfile::finish`] adds the measured runs.
    pub fn pipelined_pending(
        plan: &TilePlan,
        target: &Target,
        par: Parallelism,
        meta: ProfileMeta,
    ) -> Result<PendingProfile> {
        let prog = plan.pipeline.as_ref().ok_or(ProfileError::NotPipelined)?;
        let (profile, scan) = base(plan, target, None, meta)?;
        Ok(PendingProfile {
            profile,
            scan,
            facts: PlanFacts::of(plan, prog),
            target: target.clone(),
            par,
        })
    }

    /// Adds the pipeline figures; the throughput becomes the pipelined step's.
    fn attach_pipeline(
        &mut self,
        plan: &PlanFacts,
        scan: &scan::Scan,
        target: &Target,
        par: Parallelism,
        runs: Option<&[MicroBatchRun]>,
    ) -> Result<()> {
        let prog = &plan.prog;
        pipeline::check_shape(prog)?;
        let mut info = pipeline::pipeline_info(
            prog,
            &plan.costs,
            target,
            plan.clock_hz,
            par,
            self.meta.batch,
        )?;
        if let Some(runs) = runs {
            let m = runs::apply(prog, &mut info, runs, plan.steps)?;
            for (s, ms) in self.supersteps.iter_mut().zip(m.steps) {
                s.measured = ms;
            }
            self.totals.measured = Some(m.totals);
            if let Some(steps) = m.tiles {
                let per_chip = u64::from(plan.tiles_per_chip.max(1));
                self.measured_tiles = Some(tiles::measured_tiles(
                    &steps,
                    runs.len() as u64,
                    scan,
                    &self.busiest_tiles,
                    per_chip,
                ));
            }
        }
        self.throughput = Throughput {
            batch: info.samples_per_step,
            step_seconds: info.step_seconds,
            samples_per_second: info.samples_per_second,
        };
        self.pipeline = Some(info);
        Ok(())
    }
}

/// What the pipeline figures need of a plan once its programs are gone.
struct PlanFacts {
    prog: PipelineProgram,
    costs: Vec<StepCost>,
    clock_hz: f64,
    steps: usize,
    tiles_per_chip: u32,
}

impl PlanFacts {
    fn of(plan: &TilePlan, prog: &PipelineProgram) -> PlanFacts {
        PlanFacts {
            prog: prog.clone(),
            costs: plan.costs.clone(),
            clock_hz: plan.clock_hz,
            steps: plan.step.supersteps.len(),
            tiles_per_chip: plan.step.tiles_per_chip,
        }
    }
}

/// A pipelined profile waiting for its measured runs ([`Profile::pipelined_pending`]).
pub struct PendingProfile {
    profile: Profile,
    scan: scan::Scan,
    facts: PlanFacts,
    target: Target,
    par: Parallelism,
}

impl std::fmt::Debug for PendingProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingProfile")
            .field("supersteps", &self.facts.steps)
            .finish()
    }
}

impl PendingProfile {
    /// The profile, with the measured segment runs of one step when given (errors as
    /// [`Profile::pipelined`]).
    pub fn finish(self, runs: Option<&[MicroBatchRun]>) -> Result<Profile> {
        let PendingProfile {
            mut profile,
            scan,
            facts,
            target,
            par,
        } = self;
        profile.attach_pipeline(&facts, &scan, &target, par, runs)?;
        Ok(profile)
    }
}

/// The profile of `plan` as one program (no pipeline figures).
fn base(
    plan: &TilePlan,
    target: &Target,
    trace: Option<&Trace>,
    meta: ProfileMeta,
) -> Result<(Profile, scan::Scan)> {
    let steps = &plan.step.supersteps;
    if plan.costs.len() != steps.len() {
        return Err(ProfileError::CostMismatch {
            costs: plan.costs.len(),
            steps: steps.len(),
        });
    }
    if let Some(t) = trace {
        if t.supersteps.len() != steps.len() {
            return Err(ProfileError::TraceMismatch {
                trace: t.supersteps.len(),
                plan: steps.len(),
            });
        }
    }
    if target.tiles_per_chip != plan.step.tiles_per_chip {
        return Err(ProfileError::TargetMismatch {
            target: target.name.clone(),
            plan_tiles: plan.step.tiles_per_chip,
            target_tiles: target.tiles_per_chip,
        });
    }
    let mut scan = scan::scan(&plan.step, target)?;
    let code = code_state(
        &[&plan.load, &plan.step],
        usize::try_from(plan.step.total_tiles()).unwrap_or(0),
    );
    let clock = plan.clock_hz;

    let mut supersteps = Vec::with_capacity(steps.len());
    let mut start = 0u64;
    let mut labels: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (i, (cost, s)) in plan.costs.iter().zip(&scan.steps).enumerate() {
        let measured = trace
            .and_then(|t| t.supersteps.get(i))
            .map(|m| MeasuredStep {
                host_to_tile_us: m.host_to_tile.as_secs_f64() * 1e6,
                compute_us: m.compute.as_secs_f64() * 1e6,
                exchange_us: m.exchange.as_secs_f64() * 1e6,
                tile_to_host_us: m.tile_to_host.as_secs_f64() * 1e6,
            });
        let l = labels.entry(cost.label.as_str()).or_default();
        l.0 += cost.vertices;
        l.1 += s.tile_cycles;
        supersteps.push(SuperstepProfile {
            index: i as u64,
            label: cost.label.clone(),
            chips: s.chips.clone(),
            start_cycle: start,
            compute_cycles: cost.compute_cycles,
            exchange_cycles: cost.exchange_cycles,
            sync_cycles: cost.sync_cycles,
            vertices: cost.vertices,
            balance: s.balance.clone(),
            exchange_bytes: cost.exchange_bytes,
            inter_chip_bytes: cost.inter_chip_bytes,
            max_tile_received_bytes: s.max_tile_received_bytes,
            host_to_tile_bytes: s.host_to_tile_bytes,
            tile_to_host_bytes: s.tile_to_host_bytes,
            measured,
        });
        start += cost.compute_cycles + cost.exchange_cycles + cost.sync_cycles;
    }

    let totals = totals(&supersteps, &scan, trace, clock);
    let all_tile_cycles: u64 = scan.kinds.values().map(|k| k.tile_cycles).sum();
    let mut top_compute_sets: Vec<TopStep> = supersteps
        .iter()
        .map(|s| TopStep {
            index: s.index,
            label: s.label.clone(),
            compute_cycles: s.compute_cycles,
            share_of_compute: share(s.compute_cycles, totals.compute_cycles),
        })
        .collect();
    top_compute_sets.sort_by_key(|t| (std::cmp::Reverse(t.compute_cycles), t.index));
    top_compute_sets.truncate(TOP_N);
    let group = |name: &str, vertices: u64, tile_cycles: u64| Group {
        name: name.to_string(),
        vertices,
        tile_cycles,
        share: share(tile_cycles, all_tile_cycles),
    };
    let mut top_vertex_kinds: Vec<Group> = scan
        .kinds
        .iter()
        .map(|(k, g)| group(k, g.vertices, g.tile_cycles))
        .collect();
    top_vertex_kinds.sort_by(|a, b| b.tile_cycles.cmp(&a.tile_cycles).then(a.name.cmp(&b.name)));
    let mut top_labels: Vec<Group> = labels.iter().map(|(l, &(v, c))| group(l, v, c)).collect();
    top_labels.sort_by(|a, b| b.tile_cycles.cmp(&a.tile_cycles).then(a.name.cmp(&b.name)));
    top_labels.truncate(TOP_N);

    let per_chip = u64::from(plan.step.tiles_per_chip.max(1));
    let mut busiest_tiles: Vec<TileCycles> = scan
        .tiles
        .iter()
        .enumerate()
        .filter(|(_, t)| t.compute_cycles > 0)
        .map(|(g, t)| TileCycles {
            chip: (g as u64 / per_chip) as u32,
            tile: (g as u64 % per_chip) as u32,
            compute_cycles: t.compute_cycles,
            receive_cycles: t.receive_cycles,
            vertices: t.vertices,
            share_of_compute: share(t.compute_cycles, totals.compute_cycles),
        })
        .collect();
    busiest_tiles.sort_by_key(|t| (std::cmp::Reverse(t.compute_cycles), t.chip, t.tile));
    busiest_tiles.truncate(TOP_N);
    let measured_tiles = trace.and_then(|t| {
        let mut folder = tiles::Folder::new(steps.len());
        for (i, rec) in t.supersteps.iter().enumerate() {
            folder.add(i, &rec.tiles);
        }
        let steps = folder.finish()?;
        Some(tiles::measured_tiles(
            &steps,
            1,
            &scan,
            &busiest_tiles,
            per_chip,
        ))
    });

    let throughput = Throughput {
        batch: meta.batch,
        step_seconds: totals.estimated_seconds,
        samples_per_second: (totals.estimated_seconds > 0.0)
            .then(|| meta.batch as f64 / totals.estimated_seconds),
    };
    let heatmap = std::mem::replace(&mut scan.heatmap, heatmap::HeatmapBuilder::new(0, 0));
    let profile = Profile {
        format_version: FORMAT_VERSION,
        meta,
        machine: MachineInfo {
            target: target.name.clone(),
            chips: plan.step.chips,
            tiles_per_chip: plan.step.tiles_per_chip,
            bytes_per_tile: target.bytes_per_tile,
            clock_hz: clock,
        },
        chips: memory::chips(plan, target.bytes_per_tile, &scan.tiles, &code),
        totals,
        throughput,
        pipeline: None,
        supersteps,
        top_compute_sets,
        top_vertex_kinds,
        top_labels,
        busiest_tiles,
        heatmap: heatmap.finish(),
        measured_tiles,
        oom: plan.oom.as_ref().map(|o| OomInfo {
            chip: o.chip,
            tile: o.tile,
            used_bytes: o.used,
            code_vertex_state_bytes: o.code_bytes + o.vertex_state_bytes,
            capacity_bytes: o.capacity,
        }),
    };
    Ok((profile, scan))
}

fn totals(
    steps: &[SuperstepProfile],
    scan: &scan::Scan,
    trace: Option<&Trace>,
    clock: f64,
) -> Totals {
    let sum = |f: fn(&SuperstepProfile) -> u64| steps.iter().map(f).sum::<u64>();
    let compute = sum(|s| s.compute_cycles);
    let exchange = sum(|s| s.exchange_cycles);
    let sync = sum(|s| s.sync_cycles);
    let total = compute + exchange + sync;
    let measured = trace.map(|t| {
        let s = |f: fn(&tessera_runtime::SuperstepTrace) -> std::time::Duration| {
            t.supersteps
                .iter()
                .map(f)
                .sum::<std::time::Duration>()
                .as_secs_f64()
        };
        let m = Measured {
            host_to_tile_seconds: s(|x| x.host_to_tile),
            compute_seconds: s(|x| x.compute),
            exchange_seconds: s(|x| x.exchange),
            tile_to_host_seconds: s(|x| x.tile_to_host),
            total_seconds: 0.0,
        };
        Measured {
            total_seconds: m.host_to_tile_seconds
                + m.compute_seconds
                + m.exchange_seconds
                + m.tile_to_host_seconds,
            ..m
        }
    });
    Totals {
        supersteps: steps.len() as u64,
        vertices: sum(|s| s.vertices),
        vertices_by_kind: scan
            .kinds
            .iter()
            .map(|(k, g)| (k.clone(), g.vertices))
            .collect(),
        flops: scan.kinds.values().map(|g| g.flops).sum(),
        total_cycles: total,
        compute_cycles: compute,
        exchange_cycles: exchange,
        sync_cycles: sync,
        compute_share: share(compute, total),
        exchange_share: share(exchange, total),
        sync_share: share(sync, total),
        estimated_seconds: if clock > 0.0 {
            total as f64 / clock
        } else {
            0.0
        },
        exchange_bytes: sum(|s| s.exchange_bytes),
        inter_chip_bytes: sum(|s| s.inter_chip_bytes),
        host_to_tile_bytes: sum(|s| s.host_to_tile_bytes),
        tile_to_host_bytes: sum(|s| s.tile_to_host_bytes),
        measured,
    }
}
