//! Device iterations: `N` training steps in one call, without the host in between —
//! Poplar's `Repeat(deviceIterations, step)` with host data streams.
//!
//! [`PipelineSession::device_loop`] takes the inputs of all `N × R × G` micro-batches up
//! front (as the host streams would deliver them, iteration after iteration) and runs, per
//! iteration, every replica's micro-batches through the schedule, the all-reduce and the
//! optimizer segment ([`PipelineSession::step_full`]'s step). What changes from one step to
//! the next never goes through the host:
//!
//! - the weights stay on the tiles (the optimizer writes them in place);
//! - the optimizer state and the optimizer's scalar inputs live in the session's *streaming
//!   memory* ([`PipelineSession::init_streaming_memory`]): byte buffers standing for the
//!   chips' remote buffers, initialised once from the caller's tensors. Each iteration's
//!   optimizer streams them in and its results out, and the results' bytes become the next
//!   iteration's state as they are (never decoded and encoded again). An optimizer output
//!   `<x>_next` ([`crate::optim::counters`]: `step_next`, `loss_scale_next`,
//!   `clean_steps_next`) replaces the scalar `<x>`, so the step count and a dynamic loss
//!   scale evolve on the device;
//! - a micro-batch input that is also in streaming memory (the gradient graph's
//!   `loss_scale`) is copied from streaming memory into the micro-batch's stream, so every
//!   micro-batch of a step is scaled by the device's current scale.
//!
//! Each iteration sends back its anchors ([`IterationAnchors`]: the losses, the scalars the
//! step used, `lr`, `grad_norm`, `found_inf`); the call returns them with the last
//! iteration's updated weights and the final streaming memory, decoded.

use super::optimizer::PARAM_PREFIX;
use super::PipelineSession;
use crate::lower::program::session::{checked, decode, SessionError};
use crate::lower::program::HostTensor;
use crate::optim::counters::NEXT_SUFFIX;
use std::collections::{HashMap, HashSet};
use tessera_ir::Tensor;
use tessera_runtime::TraceMode;

/// Why a device loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// Running a program, or a tensor the caller gave, failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The plan was lowered without the optimizer.
    #[error(
        "a device loop runs the optimizer on the tiles, but the plan has no optimizer segment \
         (lower it with the optimizer graph)"
    )]
    NoOptimizer,
    /// [`PipelineSession::init_streaming_memory`] was not called.
    #[error("the streaming memory is not initialised (call init_streaming_memory first)")]
    NotInitialised,
    /// The micro-batches do not fill the loop's shape.
    #[error(
        "{given} micro-batches for {iterations} iteration(s) x {replicas} replica(s) x \
         {grad_accum} micro-batch(es): expected {expected}"
    )]
    Shape {
        /// Micro-batches given.
        given: usize,
        /// Iterations asked for.
        iterations: usize,
        /// Replicas.
        replicas: usize,
        /// Micro-batches per replica and step.
        grad_accum: usize,
        /// Their product.
        expected: usize,
    },
    /// An optimizer output `<x>_next` does not fit the scalar `<x>` it replaces.
    #[error("optimizer output `{output}` cannot feed `{input}` back: {reason}")]
    Feedback {
        /// The output.
        output: String,
        /// The input it should replace.
        input: String,
        /// What is wrong.
        reason: String,
    },
}

/// How many micro-batches a device loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopShape {
    /// Training steps (device iterations), ≥ 1.
    pub iterations: usize,
    /// Replicas per step, ≥ 1.
    pub replicas: usize,
    /// Micro-batches per replica and step (gradient accumulation), ≥ 1.
    pub grad_accum: usize,
}

impl LoopShape {
    /// Micro-batches of the whole loop.
    pub fn micro_batches(&self) -> usize {
        self.iterations * self.replicas * self.grad_accum
    }
}

/// What one iteration sends back to the host (Poplar's anchors).
#[derive(Debug, Clone)]
pub struct IterationAnchors {
    /// Per micro-batch (replica-major): its per-micro-batch outputs (the loss) by name.
    pub micro_batches: Vec<HashMap<String, Tensor>>,
    /// The streaming-memory scalars the step used (`step`, `loss_scale`, `clean_steps`).
    pub used: HashMap<String, Tensor>,
    /// The optimizer's other results (`lr`, `grad_norm`, `found_inf`).
    pub results: HashMap<String, Tensor>,
}

