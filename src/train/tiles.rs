//! The training step on the emulated tiles (`tessera train --engine tiles`): pipelined,
//! replicated, with gradients accumulated on the tiles.
//!
//! The gradient graph (forward, loss, backward) is placed on the replica's chips by the
//! pipeline pass (the placement and recomputation the compile flags and IPU configuration
//! ask for) and lowered once as a pipeline ([`lower_pipelined`]): each stage's forward and
//! backward are segments of PopART's schedule, stashes keep the micro-batches in flight, and
//! the gradients are summed on the tiles. A step runs the schedule over `G` micro-batches on
//! every replica; the replicas' gradient sums are then all-reduced (the emulated replicas take
//! turns on one emulated machine, since their weights are identical, and their sums are
//! added on the host and streamed back into the accumulators), and the optimizer runs on the
//! tiles: its Adam moments live off chip and are streamed onto the tiles for the update and
//! back (`optimizer_state_offchip`), the updated weights stay on the tiles.
//!
//! [`TileStep::run`] is one step per host call (the host feeds the optimizer state and the
//! step's scalars); [`TileStep::run_loop`] runs several steps per call as a device loop
//! ([`PipelineSession::device_loop`]): the state stays in the session's streaming memory
//! from one loop to the next, and the step count and loss scale evolve on the device.

use super::precision::optim_precision;
use super::TrainConfig;
use anyhow::{Context, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use tessera_ir::{Graph, Tensor};
use tessera_passes::lower::program::pipeline::{
    lower_pipelined_with, DeviceLoop, LoopShape, PipelineSession,
};
use tessera_passes::lower::program::{HostTensor, LowerOptions, TilePlan};
use tessera_passes::optim::{
    add_device_counters, build_optimizer_graph_sharded, trainer_optim_params,
};
use tessera_passes::{pipeline, PipelineConfig};
use tessera_runtime::TraceMode;
use tessera_target::Target;

/// The optimizer graph a tile plan runs after the flush, for the training graph
/// `grad_graph` under `cfg`: the reference engine's (AdamW with the schedule, Trainer's
/// weight-decay grouping, the storage types of `cfg`'s precision, the non-finite guard),
/// with the device counters (`step_next`, and with dynamic loss scaling `loss_scale_next`
/// and `clean_steps_next`) that let device loops run it without the host.
/// With `shards` > 1 each weight's update is split into that many row slices
/// (replicated tensor sharding: see [`optimizer_shards`]).
pub fn tile_optimizer_graph(grad_graph: &Graph, cfg: &TrainConfig, shards: usize) -> Result<Graph> {
    cfg.validate()?;
    let params = trainer_optim_params(grad_graph)?;
    let prec = optim_precision(cfg.precision.as_ref());
    let g = build_optimizer_graph_sharded(&params, &cfg.adamw(), &prec, shards)?;
    Ok(add_device_counters(&g, cfg.scale_rule())?)
}

/// The slices the optimizer's update is split into: the replicas with replicated tensor
/// sharding (each replica updates its slice of every weight, with its slice of the state;
/// the emulated replicas take turns, so the plan runs every slice in sequence), else 1.
pub fn optimizer_shards(replicated_tensor_sharding: bool, replicas: usize) -> usize {
    if replicated_tensor_sharding && replicas > 1 {
        replicas
    } else {
        1
    }
}

/// How the training step is placed and lowered.
#[derive(Debug, Clone)]
pub struct TileSetup {
    /// The target chip.
    pub target: Target,
    /// Placement, recomputation and the cost model's parallelism (stages = chips per
    /// replica, replicas, gradient accumulation).
    pub pipeline: PipelineConfig,
    /// Fraction of tile memory a matmul may use.
    pub matmul_proportion: f64,
    /// Fuse sibling matmuls and lay shared weights out once (`LowerOptions::fuse_matmuls`;
    /// off with `--no-fuse-matmuls`).
    pub fuse_matmuls: bool,
    /// The optimizer runs on the host (the reference evaluator's AdamW on the summed
    /// gradients the tiles stream out; the plan holds the pipeline only) instead of on the
    /// tiles after the flush.
    pub host_optimizer: bool,
}

/// The `loss` output of every micro-batch, in order.
fn losses(micro_batches: &[HashMap<String, Tensor>]) -> Result<Vec<f64>> {
    micro_batches
        .iter()
        .map(|m| {
            let loss = m
                .get("loss")
                .context("the plan has no `loss` output")?
                .to_f64_vec();
            loss.first().copied().context("empty loss")
        })
        .collect()
}

/// A gradient graph lowered to a pipelined tile plan, with its machine.
pub struct TileStep {
    session: PipelineSession,
    /// The plan, without its step's supersteps (they are in the session).
    plan: TilePlan,
    /// Supersteps of the step program.
    supersteps: usize,
    /// The pipeline cost model's training throughput on the target hardware.
    predicted_samples_per_s: f64,
    replicas: usize,
    grad_accum: usize,
    /// Whether the weights were streamed onto the tiles (once: the optimizer updates them
    /// there).
    loaded: bool,
    /// Whether the session's streaming memory holds the optimizer state (after a device
    /// loop; a host-driven step hands the state back to the host).
    streaming: bool,
}

impl std::fmt::Debug for TileStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileStep")
            .field("supersteps", &self.supersteps)
            .field("chips", &self.plan.step.chips)
            .finish()
    }
}

