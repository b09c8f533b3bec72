//! The AdamW step graph.
//!
//! Inputs: `step` (f32 scalar, the 0-based optimizer step as transformers' scheduler
//! counts), `loss_scale` (f32 scalar, 1 without loss scaling), and per parameter
//! `grad_sum.<name>` (the sum of the K micro-batch gradients, each scaled by `loss_scale`),
//! `adam_m.<name>`, `adam_v.<name>`; the weights are [`Op::Param`]s with their own names.
//! Outputs: `param.<name>`, `adam_m.<name>`, `adam_v.<name>` per parameter, then `lr` and
//! `grad_norm` (of the unscaled mean gradient, before clipping, as `clip_grad_norm_`
//! returns it).
//!
//! Computation, in f32 (state and weights of another float type are cast in and out):
//! `g = grad_sum / (K·loss_scale)`; optionally `g ← g·min(1, max_norm/(‖g‖ + 1e-6))` over
//! the global norm; `lr_t` from the linear warmup schedule; with `t = step + 1`, torch's
//! AdamW: `p ← p·(1 − lr_t·wd)` (decay group only), `m ← β1 m + (1−β1) g`,
//! `v ← β2 v + (1−β2) g²`, `p ← p − (lr_t/(1−β1^t)) · m / (√v/√(1−β2^t) + eps)` — the
//! operation order of torch's single-tensor implementation. Shared nodes are scoped
//! `optimizer`, per-parameter nodes `optimizer.<name>`.
//!
//! [`build_optimizer_graph_with`] chooses the element types of the gradient inputs and of
//! each moment ([`OptimPrecision`]: f16 weights with an f16 first moment, as the seed run)
//! and can guard the step: output `found_inf` (bool) is true when any gradient element is
//! inf or NaN, and then every weight and moment output equals its input.

use super::schedule::emit_linear_with_warmup;
use super::{AdamWConfig, OptimError, OptimParam, OptimPrecision};
use crate::emit::Emitter;
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, TensorType, UnaryOp};

/// The scope of the optimizer's shared nodes.
pub const SCOPE: &str = "optimizer";

/// Builds the graph of one AdamW step over `params`; see the module documentation.
pub fn build_optimizer_graph(
    params: &[OptimParam],
    cfg: &AdamWConfig,
) -> Result<Graph, OptimError> {
    build_optimizer_graph_with(params, cfg, &OptimPrecision::default())
}

/// [`build_optimizer_graph`] with the input and state types and the non-finite guard of
/// `prec`; see the module documentation.
pub fn build_optimizer_graph_with(
    params: &[OptimParam],
    cfg: &AdamWConfig,
    prec: &OptimPrecision,
) -> Result<Graph, OptimError> {
    build_optimizer_graph_sharded(params, cfg, prec, 1)
}

/// The rows `start..end` of shard `k` of `rows` rows split `shards` ways (near-equal).
pub fn shard_rows(rows: usize, shards: usize, k: usize) -> (usize, usize) {
    let s = shards.max(1);
    (k * rows / s, (k + 1) * rows / s)
}

/// The name of shard `k`'s copy of state or result `name` (`adam_m.<p>@<k>`), and back.
pub fn shard_name(name: &str, k: usize) -> String {
    format!("{name}{SHARD_SEP}{k}")
}

/// `(base name, shard)` of a name made by [`shard_name`]; `None` for an unsharded name.
pub fn split_shard_name(name: &str) -> Option<(&str, usize)> {
    let (base, k) = name.rsplit_once(SHARD_SEP)?;
    Some((base, k.parse().ok()?))
}

/// What separates a sharded tensor's name from its shard number.
pub const SHARD_SEP: char = '@';

