//! Throughput predictions of hand-made stage costs, recomputed by hand from the mk2 figures
//! (clock 1.33 GHz, 16e9 B/s per IPU-Link, 31.5e9 B/s streaming, 100 cycles of exchange
//! overhead, inter-chip sync `ceil(15 ns · 1.33 GHz · hops · 2)` cycles).

use super::*;
use crate::graph::{CopyBytes, CostOptions, PhaseCost, StageCost};
use crate::op::tests::mk2;
use crate::{Assumptions, Cycles};

const CLOCK: f64 = 1.33e9;

fn phase(compute: u64) -> PhaseCost {
    PhaseCost {
        cycles: Cycles {
            compute,
            exchange: 0,
            sync: 0,
        },
        ..PhaseCost::default()
    }
}

/// A costed graph whose stage `s` takes `fwd[s]` + `bwd[s]` cycles per micro-batch.
fn costed(fwd: &[u64], bwd: &[u64], pipeline: &PipelineConfig) -> GraphCost {
    let stages = fwd
        .iter()
        .zip(bwd)
        .enumerate()
        .map(|(s, (&f, &b))| StageCost {
            stage: s as u32,
            forward: phase(f),
            backward: phase(b),
            ..StageCost::default()
        })
        .collect();
    GraphCost {
        graph: "hand".into(),
        target: "mk2".into(),
        tiles_per_stage: 1472,
        training: true,
        options: CostOptions::new(pipeline.clone()),
        stages,
    }
}

fn config(stages: u32, replicas: u32, grad_accum: u32) -> PipelineConfig {
    PipelineConfig {
        stages,
        replicas,
        grad_accum,
        ..PipelineConfig::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-30)
}

#[test]
fn pipeline_cycles_follow_popart() {
    // 2(P−1) + (G−(P−1)) for G ≥ P−1; the seed run: P = 4, G = 8 → 6 + 5 = 11.
    assert_eq!(config(4, 1, 8).pipeline_cycles(), 11);
    for p in 1..8u32 {
        for g in (p - 1).max(1)..40 {
            let formula = 2 * (p - 1) + (g - (p - 1));
            assert_eq!(config(p, 1, g).pipeline_cycles(), u64::from(formula));
        }
    }
    // A 1-stage run is just its G micro-batches.
    assert_eq!(config(1, 1, 5).pipeline_cycles(), 5);
}

#[test]
fn step_time_of_an_unbalanced_two_stage_pipeline() {
    // Stage 0: 1.33e6 cycles = 1 ms per micro-batch; stage 1: 2.66e6 = 2 ms; G = 4.
    let cfg = config(2, 1, 4);
    let mut gc = costed(&[665_000, 1_330_000], &[665_000, 1_330_000], &cfg);
    // Stage 0 sends 16e6 B of activations and receives 8e6 B of gradients (stage 1 the
    // reverse): copy = (16e6 + 8e6) / 16e9 = 1.5 ms on both.
    gc.stages[0].copies = CopyBytes {
        forward_sent: 16_000_000,
        backward_received: 8_000_000,
        ..CopyBytes::default()
    };
    gc.stages[1].copies = CopyBytes {
        forward_received: 16_000_000,
        backward_sent: 8_000_000,
        ..CopyBytes::default()
    };
    let t = predict_throughput(&gc, &mk2(), &cfg).unwrap();
    // Two copy phases, each a 2-chip sync (hops 1: ceil(39.9) = 40 cycles) + 100.
    let sync = 2.0 * 140.0 / CLOCK;
    let s0 = 1e-3 + 1.5e-3 + sync;
    let s1 = 2e-3 + 1.5e-3 + sync;
    assert!(close(t.stages[0].total_s, s0), "{t:?}");
    assert_eq!(t.bottleneck_stage, 1);
    assert!(close(t.micro_batch_s, s1));
    // G + P − 1 = 5 pipeline cycles; no optimizer work, one replica.
    assert_eq!(t.pipeline_cycles, 5);
    assert!(close(t.step_s, 5.0 * s1));
    assert!(close(t.samples_per_s, 4.0 / (5.0 * s1)));
    assert!(close(t.balance, s1 / ((s0 + s1) / 2.0)));
    assert!(close(t.balanced_micro_batch_s, (s0 + s1) / 2.0));
    assert!(t.balanced_samples_per_s > t.samples_per_s);
}

