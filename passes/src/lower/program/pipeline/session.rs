//! Running a pipelined plan's schedule on the emulated machine.
//!
//! A [`PipelineSession`] holds one [`Machine`] and every piece of the plan as its own
//! validated program: the accumulator reset, each segment, each stash slot's save and restore
//! copies, and the gradient read-out. [`PipelineSession::step`] runs one training step over
//! `G` micro-batches: reset, the `G + 2(P−1)` pipeline cycles of the [`super::Schedule`]
//! (each run framed by its restores and saves for the micro-batch's slot), then the
//! gradients out. Each micro-batch has its own host buffers (its inputs, its loss); the
//! gradients come out once, summed over the micro-batches on the tiles.
//! [`PipelineSession::step_full`] adds replicas and the optimizer segment; the host side of
//! a step is in [`super::host_io`], and [`super::device_loop`] runs several steps per call.

use super::{PipelineProgram, StashCopies};
use crate::lower::program::session::{checked, decode, load_buffers, SessionError};
use crate::lower::program::{HostTensor, TilePlan};
use std::collections::HashMap;
use std::ops::Range;
use tessera_ir::Tensor;
use tessera_runtime::program::{HostBuffer, Superstep, TileProgram};
use tessera_runtime::{LoadedProgram, Machine, Trace, TraceMode};

/// One segment run of a step.
#[derive(Debug, Clone)]
pub struct MicroBatchRun {
    /// Pipeline cycle.
    pub cycle: usize,
    /// Segment index ([`super::Schedule::index`]).
    pub segment: usize,
    /// Micro-batch.
    pub micro_batch: usize,
    /// The runtime's trace of the segment's supersteps (restores and saves included), when
    /// tracing.
    pub trace: Trace,
}

/// What one pipelined step returns.
#[derive(Debug, Clone)]
pub struct PipelineStep {
    /// Per micro-batch (replica-major): its per-micro-batch outputs (the loss) by name.
    pub micro_batches: Vec<HashMap<String, Tensor>>,
    /// The gradients (`grad.*`), summed over the micro-batches of every replica, f32.
    pub grads: HashMap<String, Tensor>,
    /// Every segment run, in execution order (replica after replica).
    pub runs: Vec<MicroBatchRun>,
    /// The optimizer's outputs (updated weights, state, `lr`, `grad_norm`, `found_inf`),
    /// when it ran on the tiles.
    pub optimizer: HashMap<String, Tensor>,
}

struct LoadedStash {
    programs: Vec<LoadedProgram>,
    meta: StashCopies,
}

struct LoadedSegment {
    run: LoadedProgram,
    restores: Vec<LoadedStash>,
    save: Option<LoadedStash>,
}

/// A pipelined plan loaded on an emulated machine.
pub struct PipelineSession {
    pub(super) machine: Machine,
    pub(super) pool: rayon::ThreadPool,
    load: LoadedProgram,
    zero: LoadedProgram,
    read: LoadedProgram,
    pub(super) write: LoadedProgram,
    pub(super) optimizer: Option<LoadedProgram>,
    /// Host buffers of the optimizer program: the micro-batch buffers, then its own.
    pub(super) optimizer_buffers: Vec<HostBuffer>,
    segments: Vec<LoadedSegment>,
    pub(super) pipeline: PipelineProgram,
    params: Vec<HostTensor>,
    constants: Vec<(u32, Vec<u8>)>,
    pub(super) inputs: Vec<HostTensor>,
    pub(super) outputs: Vec<HostTensor>,
    pub(super) micro_buffers: Vec<HostBuffer>,
    pub(super) grad_buffers: Vec<HostBuffer>,
    /// The optimizer state between device loops ([`super::device_loop`]), once initialised.
    pub(super) streaming: Option<super::device_loop::StreamingMemory>,
}

impl std::fmt::Debug for PipelineSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineSession")
            .field("stages", &self.pipeline.schedule.stages)
            .finish()
    }
}

