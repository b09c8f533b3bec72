//! Finite-difference checking of the autodiff rules.
//!
//! A [`Problem`] is a small forward graph whose parameters get random values; [`Problem::finish`]
//! projects a value `y` to the scalar loss `Σ w ⊙ y` with a random input `w`. The check
//! compares every element of every `grad.<param>` output of the differentiated graph with
//! a central difference `(L(p + h) − L(p − h)) / 2h`, where `L` is evaluated as `y` by the
//! reference evaluator in f32 and projected with `w` in f64 (so that the rounding of the
//! final sum does not add noise). The expected values thus come from the forward
//! evaluator alone, never from the rules under test.

use crate::autodiff::{autodiff, AutodiffOptions, GRAD_PREFIX};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use tessera_ir::eval::evaluate;
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, ReduceKind, Tensor, TensorType};

/// Tolerance of a gradient check: `|ad − fd| ≤ atol + rtol · max(|ad|, |fd|)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tol {
    pub h: f64,
    pub atol: f64,
    pub rtol: f64,
}

impl Default for Tol {
    fn default() -> Self {
        Tol {
            h: 1e-3,
            atol: 2e-4,
            rtol: 2e-3,
        }
    }
}

/// A forward graph under construction with its feeds.
pub(crate) struct Problem {
    pub g: Graph,
    pub inputs: HashMap<String, Tensor>,
    pub params: HashMap<String, Tensor>,
    pub rng: ChaCha8Rng,
}

