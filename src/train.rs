//! Training on the reference evaluator: the gradient graph of one micro-batch, the optimizer
//! graph, and the host loop that accumulates micro-batch gradients between them.
//!
//! The forward graph gets the VQA loss chosen by the labels (`tessera_passes::loss`), then
//! the `autodiff` pass; the optimizer (AdamW with transformers' linear warmup schedule,
//! gradient-accumulation mean, optional clipping) is its own graph
//! (`tessera_passes::optim`). The host sums the K micro-batch gradients, feeds the sum to
//! the optimizer graph and keeps the weights and Adam moments between steps. Weight decay is
//! grouped as transformers' Trainer does: none for biases and LayerNorm weights.
//!
//! Mixed precision ([`TrainConfig::precision`], [`precision`]): the `mixed-precision` pass
//! runs on the forward graph before the loss and autodiff; the weights are cast to the
//! graph's parameter types (f16 under `master_weights = f16`); the optimizer keeps its
//! arithmetic in f32 with the configured storage types. Loss scaling multiplies the loss by
//! the scale fed through the gradient graph's `loss_scale` input; the optimizer divides it
//! out. A step whose summed gradients hold an inf or NaN is skipped (weights, moments and
//! the optimizer's step count unchanged; the log says `skipped`), whatever the precision;
//! dynamic scaling then halves the scale and doubles it after N clean steps. Stochastic
//! rounding evaluates both graphs with a seed derived per step and micro-batch.
//!
//! On the tiles ([`Trainer::use_tiles`]) a step is either driven by the host
//! ([`Trainer::step`]: the host feeds the moments, the step count and the loss scale) or one
//! of `N` device iterations ([`Trainer::steps_on_device`], [`device`]): the optimizer graph
//! then also computes the next step count and loss scale
//! ([`tessera_passes::optim::counters`]), and the host only reads the anchors back.

mod config;
mod device;
pub mod precision;
pub mod tiles;

pub use config::{TrainConfig, SCALE_FLOOR};

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use tessera_ir::eval::EvalOptions;
use tessera_ir::{Graph, Tensor, TensorData, TensorType};
use tessera_passes::autodiff::{autodiff, AutodiffOptions};
use tessera_passes::mixed_precision::{all_finite, LossScaler, LOSS_SCALE_INPUT};
use tessera_passes::optim::{build_optimizer_graph_with, AdamWConfig};

/// What one training step reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepLog {
    /// 1-based step number (skipped steps included).
    pub step: usize,
    /// Mean loss over the step's micro-batches.
    pub loss: f64,
    /// Learning rate of this step (of the schedule position it would have used if skipped).
    pub lr: f64,
    /// Loss scale the step used (1 without loss scaling).
    pub loss_scale: f64,
    /// True when the gradients held an inf or NaN and the update was not applied.
    pub skipped: bool,
    /// Samples per second of this step (wall time).
    pub samples_per_second: f64,
    /// Global norm of the mean gradient (NaN, written `null`, for a skipped step).
    pub grad_norm: f64,
}

/// The compiled training step and the training state.
pub struct Trainer {
    grad_graph: Graph,
    opt_graph: Graph,
    /// Current weights by parameter name (in the gradient graph's parameter types).
    pub params: HashMap<String, Tensor>,
    moments: HashMap<String, Tensor>,
    trainable: Vec<String>,
    cfg: TrainConfig,
    adam: AdamWConfig,
    /// Optimizer steps applied (the schedule's and Adam's step count).
    step: usize,
    /// Training steps run, skipped ones included.
    iteration: usize,
    scaler: LossScaler,
    /// Consecutive clean steps of dynamic loss scaling (the scaler's count, mirrored for
    /// the optimizer on the tiles, which evolves it on the device).
    clean_steps: u32,
    /// The gradient graph on the emulated tiles (`train --engine tiles`), if chosen.
    tiles: Option<tiles::TileStep>,
}