/// What a device loop returns.
#[derive(Debug, Clone)]
pub struct DeviceLoop {
    /// Per iteration, in order.
    pub iterations: Vec<IterationAnchors>,
    /// The last iteration's optimizer results `param.*`: the weights now on the tiles.
    pub weights: HashMap<String, Tensor>,
    /// The streaming memory after the last iteration, decoded (moments and scalars).
    pub state: HashMap<String, Tensor>,
}

/// The session's streaming memory (see the module documentation).
#[derive(Debug, Clone)]
pub(super) struct StreamingMemory {
    /// Optimizer state: the input's host tensor, the output of the same name, the bytes.
    state: Vec<(HostTensor, HostTensor, Vec<u8>)>,
    /// Scalar inputs of the optimizer: the input, the `<x>_next` output if any, the bytes.
    scalars: Vec<(HostTensor, Option<HostTensor>, Vec<u8>)>,
}

impl PipelineSession {
    /// What the streaming memory holds: the optimizer state (`adam_m.*`, `adam_v.*`), then
    /// the inputs the optimizer segment reads (`step`, `loss_scale`, ...). Empty without an
    /// optimizer segment.
    pub fn streaming_tensors(&self) -> Vec<HostTensor> {
        let Some(opt) = &self.optimizer else {
            return Vec::new();
        };
        let read: HashSet<u32> = opt
            .program()
            .supersteps
            .iter()
            .flat_map(|s| s.host_to_tile.iter().map(|c| c.buffer))
            .collect();
        let split = self.micro_buffers.len() as u32;
        let mut out = self.pipeline.optimizer_state.clone();
        out.extend(
            self.inputs
                .iter()
                .filter(|i| i.buffer < split && read.contains(&i.buffer))
                .cloned(),
        );
        out
    }

    /// Initialises the streaming memory from `state` (every tensor of
    /// [`PipelineSession::streaming_tensors`], by name, of the plan's types); it then
    /// persists from one [`PipelineSession::device_loop`] call to the next.
    pub fn init_streaming_memory(
        &mut self,
        state: &HashMap<String, Tensor>,
    ) -> Result<(), LoopError> {
        if self.optimizer.is_none() {
            return Err(LoopError::NoOptimizer);
        }
        let output = |name: &str| self.outputs.iter().find(|o| o.name == name).cloned();
        let mut mem = StreamingMemory {
            state: Vec::new(),
            scalars: Vec::new(),
        };
        let n_state = self.pipeline.optimizer_state.len();
        for (k, h) in self.streaming_tensors().into_iter().enumerate() {
            let bytes = checked("optimizer state", &h, state.get(&h.name))?;
            if k < n_state {
                let out = output(&h.name).ok_or_else(|| LoopError::Feedback {
                    output: h.name.clone(),
                    input: h.name.clone(),
                    reason: "the optimizer has no output of that name".into(),
                })?;
                check_feedback(&out, &h)?;
                mem.state.push((h, out, bytes));
            } else {
                let next = output(&format!("{}{NEXT_SUFFIX}", h.name));
                if let Some(n) = &next {
                    check_feedback(n, &h)?;
                }
                mem.scalars.push((h, next, bytes));
            }
        }
        self.streaming = Some(mem);
        Ok(())
    }

    /// The streaming memory, decoded (`None` before [`PipelineSession::init_streaming_memory`]).
    pub fn streaming_memory(&self) -> Result<Option<HashMap<String, Tensor>>, LoopError> {
        let Some(mem) = &self.streaming else {
            return Ok(None);
        };
        let mut out = HashMap::new();
        for (h, _, bytes) in &mem.state {
            out.insert(h.name.clone(), decode(h, bytes)?);
        }
        for (h, _, bytes) in &mem.scalars {
            out.insert(h.name.clone(), decode(h, bytes)?);
        }
        Ok(Some(out))
    }

