//! The per-step scalars of training as graph outputs, so that they can evolve on the device
//! between steps without the host: the optimizer step count and the dynamic loss scale.
//!
//! A device loop (Poplar's `Repeat(deviceIterations, step)`) runs several training steps
//! without returning to the host, so whatever changes from one step to the next must be
//! computed on the tiles and fed back. [`add_device_counters`] extends an optimizer graph
//! (built with the non-finite guard, whose `found_inf` decides whether a step counts) with:
//!
//! - `step_next = found_inf ? step : step + 1` — the 0-based optimizer step count of the
//!   next step (skipped steps do not count, as the host trainer counts them);
//! - with [`ScaleRule::Dynamic`], a new input `clean_steps` (consecutive clean steps so far,
//!   f32) and outputs `loss_scale_next` and `clean_steps_next`: on `found_inf` the scale
//!   halves (never below the floor) and the count restarts at 0; otherwise the count grows
//!   by one and, when it reaches the growth interval, the scale doubles and the count
//!   restarts — PyTorch `GradScaler`'s rule, exactly the host's
//!   [`crate::mixed_precision::LossScaler`].
//!
//! Every output `<name>_next` ([`next_name`]) is the value of input `<name>` for the next
//! step. All arithmetic is f32 on exact values (integers below 2²⁴, powers of two), so the
//! device's counts and scales equal the host's bit for bit.

use super::adamw::SCOPE;
use super::OptimError;
use crate::emit::Emitter;
use tessera_ir::{CmpOp, DType, Graph, NodeId, TensorType};

/// The optimizer's step-count input.
pub const STEP_INPUT: &str = "step";
/// The optimizer's loss-scale input: the gradient graph's (a pipelined plan merges the
/// two graphs' inputs by name, so every micro-batch and the optimizer read one scale).
pub use crate::mixed_precision::LOSS_SCALE_INPUT;
/// The consecutive-clean-steps input of dynamic loss scaling.
pub const CLEAN_STEPS_INPUT: &str = "clean_steps";
/// The suffix of an output that is the next step's value of the input it extends.
pub const NEXT_SUFFIX: &str = "_next";
/// The output that says a step's gradients held an inf or NaN.
pub const FOUND_INF_OUTPUT: &str = "found_inf";

/// The name of the output carrying input `input` to the next step.
pub fn next_name(input: &str) -> String {
    format!("{input}{NEXT_SUFFIX}")
}

/// How the loss scale changes from step to step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleRule {
    /// It does not (no loss scaling, or a static scale): no `loss_scale_next`.
    Fixed,
    /// Dynamic loss scaling.
    Dynamic {
        /// Consecutive clean steps after which the scale doubles (≥ 1).
        growth_interval: u32,
        /// The smallest scale halving may reach (> 0; the host scaler's is 1).
        floor: f64,
    },
}

/// `opt` (an optimizer graph of [`super::build_optimizer_graph_with`]) with the counters of
/// the module documentation. Errors: a graph without the `step` or `loss_scale` input, a
/// dynamic rule on a graph without the `found_inf` guard, a bad rule, or a graph that
/// already has `clean_steps`.
pub fn add_device_counters(opt: &Graph, rule: ScaleRule) -> Result<Graph, OptimError> {
    let mut g = opt.clone();
    let need = |what: &str| OptimError::Counters {
        graph: opt.name.clone(),
        reason: format!("it has no {what}"),
    };
    let step = g
        .input_by_name(STEP_INPUT)
        .map_err(|_| need("`step` input"))?;
    let scale = g
        .input_by_name(LOSS_SCALE_INPUT)
        .map_err(|_| need("`loss_scale` input"))?;
    let found_inf = g.output(FOUND_INF_OUTPUT).ok();
    let clean = match rule {
        ScaleRule::Fixed => None,
        ScaleRule::Dynamic {
            growth_interval,
            floor,
        } => {
            if growth_interval == 0 || !(floor.is_finite() && floor > 0.0) {
                return Err(OptimError::Counters {
                    graph: opt.name.clone(),
                    reason: format!(
                        "dynamic scaling needs a growth interval >= 1 and a floor > 0, got \
                         {growth_interval} and {floor}"
                    ),
                });
            }
            if found_inf.is_none() {
                return Err(need("`found_inf` output (build it with skip_non_finite)"));
            }
            Some(g.input(CLEAN_STEPS_INPUT, TensorType::scalar(DType::F32))?)
        }
    };
    let mut e = Emitter::new(&mut g, SCOPE);
    let one = e.scalar(1.0, DType::F32)?;
    let stepped = e.add(step, one)?;
    let step_next = match found_inf {
        Some(inf) => e.select(inf, step, stepped)?,
        None => stepped,
    };
    let mut outputs = vec![(next_name(STEP_INPUT), step_next)];
    if let (
        Some(clean),
        Some(inf),
        ScaleRule::Dynamic {
            growth_interval,
            floor,
        },
    ) = (clean, found_inf, rule)
    {
        let [scale_next, clean_next] =
            dynamic_update(&mut e, scale, clean, inf, growth_interval, floor)?;
        outputs.push((next_name(LOSS_SCALE_INPUT), scale_next));
        outputs.push((next_name(CLEAN_STEPS_INPUT), clean_next));
    }
    for (name, node) in outputs {
        g.set_output(&name, node)?;
    }
    Ok(g)
}

