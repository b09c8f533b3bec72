//! Training steps on the tiles: one per host call, or `N` as device iterations.
//!
//! A host-driven step (`step_on_tiles`, behind [`Trainer::step`]) streams the host's
//! moments, step count and loss scale in and keeps the optimizer's results.
//! [`Trainer::steps_on_device`] draws the micro-batches of `N` steps up front and runs them
//! as one device loop ([`super::tiles::TileStep::run_loop`]): the weights stay on the tiles,
//! the Adam moments in the session's streaming memory, and the optimizer step count and the
//! loss scale evolve on the device (the optimizer graph's `step_next`, `loss_scale_next`,
//! `clean_steps_next`). The host reads each step's anchors back — the micro-batch losses,
//! the scale and step count the step used, `lr`, `grad_norm`, `found_inf` — and logs them as
//! [`Trainer::step`] logs a step. It also moves its own copy of the loss scaler and step
//! count along and checks that the device agrees, so that a host-driven step can follow a
//! loop, and keeps the final weights and moments for checkpoints.

use super::{StepLog, Trainer};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use tessera_ir::Tensor;
use tessera_passes::mixed_precision::all_finite;
use tessera_passes::optim::counters::{CLEAN_STEPS_INPUT, LOSS_SCALE_INPUT, STEP_INPUT};

/// The first element of anchor `name` of `map`, as f64.
fn scalar(map: &HashMap<String, Tensor>, name: &str, what: &str) -> Result<f64> {
    map.get(name)
        .with_context(|| format!("the device loop sent no `{name}` ({what})"))?
        .to_f64_vec()
        .first()
        .copied()
        .with_context(|| format!("device-loop anchor `{name}` is empty"))
}

impl Trainer {
    /// One step on the tiles: every micro-batch of every replica through the pipeline, the
    /// all-reduce, and the optimizer on the tiles (its state streamed from and back to the
    /// host); the host keeps the results (weights for checkpoints, moments between steps).
    pub(super) fn step_on_tiles(
        &mut self,
        mut next: impl FnMut() -> Result<HashMap<String, Tensor>>,
        start: std::time::Instant,
    ) -> Result<StepLog> {
        let mut feeds = Vec::with_capacity(self.cfg.grad_accum);
        let mut samples = 0;
        let scale = Tensor::scalar_f32(self.scaler.scale() as f32);
        for _ in 0..self.cfg.grad_accum {
            let mut inputs = next()?;
            samples += inputs
                .get("labels")
                .and_then(|t| t.shape().first().copied())
                .unwrap_or(1);
            if self.grad_graph.input_by_name(LOSS_SCALE_INPUT).is_ok() {
                inputs.insert(LOSS_SCALE_INPUT.to_string(), scale.clone());
            }
            feeds.push(inputs);
        }
        if self.tiles.as_ref().is_some_and(|t| !t.optimizer_on_tiles()) {
            return self.step_host_optimizer(feeds, samples, start);
        }
        let mut opt_feeds = self.moments.clone();
        opt_feeds.insert("step".into(), Tensor::scalar_f32(self.step as f32));
        opt_feeds.insert("loss_scale".into(), scale);
        opt_feeds.insert(
            CLEAN_STEPS_INPUT.into(),
            Tensor::scalar_f32(self.clean_steps as f32),
        );
        let t = self.tiles.as_mut().context("no tile step")?;
        let r = t.run(&self.params, &feeds, &opt_feeds)?;
        let loss: f64 = r.losses.iter().sum();
        let applied = self.apply_optimizer_outputs(r.optimizer)?;
        let skipped = applied.is_none();
        let (lr, grad_norm) = applied.unwrap_or((self.adam.lr_at(self.step as u64), f64::NAN));
        let secs = start.elapsed().as_secs_f64();
        Ok(self.finish_step(loss, samples, skipped, (lr, grad_norm), secs))
    }

