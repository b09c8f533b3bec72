//! Pipelined lowering of lxmert-tiny's training step, checked against the reference
//! evaluator: the plan run as one program (one micro-batch) and the schedule over several
//! micro-batches (losses per micro-batch, gradients summed), for every recomputation mode.

mod device_loop;

use super::*;
use crate::lower::program::session::TileSession;
use crate::lower::program::{LowerOptions, TilePlan};
use crate::recompute::{RecomputeConfig, RecomputeMode};
use crate::testing::{tiny_training, Training};
use crate::{pipeline as place, LayerRule, PipelineConfig, Placement};
use std::collections::HashMap;
use tessera_cost::{CostOptions, PipelineConfig as CostPipeline};
use tessera_ir::{Graph, Tensor};
use tessera_runtime::TraceMode;
use tessera_target::Target;

fn target() -> Target {
    let mut t = Target::preset("mk2").unwrap();
    t.tiles_per_chip = 128;
    t.bytes_per_tile = 512 * 1024;
    t
}

fn placed(t: &Training, stages: u32, mode: RecomputeMode) -> Graph {
    let cost = CostOptions::new(CostPipeline {
        stages,
        replicas: 1,
        grad_accum: 4,
        device_iterations: 1,
        micro_batch: 2,
        optimizer_state_offchip: false,
        replicated_tensor_sharding: false,
    });
    let cfg = PipelineConfig {
        rule: LayerRule::lxmert(),
        recompute: Some(RecomputeConfig {
            rule: LayerRule::lxmert(),
            grad_accum: 4,
            ..RecomputeConfig::new(mode)
        }),
        ..PipelineConfig::new(Placement::Auto, cost)
    };
    place(&t.graph, &cfg, &Target::preset("mk2").unwrap())
        .unwrap()
        .0
}

/// Worst error of `got` against `want`, relative to each tensor's largest magnitude (at
/// least `floor` of the largest over all tensors: some key-bias gradients are zero up to
/// rounding).
/// The optimizer graph of `graph`'s trainable parameters: AdamW (betas 0.9/0.999, eps 1e-8,
/// weight decay 0.01, clipping at 1.0) with the non-finite guard, over 10 steps.
fn guarded_adamw(graph: &Graph, lr: f64, warmup_steps: u64, grad_accum: usize) -> Graph {
    guarded_adamw_sharded(graph, lr, warmup_steps, grad_accum, 1)
}

/// [`guarded_adamw`] with each weight's update split into `shards` row slices.
fn guarded_adamw_sharded(
    graph: &Graph,
    lr: f64,
    warmup_steps: u64,
    grad_accum: usize,
    shards: usize,
) -> Graph {
    use crate::optim::{
        build_optimizer_graph_sharded, trainer_optim_params, AdamWConfig, OptimPrecision,
    };
    let params = trainer_optim_params(graph).unwrap();
    let cfg = AdamWConfig {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        warmup_steps,
        total_steps: 10,
        grad_accum,
        max_grad_norm: Some(1.0),
    };
    let prec = OptimPrecision {
        skip_non_finite: true,
        ..OptimPrecision::default()
    };
    build_optimizer_graph_sharded(&params, &cfg, &prec, shards).unwrap()
}

fn worst(want: &HashMap<String, Vec<f64>>, got: &HashMap<String, Tensor>, floor: f64) -> f64 {
    let max_abs = |v: &[f64]| v.iter().fold(0f64, |m, x| m.max(x.abs()));
    let global = want.values().map(|v| max_abs(v)).fold(0f64, f64::max);
    let mut worst = 0f64;
    for (name, w) in want {
        let g = got.get(name).unwrap_or_else(|| panic!("missing {name}"));
        let g = g.to_f64_vec();
        assert_eq!(g.len(), w.len(), "{name}");
        let diff = g.iter().zip(w).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        let scale = max_abs(w).max(floor * global);
        worst = worst.max(if diff == 0.0 { 0.0 } else { diff / scale });
    }
    worst
}

/// Micro-batch `m`'s feeds: the training feeds with other labels and features.
fn micro_batch(t: &Training, m: usize) -> HashMap<String, Tensor> {
    let mut feeds = t.inputs.clone();
    for name in ["labels", "visual_feats"] {
        let x = &feeds[name];
        let v: Vec<f32> = x
            .to_f32_vec()
            .iter()
            .enumerate()
            .map(|(i, a)| a * (1.0 + 0.1 * m as f32) - 0.01 * ((i + m) % 7) as f32)
            .collect();
        feeds.insert(
            name.to_string(),
            Tensor::from_f32(x.shape().to_vec(), v).unwrap(),
        );
    }
    feeds
}