/// The next scale and clean-step count (see the module documentation).
fn dynamic_update(
    e: &mut Emitter,
    scale: NodeId,
    clean: NodeId,
    found_inf: NodeId,
    growth_interval: u32,
    floor: f64,
) -> Result<[NodeId; 2], OptimError> {
    let dt = DType::F32;
    let scale = e.cast(scale, dt)?;
    let zero = e.scalar(0.0, dt)?;
    let one = e.scalar(1.0, dt)?;
    // Overflow: halve, not below the floor; the count restarts.
    let half = e.scale(scale, 0.5)?;
    let floor = e.scalar(floor, dt)?;
    let backed_off = e.binary(tessera_ir::BinaryOp::Max, half, floor)?;
    // Clean: one more clean step; at the interval the scale doubles and the count restarts.
    let counted = e.add(clean, one)?;
    let interval = e.scalar(f64::from(growth_interval), dt)?;
    let grow = e.cmp(CmpOp::Ge, counted, interval)?;
    let doubled = e.scale(scale, 2.0)?;
    let clean_scale = e.select(grow, doubled, scale)?;
    let clean_count = e.select(grow, zero, counted)?;
    let scale_next = e.select(found_inf, backed_off, clean_scale)?;
    let clean_next = e.select(found_inf, zero, clean_count)?;
    Ok([scale_next, clean_next])
}

#[cfg(test)]
mod tests {
    use super::super::{build_optimizer_graph_with, AdamWConfig, OptimParam, OptimPrecision};
    use super::*;
    use crate::mixed_precision::{DynamicScaling, LossScaler, LossScaling};
    use std::collections::HashMap;
    use tessera_ir::eval::evaluate;
    use tessera_ir::{verify, Tensor};

