//! Op costs against hand-derived figures of the mk2 target: 64 fp16 MAC/cycle/tile with
//! fp16 partials (32 with fp32 partials, 16 in fp32), 24 load/store bytes per cycle per
//! tile (6 workers × 4), 4 exchange bytes per cycle per tile, and 90 + 100 = 190 cycles of
//! sync and exchange overhead per superstep. Every expected number is worked out in the
//! comment above it from those figures and the formulas of the module doc.

use super::*;
use tessera_ir::{BinaryOp, DType, ReduceKind, UnaryOp};

pub(crate) fn mk2() -> Target {
    Target::preset("mk2").unwrap()
}

fn t(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s.to_vec())
}

/// A graph with inputs of `types` and one node `op` on them.
pub(crate) fn one_op(op: Op, types: &[TensorType]) -> (Graph, NodeId) {
    let mut g = Graph::new("t");
    let ins: Vec<NodeId> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| g.input(&format!("x{i}"), ty.clone()).unwrap())
        .collect();
    let y = g.add(op, &ins, "m").unwrap();
    (g, y)
}

pub(crate) fn matmul(half_partials: bool) -> Op {
    Op::MatMul {
        transpose_a: false,
        transpose_b: false,
        half_partials,
    }
}

fn cost(op: Op, types: &[TensorType], tiles: u32) -> OpCost {
    let (g, y) = one_op(op, types);
    op_cost(&g, y, tiles, &mk2()).unwrap()
}

#[test]
fn f16_matmul_on_one_tile() {
    let c = cost(
        matmul(true),
        &[t(DType::F16, &[64, 64]), t(DType::F16, &[64, 64])],
        1,
    );
    // 64³ MACs / 64 MAC/cycle.
    assert_eq!(c.cycles.compute, 4096);
    // Both operands (2 × 64·64·2 B = 16384 B) come to the tile at 4 B/cycle.
    assert_eq!(c.cycles.exchange, 4096);
    assert_eq!(c.cycles.sync, 190);
    assert_eq!(c.supersteps, 1);
    assert_eq!(c.tiles_used, 1);
    assert_eq!(c.flops, 2 * 64 * 64 * 64);
    assert_eq!(c.matmul_flops, c.flops);
    assert_eq!(c.bytes_in, 2 * 64 * 64 * 2);
    assert_eq!(c.bytes_out, 64 * 64 * 2);
}

#[test]
fn precision_selects_the_mac_rate() {
    // fp32 partials: 32 MAC/cycle → 8192 cycles.
    let c = cost(
        matmul(false),
        &[t(DType::F16, &[64, 64]), t(DType::F16, &[64, 64])],
        1,
    );
    assert_eq!(c.cycles.compute, 8192);
    // fp32: 16 MAC/cycle → 16384 cycles; twice the operand bytes → 8192 exchange cycles.
    let c = cost(
        matmul(false),
        &[t(DType::F32, &[64, 64]), t(DType::F32, &[64, 64])],
        1,
    );
    assert_eq!(c.cycles.compute, 16384);
    assert_eq!(c.cycles.exchange, 8192);
}

#[test]
fn f16_matmul_on_two_tiles_splits_the_output() {
    let c = cost(
        matmul(true),
        &[t(DType::F16, &[64, 64]), t(DType::F16, &[64, 64])],
        2,
    );
    // Splitting N in two (two 16-column blocks each): 64·32·64 / 64 = 2048 compute; the
    // tile needs all of A (8192 B) and half of B (4096 B): 12288 / 4 = 3072 exchange;
    // total 2048 + 3072 + 190 = 5310. (Splitting M costs the same; splitting K instead
    // costs 2048 + 512 compute, 2048 + 1024 exchange and two supersteps: 6012.)
    assert_eq!(c.cycles.compute, 2048);
    assert_eq!(c.cycles.exchange, 3072);
    assert_eq!(c.cycles.total(), 5310);
    assert_eq!(c.tiles_used, 2);
}