/// One step's results on the tiles.
#[derive(Debug, Clone)]
pub struct TileStepResult {
    /// Loss of every micro-batch, replica-major.
    pub losses: Vec<f64>,
    /// The optimizer's outputs (updated weights `param.*`, moments, `lr`, `grad_norm`,
    /// `found_inf`).
    pub optimizer: HashMap<String, Tensor>,
}

impl TileStep {
    /// Places `grad_graph` and lowers it as a pipeline, with `optimizer` (the optimizer graph)
    /// on the tiles after the flush, or without one (the host runs it: [`TileStep::run_grads`]).
    pub fn new(grad_graph: &Graph, optimizer: Option<&Graph>, setup: &TileSetup) -> Result<Self> {
        let (placed, report) = pipeline(grad_graph, &setup.pipeline, &setup.target)
            .context("placing the training step on the chips")?;
        let p = &setup.pipeline.cost.pipeline;
        let mut plan = lower_pipelined_with(
            &placed,
            optimizer,
            &setup.target,
            &LowerOptions {
                chips: p.stages,
                allow_oom: false,
                matmul_proportion: setup.matmul_proportion,
                fuse_matmuls: setup.fuse_matmuls,
            },
        )
        .context("lowering the training step to tiles")?;
        // The programs move into the session (a large plan's copy lists are not kept twice);
        // the step keeps the rest of the plan.
        let supersteps = plan.step.supersteps.len();
        let programs = std::mem::take(&mut plan.step.supersteps);
        let mut for_session = plan.clone();
        for_session.step.supersteps = programs;
        let session = PipelineSession::from_plan(for_session)?;
        Ok(TileStep {
            session,
            replicas: p.replicas.max(1) as usize,
            grad_accum: p.grad_accum.max(1) as usize,
            plan,
            supersteps,
            predicted_samples_per_s: report.samples_per_s,
            loaded: false,
            streaming: false,
        })
    }

    /// Supersteps of one micro-batch through every segment.
    pub fn supersteps(&self) -> usize {
        self.supersteps
    }

    /// Training samples per second the pipeline cost model predicts on the target hardware
    /// for this placement, replicas and gradient accumulation.
    pub fn predicted_samples_per_s(&self) -> f64 {
        self.predicted_samples_per_s
    }

    /// Whether the plan runs the optimizer after the flush (else the host runs it).
    pub fn optimizer_on_tiles(&self) -> bool {
        self.plan
            .pipeline
            .as_ref()
            .is_some_and(|p| p.optimizer.is_some())
    }

    /// One step's losses and gradients for a host optimizer: `params` streamed onto the
    /// tiles (every call: the host updates them), then the schedule over `micro_batches`
    /// ([`TileStep::micro_batches`] feeds, replica-major) and the replicas' gradient sums,
    /// all-reduced (`grad.<p>`, f32, multiplied by the loss scale the feeds carry).
    pub fn run_grads(
        &mut self,
        params: &HashMap<String, Tensor>,
        micro_batches: &[HashMap<String, Tensor>],
    ) -> Result<(Vec<f64>, HashMap<String, Tensor>)> {
        self.session
            .load(&cast_to_plan(&self.plan.params, params))
            .context("streaming the weights onto the tiles")?;
        let replicas: Vec<&[HashMap<String, Tensor>]> =
            micro_batches.chunks(self.grad_accum).collect();
        let out = self.session.step_full(&replicas, None, TraceMode::Off)?;
        Ok((losses(&out.micro_batches)?, out.grads))
    }

    /// The lowered plan, without its step program's supersteps (the session holds them;
    /// [`TileStep::supersteps`] counts them).
    pub fn plan(&self) -> &TilePlan {
        &self.plan
    }

