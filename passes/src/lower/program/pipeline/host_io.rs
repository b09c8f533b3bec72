//! The host side of a [`PipelineSession`]: a micro-batch's host buffers (inputs from the
//! caller, or copied from the device's streaming memory), the per-micro-batch outputs, the
//! all-reduce of the replicas' gradient sums, and the optimizer program's host buffers
//! (the micro-batch buffers as they are, its own after them: the gradient buffers are not
//! among them, so `step`'s buffer indices past the gradients move down by their count).

use super::PipelineSession;
use crate::lower::program::session::{checked, decode, SessionError};
use std::collections::HashMap;
use tessera_ir::Tensor;
use tessera_runtime::TraceMode;

impl PipelineSession {
    /// Zeroed host buffers of the optimizer program (the micro-batch buffers, then its own).
    pub(super) fn optimizer_host(&self) -> Vec<Vec<u8>> {
        self.optimizer_buffers
            .iter()
            .map(|b| vec![0u8; b.bytes as usize])
            .collect()
    }

    /// The index in the optimizer program's host buffers of `step`'s host buffer `buffer`
    /// (the gradient buffers are not among them).
    pub(super) fn optimizer_index(&self, buffer: u32) -> usize {
        let split = self.micro_buffers.len() as u32;
        let gap = self.pipeline.grad_buffers_end.saturating_sub(split);
        if buffer >= self.pipeline.grad_buffers_end {
            (buffer - gap) as usize
        } else {
            buffer as usize
        }
    }

    /// Runs the optimizer segment on `host` (its program's buffers, filled); `Ok` without
    /// running when the plan has none.
    pub(super) fn run_optimizer(&mut self, host: &mut [Vec<u8>]) -> Result<(), SessionError> {
        let (machine, program) = (&mut self.machine, &self.optimizer);
        if let Some(p) = program {
            self.pool.install(|| machine.run(p, host, TraceMode::Off))?;
        }
        Ok(())
    }

    /// The optimizer's outputs whose names `keep` accepts, decoded from its host buffers.
    pub(super) fn optimizer_outputs(
        &self,
        host: &[Vec<u8>],
        keep: impl Fn(&str) -> bool,
    ) -> Result<HashMap<String, Tensor>, SessionError> {
        let mut out = HashMap::new();
        for o in &self.outputs {
            if self.pipeline.optimizer_outputs.contains(&o.name) && keep(&o.name) {
                let bytes = host
                    .get(self.optimizer_index(o.buffer))
                    .ok_or_else(|| SessionError::Decode(o.name.clone()))?;
                out.insert(o.name.clone(), decode(o, bytes)?);
            }
        }
        Ok(out)
    }

    /// The host buffers of one micro-batch: every input but the optimizer's own, from
    /// `device` when it holds the input's bytes (a copy from streaming memory), else from
    /// `feeds` (checked against the plan's type).
    pub(super) fn micro_host(
        &self,
        feeds: &HashMap<String, Tensor>,
        device: &HashMap<String, Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, SessionError> {
        let mut host: Vec<Vec<u8>> = self
            .micro_buffers
            .iter()
            .map(|b| vec![0u8; b.bytes as usize])
            .collect();
        for i in &self.inputs {
            if self.pipeline.optimizer_only.contains(&i.name) {
                continue;
            }
            if let Some(slot) = host.get_mut(i.buffer as usize) {
                *slot = match device.get(&i.name) {
                    Some(bytes) => bytes.clone(),
                    None => checked("input", i, feeds.get(&i.name))?,
                };
            }
        }
        Ok(host)
    }

    /// The per-micro-batch outputs (the loss) of a replica's micro-batches, decoded.
    pub(super) fn micro_outputs(
        &self,
        hosts: &[Vec<Vec<u8>>],
    ) -> Result<Vec<HashMap<String, Tensor>>, SessionError> {
        let mut per_micro = vec![HashMap::new(); hosts.len()];
        for o in &self.outputs {
            if self.pipeline.per_micro_batch.contains(&o.name) {
                for (host, out) in hosts.iter().zip(per_micro.iter_mut()) {
                    let bytes = host
                        .get(o.buffer as usize)
                        .ok_or_else(|| SessionError::Decode(o.name.clone()))?;
                    out.insert(o.name.clone(), decode(o, bytes)?);
                }
            }
        }
        Ok(per_micro)
    }

    /// Adds the replicas' gradient sums (bytes, in replica order) and, with more than one
    /// replica, streams the total back into the accumulators; returns the total.
    pub(super) fn all_reduce(
        &mut self,
        replicas: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<Vec<u8>>, SessionError> {
        let n = replicas.len();
        let mut sums = replicas.into_iter();
        let mut total = sums.next().unwrap_or_else(|| {
            self.grad_buffers
                .iter()
                .map(|b| vec![0u8; b.bytes as usize])
                .collect()
        });
        for grads in sums {
            for (acc, g) in total.iter_mut().zip(&grads) {
                add_f32_bytes(acc, g);
            }
        }
        if n > 1 {
            let (machine, write) = (&mut self.machine, &self.write);
            self.pool
                .install(|| machine.run(write, &mut total, TraceMode::Off))?;
        }
        Ok(total)
    }
}

/// `acc += g`, both little-endian f32 bytes.
fn add_f32_bytes(acc: &mut [u8], g: &[u8]) {
    for (a, b) in acc.chunks_exact_mut(4).zip(g.chunks_exact(4)) {
        let x = f32::from_le_bytes([a[0], a[1], a[2], a[3]])
            + f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        a.copy_from_slice(&x.to_le_bytes());
    }
}
