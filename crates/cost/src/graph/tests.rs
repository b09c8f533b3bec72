//! Graph costs of a hand-built two-stage training graph, checked against hand accounting.

use super::*;
use crate::op::tests::mk2;
use crate::{op_cost, PipelineConfig};
use tessera_ir::{DType, NodeId, ReduceKind, TensorType, UnaryOp};

fn f16(s: &[usize]) -> TensorType {
    TensorType::new(DType::F16, s.to_vec())
}

fn mm(ta: bool, tb: bool) -> Op {
    Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
        half_partials: true,
    }
}

/// Node ids of the toy graph, by name.
pub(crate) struct Toy {
    pub g: Graph,
    pub h: NodeId,
    pub a: NodeId,
    pub y: NodeId,
    pub da: NodeId,
}

/// A two-layer toy: stage 0 `a = tanh(x·W0)`, stage 1 `loss = mean(a·W1)`, and a
/// hand-written backward (scoped `backward`): `dy` (a constant), `dW1 = aᵀ·dy`,
/// `da = dy·W1ᵀ` on stage 1, `dh = da·a`, `dW0 = xᵀ·dh` on stage 0. Creation order is
/// also the topological order (positions 0..11).
pub(crate) fn toy() -> Toy {
    let mut g = Graph::new("toy");
    let stage = |g: &mut Graph, id: NodeId, s: u32| g.node_mut(id).annot.stage = Some(s);
    let x = g.input("x", f16(&[4, 8])).unwrap(); // 0
    let w0 = g.param("l0.w", f16(&[8, 8])).unwrap(); // 1
    let h = g.add(mm(false, false), &[x, w0], "l0").unwrap(); // 2
    let a = g.add(Op::Unary(UnaryOp::Tanh), &[h], "l0").unwrap(); // 3
    let w1 = g.param("l1.w", f16(&[8, 8])).unwrap(); // 4
    let y = g.add(mm(false, false), &[a, w1], "l1").unwrap(); // 5
    let mean = Op::Reduce {
        kind: ReduceKind::Mean,
        axes: vec![0, 1],
        keep_dims: false,
    };
    let loss = g.add(mean, &[y], "loss").unwrap(); // 6
    let dy = g
        .add(
            Op::Full {
                value: 1.0 / 32.0,
                ty: f16(&[4, 8]),
            },
            &[],
            "loss.backward",
        )
        .unwrap(); // 7
    let dw1 = g.add(mm(true, false), &[a, dy], "l1.backward").unwrap(); // 8
    let da = g.add(mm(false, true), &[dy, w1], "l1.backward").unwrap(); // 9
    let dh = g
        .add(
            Op::Binary(tessera_ir::BinaryOp::Mul),
            &[da, a],
            "l0.backward",
        )
        .unwrap(); // 10
    let dw0 = g.add(mm(true, false), &[x, dh], "l0.backward").unwrap(); // 11
    for id in [h, a, dh, dw0] {
        stage(&mut g, id, 0);
    }
    for id in [y, loss, dy, dw1, da] {
        stage(&mut g, id, 1);
    }
    g.set_output("loss", loss).unwrap();
    g.set_output("grad.l0.w", dw0).unwrap();
    g.set_output("grad.l1.w", dw1).unwrap();
    Toy { g, h, a, y, da }
}

fn options(stages: u32, grad_accum: u32) -> CostOptions {
    CostOptions {
        tiles_per_stage: Some(1),
        ..CostOptions::new(PipelineConfig {
            stages,
            grad_accum,
            ..PipelineConfig::default()
        })
    }
}