fn program(
    plan: &TilePlan,
    which: &'static str,
    steps: Vec<Superstep>,
    host: &[HostBuffer],
) -> Result<LoadedProgram, SessionError> {
    let p = TileProgram {
        host_buffers: host.to_vec(),
        supersteps: steps,
        ..TileProgram::new(
            plan.step.chips,
            plan.step.tiles_per_chip,
            plan.step.bytes_per_tile,
        )
    };
    let mut loaded =
        LoadedProgram::load(p).map_err(|source| SessionError::Program { which, source })?;
    // The session keeps each piece's exchange in its precomputed form only.
    loaded.compact();
    Ok(loaded)
}

/// The plan's supersteps handed out by range: each is moved out on its last use and cloned
/// before (the pieces' ranges do not overlap in the plans the lowering writes, so nothing is
/// cloned there).
struct Steps {
    slots: Vec<Option<Superstep>>,
    uses: Vec<u32>,
}

impl Steps {
    fn new(steps: Vec<Superstep>, ranges: &[Range<usize>]) -> Steps {
        let mut uses = vec![0u32; steps.len()];
        for r in ranges {
            for u in uses.get_mut(r.clone()).unwrap_or_default() {
                *u += 1;
            }
        }
        Steps {
            slots: steps.into_iter().map(Some).collect(),
            uses,
        }
    }

    /// Supersteps `r` (those out of range are skipped, as a slice would).
    fn take(&mut self, r: &Range<usize>) -> Vec<Superstep> {
        let end = r.end.min(self.slots.len());
        (r.start.min(end)..end)
            .filter_map(|i| {
                let u = self.uses.get_mut(i)?;
                *u = u.saturating_sub(1);
                let slot = self.slots.get_mut(i)?;
                if *u == 0 {
                    slot.take()
                } else {
                    slot.clone()
                }
            })
            .collect()
    }
}

impl PipelineSession {
    /// Validates every piece of a pipelined plan and allocates the machine; `None` in
    /// `plan.pipeline` is an error. The plan is cloned: [`PipelineSession::from_plan`]
    /// takes it without a copy.
    pub fn new(plan: &TilePlan) -> Result<Self, SessionError> {
        Self::from_plan(plan.clone())
    }