    /// The rest of a tiles step whose optimizer runs on the host: the tiles' summed
    /// gradients go through the same skip test and optimizer as the reference engine's.
    fn step_host_optimizer(
        &mut self,
        feeds: Vec<HashMap<String, Tensor>>,
        samples: usize,
        start: std::time::Instant,
    ) -> Result<StepLog> {
        let t = self.tiles.as_mut().context("no tile step")?;
        let (losses, grads) = t.run_grads(&self.params, &feeds)?;
        let loss: f64 = losses.iter().sum();
        let mut sums: HashMap<String, Vec<f32>> = grads
            .into_iter()
            .map(|(k, g)| (k.trim_start_matches("grad.").to_string(), g.to_f32_vec()))
            .collect();
        let mut skipped = !sums.values().all(|v| v.iter().all(|x| x.is_finite()));
        let mut lr = self.adam.lr_at(self.step as u64);
        let mut grad_norm = f64::NAN;
        if !skipped {
            match self.optimizer_step(&mut sums)? {
                Some((l, n)) => (lr, grad_norm) = (l, n),
                None => skipped = true,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(self.finish_step(loss, samples, skipped, (lr, grad_norm), secs))
    }

    /// `iterations` (≥ 1) training steps on the tiles in one device loop, their micro-batches
    /// (`grad_accum` per step) drawn from `next` up front; one log per step, as
    /// [`Trainer::step`] gives (the wall time of the loop shared equally between its steps).
    /// Needs [`Trainer::use_tiles`].
    pub fn steps_on_device(
        &mut self,
        iterations: usize,
        mut next: impl FnMut() -> Result<HashMap<String, Tensor>>,
    ) -> Result<Vec<StepLog>> {
        if iterations == 0 {
            bail!("--device-iterations must be at least 1, got 0");
        }
        if self.tiles.is_none() {
            bail!("device iterations run on the tiles: use --engine tiles");
        }
        if self.tiles.as_ref().is_some_and(|t| !t.optimizer_on_tiles()) {
            bail!(
                "device loops run the optimizer on the tiles: drop --optimizer host, or use \
                 --device-iterations 1"
            );
        }
        let start = std::time::Instant::now();
        let per_step = self.cfg.grad_accum;
        let mut feeds = Vec::with_capacity(iterations * per_step);
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let mut n = 0;
            for _ in 0..per_step {
                let inputs = next()?;
                n += inputs
                    .get("labels")
                    .and_then(|t| t.shape().first().copied())
                    .unwrap_or(1);
                feeds.push(inputs);
            }
            samples.push(n);
        }
        let state = || {
            let mut s = self.moments.clone();
            s.insert(STEP_INPUT.into(), Tensor::scalar_f32(self.step as f32));
            s.insert(
                LOSS_SCALE_INPUT.into(),
                Tensor::scalar_f32(self.scaler.scale() as f32),
            );
            s.insert(
                CLEAN_STEPS_INPUT.into(),
                Tensor::scalar_f32(self.clean_steps as f32),
            );
            s
        };
        let t = self.tiles.as_mut().context("no tile step")?;
        let out = t.run_loop(&self.params, &feeds, iterations, state)?;
        let secs = start.elapsed().as_secs_f64() / iterations as f64;
        let mut logs = Vec::with_capacity(iterations);
        for (it, (anchors, samples)) in out.iterations.iter().zip(samples).enumerate() {
            let used_step = scalar(&anchors.used, STEP_INPUT, "the step count it used")?;
            let used_scale = scalar(&anchors.used, LOSS_SCALE_INPUT, "the loss scale it used")?;
            // The device holds them as f32, as the host feeds them.
            let (step, scale) = (self.step as f32, self.scaler.scale() as f32);
            if used_step != f64::from(step) || used_scale != f64::from(scale) {
                bail!(
                    "device iteration {it}: the device used step {used_step} and loss scale \
                     {used_scale}, the host expected step {} and loss scale {}",
                    self.step,
                    self.scaler.scale()
                );
            }
            let mut loss = 0.0;
            for m in &anchors.micro_batches {
                loss += scalar(m, "loss", "a micro-batch's loss")?;
            }
            let skipped = scalar(&anchors.results, "found_inf", "the overflow flag")? != 0.0;
            let (lr, grad_norm) = if skipped {
                (self.adam.lr_at(self.step as u64), f64::NAN)
            } else {
                self.step += 1;
                (
                    scalar(&anchors.results, "lr", "the learning rate")?,
                    scalar(&anchors.results, "grad_norm", "the gradient norm")?,
                )
            };
            logs.push(self.finish_step(loss, samples, skipped, (lr, grad_norm), secs));
        }
        let final_step = scalar(&out.state, STEP_INPUT, "the final step count")?;
        if final_step != f64::from(self.step as f32) {
            bail!(
                "after the device loop the device counts {final_step} optimizer steps, the host {}",
                self.step
            );
        }
        // The host's copies, for checkpoints and for a host-driven step after the loop.
        if !all_finite(out.weights.values().chain(out.state.values())) {
            bail!("the device loop produced non-finite weights or moments");
        }
        for (k, w) in out.weights {
            if let Some(name) = k.strip_prefix("param.") {
                self.params.insert(name.to_string(), w);
            }
        }
        for (k, m) in out.state {
            if k.starts_with("adam_m.") || k.starts_with("adam_v.") {
                self.moments.insert(k, m);
            }
        }
        Ok(logs)
    }
}