/// Builds the gradient graph of `forward` for labels of type `labels`: loss + autodiff,
/// with the gradient seed `loss_scale` (gradients come out multiplied by it).
pub fn gradient_graph(forward: &Graph, labels: &TensorType, loss_scale: f64) -> Result<Graph> {
    let with_loss = tessera_passes::loss::attach_vqa_loss(forward, labels)?;
    let opts = AutodiffOptions {
        seed_scale: loss_scale,
        ..Default::default()
    };
    Ok(autodiff(&with_loss, &opts)?)
}

impl Trainer {
    /// Compiles the training step for `forward` (a model graph with the QA head) and labels of
    /// type `labels`, starting from `params` (f32; cast to the graph's parameter types).
    pub fn new(
        forward: &Graph,
        labels: &TensorType,
        params: HashMap<String, Tensor>,
        cfg: TrainConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        let precision = cfg.precision.as_ref();
        let (grad_graph, _) = precision::mixed_gradient_graph(forward, labels, precision)?;
        let params = precision::params_for_graph(&grad_graph, &params);
        // transformers' Trainer grouping: no decay on biases and LayerNorm weights.
        let optim_params = tessera_passes::optim::trainer_optim_params(&grad_graph)?;
        let trainable: Vec<String> = optim_params.iter().map(|p| p.name.clone()).collect();
        let adam = cfg.adamw();
        let prec = precision::optim_precision(precision);
        let opt_graph = build_optimizer_graph_with(&optim_params, &adam, &prec)?;
        let mut moments = HashMap::new();
        for p in &optim_params {
            for (kind, dtype) in [
                ("adam_m", prec.first_moment),
                ("adam_v", prec.second_moment),
            ] {
                let ty = p.ty.with_dtype(dtype.unwrap_or(p.ty.dtype));
                moments.insert(format!("{kind}.{}", p.name), Tensor::zeros(&ty));
            }
        }
        let scaler = LossScaler::new(
            precision
                .map(|c| c.loss_scaling)
                .unwrap_or(tessera_passes::mixed_precision::LossScaling::None),
        );
        Ok(Trainer {
            grad_graph,
            opt_graph,
            params,
            moments,
            trainable,
            cfg,
            adam,
            step: 0,
            iteration: 0,
            scaler,
            clean_steps: 0,
            tiles: None,
        })
    }

    /// Runs the training step on the emulated tiles from now on: placed and lowered as a
    /// pipeline by `setup`, in fp32 or mixed precision (the reference engine's arithmetic, bit
    /// for bit up to the order of matmul sums; fp16 partials are rounded once per tile's block
    /// rather than after every multiply-add). Every step then consumes `replicas × G`
    /// micro-batches, which must be this trainer's `grad_accum`. Returns the supersteps of one
    /// micro-batch. Stochastic rounding is refused: the tile vertices round to nearest even.
    pub fn use_tiles(&mut self, setup: &tiles::TileSetup) -> Result<usize> {
        if self
            .cfg
            .precision
            .as_ref()
            .is_some_and(|c| c.stochastic_rounding)
        {
            bail!(
                "stochastic rounding is not supported on tiles (the tile vertices round to \
                 nearest even): pass --stochastic-rounding=false, or use --engine reference"
            );
        }
        // The tiles' optimizer also computes the next step count and loss scale, so that
        // device loops can evolve them without the host.
        let p = &setup.pipeline.cost.pipeline;
        let shards = tiles::optimizer_shards(p.replicated_tensor_sharding, p.replicas as usize);
        let opt = tiles::tile_optimizer_graph(&self.grad_graph, &self.cfg, shards)?;
        let on_tiles = (!setup.host_optimizer).then_some(&opt);
        let t = tiles::TileStep::new(&self.grad_graph, on_tiles, setup)?;
        if t.micro_batches() != self.cfg.grad_accum {
            bail!(
                "the tile step takes {} micro-batches (replicas × gradient accumulation) but the \
                 trainer accumulates {}",
                t.micro_batches(),
                self.cfg.grad_accum
            );
        }
        let steps = t.supersteps();
        self.tiles = Some(t);
        Ok(steps)
    }