    /// [`PipelineSession::new`] of a plan given up: its supersteps move into the session's
    /// programs, which keep each exchange only in its precomputed form
    /// ([`LoadedProgram::compact`]) — a seq-512 training plan's hundreds of millions of
    /// copies are never held twice. The session's [`PipelineSession::pipeline`] then has no
    /// stash copies for slots after the first (they are in the loaded programs).
    pub fn from_plan(mut plan: TilePlan) -> Result<Self, SessionError> {
        if let Some(oom) = &plan.oom {
            return Err(SessionError::DoesNotFit(oom.to_string()));
        }
        let mut pipeline = plan.pipeline.take().ok_or(SessionError::NotPipelined)?;
        let split = (pipeline.micro_buffers as usize).min(plan.step.host_buffers.len());
        let micro_buffers = plan.step.host_buffers[..split].to_vec();
        let mut ranges = vec![
            pipeline.zero.clone(),
            pipeline.read_grads.clone(),
            pipeline.write_grads.clone(),
        ];
        ranges.extend(pipeline.optimizer.clone());
        for s in &pipeline.segments {
            ranges.push(s.run.clone());
            for st in s.restores.iter().chain(&s.save) {
                ranges.push(st.slot0.clone());
            }
        }
        let mut steps = Steps::new(std::mem::take(&mut plan.step.supersteps), &ranges);
        let plan = &plan;
        let stash = |steps: &mut Steps, s: &mut StashCopies| -> Result<LoadedStash, SessionError> {
            let mut programs = vec![program(
                plan,
                "stash",
                steps.take(&s.slot0),
                &micro_buffers,
            )?];
            for o in std::mem::take(&mut s.others) {
                programs.push(program(plan, "stash", vec![o], &micro_buffers)?);
            }
            Ok(LoadedStash {
                programs,
                meta: s.clone(),
            })
        };
        let mut segments = Vec::new();
        for s in &mut pipeline.segments {
            let run = program(plan, "segment", steps.take(&s.run), &micro_buffers)?;
            let restores = s
                .restores
                .iter_mut()
                .map(|r| stash(&mut steps, r))
                .collect::<Result<_, _>>()?;
            let save = s.save.as_mut().map(|r| stash(&mut steps, r)).transpose()?;
            segments.push(LoadedSegment {
                run,
                restores,
                save,
            });
        }
        let grad_end =
            (pipeline.grad_buffers_end as usize).clamp(split, plan.step.host_buffers.len());
        let grad_buffers = plan.step.host_buffers[split..grad_end].to_vec();
        // The gradient programs' copies name the gradient buffers by their index in `step`.
        let mut read_steps = steps.take(&pipeline.read_grads);
        let mut write_steps = steps.take(&pipeline.write_grads);
        for s in read_steps.iter_mut().chain(&mut write_steps) {
            for c in s.tile_to_host.iter_mut().chain(&mut s.host_to_tile) {
                c.buffer = c.buffer.saturating_sub(split as u32);
            }
        }
        // The optimizer's: micro-batch buffers as they are, its own after them.
        let gap = (grad_end - split) as u32;
        let mut optimizer_buffers = micro_buffers.clone();
        optimizer_buffers.extend_from_slice(&plan.step.host_buffers[grad_end..]);
        let optimizer = match &pipeline.optimizer {
            Some(r) => {
                let mut opt_steps = steps.take(r);
                for s in &mut opt_steps {
                    for c in s.tile_to_host.iter_mut().chain(&mut s.host_to_tile) {
                        if c.buffer >= grad_end as u32 {
                            c.buffer -= gap;
                        }
                    }
                }
                Some(program(plan, "optimizer", opt_steps, &optimizer_buffers)?)
            }
            None => None,
        };
        let load =
            LoadedProgram::load(plan.load.clone()).map_err(|source| SessionError::Program {
                which: "load",
                source,
            })?;
        let zero = program(plan, "zero", steps.take(&pipeline.zero), &[])?;
        let read = program(plan, "read gradients", read_steps, &grad_buffers)?;
        let write = program(plan, "write gradients", write_steps, &grad_buffers)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .build()
            .map_err(|e| SessionError::Threads(e.to_string()))?;
        Ok(PipelineSession {
            machine: Machine::for_program(&load),
            pool,
            load,
            zero,
            read,
            write,
            optimizer,
            optimizer_buffers,
            segments,
            pipeline,
            params: plan.params.clone(),
            constants: plan
                .constants
                .iter()
                .map(|c| (c.buffer, c.bytes.clone()))
                .collect(),
            inputs: plan.inputs.clone(),
            outputs: plan.outputs.clone(),
            micro_buffers,
            grad_buffers,
            streaming: None,
        })
    }

    /// The pipeline's pieces.
    pub fn pipeline(&self) -> &PipelineProgram {
        &self.pipeline
    }

    /// Streams the parameters (by name) and the plan's constants into tile memory.
    pub fn load(&mut self, weights: &HashMap<String, Tensor>) -> Result<(), SessionError> {
        let mut host = load_buffers(&self.load, &self.params, &self.constants, weights)?;
        self.machine
            .run_in(&self.pool, &self.load, &mut host, TraceMode::Off)?;
        Ok(())
    }

    /// One training step of one replica over `micro_batches` (each with every input of the
    /// plan), without the optimizer: the schedule's cycles, then the summed gradients.
    pub fn step(
        &mut self,
        micro_batches: &[HashMap<String, Tensor>],
        mode: TraceMode,
    ) -> Result<PipelineStep, SessionError> {
        self.step_full(&[micro_batches], None, mode)
    }