/// [`build_optimizer_graph_with`] with each weight's update split into `shards` slices of
/// its rows (replicated tensor sharding: replica `k` updates slice `k`). A weight with at
/// least `shards` rows reads its state as `adam_m.<p>@<k>` / `adam_v.<p>@<k>` (rows
/// [`shard_rows`] of the full state) and gives `param.<p>@<k>`, `adam_m.<p>@<k>`,
/// `adam_v.<p>@<k>`; the gradient norm and the guard still see every gradient whole. Every
/// element goes through the same operations as unsharded, so the shards' results are the
/// unsharded results' rows.
pub fn build_optimizer_graph_sharded(
    params: &[OptimParam],
    cfg: &AdamWConfig,
    prec: &OptimPrecision,
    shards: usize,
) -> Result<Graph, OptimError> {
    cfg.validate()?;
    let mut g = Graph::new(SCOPE);
    let f32_scalar = TensorType::scalar(DType::F32);
    let step = g.input("step", f32_scalar.clone())?;
    let loss_scale = g.input("loss_scale", f32_scalar)?;
    let mut slots = Vec::with_capacity(params.len());
    for p in params {
        if !p.ty.dtype.is_float() {
            return Err(OptimError::NotFloat {
                name: p.name.clone(),
                ty: p.ty.clone(),
            });
        }
        let rows = p.ty.shape.first().copied().unwrap_or(1);
        let n = if p.ty.shape.is_empty() || rows < shards {
            1
        } else {
            shards.max(1)
        };
        let weight = g.param(&p.name, p.ty.clone())?;
        let grad_ty = p.ty.with_dtype(prec.grad.unwrap_or(p.ty.dtype));
        let grad = g.input(&format!("grad_sum.{}", p.name), grad_ty)?;
        let mut states = Vec::with_capacity(n);
        for k in 0..n {
            let (r0, r1) = shard_rows(rows, n, k);
            let mut shape = p.ty.shape.to_vec();
            if let Some(first) = shape.first_mut() {
                *first = r1 - r0;
            }
            let ty = |d: Option<DType>| TensorType::new(d.unwrap_or(p.ty.dtype), shape.clone());
            let name = |kind: &str| {
                let base = format!("{kind}.{}", p.name);
                if n == 1 {
                    base
                } else {
                    shard_name(&base, k)
                }
            };
            states.push(State {
                rows: (r0, r1),
                m: g.input(&name("adam_m"), ty(prec.first_moment))?,
                v: g.input(&name("adam_v"), ty(prec.second_moment))?,
            });
        }
        slots.push(Slot {
            weight,
            grad,
            states,
        });
    }

    let mut e = Emitter::new(&mut g, SCOPE);
    let shared = Shared::emit(&mut e, step, loss_scale, cfg)?;

    // The global norm of the unscaled mean gradients. Each weight's update computes its
    // unscaled gradient again (the same operations, so the same values): kept from here, the
    // f32 copies of every gradient would all be live at once until their updates.
    let mut sq_sum: Option<NodeId> = None;
    for (p, s) in params.iter().zip(&slots) {
        e.set_scope(param_scope(&p.name));
        let grad = unscaled(&mut e, s.grad, shared.unscale)?;
        let sq = e.mul(grad, grad)?;
        let sq = e.sum_all(sq)?;
        e.set_scope(SCOPE);
        sq_sum = Some(match sq_sum {
            Some(acc) => e.add(acc, sq)?,
            None => sq,
        });
    }
    e.set_scope(SCOPE);
    let grad_norm = match sq_sum {
        Some(s) => e.unary(UnaryOp::Sqrt, s)?,
        None => e.scalar(0.0, DType::F32)?,
    };
    let clip = match cfg.max_grad_norm {
        Some(max_norm) => {
            let tiny = e.scalar(1e-6, DType::F32)?;
            let denom = e.add(grad_norm, tiny)?;
            let max_norm = e.scalar(max_norm, DType::F32)?;
            let coef = e.div(max_norm, denom)?;
            let one = e.scalar(1.0, DType::F32)?;
            Some(e.binary(BinaryOp::Min, coef, one)?)
        }
        None => None,
    };

    let found_inf = if prec.skip_non_finite {
        Some(super::precision::emit_found_inf(
            &mut e,
            &slots_grads(&slots),
        )?)
    } else {
        None
    };
    let mut outputs = Vec::with_capacity(3 * params.len() + 3);
    for (p, s) in params.iter().zip(&slots) {
        e.set_scope(param_scope(&p.name));
        let whole = s.states.len() == 1;
        for (k, st) in s.states.iter().enumerate() {
            let (weight, grad) = if whole {
                (s.weight, s.grad)
            } else {
                let slice = |e: &mut Emitter, x: NodeId| {
                    e.op(
                        Op::Slice {
                            axis: 0,
                            start: st.rows.0,
                            end: st.rows.1,
                        },
                        &[x],
                    )
                };
                (slice(&mut e, s.weight)?, slice(&mut e, s.grad)?)
            };
            let grad = unscaled(&mut e, grad, shared.unscale)?;
            let grad = match clip {
                Some(c) => e.mul(grad, c)?,
                None => grad,
            };
            let [new_w, new_m, new_v] = update(
                &mut e,
                &shared,
                [weight, st.m, st.v],
                grad,
                p.weight_decay,
                cfg,
            )?;
            for (kind, new, old) in [
                ("param", new_w, weight),
                ("adam_m", new_m, st.m),
                ("adam_v", new_v, st.v),
            ] {
                let dtype = e.ty(old).dtype;
                let mut out = e.cast(new, dtype)?;
                if let Some(inf) = found_inf {
                    out = e.select(inf, old, out)?;
                }
                let base = format!("{kind}.{}", p.name);
                outputs.push((if whole { base } else { shard_name(&base, k) }, out));
            }
        }
    }
    outputs.push(("lr".to_string(), shared.lr));
    outputs.push(("grad_norm".to_string(), grad_norm));
    if let Some(inf) = found_inf {
        outputs.push(("found_inf".to_string(), inf));
    }
    for (name, node) in outputs {
        g.set_output(&name, node)?;
    }
    Ok(g)
}