#[test]
fn toy_memory_by_hand() {
    let toy = toy();
    let c = graph_cost(&toy.g, &mk2(), &options(2, 4)).unwrap();
    assert!(c.training);
    let (s0, s1) = (&c.stages[0].memory, &c.stages[1].memory);
    // Weights and gradients: one f16 [8,8] each per stage = 128 B.
    assert_eq!((s0.weights, s1.weights), (128, 128));
    assert_eq!((s0.gradients, s1.gradients), (128, 128));
    // AdamW state: 64 elements × (4 + 4) B, on chip.
    assert_eq!((s0.optimizer_state, s1.optimizer_state), (512, 512));
    assert_eq!(s0.optimizer_state_streaming, 0);
    // Stash: stage 0 keeps x and a (64 B each) for dh and dW0; stage 1 keeps its copy of a
    // for dW1. Copies: P = 2, G = 4 → stage 0 keeps 2·(2−1−0)+1 = 3, stage 1 keeps 1.
    assert_eq!((s0.stash_per_micro_batch, s0.stash_copies), (128, 3));
    assert_eq!(s0.stashed_activations, 384);
    assert_eq!((s1.stash_per_micro_batch, s1.stash_copies), (64, 1));
    // Temporaries on one tile. Stage 0: at h (pos 2) h itself (64 B) plus the matmul's
    // operand copy ((4·8 + 8·8)·2 = 192 B) = 256; later at most dh + dW0's operands
    // (64 + 128). Stage 1: at da (pos 9) the loss (2 B, an output), dy (64), da (64) and
    // da's operand copy ((4·8 + 8·8)·2 = 192) = 322.
    assert_eq!(s0.temporaries_peak, 256);
    assert_eq!(s1.temporaries_peak, 322);
    // Code: 24 KiB on each of 1472 tiles, plus per superstep on its one tile 16 B of
    // control and 6 vertices × 16 B: stage 0 has h, a, dh, dW0, the accumulation of dW0 and
    // the AdamW update of W0 (6 supersteps × 112 B); stage 1 has y, loss, dW1, da and the
    // same two per-parameter steps.
    let code = 24 * 1024 * 1472 + 6 * 112;
    assert_eq!(
        (s0.code_and_vertex_state, s1.code_and_vertex_state),
        (code, code)
    );
    assert_eq!(s0.total, 128 + 128 + 512 + 384 + 256 + code);
    assert_eq!(s0.capacity, 1472 * 638_976);
    assert!(s0.fits);
}

#[test]
fn toy_flops_copies_and_cycles_by_phase() {
    let toy = toy();
    let target = mk2();
    let c = graph_cost(&toy.g, &target, &options(2, 4)).unwrap();
    let (s0, s1) = (&c.stages[0], &c.stages[1]);
    // Forward: matmul 2·4·8·8 = 512 plus tanh 32 (stage 0) or the mean's 32 inputs (1).
    assert_eq!((s0.forward.flops, s1.forward.flops), (544, 544));
    assert_eq!(s0.forward.matmul_flops, 512);
    // Backward: dh 32 + dW0 512 (+ 64 accumulation adds); dW1 512 + da 512 (+ 64).
    assert_eq!((s0.backward.flops, s1.backward.flops), (608, 1088));
    assert_eq!(s0.accumulation.flops, 64);
    // Analytic AdamW: 64 elements × 16 FLOPs.
    assert_eq!(s0.optimizer.flops, 1024);
    assert!(!s0.optimizer_from_graph);
    // Copies: a (64 B) goes 0 → 1 as an activation, da (64 B) 1 → 0 as a gradient.
    assert_eq!(
        s0.copies,
        CopyBytes {
            forward_sent: 64,
            forward_received: 0,
            backward_sent: 0,
            backward_received: 64,
        }
    );
    assert_eq!(s1.copies.forward_received, 64);
    assert_eq!(s1.copies.backward_sent, 64);
    // Cycles add up the op costs of each phase.
    let one = |id| op_cost(&toy.g, id, 1, &target).unwrap().cycles.total();
    assert_eq!(s0.forward.cycles.total(), one(toy.h) + one(toy.a));
    assert!(s1.forward.cycles.total() > one(toy.y));
    assert!(s1.backward.cycles.total() > one(toy.da));
}

