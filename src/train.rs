//! Training on the reference evaluator: the gradient graph of one micro-batch, the optimizer
//! graph, and the host loop that accumulates micro-batch gradients between them.
//!
//! The forward graph gets the VQA loss chosen by the labels (`tessera_passes::loss`), then
//! the `autodiff` pass; the optimizer (AdamW with transformers' linear warmup schedule,
//! gradient-accumulation mean, optional clipping) is its own graph
//! (`tessera_passes::optim`). The host sums the K micro-batch gradients, feeds the sum to
//! the optimizer graph and keeps the weights and Adam moments between steps. Weight decay is
//! grouped as transformers' Trainer does: none for biases and LayerNorm weights.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use tessera_ir::{Graph, Op, Tensor, TensorData, TensorType};
use tessera_passes::autodiff::{autodiff, AutodiffOptions};
use tessera_passes::optim::{build_optimizer_graph, AdamWConfig, OptimParam};

/// Hyper-parameters of a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Fraction of the steps spent warming the learning rate up (rounded up, as transformers).
    pub warmup_ratio: f64,
    /// Decoupled weight decay (not applied to biases and LayerNorm weights).
    pub weight_decay: f64,
    /// Adam beta1.
    pub beta1: f64,
    /// Adam beta2.
    pub beta2: f64,
    /// Adam epsilon.
    pub eps: f64,
    /// Clip the global gradient norm to this value.
    pub max_grad_norm: Option<f64>,
}

impl TrainConfig {
    /// Checks the values a user can get wrong, naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        if self.grad_accum == 0 {
            bail!("--grad-accum must be at least 1 (micro-batches per optimizer step)");
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            bail!("--lr must be a finite non-negative number, got {}", self.lr);
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            bail!(
                "--warmup-ratio must be in [0, 1], got {}",
                self.warmup_ratio
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!(
                "--weight-decay must be a finite non-negative number, got {}",
                self.weight_decay
            );
        }
        if let Some(n) = self.max_grad_norm {
            if !(n.is_finite() && n > 0.0) {
                bail!("--max-grad-norm must be positive, got {n}");
            }
        }
        Ok(())
    }

    /// Warmup steps: `ceil(steps * warmup_ratio)`, as transformers' `get_warmup_steps`.
    pub fn warmup_steps(&self) -> usize {
        (self.steps as f64 * self.warmup_ratio).ceil() as usize
    }
}

/// True for parameters transformers' Trainer exempts from weight decay in LXMERT: biases and
/// LayerNorm weights (`answer_head.logit_fc.2` is a LayerNorm).
pub fn lxmert_no_decay(name: &str) -> bool {
    name.ends_with(".bias")
        || name.contains("LayerNorm.")
        || name.contains("layer_norm.")
        || name.starts_with("answer_head.logit_fc.2.")
}

/// What one optimizer step reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepLog {
    /// 1-based step number.
    pub step: usize,
    /// Mean loss over the step's micro-batches.
    pub loss: f64,
    /// Learning rate used in this step.
    pub lr: f64,
    /// Loss scale (1 in f32 training).
    pub loss_scale: f64,
    /// Samples per second of this step (wall time).
    pub samples_per_second: f64,
    /// Global norm of the mean gradient.
    pub grad_norm: f64,
}

/// The compiled training step and the training state.
pub struct Trainer {
    grad_graph: Graph,
    opt_graph: Graph,
    /// Current weights by parameter name.
    pub params: HashMap<String, Tensor>,
    moments: HashMap<String, Tensor>,
    trainable: Vec<String>,
    cfg: TrainConfig,
    step: usize,
    loss_scale: f64,
}