#[test]
fn split_contraction_pays_a_partial_sum_reduction() {
    // [1,1024] x [1024,16], fp16 partials, on 64 tiles. The result is one 1×16 block, so
    // only K (64 grains of 16) can be split. With ck grains per tile, pk = ceil(64/ck):
    // compute 1·16·16ck/64 = 4ck; operands (16ck + 16·16ck)·2 B = 544ck B → 136ck
    // exchange. With pk > 1, each tile reduces ceil(16/pk) of the 16 results: it receives
    // (pk−1)·that·2 B and loads pk·that·2 + stores that·2 B, in a second superstep.
    // - pk = 1 (ck = 64): 256 + 8704 + 190 = 9150;
    // - pk = 32 (ck = 2): 8 + 272 + (31·2 B → 16) + (66 B / 24 → 3) + 380 = 679;
    // - pk = 64 (ck = 1): 4 + 136 + (63·2 B → 32) + (130 B / 24 → 6) + 380 = 558, the best.
    let c = cost(
        matmul(true),
        &[t(DType::F16, &[1, 1024]), t(DType::F16, &[1024, 16])],
        64,
    );
    assert_eq!(c.cycles.compute, 4 + 6);
    assert_eq!(c.cycles.exchange, 136 + 32);
    assert_eq!(c.cycles.total(), 558);
    assert_eq!((c.supersteps, c.tiles_used), (2, 64));
    // Partial sums: 64 tiles × 16 results × 2 B, plus each tile's operand copy (544 B).
    assert_eq!(c.temp_bytes, 64 * 16 * 2 + 64 * 544);
}

#[test]
fn big_matmul_is_close_to_the_chip_peak() {
    // The FFN of a transformer layer at seq 512: [512,768] x [768,3072], fp16 partials,
    // on all 1472 tiles. A perfect spread would take 512·768·3072 / (1472·64) = 12822.5
    // cycles of compute: the plan cannot beat that and should be within 2× of it.
    let c = cost(
        matmul(true),
        &[t(DType::F16, &[512, 768]), t(DType::F16, &[768, 3072])],
        1472,
    );
    let bound = (512.0 * 768.0 * 3072.0 / (1472.0 * 64.0)) as u64 + 1;
    assert!(c.cycles.compute >= bound, "{c:?}");
    assert!(c.cycles.compute <= 2 * bound, "{c:?}");
    assert!(c.tiles_used <= 1472 && c.tiles_used > 1000, "{c:?}");
}

#[test]
fn broadcast_batch_operand_is_replicated_not_split() {
    // x[4,64,64] · W[64,64] on 4 tiles: splitting the batch gives each tile one entry:
    // 64³/64 = 4096 compute, its A slice (8192 B) and all of W (8192 B): 4096 exchange.
    let c = cost(
        matmul(true),
        &[t(DType::F16, &[4, 64, 64]), t(DType::F16, &[64, 64])],
        4,
    );
    assert_eq!(
        c.cycles.compute + c.cycles.exchange + c.cycles.sync,
        4096 + 4096 + 190
    );
}

#[test]
fn elementwise_add_with_a_broadcast_bias() {
    // f16 [512,768] + [768] on 1472 tiles: vectors of 4 halves → 98304 vectors,
    // ceil(98304/1472) = 67 per tile = 268 elements; each loads 2 + 2 and stores 2 bytes:
    // 1608 B / 24 = 67 cycles. The bias: min(768, 268) · 2 = 536 B / 4 = 134 cycles.
    let c = cost(
        Op::Binary(BinaryOp::Add),
        &[t(DType::F16, &[512, 768]), t(DType::F16, &[768])],
        1472,
    );
    assert_eq!(c.cycles.compute, 67);
    assert_eq!(c.cycles.exchange, 134);
    assert_eq!(c.cycles.sync, 190);
    assert_eq!(c.tiles_used, 1472);
    assert_eq!(c.flops, 512 * 768);
}

#[test]
fn tiny_op_costs_at_least_one_superstep() {
    // f32 [10]: 5 vectors of 2 on 5 tiles; 2 elements · 8 B = 16 B → 1 cycle; + 190.
    let c = cost(Op::Unary(UnaryOp::Tanh), &[t(DType::F32, &[10])], 1472);
    assert_eq!(c.tiles_used, 5);
    assert_eq!(c.cycles.total(), 191);
}