#[test]
fn optimizer_state_options() {
    let toy = toy();
    let mut opts = options(2, 4);
    opts.half_first_order_momentum = true;
    opts.pipeline.replicas = 4;
    opts.pipeline.replicated_tensor_sharding = true;
    opts.pipeline.optimizer_state_offchip = true;
    let c = graph_cost(&toy.g, &mk2(), &opts).unwrap();
    let m = &c.stages[0].memory;
    // 64 × (2 + 4) = 384 B sharded over 4 replicas = 96 B, in streaming memory.
    assert_eq!(m.optimizer_state, 0);
    assert_eq!(m.optimizer_state_streaming, 96);
    assert_eq!(c.stages[0].optimizer_state_bytes, 384);
    // Without accumulation there is no accumulation step; gradients still have a buffer.
    let c = graph_cost(&toy.g, &mk2(), &options(2, 1)).unwrap();
    assert_eq!(c.stages[0].accumulation, PhaseCost::default());
    assert_eq!(c.stages[0].memory.gradients, 128);
    assert_eq!(c.stages[0].memory.stash_copies, 1);
}

#[test]
fn recompute_counts_as_backward_and_moves_the_stash() {
    // Mark a recomputed copy of `a` on stage 0 and let dh read it instead of `a`: the
    // stash of stage 0 then holds h (the checkpoint the copy reads) instead of a.
    let mut toy = toy();
    let g = &mut toy.g;
    let a2 = g.add(Op::Unary(UnaryOp::Tanh), &[toy.h], "l0").unwrap();
    g.node_mut(a2).annot.stage = Some(0);
    g.node_mut(a2).annot.recompute = true;
    let dh = g.users(toy.da)[0];
    g.set_operand(dh, 1, a2);
    let c = graph_cost(g, &mk2(), &options(2, 4)).unwrap();
    let s0 = &c.stages[0];
    assert_eq!(s0.recompute.nodes, 1);
    assert_eq!(s0.recompute.flops, 32);
    // Backward: dh 32 + dW0 512 + recompute 32 + accumulation 64.
    assert_eq!(s0.backward.flops, 640);
    // Stash: x and h (a is no longer read by a backward node on stage 0).
    assert_eq!(s0.memory.stash_per_micro_batch, 128);
    assert_eq!(c.stages[1].memory.stash_per_micro_batch, 64);
    let _ = toy.a;
}

#[test]
fn stash_copies_match_a_simulated_schedule() {
    // PopART's 2P−1-slot schedule: micro-batch i runs forward on stage s in slot i + s and
    // backward in slot i + 2(P−1) − s. Count, per slot, the micro-batches whose stash
    // stage s holds, and compare the maximum with the closed form.
    for p in 1..6u32 {
        for g in 1..12u32 {
            for s in 0..p {
                let slots = g + 2 * (p - 1);
                let max = (0..slots)
                    .map(|t| {
                        (0..g)
                            .filter(|i| i + s <= t && t <= i + 2 * (p - 1) - s)
                            .count() as u64
                    })
                    .max()
                    .unwrap();
                assert_eq!(stash_copies(s, p, g), max, "P={p} G={g} s={s}");
            }
        }
    }
}

#[test]
fn errors_name_the_stage_and_option() {
    let toy = toy();
    let e = graph_cost(&toy.g, &mk2(), &options(1, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            CostError::StageOutOfRange {
                stage: 1,
                stages: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("@l1"), "{e}");
    let e = graph_cost(&toy.g, &mk2(), &options(2, 0)).unwrap_err();
    assert!(e.to_string().contains("grad_accum"), "{e}");
    let mut opts = options(2, 1);
    opts.tiles_per_stage = Some(5000);
    let e = graph_cost(&toy.g, &mk2(), &opts).unwrap_err();
    assert!(e.to_string().contains("tiles_per_stage"), "{e}");
}

#[test]
fn graph_cost_serialises() {
    let c = graph_cost(&toy().g, &mk2(), &options(2, 4)).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    let back: GraphCost = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}