#[test]
fn optimizer_streaming_and_all_reduce() {
    let mut cfg = config(1, 4, 8);
    cfg.optimizer_state_offchip = true;
    let mut gc = costed(&[1_330_000], &[0], &cfg);
    let st = &mut gc.stages[0];
    st.optimizer = phase(133_000); // 0.1 ms of update work
    st.optimizer_state_bytes = 31_500_000;
    st.gradient_bytes = 16_000_000;
    st.trained_weight_bytes = 16_000_000;
    let t = predict_throughput(&gc, &mk2(), &cfg).unwrap();
    // Streaming the state in and out: 2 · 31.5e6 / 31.5e9 = 2 ms, plus the 0.1 ms update.
    assert!(close(t.optimizer_streaming_s, 2e-3), "{t:?}");
    assert!(close(t.optimizer_s, 2.1e-3), "{t:?}");
    // Ring all-reduce over 4 replicas: 2·3/4 · 16e6 / 16e9 = 1.5 ms, plus 6 syncs over
    // 4 chips (hops = 1 + (4/2)/2 = 2: ceil(79.8) = 80 cycles) + 100 overhead each.
    let ar = 1.5e-3 + 6.0 * 180.0 / CLOCK;
    assert!(close(t.all_reduce_s, ar), "{t:?}");
    let step = 8.0 * 1e-3 + 2.1e-3 + ar;
    assert!(close(t.step_s, step));
    assert!(close(t.samples_per_s, 32.0 / step));

    // Replicated tensor sharding: a quarter of the state streamed and of the update; the
    // all-reduce becomes reduce-scatter + all-gather: 3/4 · (16e6 + 16e6) / 16e9 = 1.5 ms.
    cfg.replicated_tensor_sharding = true;
    let t = predict_throughput(&gc, &mk2(), &cfg).unwrap();
    assert!(close(t.optimizer_streaming_s, 0.5e-3), "{t:?}");
    assert!(close(t.optimizer_s, 0.5e-3 + 0.025e-3), "{t:?}");
    assert!(close(t.all_reduce_s, ar));
}

#[test]
fn more_accumulation_approaches_the_asymptote() {
    let mut previous = 0.0;
    // B·R / slowest stage = 1·4 / (2 ms + two copy syncs over 4 chips: hops = 2, ceil(79.8)
    // = 80 cycles, + 100 overhead each).
    let asymptote = 4.0 / (2e-3 + 2.0 * 180.0 / CLOCK);
    for g in [4u32, 8, 16, 32, 64, 128, 1024] {
        let mut cfg = config(4, 4, g);
        cfg.optimizer_state_offchip = true;
        let mut gc = costed(
            &[665_000, 1_330_000, 1_000_000, 665_000],
            &[665_000, 1_330_000, 1_000_000, 665_000],
            &cfg,
        );
        gc.stages[3].optimizer_state_bytes = 100_000_000;
        gc.stages[3].gradient_bytes = 50_000_000;
        let t = predict_throughput(&gc, &mk2(), &cfg).unwrap();
        assert!(close(t.asymptote_samples_per_s, asymptote));
        assert!(t.samples_per_s > previous, "G = {g}: {t:?}");
        assert!(t.samples_per_s < asymptote);
        previous = t.samples_per_s;
    }
    assert!(previous > 0.95 * asymptote);
}

#[test]
fn the_seed_configuration_loads_from_its_ipu_config() {
    let text = include_str!("../../../target/tests/data/lxmert-vqa-uncased.ipu_config.json");
    let (ipu, _) = IpuConfig::from_json_str(text).unwrap();
    let cfg = PipelineConfig::from_ipu_config(&ipu, 1).unwrap();
    assert_eq!(
        cfg,
        PipelineConfig {
            stages: 4,
            replicas: 4,
            grad_accum: 8,
            device_iterations: 2,
            micro_batch: 1,
            optimizer_state_offchip: true,
            replicated_tensor_sharding: true,
        }
    );
    assert_eq!(cfg.samples_per_step(), 32);
    let opts = CostOptions::from_ipu_config(&ipu, 1).unwrap();
    assert!(opts.half_first_order_momentum);
}

#[test]
fn errors() {
    let cfg = config(2, 1, 4);
    let gc = costed(&[1, 1], &[1, 1], &cfg);
    let e = predict_throughput(&gc, &mk2(), &config(3, 1, 4)).unwrap_err();
    assert!(e.to_string().contains("stages"), "{e}");
    let e = predict_throughput(&gc, &mk2(), &config(2, 0, 4)).unwrap_err();
    assert!(e.to_string().contains("replicas"), "{e}");
    let mut lonely = mk2();
    lonely.links_per_chip = 0;
    lonely.link_bytes_per_s = 0.0;
    let e = predict_throughput(&gc, &lonely, &cfg).unwrap_err();
    assert!(matches!(e, CostError::MissingResource { .. }), "{e}");
    let mut cfg1 = config(1, 1, 1);
    cfg1.optimizer_state_offchip = true;
    let mut gc1 = costed(&[1], &[1], &cfg1);
    gc1.stages[0].optimizer_state_bytes = 8;
    let mut no_dram = mk2();
    no_dram.streaming_bytes = 0;
    no_dram.streaming_bytes_per_s = 0.0;
    let e = predict_throughput(&gc1, &no_dram, &cfg1).unwrap_err();
    assert!(e.to_string().contains("streaming"), "{e}");
    let _ = Assumptions::default();
}

#[test]
fn throughput_serialises() {
    let cfg = config(2, 1, 4);
    let t = predict_throughput(&costed(&[10, 20], &[10, 20], &cfg), &mk2(), &cfg).unwrap();
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains("\"bottleneck_stage\":1"), "{json}");
    let back: Throughput = serde_json::from_str(&json).unwrap();
    assert!(close(back.samples_per_s, t.samples_per_s));
    assert_eq!(back.stages.len(), 2);
}
