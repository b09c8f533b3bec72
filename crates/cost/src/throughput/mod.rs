//! Training throughput of a pipelined, replicated run: [`predict_throughput`].
//!
//! With `P` stages, `R` replicas, gradient accumulation `G`, `D` device iterations and
//! micro-batch `B`, one weight update (a step) takes
//!
//! `step = pipeline_cycles · t_mb + t_opt + t_allreduce`, and
//! `samples/s = B·G·R·D / (D · step)` (device iterations repeat whole steps on the device,
//! so they cancel: host overhead between calls is not modelled).
//!
//! - `pipeline_cycles = 2(P−1) + (G−(P−1)) = G + P − 1` (PopART; for `G < P−1` the same
//!   `G + P − 1` is the makespan of a pipeline that never fills). The unit is one
//!   micro-batch's forward and backward on the slowest stage: in PopART's `2P−1`-slot
//!   schedule the `2(P−1)` fill and drain slots each run only a forward or only a
//!   backward, which together weigh about `P−1` full slots.
//! - `t_mb = max over stages` of: the stage's forward and backward cycles per micro-batch
//!   (recomputation and gradient accumulation included) at the target clock, plus its
//!   inter-chip copies: `(max(sent, received) of activations + max(sent, received) of
//!   gradients) / (links_per_copy × link_bytes_per_s)` and, with `P > 1`, two inter-chip
//!   syncs (forward and backward copy phases) of `inter_chip_sync_cycles(P) +
//!   exchange_overhead_cycles` each.
//! - `t_opt = max over stages` of the optimizer step: its compute and exchange cycles
//!   divided by `R` with replicated tensor sharding (each replica updates `1/R` of every
//!   weight), plus its syncs; and with `optimizer_state_offchip`, streaming the state
//!   (`1/R` of it with sharding) in and out: `2 · state bytes / streaming_bytes_per_s`.
//! - `t_allreduce = max over stages` (each stage's chips form their own ring across the
//!   replicas) of a ring all-reduce of the stage's gradients: `2(R−1)/R · gradient bytes /
//!   (links_per_copy × link_bytes_per_s)` plus `2(R−1)` inter-chip syncs over `P·R` chips.
//!   With replicated tensor sharding the all-reduce becomes a reduce-scatter of gradients
//!   and an all-gather of updated weights, `(R−1)/R · (gradient + weight bytes)`.
//!
//! The report ([`Throughput`]) gives every term in seconds, the bottleneck stage, the
//! balance `max stage / mean stage`, and the lower bound of a perfectly balanced pipeline
//! (`t_mb = Σ stages / P`).

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use tessera_target::{IpuConfig, Target};

use crate::{CostError, GraphCost};

/// Parallelism settings of a training run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// Pipeline stages (chips per replica), `P ≥ 1`.
    pub stages: u32,
    /// Data-parallel replicas, `R ≥ 1`.
    pub replicas: u32,
    /// Micro-batches per weight update, `G ≥ 1`.
    pub grad_accum: u32,
    /// Steps run on the device per host call, `D ≥ 1`.
    pub device_iterations: u32,
    /// Samples per micro-batch, `B ≥ 1`.
    pub micro_batch: u32,
    /// Optimizer state lives in streaming memory.
    pub optimizer_state_offchip: bool,
    /// Optimizer state (and its update) is sharded over the replicas.
    pub replicated_tensor_sharding: bool,
}

impl Default for PipelineConfig {
    /// One chip, one replica, no accumulation, micro-batch 1, state on chip.
    fn default() -> Self {
        PipelineConfig {
            stages: 1,
            replicas: 1,
            grad_accum: 1,
            device_iterations: 1,
            micro_batch: 1,
            optimizer_state_offchip: false,
            replicated_tensor_sharding: false,
        }
    }
}

/// `value` as a count of at least 1 for `field`.
fn count(field: &'static str, value: usize) -> Result<u32, CostError> {
    u32::try_from(value)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| CostError::InvalidOption {
            field,
            value: value.to_string(),
            expected: "an integer between 1 and 2^32 - 1",
        })
}

impl PipelineConfig {
    /// Checks that every count is at least 1.
    pub fn validate(&self) -> Result<(), CostError> {
        let fields = [
            ("stages", self.stages),
            ("replicas", self.replicas),
            ("grad_accum", self.grad_accum),
            ("device_iterations", self.device_iterations),
            ("micro_batch", self.micro_batch),
        ];
        for (field, value) in fields {
            if value == 0 {
                return Err(CostError::InvalidOption {
                    field,
                    value: "0".into(),
                    expected: "at least 1",
                });
            }
        }
        Ok(())
    }