impl Problem {
    pub fn new(seed: u64) -> Self {
        Problem {
            g: Graph::new("fd"),
            inputs: HashMap::new(),
            params: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Uniform random values in `[lo, hi)`.
    pub fn uniform(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.rng.gen_range(lo..hi) as f32).collect()
    }

    /// An f32 parameter with the given values.
    pub fn param_values(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> NodeId {
        let t = Tensor::from_f32(shape.to_vec(), values).unwrap();
        let id = self
            .g
            .param(name, TensorType::new(DType::F32, shape.to_vec()))
            .unwrap();
        self.params.insert(name.to_string(), t);
        id
    }

    /// An f32 parameter with uniform random values in `[lo, hi)`.
    pub fn param(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> NodeId {
        let n = shape.iter().product();
        let v = self.uniform(n, lo, hi);
        self.param_values(name, shape, v)
    }

    /// An input fed with `t`.
    pub fn input(&mut self, name: &str, t: Tensor) -> NodeId {
        let id = self.g.input(name, t.ty()).unwrap();
        self.inputs.insert(name.to_string(), t);
        id
    }

    /// Adds a node (panics on a type error: test graphs are well-typed).
    pub fn add(&mut self, op: Op, xs: &[NodeId]) -> NodeId {
        self.g.add(op, xs, "fwd").unwrap()
    }

    /// Makes `loss = Σ w ⊙ y` (random `w`) and output `y`.
    pub fn finish(mut self, y: NodeId) -> Checked {
        let ty = self.g.node(y).ty.clone();
        assert_eq!(ty.dtype, DType::F32, "project an f32 value");
        let w_vals = self.uniform(ty.num_elements(), -1.0, 1.0);
        let w_t = Tensor::from_f32(ty.shape.clone(), w_vals.clone()).unwrap();
        let w = self.input("w", w_t);
        let p = self
            .g
            .add(Op::Binary(BinaryOp::Mul), &[w, y], "loss")
            .unwrap();
        let loss = if ty.rank() == 0 {
            p
        } else {
            let sum = Op::Reduce {
                kind: ReduceKind::Sum,
                axes: (0..ty.rank()).collect(),
                keep_dims: false,
            };
            self.g.add(sum, &[p], "loss").unwrap()
        };
        self.g.set_output("loss", loss).unwrap();
        self.g.set_output("y", y).unwrap();
        Checked {
            g: self.g,
            inputs: self.inputs,
            params: self.params,
            w: w_vals.iter().map(|&v| v as f64).collect(),
        }
    }
}

/// A finished forward graph with loss `Σ w ⊙ y`.
pub(crate) struct Checked {
    pub g: Graph,
    pub inputs: HashMap<String, Tensor>,
    pub params: HashMap<String, Tensor>,
    pub w: Vec<f64>,
}

impl Checked {
    /// The outputs of the differentiated graph (loss and gradients).
    pub fn ad_outputs(&self, opts: &AutodiffOptions) -> BTreeMap<String, Tensor> {
        let ad = autodiff(&self.g, opts).unwrap();
        tessera_ir::verify(&ad).unwrap();
        evaluate(&ad, &self.inputs, &self.params).unwrap()
    }

    /// The loss for the given parameter values, projected in f64.
    pub fn loss(&self, params: &HashMap<String, Tensor>) -> f64 {
        let out = evaluate(&self.g, &self.inputs, params).unwrap();
        let y = out["y"].to_f64_vec();
        y.iter().zip(&self.w).map(|(a, b)| a * b).sum()
    }

    /// Central differences of the loss with respect to every element of parameter `name`.
    pub fn fd_grad(&self, name: &str, h: f64) -> Vec<f64> {
        let base = self.params[name].to_f32_vec();
        let shape = self.params[name].shape().to_vec();
        let mut params = self.params.clone();
        let at = |vals: Vec<f32>, params: &mut HashMap<String, Tensor>| {
            params.insert(
                name.to_string(),
                Tensor::from_f32(shape.clone(), vals).unwrap(),
            );
            self.loss(params)
        };
        (0..base.len())
            .map(|i| {
                let (mut up, mut down) = (base.clone(), base.clone());
                up[i] += h as f32;
                down[i] -= h as f32;
                // The actual f32 step, not the nominal one.
                let step = up[i] as f64 - down[i] as f64;
                (at(up, &mut params) - at(down, &mut params)) / step
            })
            .collect()
    }

    /// Checks every parameter's gradient (which must all be present) against finite
    /// differences; on failure says which element differs.
    pub fn check(&self, tol: Tol) -> Result<(), String> {
        let out = self.ad_outputs(&AutodiffOptions::default());
        let mut names: Vec<&String> = self.params.keys().collect();
        names.sort();
        for name in names {
            let key = format!("{GRAD_PREFIX}{name}");
            let ad = out
                .get(&key)
                .ok_or_else(|| format!("no output {key}"))?
                .to_f64_vec();
            compare(name, &ad, &self.fd_grad(name, tol.h), tol)?;
        }
        Ok(())
    }
}

/// Compares a gradient with its finite-difference estimate.
pub(crate) fn compare(name: &str, ad: &[f64], fd: &[f64], tol: Tol) -> Result<(), String> {
    if ad.len() != fd.len() {
        return Err(format!(
            "{name}: {} gradient elements, expected {}",
            ad.len(),
            fd.len()
        ));
    }
    for (i, (a, f)) in ad.iter().zip(fd).enumerate() {
        let bound = tol.atol + tol.rtol * a.abs().max(f.abs());
        let within = (a - f).abs() <= bound; // false for NaN too
        if !within {
            return Err(format!(
                "{name}[{i}]: autodiff {a:.6e} vs finite difference {f:.6e} (bound {bound:.1e})\n\
                 autodiff: {ad:?}\nfinite d: {fd:?}"
            ));
        }
    }
    Ok(())
}

/// A random shape that broadcasts to `full`: some leading axes dropped, some axes set to 1.
pub(crate) fn broadcast_operand(rng: &mut ChaCha8Rng, full: &[usize]) -> Vec<usize> {
    let drop = rng.gen_range(0..=full.len());
    full[drop..]
        .iter()
        .map(|&d| if rng.gen_bool(0.3) { 1 } else { d })
        .collect()
}