    /// Runs `shape.iterations` training steps (see the module documentation) on
    /// `micro_batches`: iteration-major, then replica, then micro-batch (each with every
    /// input of a micro-batch but those the streaming memory provides). The weights must be
    /// loaded and the streaming memory initialised.
    pub fn device_loop(
        &mut self,
        shape: LoopShape,
        micro_batches: &[HashMap<String, Tensor>],
    ) -> Result<DeviceLoop, LoopError> {
        if self.optimizer.is_none() {
            return Err(LoopError::NoOptimizer);
        }
        let expected = shape.micro_batches();
        if expected == 0 || micro_batches.len() != expected {
            return Err(LoopError::Shape {
                given: micro_batches.len(),
                iterations: shape.iterations,
                replicas: shape.replicas,
                grad_accum: shape.grad_accum,
                expected,
            });
        }
        let mut mem = self.streaming.take().ok_or(LoopError::NotInitialised)?;
        let mut iterations = Vec::with_capacity(shape.iterations);
        let mut weights = HashMap::new();
        let per_step = shape.replicas * shape.grad_accum;
        let mut result = Ok(());
        for (it, step) in micro_batches.chunks(per_step).enumerate() {
            let last = it + 1 == shape.iterations;
            match self.iteration(&mut mem, step, shape.grad_accum, last) {
                Ok((anchors, w)) => {
                    iterations.push(anchors);
                    if last {
                        weights = w;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The memory holds the last finished iteration's state, even after an error.
        self.streaming = Some(mem);
        result?;
        let state = self.streaming_memory()?.unwrap_or_default();
        Ok(DeviceLoop {
            iterations,
            weights,
            state,
        })
    }

    /// One iteration: the replicas' schedules, the all-reduce, the optimizer on the
    /// streaming memory; its anchors, and the updated weights when `weights` asks for them.
    fn iteration(
        &mut self,
        mem: &mut StreamingMemory,
        micro_batches: &[HashMap<String, Tensor>],
        grad_accum: usize,
        weights: bool,
    ) -> Result<(IterationAnchors, HashMap<String, Tensor>), LoopError> {
        // The device's scalars a micro-batch reads: copied from streaming memory.
        let device: HashMap<String, Vec<u8>> = mem
            .scalars
            .iter()
            .map(|(h, _, b)| (h.name.clone(), b.clone()))
            .collect();
        let mut per_micro = Vec::with_capacity(micro_batches.len());
        let mut sums = Vec::new();
        for replica in micro_batches.chunks(grad_accum) {
            let mut hosts = replica
                .iter()
                .map(|f| self.micro_host(f, &device))
                .collect::<Result<Vec<_>, _>>()?;
            let (_, grads) = self.run_replica(&mut hosts, TraceMode::Off)?;
            per_micro.extend(self.micro_outputs(&hosts)?);
            sums.push(grads);
        }
        self.all_reduce(sums)?;
        // The optimizer: state and scalars from streaming memory, results back into it.
        let mut host = self.optimizer_host();
        let mut used = HashMap::new();
        for (h, _, bytes) in &mut mem.scalars {
            used.insert(h.name.clone(), decode(h, bytes)?);
            if let Some(slot) = host.get_mut(self.optimizer_index(h.buffer)) {
                slot.clone_from(bytes);
            }
        }
        for (h, _, bytes) in &mut mem.state {
            if let Some(slot) = host.get_mut(self.optimizer_index(h.buffer)) {
                *slot = std::mem::take(bytes);
            }
        }
        self.run_optimizer(&mut host)?;
        let mut fed_back = HashSet::new();
        for (_, out, bytes) in &mut mem.state {
            *bytes = take_output(&mut host, self.optimizer_index(out.buffer), out)?;
            fed_back.insert(out.name.clone());
        }
        for (_, next, bytes) in &mut mem.scalars {
            if let Some(out) = next {
                *bytes = take_output(&mut host, self.optimizer_index(out.buffer), out)?;
                fed_back.insert(out.name.clone());
            }
        }
        let results = self.optimizer_outputs(&host, |n| {
            !n.starts_with(PARAM_PREFIX) && !fed_back.contains(n)
        })?;
        let updated = if weights {
            self.optimizer_outputs(&host, |n| n.starts_with(PARAM_PREFIX))?
        } else {
            HashMap::new()
        };
        let anchors = IterationAnchors {
            micro_batches: per_micro,
            used,
            results,
        };
        Ok((anchors, updated))
    }
}

/// The bytes of output `out` (at `index` of the optimizer's host buffers), moved out.
fn take_output(host: &mut [Vec<u8>], index: usize, out: &HostTensor) -> Result<Vec<u8>, LoopError> {
    host.get_mut(index)
        .map(std::mem::take)
        .ok_or_else(|| SessionError::Decode(out.name.clone()).into())
}

/// `output` can replace `input` in streaming memory: same type.
fn check_feedback(output: &HostTensor, input: &HostTensor) -> Result<(), LoopError> {
    if output.ty != input.ty {
        return Err(LoopError::Feedback {
            output: output.name.clone(),
            input: input.name.clone(),
            reason: format!("it is {} but the input is {}", output.ty, input.ty),
        });
    }
    Ok(())
}