/// Builds the gradient graph of `forward` for labels of type `labels`: loss + autodiff.
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
    /// type `labels`, starting from `params`.
    pub fn new(
        forward: &Graph,
        labels: &TensorType,
        params: HashMap<String, Tensor>,
        cfg: TrainConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        let loss_scale = 1.0;
        let grad_graph = gradient_graph(forward, labels, loss_scale)?;
        let mut trainable = Vec::new();
        let mut optim_params = Vec::new();
        for o in grad_graph.outputs() {
            if let Some(name) = o.name.strip_prefix("grad.") {
                let pid = grad_graph
                    .param_by_name(name)
                    .with_context(|| format!("gradient output for unknown parameter {name}"))?;
                optim_params.push(OptimParam {
                    name: name.to_string(),
                    ty: grad_graph.node(pid).ty.clone(),
                    weight_decay: !lxmert_no_decay(name),
                });
                trainable.push(name.to_string());
            }
        }
        let adam = AdamWConfig {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
            warmup_steps: cfg.warmup_steps() as u64,
            total_steps: cfg.steps as u64,
            grad_accum: cfg.grad_accum,
            max_grad_norm: cfg.max_grad_norm,
        };
        let opt_graph = build_optimizer_graph(&optim_params, &adam)?;
        let mut moments = HashMap::new();
        for p in &optim_params {
            moments.insert(format!("adam_m.{}", p.name), Tensor::zeros(&p.ty));
            moments.insert(format!("adam_v.{}", p.name), Tensor::zeros(&p.ty));
        }
        Ok(Trainer {
            grad_graph,
            opt_graph,
            params,
            moments,
            trainable,
            cfg,
            step: 0,
            loss_scale,
        })
    }

    /// The gradient graph (forward + loss + backward).
    pub fn grad_graph(&self) -> &Graph {
        &self.grad_graph
    }

    /// The optimizer graph.
    pub fn optimizer_graph(&self) -> &Graph {
        &self.opt_graph
    }

    /// Loss and gradients of one micro-batch (`inputs` include `labels`).
    pub fn loss_and_grads(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<(f64, BTreeMap<String, Tensor>)> {
        let mut out = tessera_ir::eval::evaluate(&self.grad_graph, inputs, &self.params)
            .context("evaluating the gradient graph")?;
        let loss = out
            .remove("loss")
            .context("gradient graph has no `loss` output")?
            .to_f64_vec()[0];
        Ok((loss, out))
    }

    /// One optimizer step over `grad_accum` micro-batches drawn from `next`.
    pub fn step(
        &mut self,
        mut next: impl FnMut() -> Result<HashMap<String, Tensor>>,
    ) -> Result<StepLog> {
        let start = std::time::Instant::now();
        let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
        let mut loss = 0.0;
        let mut samples = 0;
        for _ in 0..self.cfg.grad_accum {
            let inputs = next()?;
            samples += inputs
                .get("labels")
                .and_then(|t| t.shape().first().copied())
                .unwrap_or(1);
            let (l, grads) = self.loss_and_grads(&inputs)?;
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
        let mut feeds: HashMap<String, Tensor> = self.moments.clone();
        feeds.insert("step".into(), Tensor::scalar_f32(self.step as f32));
        feeds.insert(
            "loss_scale".into(),
            Tensor::scalar_f32(self.loss_scale as f32),
        );
        for name in &self.trainable {
            let ty = &self.params[name].ty();
            let data = sums.remove(name).context("missing gradient")?;
            feeds.insert(
                format!("grad_sum.{name}"),
                Tensor::new(ty.shape.clone(), TensorData::F32(data))?,
            );
        }
        let mut out = tessera_ir::eval::evaluate(&self.opt_graph, &feeds, &self.params)
            .context("evaluating the optimizer graph")?;
        let scalar = |out: &mut BTreeMap<String, Tensor>, k: &str| -> Result<f64> {
            Ok(out
                .remove(k)
                .with_context(|| format!("optimizer graph has no `{k}`"))?
                .to_f64_vec()[0])
        };
        let lr = scalar(&mut out, "lr")?;
        let grad_norm = scalar(&mut out, "grad_norm")?;
        for (k, t) in out {
            if let Some(name) = k.strip_prefix("param.") {
                self.params.insert(name.to_string(), t);
            } else if k.starts_with("adam_m.") || k.starts_with("adam_v.") {
                self.moments.insert(k, t);
            }
        }
        self.step += 1;
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        Ok(StepLog {
            step: self.step,
            loss: loss / self.cfg.grad_accum as f64,
            lr,
            loss_scale: self.loss_scale,
            samples_per_second: samples as f64 / secs,
            grad_norm,
        })
    }
}

/// The parameter names of `graph` that are never trained (no `grad.` output).
pub fn frozen_params(forward: &Graph, grad_graph: &Graph) -> Vec<String> {
    forward
        .params()
        .into_iter()
        .filter_map(|id| match &forward.node(id).op {
            Op::Param { name, .. } if grad_graph.output(&format!("grad.{name}")).is_err() => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_decay_grouping() {
        assert!(lxmert_no_decay(
            "lxmert.encoder.layer.0.output.LayerNorm.weight"
        ));
        assert!(lxmert_no_decay(
            "lxmert.encoder.visn_fc.visn_layer_norm.weight"
        ));
        assert!(lxmert_no_decay("answer_head.logit_fc.2.weight"));
        assert!(lxmert_no_decay("answer_head.logit_fc.0.bias"));
        assert!(!lxmert_no_decay("answer_head.logit_fc.0.weight"));
        assert!(!lxmert_no_decay("lxmert.embeddings.word_embeddings.weight"));
    }

    #[test]
    fn validation_names_the_flag() {
        let cfg = TrainConfig {
            steps: 10,
            grad_accum: 0,
            lr: 5e-5,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: None,
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--grad-accum"));
        let neg = TrainConfig {
            grad_accum: 1,
            lr: -1.0,
            ..cfg.clone()
        };
        assert!(neg.validate().unwrap_err().to_string().contains("--lr"));
        let ok = TrainConfig {
            grad_accum: 1,
            ..cfg
        };
        assert_eq!(ok.warmup_steps(), 1);
    }
}