    fn optimizer(skip_non_finite: bool) -> Graph {
        let cfg = AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            total_steps: 10,
            grad_accum: 1,
            max_grad_norm: None,
        };
        let p = OptimParam {
            name: "w".into(),
            ty: TensorType::new(DType::F32, vec![2]),
            weight_decay: false,
        };
        let prec = OptimPrecision {
            skip_non_finite,
            ..OptimPrecision::default()
        };
        build_optimizer_graph_with(&[p], &cfg, &prec).unwrap()
    }

    fn run(g: &Graph, grad: f32, step: f32, scale: f32, clean: f32) -> HashMap<String, f64> {
        let v = |x: f32| Tensor::from_f32(vec![2], vec![x, 0.5]).unwrap();
        let mut feeds = HashMap::from([
            ("step".to_string(), Tensor::scalar_f32(step)),
            ("loss_scale".to_string(), Tensor::scalar_f32(scale)),
            ("clean_steps".to_string(), Tensor::scalar_f32(clean)),
            ("grad_sum.w".to_string(), v(grad)),
            ("adam_m.w".to_string(), v(0.0)),
            ("adam_v.w".to_string(), v(0.0)),
        ]);
        if g.input_by_name("clean_steps").is_err() {
            feeds.remove("clean_steps");
        }
        let weights = HashMap::from([("w".to_string(), v(1.0))]);
        evaluate(g, &feeds, &weights)
            .unwrap()
            .into_iter()
            .map(|(k, t)| (k, t.to_f64_vec()[0]))
            .collect()
    }

    /// Twelve steps with overflows at chosen steps: the graph's scale, clean count and step
    /// count, fed back step after step, follow the host scaler and the host's step count.
    #[test]
    fn dynamic_counters_follow_the_host_scaler() {
        let g = add_device_counters(
            &optimizer(true),
            ScaleRule::Dynamic {
                growth_interval: 3,
                floor: 1.0,
            },
        )
        .unwrap();
        verify(&g).unwrap();
        let mut host = LossScaler::new(LossScaling::Dynamic(DynamicScaling {
            init_scale: 4.0,
            growth_interval: 3,
        }));
        let (mut step, mut scale, mut clean) = (0f32, 4f32, 0f32);
        let mut host_step = 0u32;
        // Overflow at steps 0, 1 and 2 (the scale reaches the floor and stays), then 7.
        for i in 0..12 {
            let overflow = [0, 1, 2, 7].contains(&i);
            let grad = if overflow { f32::INFINITY } else { 0.25 };
            let out = run(&g, grad, step, scale, clean);
            assert_eq!(out["found_inf"] != 0.0, overflow, "step {i}");
            let u = host.update(overflow);
            assert_eq!(f64::from(scale), u.used_scale, "step {i}");
            assert_eq!(out["loss_scale_next"], u.next_scale, "step {i}");
            host_step += u32::from(u.apply);
            assert_eq!(out["step_next"], f64::from(host_step), "step {i}");
            (step, scale, clean) = (
                out["step_next"] as f32,
                out["loss_scale_next"] as f32,
                out["clean_steps_next"] as f32,
            );
        }
        // 4 → 2 → 1 → 1 (floor), three clean steps → 2, one more clean, overflow → 1, then
        // three clean → 2 and one more clean.
        assert_eq!(scale, 2.0);
        assert_eq!(clean, 1.0);
        assert_eq!(step, 8.0);
    }

    #[test]
    fn fixed_scaling_counts_steps_only() {
        let g = add_device_counters(&optimizer(true), ScaleRule::Fixed).unwrap();
        assert!(g.output("loss_scale_next").is_err());
        assert!(g.input_by_name("clean_steps").is_err());
        let out = run(&g, 0.25, 5.0, 8.0, 0.0);
        assert_eq!(out["step_next"], 6.0);
        let out = run(&g, f32::NAN, 5.0, 8.0, 0.0);
        assert_eq!(out["step_next"], 5.0);
        // Without the guard every step counts.
        let g = add_device_counters(&optimizer(false), ScaleRule::Fixed).unwrap();
        assert_eq!(run(&g, 0.25, 5.0, 8.0, 0.0)["step_next"], 6.0);
    }

    #[test]
    fn bad_rules_and_graphs_are_errors() {
        let dynamic = ScaleRule::Dynamic {
            growth_interval: 3,
            floor: 1.0,
        };
        let err = add_device_counters(&optimizer(false), dynamic).unwrap_err();
        assert!(err.to_string().contains("found_inf"), "{err}");
        let zero = ScaleRule::Dynamic {
            growth_interval: 0,
            floor: 1.0,
        };
        let err = add_device_counters(&optimizer(true), zero).unwrap_err();
        assert!(err.to_string().contains("growth interval"), "{err}");
        let twice = add_device_counters(&optimizer(true), dynamic).unwrap();
        assert!(add_device_counters(&twice, dynamic).is_err());
        let mut bare = Graph::new("bare");
        let x = bare.input("x", TensorType::scalar(DType::F32)).unwrap();
        bare.set_output("y", x).unwrap();
        let err = add_device_counters(&bare, ScaleRule::Fixed).unwrap_err();
        assert!(err.to_string().contains("`step`"), "{err}");
    }
}