#[test]
fn one_micro_batch_as_one_program_matches_the_evaluator() {
    let t = tiny_training(5);
    let g = placed(&t, 4, RecomputeMode::Layer);
    let plan = lower_pipelined(&g, &target(), &LowerOptions::default()).unwrap();
    let p = plan.pipeline.as_ref().unwrap();
    assert_eq!(p.segments.len(), 8);
    // Layer recomputation stashes the layers' inputs on the first stages: rings there.
    assert!(p.segments.iter().any(|s| s.save.is_some()));
    let want: HashMap<String, Vec<f64>> = t
        .eval(&g)
        .into_iter()
        .map(|(k, v)| (k, v.to_f64_vec()))
        .collect();
    let mut s = TileSession::new(&plan).unwrap();
    s.load(&t.params).unwrap();
    let (got, _) = s.run(&t.inputs, TraceMode::Off).unwrap();
    let err = worst(&want, &got, 1e-3);
    assert!(err < 1e-5, "relative error {err}");
    // Stash and accumulator bytes are accounted for.
    let stash: u64 = plan.memory.iter().map(|m| m.at_peak.stash).sum();
    let grads: u64 = plan.memory.iter().map(|m| m.at_peak.gradients).sum();
    assert!(stash > 0 && grads > 0, "{stash} {grads}");
}

#[test]
fn the_schedule_over_micro_batches_matches_the_evaluator_in_every_recompute_mode() {
    let t = tiny_training(6);
    let g_micro = 5;
    let feeds: Vec<_> = (0..g_micro).map(|m| micro_batch(&t, m)).collect();
    for mode in [
        RecomputeMode::None,
        RecomputeMode::Layer,
        RecomputeMode::Pipeline,
    ] {
        let g = placed(&t, 4, mode.clone());
        // Reference: each micro-batch on the evaluator, gradients summed in f32 in order.
        let mut losses = Vec::new();
        let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
        for f in &feeds {
            let out = tessera_ir::eval::evaluate(&g, f, &t.params).unwrap();
            for (k, v) in out {
                if k == "loss" {
                    losses.push(v.to_f64_vec()[0]);
                    continue;
                }
                let v = v.to_f32_vec();
                match sums.get_mut(&k) {
                    Some(s) => s.iter_mut().zip(&v).for_each(|(a, b)| *a += b),
                    None => {
                        sums.insert(k, v);
                    }
                }
            }
        }
        let plan = lower_pipelined(&g, &target(), &LowerOptions::default()).unwrap();
        let mut s = PipelineSession::new(&plan).unwrap();
        s.load(&t.params).unwrap();
        let out = s.step(&feeds, TraceMode::On).unwrap();
        // Every segment ran every micro-batch, in G + 2(P−1) cycles.
        assert_eq!(out.runs.len(), 8 * g_micro);
        assert_eq!(
            out.runs.iter().map(|r| r.cycle).max(),
            Some(g_micro + 6 - 1)
        );
        for (m, want) in losses.iter().enumerate() {
            let got = out.micro_batches[m]["loss"].to_f64_vec()[0];
            assert!(
                (got - want).abs() <= 1e-5 * want.abs(),
                "{mode:?} micro-batch {m}: {got} vs {want}"
            );
        }
        let want: HashMap<String, Vec<f64>> = sums
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(f64::from).collect()))
            .collect();
        let err = worst(&want, &out.grads, 1e-3);
        assert!(err < 1e-5, "{mode:?}: gradient relative error {err}");
    }
}

#[test]
fn the_optimizer_graph_lowers_and_matches_the_evaluator() {
    use rand::{Rng, SeedableRng};
    let t = tiny_training(7);
    let g = guarded_adamw(&t.graph, 1e-3, 1, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut feeds = HashMap::new();
    for id in g.inputs() {
        if let tessera_ir::Op::Input { name, ty } = &g.node(id).op {
            let n = ty.num_elements();
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    if name.starts_with("adam_v") {
                        rng.gen_range(0.0..1.0)
                    } else {
                        rng.gen_range(-1.0..1.0)
                    }
                })
                .collect();
            let v = if name == "step" {
                vec![3.0]
            } else if name == "loss_scale" {
                vec![1.0]
            } else {
                v
            };
            feeds.insert(
                name.clone(),
                Tensor::from_f32(ty.shape.to_vec(), v).unwrap(),
            );
        }
    }
    let want: HashMap<String, Vec<f64>> = tessera_ir::eval::evaluate(&g, &feeds, &t.params)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_f64_vec()))
        .collect();
    let plan =
        crate::lower::program::lower_program(&g, &target(), &LowerOptions::default()).unwrap();
    let mut s = TileSession::new(&plan).unwrap();
    s.load(&t.params).unwrap();
    let (got, _) = s.run(&feeds, TraceMode::Off).unwrap();
    let err = worst(&want, &got, 0.0);
    assert!(err < 1e-6, "{err}");
}

/// The optimizer on the tiles after the flush, two replicas: the updated weights, moments and
/// scalars equal the optimizer graph evaluated on the host with the all-reduced gradients,
/// and the next step's losses use the updated weights left on the tiles.
#[test]
fn the_optimizer_runs_on_the_tiles_after_the_flush() {
    optimizer_on_the_tiles(1);
    // Sharded (replicated tensor sharding's slices, run in turn): the same results.
    optimizer_on_the_tiles(3);
}