    /// The training settings of an optimum-graphcore IPU configuration with micro-batch
    /// `micro_batch` (a training argument, not part of the configuration).
    pub fn from_ipu_config(config: &IpuConfig, micro_batch: u32) -> Result<Self, CostError> {
        let cfg = PipelineConfig {
            stages: count("ipus_per_replica", config.ipus_per_replica)?,
            replicas: count("replication_factor", config.replication_factor)?,
            grad_accum: count(
                "gradient_accumulation_steps",
                config.gradient_accumulation_steps,
            )?,
            device_iterations: count("device_iterations", config.device_iterations)?,
            micro_batch,
            optimizer_state_offchip: config.optimizer_state_offchip,
            replicated_tensor_sharding: config.replicated_tensor_sharding,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Pipeline cycles of one step: `2(P−1) + (G−(P−1)) = G + P − 1`.
    pub fn pipeline_cycles(&self) -> u64 {
        u64::from(self.grad_accum) + u64::from(self.stages) - 1
    }

    /// Samples per step: `B·G·R`.
    pub fn samples_per_step(&self) -> u64 {
        u64::from(self.micro_batch) * u64::from(self.grad_accum) * u64::from(self.replicas)
    }

    /// The factor by which replicated tensor sharding divides optimizer work and state.
    fn shards(&self) -> u64 {
        if self.replicated_tensor_sharding && self.replicas > 1 {
            u64::from(self.replicas)
        } else {
            1
        }
    }
}

/// One stage's time per micro-batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// The stage.
    pub stage: u32,
    /// Forward and backward compute, exchange and sync, seconds.
    pub compute_s: f64,
    /// Inter-chip copies and their syncs, seconds.
    pub copy_s: f64,
    /// `compute_s + copy_s`.
    pub total_s: f64,
}

/// A throughput prediction with its breakdown (all times in seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Training samples per second.
    pub samples_per_s: f64,
    /// Samples per step (`B·G·R`).
    pub samples_per_step: u64,
    /// One step (weight update).
    pub step_s: f64,
    /// Pipeline cycles per step (`G + P − 1`).
    pub pipeline_cycles: u64,
    /// `pipeline_cycles × micro_batch_s`.
    pub pipeline_s: f64,
    /// The slowest stage's time per micro-batch.
    pub micro_batch_s: f64,
    /// The stage with the largest time per micro-batch.
    pub bottleneck_stage: u32,
    /// Per-stage times per micro-batch.
    pub stages: Vec<StageTime>,
    /// `max stage time / mean stage time` (1 is perfect balance).
    pub balance: f64,
    /// Optimizer step (compute and streaming, slowest stage).
    pub optimizer_s: f64,
    /// The streaming part of `optimizer_s`'s stage.
    pub optimizer_streaming_s: f64,
    /// Gradient all-reduce across replicas (slowest stage).
    pub all_reduce_s: f64,
    /// Per-micro-batch time of a perfectly balanced pipeline: `Σ stage times / P`.
    pub balanced_micro_batch_s: f64,
    /// Samples per second of a perfectly balanced pipeline (an upper bound on what
    /// re-partitioning the same graph can reach under this model).
    pub balanced_samples_per_s: f64,
    /// The limit of samples per second as `G → ∞`: `B·R / micro_batch_s`.
    pub asymptote_samples_per_s: f64,
}