#[test]
fn reduction_keeps_rows_whole_when_that_is_cheaper() {
    // sum f32 [64,1000] over axis 1 on 1472 tiles. Whole rows: 64 tiles, each loads
    // 4000 B and stores 4: 4004/24 → 167 cycles, total 357. Spread inputs: 44 elements per
    // tile (8 cycles), 23 partials per output (22·4 B → 22 exchange; 96 B → 4 cycles),
    // two supersteps: 414. Whole rows win.
    let op = Op::Reduce {
        kind: ReduceKind::Sum,
        axes: vec![1],
        keep_dims: false,
    };
    let c = cost(op, &[t(DType::F32, &[64, 1000])], 1472);
    assert_eq!(c.cycles.total(), 357);
    assert_eq!((c.supersteps, c.tiles_used), (1, 64));
}

#[test]
fn reduction_of_long_rows_spreads_and_combines_partials() {
    // sum f32 [4,100000] over axis 1. Whole rows: 400004 B / 24 → 16667 + 190 = 16857.
    // Spread: 136 vectors = 272 elements per tile: (1088 + 4)/24 → 46; r = 1472/4 = 368
    // partials per output: 367·4 B / 4 = 367 exchange; (368·4 + 4)/24 → 62 compute.
    // Total 46 + 62 + 367 + 2·190 = 855.
    let op = Op::Reduce {
        kind: ReduceKind::Sum,
        axes: vec![1],
        keep_dims: false,
    };
    let c = cost(op, &[t(DType::F32, &[4, 100000])], 1472);
    assert_eq!(c.cycles.compute, 108);
    assert_eq!(c.cycles.exchange, 367);
    assert_eq!(c.cycles.sync, 380);
    assert_eq!(c.supersteps, 2);
}

#[test]
fn softmax_and_layer_norm() {
    // softmax f16 [12,512,512]: 6144 rows, 5 per tile = 2560 elements, 5 × 2 B each:
    // 25600 / 24 → 1067 compute, three supersteps.
    let c = cost(Op::Softmax, &[t(DType::F16, &[12, 512, 512])], 1472);
    assert_eq!(c.cycles.compute, 1067);
    assert_eq!(c.cycles.sync, 3 * 190);
    // layer_norm f16 [512,768]: 512 rows on 512 tiles, 768 elements × 6 × 2 B = 9216/24 =
    // 384 compute; gamma and beta, 2·768·2 = 3072 B / 4 = 768 exchange; row statistics
    // 512 × 8 B of temporaries.
    let c = cost(
        Op::LayerNorm { eps: 1e-12 },
        &[
            t(DType::F16, &[512, 768]),
            t(DType::F16, &[768]),
            t(DType::F16, &[768]),
        ],
        1472,
    );
    assert_eq!(c.cycles.compute, 384);
    assert_eq!(c.cycles.exchange, 768);
    assert_eq!(c.tiles_used, 512);
    assert_eq!(c.temp_bytes, 4096);
}

#[test]
fn data_movement_costs_exchange_only() {
    // transpose of f16 [12,512,64] (393216 elements): 268 per tile as for the add above,
    // 536 B / 4 = 134 exchange cycles.
    let c = cost(
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[t(DType::F16, &[12, 512, 64])],
        1472,
    );
    assert_eq!(
        c.cycles,
        Cycles {
            compute: 0,
            exchange: 134,
            sync: 190
        }
    );
    // gather of 512 rows of 768 halves: the same 393216 elements.
    let c = cost(
        Op::Gather { padding_idx: None },
        &[t(DType::F16, &[30522, 768]), t(DType::I64, &[1, 512])],
        1472,
    );
    assert_eq!(c.cycles.exchange, 134);
    // Views are free.
    let c = cost(
        Op::Reshape {
            shape: vec![512, 768],
        },
        &[t(DType::F16, &[1, 512, 768])],
        1472,
    );
    assert_eq!((c.cycles.total(), c.supersteps, c.bytes_out), (0, 0, 0));
}