/// Runs a step with the optimizer split into `shards` on the tiles against the unsharded
/// optimizer on the host; returns the plan.
fn optimizer_on_the_tiles(shards: usize) {
    let t = tiny_training(8);
    let g = placed(&t, 2, RecomputeMode::Layer);
    let params = crate::optim::trainer_optim_params(&t.graph).unwrap();
    let opt = guarded_adamw(&t.graph, 1e-2, 0, 6);
    let on_tiles = guarded_adamw_sharded(&t.graph, 1e-2, 0, 6, shards);
    let plan =
        lower_pipelined_with(&g, Some(&on_tiles), &target(), &LowerOptions::default()).unwrap();
    // Each weight's state streams in just before its update: one stream superstep per
    // weight (and shard), not one for all.
    let steps = &plan.step.supersteps[p_opt(&plan)];
    let streams_in = steps.iter().filter(|s| !s.host_to_tile.is_empty()).count();
    assert!(
        streams_in >= params.len() * shards.min(2),
        "{streams_in} stream-in supersteps for {} weights",
        params.len()
    );
    let p = plan.pipeline.as_ref().unwrap();
    assert!(p.optimizer.is_some());
    // fp32 without loss scaling: `loss_scale` only divides the optimizer's gradients.
    assert_eq!(
        p.optimizer_only,
        vec!["step".to_string(), "loss_scale".to_string()]
    );
    let feeds: Vec<_> = (0..6).map(|m| micro_batch(&t, m)).collect();
    let mut opt_feeds: HashMap<String, Tensor> = HashMap::new();
    opt_feeds.insert("step".into(), Tensor::scalar_f32(0.0));
    opt_feeds.insert("loss_scale".into(), Tensor::scalar_f32(1.0));
    // Moments of a previous step (not zeros: a shard reading another's rows would show).
    for q in &params {
        for (j, kind) in ["adam_m", "adam_v"].into_iter().enumerate() {
            let n = q.ty.num_elements();
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    let x = (i as f32 * 0.37 + j as f32).sin();
                    if j == 0 {
                        1e-3 * x
                    } else {
                        1e-6 * x * x
                    }
                })
                .collect();
            let shape = q.ty.shape.to_vec();
            opt_feeds.insert(
                format!("{kind}.{}", q.name),
                Tensor::from_f32(shape, v).unwrap(),
            );
        }
    }
    let mut s = PipelineSession::new(&plan).unwrap();
    s.load(&t.params).unwrap();
    let replicas: Vec<&[HashMap<String, Tensor>]> = vec![&feeds[..3], &feeds[3..]];
    let out = s
        .step_full(&replicas, Some(&opt_feeds), TraceMode::Off)
        .unwrap();
    // Reference: per-micro-batch gradients summed in micro-batch order (the replicas' sums
    // added: (g0+g1+g2) + (g3+g4+g5); f32 rounding apart from one order).
    let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
    for f in &feeds {
        for (k, v) in tessera_ir::eval::evaluate(&g, f, &t.params).unwrap() {
            if let Some(name) = k.strip_prefix("grad.") {
                let v = v.to_f32_vec();
                match sums.get_mut(name) {
                    Some(s) => s.iter_mut().zip(&v).for_each(|(a, b)| *a += b),
                    None => {
                        sums.insert(name.to_string(), v);
                    }
                }
            }
        }
    }
    let mut host_feeds = opt_feeds.clone();
    for (name, v) in &sums {
        let shape = t.params[name].shape().to_vec();
        host_feeds.insert(
            format!("grad_sum.{name}"),
            Tensor::from_f32(shape, v.clone()).unwrap(),
        );
    }
    let want: HashMap<String, Vec<f64>> = tessera_ir::eval::evaluate(&opt, &host_feeds, &t.params)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_f64_vec()))
        .collect();
    let err = worst(&want, &out.optimizer, 1e-3);
    assert!(err < 1e-4, "optimizer outputs: relative error {err}");
    // The next step runs with the weights the optimizer left on the tiles.
    let mut updated = t.params.clone();
    for (k, v) in &out.optimizer {
        if let Some(name) = k.strip_prefix("param.") {
            updated.insert(name.to_string(), v.clone());
        }
    }
    let again = s.step(&feeds[..2], TraceMode::Off).unwrap();
    for (m, f) in feeds[..2].iter().enumerate() {
        let want = tessera_ir::eval::evaluate(&g, f, &updated).unwrap()["loss"].to_f64_vec()[0];
        let got = again.micro_batches[m]["loss"].to_f64_vec()[0];
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
    }
}

/// The optimizer program's superstep range.
fn p_opt(plan: &TilePlan) -> std::ops::Range<usize> {
    plan.pipeline
        .as_ref()
        .and_then(|p| p.optimizer.clone())
        .unwrap_or(0..0)
}