/// Predicts training throughput of the costed graph with `pipeline` on `target`.
pub fn predict_throughput(
    graph_cost: &GraphCost,
    target: &Target,
    pipeline: &PipelineConfig,
) -> Result<Throughput, CostError> {
    pipeline.validate()?;
    target.validate().map_err(|e| CostError::InvalidTarget {
        target: target.name.clone(),
        reason: e.to_string(),
    })?;
    if graph_cost.stages.len() != pipeline.stages as usize {
        return Err(CostError::InvalidOption {
            field: "stages",
            value: pipeline.stages.to_string(),
            expected: "the number of stages the graph was costed for",
        });
    }
    let (p, r) = (pipeline.stages, pipeline.replicas);
    let links = f64::from(graph_cost.options.assumptions.links_per_copy.max(1));
    let link = target.link_bytes_per_s * links;
    if (p > 1 || r > 1) && link <= 0.0 {
        return Err(CostError::MissingResource {
            target: target.name.clone(),
            reason: "pipelining or replication needs IPU-Links, and link_bytes_per_s is 0".into(),
        });
    }
    let secs = |cycles: f64| target.cycles_to_seconds(cycles);
    let overhead = f64::from(target.exchange_overhead_cycles);
    let copy_sync = if p > 1 {
        2.0 * secs(target.inter_chip_sync_cycles(p) as f64 + overhead)
    } else {
        0.0
    };
    let stages: Vec<StageTime> = graph_cost
        .stages
        .iter()
        .map(|s| {
            let compute = (s.forward.cycles.total() + s.backward.cycles.total()) as f64;
            let c = &s.copies;
            let bytes =
                c.forward_sent.max(c.forward_received) + c.backward_sent.max(c.backward_received);
            let copy_s = if p > 1 {
                bytes as f64 / link + copy_sync
            } else {
                0.0
            };
            StageTime {
                stage: s.stage,
                compute_s: secs(compute),
                copy_s,
                total_s: secs(compute) + copy_s,
            }
        })
        .collect();
    let (bottleneck_stage, micro_batch_s) = stages
        .iter()
        .map(|s| (s.stage, s.total_s))
        .fold((0, 0.0), |best, x| if x.1 > best.1 { x } else { best });
    let sum: f64 = stages.iter().map(|s| s.total_s).sum();
    let mean = sum / f64::from(p);
    let balance = if mean > 0.0 {
        micro_batch_s / mean
    } else {
        1.0
    };

    let shards = pipeline.shards();
    let mut optimizer_s = 0.0f64;
    let mut optimizer_streaming_s = 0.0;
    let mut all_reduce_s = 0.0f64;
    for s in &graph_cost.stages {
        let c = &s.optimizer.cycles;
        let work = (c.compute + c.exchange) as f64 / shards as f64;
        let mut t = secs(work + c.sync as f64);
        let mut streaming = 0.0;
        if pipeline.optimizer_state_offchip && s.optimizer_state_bytes > 0 {
            if target.streaming_bytes_per_s <= 0.0 {
                return Err(CostError::MissingResource {
                    target: target.name.clone(),
                    reason: "optimizer_state_offchip needs streaming memory bandwidth".into(),
                });
            }
            let state = s.optimizer_state_bytes.div_ceil(shards) as f64;
            streaming = 2.0 * state / target.streaming_bytes_per_s;
            t += streaming;
        }
        if t > optimizer_s {
            optimizer_s = t;
            optimizer_streaming_s = streaming;
        }
        if r > 1 {
            let rf = f64::from(r);
            let moved = if shards > 1 {
                (rf - 1.0) / rf * (s.gradient_bytes + s.trained_weight_bytes) as f64
            } else {
                2.0 * (rf - 1.0) / rf * s.gradient_bytes as f64
            };
            let syncs =
                2.0 * (rf - 1.0) * secs(target.inter_chip_sync_cycles(p * r) as f64 + overhead);
            all_reduce_s = all_reduce_s.max(moved / link + syncs);
        }
    }
    let pipeline_cycles = pipeline.pipeline_cycles();
    let samples_per_step = pipeline.samples_per_step();
    let fixed = optimizer_s + all_reduce_s;
    let step_s = pipeline_cycles as f64 * micro_batch_s + fixed;
    let per_s = |step: f64| {
        let d = f64::from(pipeline.device_iterations);
        if step > 0.0 {
            samples_per_step as f64 * d / (d * step)
        } else {
            f64::INFINITY
        }
    };
    let balanced_micro_batch_s = mean;
    Ok(Throughput {
        samples_per_s: per_s(step_s),
        samples_per_step,
        step_s,
        pipeline_cycles,
        pipeline_s: pipeline_cycles as f64 * micro_batch_s,
        micro_batch_s,
        bottleneck_stage,
        stages,
        balance,
        optimizer_s,
        optimizer_streaming_s,
        all_reduce_s,
        balanced_micro_batch_s,
        balanced_samples_per_s: per_s(pipeline_cycles as f64 * balanced_micro_batch_s + fixed),
        asymptote_samples_per_s: if micro_batch_s > 0.0 {
            f64::from(pipeline.micro_batch) * f64::from(r) / micro_batch_s
        } else {
            f64::INFINITY
        },
    })
}