    /// Micro-batches a step consumes: replicas × gradient accumulation.
    pub fn micro_batches(&self) -> usize {
        self.replicas * self.grad_accum
    }

    /// One step: `micro_batches` holds [`TileStep::micro_batches`] feeds, replica-major;
    /// `optimizer` the optimizer's state and scalars by name. `params` are streamed onto the
    /// tiles before the first step only: from then on the optimizer keeps them there.
    pub fn run(
        &mut self,
        params: &HashMap<String, Tensor>,
        micro_batches: &[HashMap<String, Tensor>],
        optimizer: &HashMap<String, Tensor>,
    ) -> Result<TileStepResult> {
        self.ensure_loaded(params)?;
        // From now on the host holds the optimizer state.
        self.streaming = false;
        let replicas: Vec<&[HashMap<String, Tensor>]> =
            micro_batches.chunks(self.grad_accum).collect();
        let out = self
            .session
            .step_full(&replicas, Some(optimizer), TraceMode::Off)?;
        Ok(TileStepResult {
            losses: losses(&out.micro_batches)?,
            optimizer: out.optimizer,
        })
    }
}

impl TileStep {
    /// Streams `params` onto the tiles unless they are there already.
    fn ensure_loaded(&mut self, params: &HashMap<String, Tensor>) -> Result<()> {
        if !self.loaded {
            self.session
                .load(&cast_to_plan(&self.plan.params, params))
                .context("streaming the weights onto the tiles")?;
            self.loaded = true;
        }
        Ok(())
    }

    /// `iterations` steps as one device loop: `micro_batches` holds `iterations ×`
    /// [`TileStep::micro_batches`] feeds (step after step, replica-major within a step;
    /// without the loss scale, which comes from the device). The streaming memory is
    /// initialised from `state()` (the optimizer state and the step's scalars by name) when
    /// the host holds the state, i.e. before the first loop and after a host-driven step.
    pub fn run_loop(
        &mut self,
        params: &HashMap<String, Tensor>,
        micro_batches: &[HashMap<String, Tensor>],
        iterations: usize,
        state: impl FnOnce() -> HashMap<String, Tensor>,
    ) -> Result<DeviceLoop> {
        self.ensure_loaded(params)?;
        if !self.streaming {
            self.session
                .init_streaming_memory(&state())
                .context("initialising the streaming memory")?;
            self.streaming = true;
        }
        let shape = LoopShape {
            iterations,
            replicas: self.replicas,
            grad_accum: self.grad_accum,
        };
        Ok(self.session.device_loop(shape, micro_batches)?)
    }
}

/// `params` with every floating-point value whose type differs from the plan's parameter of
/// the same name cast to that type (f32 weights for an f16 plan, say); borrowed unchanged when
/// nothing needs a cast. Missing or non-float values are left for the session to report.
fn cast_to_plan<'p>(
    plan_params: &[HostTensor],
    params: &'p HashMap<String, Tensor>,
) -> Cow<'p, HashMap<String, Tensor>> {
    let needs_cast = |h: &HostTensor| {
        params.get(&h.name).is_some_and(|t| {
            t.dtype() != h.ty.dtype && t.dtype().is_float() && h.ty.dtype.is_float()
        })
    };
    if !plan_params.iter().any(needs_cast) {
        return Cow::Borrowed(params);
    }
    let mut out = params.clone();
    for h in plan_params.iter().filter(|h| needs_cast(h)) {
        if let Some(t) = out.get_mut(&h.name) {
            *t = t.cast(h.ty.dtype);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::{DType, TensorType};

    #[test]
    fn f32_weights_are_cast_to_an_f16_plan() {
        // f16(1/3) = 1365/4096 (1/3 = 1.0101…₂ × 2⁻², rounded down to 10 fraction bits).
        let plan = [HostTensor {
            name: "w".into(),
            ty: TensorType::new(DType::F16, vec![4]),
            buffer: 0,
        }];
        let params = HashMap::from([(
            "w".to_string(),
            Tensor::from_f32(vec![4], vec![1.0 / 3.0; 4]).unwrap(),
        )]);
        let cast = cast_to_plan(&plan, &params);
        assert_eq!(cast["w"].dtype(), DType::F16);
        assert_eq!(cast["w"].to_f64_vec(), vec![1365.0 / 4096.0; 4]);
        // Matching types are streamed as given, without a copy.
        let f16_params = HashMap::from([("w".to_string(), params["w"].cast(DType::F16))]);
        assert!(matches!(cast_to_plan(&plan, &f16_params), Cow::Borrowed(_)));
    }
}