#[test]
fn scatter_add_and_one_hot() {
    // scatter_add(idx i64[8], upd f16[8,16]) → [100,16] on 4 tiles: 400 vectors, 100 per
    // tile = 400 elements; per tile 2 indices (16 B) and 32 update elements (64 B).
    // Compute: 400·2 + 3·64 + 16 = 1008 B / 24 = 42; exchange (64 + 16)/4 = 20.
    let c = cost(
        Op::ScatterAdd { rows: 100 },
        &[t(DType::I64, &[8]), t(DType::F16, &[8, 16])],
        4,
    );
    assert_eq!(
        c.cycles,
        Cycles {
            compute: 42,
            exchange: 20,
            sync: 190
        }
    );
    // one_hot(i64[10]) → f32[10,4] on 1472 tiles: 20 vectors on 20 tiles, 2 elements and
    // one index each: 8 + 8 = 16 B → 1 cycle.
    let c = cost(
        Op::OneHot {
            depth: 4,
            dtype: DType::F32,
        },
        &[t(DType::I64, &[10])],
        1472,
    );
    assert_eq!(
        c.cycles,
        Cycles {
            compute: 1,
            exchange: 0,
            sync: 190
        }
    );
    assert_eq!(c.tiles_used, 20);
}

#[test]
fn leaves_cost_nothing_but_hold_their_bytes() {
    let mut g = Graph::new("t");
    let w = g.param("m.w", t(DType::F16, &[768, 768])).unwrap();
    let c = op_cost(&g, w, 1472, &mk2()).unwrap();
    assert_eq!(c.cycles.total(), 0);
    assert_eq!(c.bytes_out, 768 * 768 * 2);
}

#[test]
fn errors_name_the_node() {
    let (mut g, y) = one_op(
        matmul(true),
        &[t(DType::F16, &[64, 64]), t(DType::F16, &[64, 64])],
    );
    let e = op_cost(&g, y, 0, &mk2()).unwrap_err();
    assert!(matches!(e, CostError::NoTiles { .. }));
    assert!(e.to_string().contains("`matmul` @m"), "{e}");
    // A matmul with a rank-1 operand, built past the type checker.
    let v = g.input("v", t(DType::F16, &[64])).unwrap();
    let bad = g.add_unchecked(
        matmul(true),
        &[v, v],
        t(DType::F16, &[64, 64]),
        "enc.layer.3",
    );
    let e = op_cost(&g, bad, 4, &mk2()).unwrap_err();
    assert!(matches!(e, CostError::MalformedNode { .. }));
    assert!(e.to_string().contains("enc.layer.3"), "{e}");
    // A removed node.
    g.remove(bad);
    assert!(matches!(
        op_cost(&g, bad, 4, &mk2()),
        Err(CostError::NoSuchNode { .. })
    ));
    // A target the model cannot divide by.
    let mut broken = mk2();
    broken.exchange_bytes_per_cycle_per_tile = 0.0;
    let e = op_cost(&g, y, 4, &broken).unwrap_err();
    assert!(
        e.to_string().contains("exchange_bytes_per_cycle_per_tile"),
        "{e}"
    );
}

#[test]
fn concat_and_cast() {
    // concat of two f32 [4,8] → [8,8]: 64 elements in vectors of 2 → 32 tiles with one
    // vector (8 B) each: 2 exchange cycles.
    let c = cost(
        Op::Concat { axis: 0 },
        &[t(DType::F32, &[4, 8]), t(DType::F32, &[4, 8])],
        1472,
    );
    assert_eq!(
        c.cycles,
        Cycles {
            compute: 0,
            exchange: 2,
            sync: 190
        }
    );
    assert_eq!(c.tiles_used, 32);
    // cast f32 [8] → f16: vectors of 4 halves → 2 tiles with 4 elements, each loading 4
    // and storing 2 bytes: 24 B / 24 = 1 cycle.
    let c = cost(Op::Cast { to: DType::F16 }, &[t(DType::F32, &[8])], 1472);
    assert_eq!(
        c.cycles,
        Cycles {
            compute: 1,
            exchange: 0,
            sync: 190
        }
    );
    assert_eq!((c.tiles_used, c.bytes_in, c.bytes_out), (2, 32, 16));
}