    /// One training step: every replica's micro-batches through the schedule (the replicas
    /// take turns on the machine: their weights are the same), the replicas' gradient sums
    /// all-reduced (added in replica order) and streamed back into the accumulators, then
    /// the optimizer segment when the plan has one and `optimizer` feeds it (its state and
    /// scalar inputs by name; `None` skips it).
    pub fn step_full(
        &mut self,
        replicas: &[&[HashMap<String, Tensor>]],
        optimizer: Option<&HashMap<String, Tensor>>,
        mode: TraceMode,
    ) -> Result<PipelineStep, SessionError> {
        let mut per_micro = Vec::new();
        let mut runs = Vec::new();
        let mut sums = Vec::with_capacity(replicas.len());
        let none = HashMap::new();
        for micro_batches in replicas {
            let mut hosts = micro_batches
                .iter()
                .map(|f| self.micro_host(f, &none))
                .collect::<Result<Vec<_>, _>>()?;
            let (r, grads) = self.run_replica(&mut hosts, mode)?;
            per_micro.extend(self.micro_outputs(&hosts)?);
            runs.extend(r);
            sums.push(grads);
        }
        let total = self.all_reduce(sums)?;
        let split = self.micro_buffers.len() as u32;
        let mut grads = HashMap::new();
        for o in &self.outputs {
            if o.buffer >= split && o.buffer < self.pipeline.grad_buffers_end {
                let bytes = total
                    .get((o.buffer - split) as usize)
                    .ok_or_else(|| SessionError::Decode(o.name.clone()))?;
                grads.insert(o.name.clone(), decode(o, bytes)?);
            }
        }
        let optimizer = match optimizer {
            Some(feeds) if self.optimizer.is_some() => {
                let mut host = self.optimizer_host();
                for i in &self.inputs {
                    if let (Some(t), Some(slot)) =
                        (feeds.get(&i.name), host.get_mut(i.buffer as usize))
                    {
                        *slot = checked("input", i, Some(t))?;
                    }
                }
                for h in &self.pipeline.optimizer_state {
                    if let Some(slot) = host.get_mut(self.optimizer_index(h.buffer)) {
                        *slot = checked("optimizer state", h, feeds.get(&h.name))?;
                    }
                }
                self.run_optimizer(&mut host)?;
                self.optimizer_outputs(&host, |_| true)?
            }
            _ => HashMap::new(),
        };
        Ok(PipelineStep {
            micro_batches: per_micro,
            grads,
            runs,
            optimizer,
        })
    }

    /// One replica's cycles over its micro-batches' host buffers `hosts`: the runs and the
    /// gradient sums (bytes).
    pub(super) fn run_replica(
        &mut self,
        hosts: &mut [Vec<Vec<u8>>],
        mode: TraceMode,
    ) -> Result<(Vec<MicroBatchRun>, Vec<Vec<u8>>), SessionError> {
        let machine = &mut self.machine;
        let segments = &self.segments;
        let schedule = self.pipeline.schedule;
        let (zero, read) = (&self.zero, &self.read);
        let g = hosts.len();
        let mut grads_host: Vec<Vec<u8>> = self
            .grad_buffers
            .iter()
            .map(|b| vec![0u8; b.bytes as usize])
            .collect();
        let runs = self
            .pool
            .install(|| -> Result<Vec<MicroBatchRun>, SessionError> {
                machine.run(zero, &mut [], TraceMode::Off)?;
                let mut runs = Vec::new();
                for cycle in 0..schedule.cycles(g) {
                    for (seg, m) in schedule.runs(cycle, g) {
                        let (Some(s), Some(host)) = (segments.get(seg), hosts.get_mut(m)) else {
                            continue;
                        };
                        let mut trace = Trace::default();
                        for r in &s.restores {
                            if let Some(p) = r.programs.get(r.meta.slot(m)) {
                                trace
                                    .supersteps
                                    .extend(machine.run(p, host, mode)?.supersteps);
                            }
                        }
                        trace
                            .supersteps
                            .extend(machine.run(&s.run, host, mode)?.supersteps);
                        if let Some(sv) = &s.save {
                            if let Some(p) = sv.programs.get(sv.meta.slot(m)) {
                                trace
                                    .supersteps
                                    .extend(machine.run(p, host, mode)?.supersteps);
                            }
                        }
                        runs.push(MicroBatchRun {
                            cycle,
                            segment: seg,
                            micro_batch: m,
                            trace,
                        });
                    }
                }
                machine.run(read, &mut grads_host, TraceMode::Off)?;
                Ok(runs)
            })?;
        Ok((runs, grads_host))
    }
}