/// `f32(grad) · unscale`: a weight's unscaled mean gradient.
fn unscaled(e: &mut Emitter, grad: NodeId, unscale: NodeId) -> Result<NodeId, OptimError> {
    let g32 = e.cast(grad, DType::F32)?;
    Ok(e.mul(g32, unscale)?)
}

/// The gradient inputs of the slots.
fn slots_grads(slots: &[Slot]) -> Vec<NodeId> {
    slots.iter().map(|s| s.grad).collect()
}

/// The graph nodes of one parameter's weight, gradient and state (per shard).
struct Slot {
    weight: NodeId,
    grad: NodeId,
    states: Vec<State>,
}

/// One shard's rows and moments.
struct State {
    rows: (usize, usize),
    m: NodeId,
    v: NodeId,
}

/// Scalars shared by every parameter's update.
struct Shared {
    /// `1 / (K · loss_scale)`.
    unscale: NodeId,
    /// The scheduled learning rate.
    lr: NodeId,
    /// `1 − lr_t · wd`.
    decay: NodeId,
    /// `lr_t / (1 − β1^t)`.
    step_size: NodeId,
    /// `√(1 − β2^t)`.
    bc2_sqrt: NodeId,
}

impl Shared {
    fn emit(
        e: &mut Emitter,
        step: NodeId,
        loss_scale: NodeId,
        cfg: &AdamWConfig,
    ) -> Result<Self, OptimError> {
        let dt = DType::F32;
        let scaled_k = e.scale(loss_scale, cfg.grad_accum as f64)?;
        let unscale = e.unary(UnaryOp::Recip, scaled_k)?;
        let lr = emit_linear_with_warmup(e, step, cfg.lr, cfg.warmup_steps, cfg.total_steps)?;
        let one = e.scalar(1.0, dt)?;
        let lr_wd = e.scale(lr, cfg.weight_decay)?;
        let decay = e.sub(one, lr_wd)?;
        let t = e.add(step, one)?;
        let bc1 = bias_correction(e, t, cfg.beta1)?;
        let step_size = e.div(lr, bc1)?;
        let bc2 = bias_correction(e, t, cfg.beta2)?;
        let bc2_sqrt = e.unary(UnaryOp::Sqrt, bc2)?;
        Ok(Shared {
            unscale,
            lr,
            decay,
            step_size,
            bc2_sqrt,
        })
    }
}

/// `1 − β^t` without the cancellation of computing `β^t` in f32 first (for β2 = 0.999,
/// `1 − f32(0.999)` is off by 5e-5 relative; torch computes the corrections in f64):
/// `1 − β^t = −expm1(t ln β)` with `expm1(x) = 2 tanh(x/2) / (1 − tanh(x/2))`, accurate to
/// f32 rounding for every `t`, with `ln β / 2` folded into an f64-computed constant.
fn bias_correction(e: &mut Emitter, t: NodeId, beta: f64) -> Result<NodeId, OptimError> {
    if beta == 0.0 {
        return Ok(e.scalar(1.0, DType::F32)?);
    }
    let half_t_ln = e.scale(t, beta.ln() / 2.0)?;
    let th = e.unary(UnaryOp::Tanh, half_t_ln)?;
    let one = e.scalar(1.0, DType::F32)?;
    let denom = e.sub(one, th)?;
    let ratio = e.div(th, denom)?;
    Ok(e.scale(ratio, -2.0)?)
}

/// torch's single-tensor AdamW update of one parameter; returns new weight, m and v (f32).
fn update(
    e: &mut Emitter,
    sh: &Shared,
    [weight, m, v]: [NodeId; 3],
    grad: NodeId,
    weight_decay: bool,
    cfg: &AdamWConfig,
) -> Result<[NodeId; 3], OptimError> {
    let mut w = e.cast(weight, DType::F32)?;
    if weight_decay {
        w = e.mul(w, sh.decay)?;
    }
    let m = e.cast(m, DType::F32)?;
    let m_old = e.scale(m, cfg.beta1)?;
    let m_new = e.scale(grad, 1.0 - cfg.beta1)?;
    let m = e.add(m_old, m_new)?;
    let v = e.cast(v, DType::F32)?;
    let v_old = e.scale(v, cfg.beta2)?;
    let g2 = e.mul(grad, grad)?;
    let v_new = e.scale(g2, 1.0 - cfg.beta2)?;
    let v = e.add(v_old, v_new)?;
    let root = e.unary(UnaryOp::Sqrt, v)?;
    let root = e.div(root, sh.bc2_sqrt)?;
    let eps = e.scalar(cfg.eps, DType::F32)?;
    let denom = e.add(root, eps)?;
    let ratio = e.div(m, denom)?;
    let delta = e.mul(ratio, sh.step_size)?;
    let w = e.sub(w, delta)?;
    Ok([w, m, v])
}

fn param_scope(name: &str) -> String {
    format!("{SCOPE}.{name}")
}