    /// The pipelined tile step, if training runs on the tiles.
    pub fn tile_step(&self) -> Option<&tiles::TileStep> {
        self.tiles.as_ref()
    }

    /// The gradient graph (forward + loss + backward).
    pub fn grad_graph(&self) -> &Graph {
        &self.grad_graph
    }

    /// The optimizer graph.
    pub fn optimizer_graph(&self) -> &Graph {
        &self.opt_graph
    }

    /// The current loss scale (1 without loss scaling).
    pub fn loss_scale(&self) -> f64 {
        self.scaler.scale()
    }

    /// Optimizer steps applied so far (skipped steps excluded).
    pub fn optimizer_steps(&self) -> usize {
        self.step
    }

    /// Evaluation options of micro-batch `micro` of the current step.
    fn eval_options(&self, micro: u64) -> EvalOptions {
        let sr = self
            .cfg
            .precision
            .as_ref()
            .filter(|c| c.stochastic_rounding);
        EvalOptions {
            stochastic_rounding: sr
                .map(|c| precision::rounding_seed(c.seed, self.iteration as u64, micro)),
        }
    }

    /// Loss and gradients of one micro-batch (`inputs` include `labels`); the gradients are
    /// multiplied by the current loss scale.
    pub fn loss_and_grads(
        &mut self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<(f64, BTreeMap<String, Tensor>)> {
        let opts = self.eval_options(0);
        self.loss_and_grads_with(inputs, &opts)
    }

    fn loss_and_grads_with(
        &mut self,
        inputs: &HashMap<String, Tensor>,
        opts: &EvalOptions,
    ) -> Result<(f64, BTreeMap<String, Tensor>)> {
        let scaled;
        let inputs = if self.grad_graph.input_by_name(LOSS_SCALE_INPUT).is_ok() {
            let mut with_scale = inputs.clone();
            with_scale.insert(
                LOSS_SCALE_INPUT.to_string(),
                Tensor::scalar_f32(self.scaler.scale() as f32),
            );
            scaled = with_scale;
            &scaled
        } else {
            inputs
        };
        let mut out: BTreeMap<String, Tensor> =
            tessera_ir::eval::evaluate_with(&self.grad_graph, inputs, &self.params, opts)
                .context("evaluating the gradient graph")?;
        let loss = out
            .remove("loss")
            .context("gradient graph has no `loss` output")?
            .to_f64_vec()
            .first()
            .copied()
            .context("empty loss")?;
        Ok((loss, out))
    }

    /// One training step over `grad_accum` micro-batches drawn from `next`: the update is
    /// applied unless a summed gradient holds an inf or NaN (then the step is skipped and,
    /// with dynamic loss scaling, the scale halved).
    pub fn step(
        &mut self,
        mut next: impl FnMut() -> Result<HashMap<String, Tensor>>,
    ) -> Result<StepLog> {
        let start = std::time::Instant::now();
        if self.tiles.is_some() {
            return self.step_on_tiles(next, start);
        }
        let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
        let mut loss = 0.0;
        let mut samples = 0;
        for micro in 0..self.cfg.grad_accum {
            let inputs = next()?;
            samples += inputs
                .get("labels")
                .and_then(|t| t.shape().first().copied())
                .unwrap_or(1);
            let opts = self.eval_options(micro as u64);
            let (l, grads) = self.loss_and_grads_with(&inputs, &opts)?;
            loss += l;
            for (k, g) in grads {
                let name = k.trim_start_matches("grad.").to_string();
                let g = g.to_f32_vec();
                match sums.get_mut(&name) {
                    Some(s) => s.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
                    None => {
                        sums.insert(name, g);
                    }
                }
            }
        }
        let mut skipped = !sums.values().all(|v| v.iter().all(|x| x.is_finite()));
        let mut lr = self.adam.lr_at(self.step as u64);
        let mut grad_norm = f64::NAN;
        if !skipped {
            let out = self.optimizer_step(&mut sums)?;
            match out {
                Some((l, n)) => (lr, grad_norm) = (l, n),
                None => skipped = true,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(self.finish_step(loss, samples, skipped, (lr, grad_norm), secs))
    }

    /// The log of a finished step (`loss`: summed over its micro-batches; `secs`: its wall
    /// time); the loss scale moves on (backs off after a skipped step).
    fn finish_step(
        &mut self,
        loss: f64,
        samples: usize,
        skipped: bool,
        (lr, grad_norm): (f64, f64),
        secs: f64,
    ) -> StepLog {
        let update = self.scaler.update(skipped);
        self.clean_steps = if skipped || update.next_scale > update.used_scale {
            0
        } else {
            self.clean_steps.saturating_add(1)
        };
        self.iteration += 1;
        let secs = secs.max(1e-9);
        StepLog {
            step: self.iteration,
            loss: loss / self.cfg.grad_accum as f64,
            lr,
            loss_scale: update.used_scale,
            skipped,
            samples_per_second: samples as f64 / secs,
            grad_norm,
        }
    }

    /// Runs the optimizer graph on the summed gradients and keeps its results; returns the
    /// learning rate and gradient norm, or `None` when the graph found a non-finite gradient
    /// (its outputs are then discarded).
    fn optimizer_step(
        &mut self,
        sums: &mut HashMap<String, Vec<f32>>,
    ) -> Result<Option<(f64, f64)>> {
        let mut feeds: HashMap<String, Tensor> = self.moments.clone();
        feeds.insert("step".into(), Tensor::scalar_f32(self.step as f32));
        feeds.insert(
            "loss_scale".into(),
            Tensor::scalar_f32(self.scaler.scale() as f32),
        );
        for name in &self.trainable {
            let shape = self
                .params
                .get(name)
                .with_context(|| format!("no weight for trained parameter {name}"))?
                .shape()
                .to_vec();
            let data = sums
                .remove(name)
                .with_context(|| format!("missing gradient for {name}"))?;
            feeds.insert(
                format!("grad_sum.{name}"),
                Tensor::new(shape, TensorData::F32(data))?,
            );
        }
        let opts = self.eval_options(self.cfg.grad_accum as u64);
        let out = tessera_ir::eval::evaluate_with(&self.opt_graph, &feeds, &self.params, &opts)
            .context("evaluating the optimizer graph")?;
        self.apply_optimizer_outputs(out)
    }

    /// Keeps the optimizer's results (from the host or the tiles): the new weights and
    /// moments, one more optimizer step; returns the learning rate and gradient norm, or
    /// `None` when the graph found a non-finite gradient (its outputs are then discarded).
    fn apply_optimizer_outputs<M>(&mut self, out: M) -> Result<Option<(f64, f64)>>
    where
        M: IntoIterator<Item = (String, Tensor)>,
    {
        let mut out: BTreeMap<String, Tensor> = out.into_iter().collect();
        let mut scalar = |k: &str| -> Result<f64> {
            out.remove(k)
                .with_context(|| format!("the optimizer gave no `{k}`"))?
                .to_f64_vec()
                .first()
                .copied()
                .with_context(|| format!("optimizer output `{k}` is empty"))
        };
        if scalar("found_inf")? != 0.0 {
            return Ok(None);
        }
        let lr = scalar("lr")?;
        let grad_norm = scalar("grad_norm")?;
        if !all_finite(out.values()) {
            bail!("the optimizer step produced non-finite weights or moments");
        }
        for (k, t) in out {
            if let Some(name) = k.strip_prefix("param.") {
                self.params.insert(name.to_string(), t);
            } else if k.starts_with("adam_m.") || k.starts_with("adam_v.") {
                self.moments.insert(k, t);
            }
        }
        self.step += 1;
        Ok(Some((lr, grad_norm)))
    }
}
