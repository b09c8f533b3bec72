//! Executing a [`TilePlan`] on the emulated machine: weights in once, then any number of steps.
//!
//! A [`TileSession`] owns one [`Machine`] (every tile's memory) and the two validated
//! programs. [`TileSession::load`] streams the parameters (by Hugging Face name) and the
//! plan's constants into tile memory; [`TileSession::run`] streams the inputs in, runs the
//! supersteps and returns the outputs. Host tensors are checked against the plan's types first,
//! so a wrong shape or a missing weight is an error naming the tensor, never a bad run.

use super::{HostTensor, TilePlan};
use std::collections::HashMap;
use tessera_ir::{DType, Tensor, TensorData};
use tessera_runtime::error::{ProgramError, RunError};
use tessera_runtime::{LoadedProgram, Machine, Trace, TraceMode};
use thiserror::Error;

/// Errors of executing a plan.
#[derive(Debug, Error)]
pub enum SessionError {
    /// A program of the plan is invalid for the runtime.
    #[error("the plan's {which} program is invalid: {source}")]
    Program {
        /// `load` or `step`.
        which: &'static str,
        /// The runtime's reason.
        source: ProgramError,
    },
    /// The plan needs more memory than a tile has (lowered with `allow_oom`).
    #[error("the plan does not fit in tile memory (it was written with --allow-oom): {0}")]
    DoesNotFit(String),
    /// A tensor the plan needs was not given.
    #[error("missing {kind} `{name}` ({ty})")]
    Missing {
        /// `parameter` or `input`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The type the plan expects.
        ty: String,
    },
    /// A tensor has another type than the plan was compiled for.
    #[error("{kind} `{name}` is {got} but the plan was compiled for {expected}")]
    WrongType {
        /// `parameter` or `input`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What was given.
        got: String,
        /// What the plan needs.
        expected: String,
    },
    /// The runtime failed (e.g. an embedding index out of range).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The thread pool could not be started.
    #[error("cannot start the tile threads: {0}")]
    Threads(String),
    /// A pipeline session was asked to run a plan without a pipeline schedule.
    #[error("the plan has no pipeline schedule (compile it for pipelined training)")]
    NotPipelined,
    /// A host buffer could not be decoded into an output tensor.
    #[error("output `{0}` could not be decoded")]
    Decode(String),
}

/// Row-major little-endian bytes of a tensor.
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    match t.data() {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
    }
}

pub(crate) fn decode(h: &HostTensor, bytes: &[u8]) -> Result<Tensor, SessionError> {
    let shape = h.ty.shape.to_vec();
    let data = match h.ty.dtype {
        DType::F32 => TensorData::F32(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DType::F16 => TensorData::F16(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        DType::I64 => TensorData::I64(
            bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
    };
    Tensor::new(shape, data).map_err(|_| SessionError::Decode(h.name.clone()))
}

pub(crate) fn checked(
    kind: &'static str,
    h: &HostTensor,
    given: Option<&Tensor>,
) -> Result<Vec<u8>, SessionError> {
    let t = given.ok_or_else(|| SessionError::Missing {
        kind,
        name: h.name.clone(),
        ty: h.ty.to_string(),
    })?;
    if t.ty() != h.ty {
        return Err(SessionError::WrongType {
            kind,
            name: h.name.clone(),
            got: t.ty().to_string(),
            expected: h.ty.to_string(),
        });
    }
    Ok(tensor_bytes(t))
}

/// The `load` program's host buffers: the parameters (by name, checked against the plan's
/// types) and the plan's constants.
pub(crate) fn load_buffers(
    load: &LoadedProgram,
    params: &[HostTensor],
    constants: &[(u32, Vec<u8>)],
    weights: &HashMap<String, Tensor>,
) -> Result<Vec<Vec<u8>>, SessionError> {
    let mut host: Vec<Vec<u8>> = vec![Vec::new(); load.program().host_buffers.len()];
    for p in params {
        if let Some(slot) = host.get_mut(p.buffer as usize) {
            *slot = checked("parameter", p, weights.get(&p.name))?;
        }
    }
    for (buffer, bytes) in constants {
        if let Some(slot) = host.get_mut(*buffer as usize) {
            slot.clone_from(bytes);
        }
    }
    Ok(host)
}

/// A plan loaded on an emulated machine.
#[derive(Debug)]
pub struct TileSession {
    machine: Machine,
    /// The threads that run the tiles; each program run enters it once.
    pool: rayon::ThreadPool,
    load: LoadedProgram,
    step: LoadedProgram,
    inputs: Vec<HostTensor>,
    outputs: Vec<HostTensor>,
    params: Vec<HostTensor>,
    constants: Vec<(u32, Vec<u8>)>,
}

impl TileSession {
    /// Validates the plan's programs and allocates every tile's memory; the tiles run on a
    /// thread pool of rayon's default size (`RAYON_NUM_THREADS`, else one per core).
    pub fn new(plan: &TilePlan) -> Result<Self, SessionError> {
        if let Some(oom) = &plan.oom {
            return Err(SessionError::DoesNotFit(oom.to_string()));
        }
        let load =
            LoadedProgram::load(plan.load.clone()).map_err(|source| SessionError::Program {
                which: "load",
                source,
            })?;
        let mut step =
            LoadedProgram::load(plan.step.clone()).map_err(|source| SessionError::Program {
                which: "step",
                source,
            })?;
        // The session runs the precomputed exchange plans; the plan keeps the copy lists.
        step.compact();
        let pool = rayon::ThreadPoolBuilder::new()
            .build()
            .map_err(|e| SessionError::Threads(e.to_string()))?;
        Ok(TileSession {
            machine: Machine::for_program(&step),
            pool,
            load,
            step,
            inputs: plan.inputs.clone(),
            outputs: plan.outputs.clone(),
            params: plan.params.clone(),
            constants: plan
                .constants
                .iter()
                .map(|c| (c.buffer, c.bytes.clone()))
                .collect(),
        })
    }

    /// Streams the parameters (by name) and the plan's constants into tile memory.
    pub fn load(&mut self, weights: &HashMap<String, Tensor>) -> Result<(), SessionError> {
        let mut host = load_buffers(&self.load, &self.params, &self.constants, weights)?;
        self.machine
            .run_in(&self.pool, &self.load, &mut host, TraceMode::Off)?;
        Ok(())
    }

    /// Runs one step (in the session's thread pool, entered once): inputs in, outputs (by
    /// name) out.
    pub fn run(
        &mut self,
        inputs: &HashMap<String, Tensor>,
        mode: TraceMode,
    ) -> Result<(HashMap<String, Tensor>, Trace), SessionError> {
        let mut host: Vec<Vec<u8>> = self
            .step
            .program()
            .host_buffers
            .iter()
            .map(|b| vec![0u8; b.bytes as usize])
            .collect();
        for i in &self.inputs {
            if let Some(slot) = host.get_mut(i.buffer as usize) {
                *slot = checked("input", i, inputs.get(&i.name))?;
            }
        }
        let trace = self
            .machine
            .run_in(&self.pool, &self.step, &mut host, mode)?;
        let mut out = HashMap::new();
        for o in &self.outputs {
            let bytes = host
                .get(o.buffer as usize)
                .ok_or_else(|| SessionError::Decode(o.name.clone()))?;
            out.insert(o.name.clone(), decode(o, bytes)?);
        }
        Ok((out, trace))
    }
}
