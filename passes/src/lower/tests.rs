//! Tests of the memory planner on hand-built graphs (expected offsets and peaks worked out
//! by hand) and on LXMERT (invariants checked independently of the allocator).

use super::*;
use std::collections::HashMap;
use tessera_ir::{DType, Graph, NodeId, Op, ReduceKind, TensorType, UnaryOp};
use tessera_target::Target;

/// A chip with `tiles` tiles of `bytes` bytes each (other figures irrelevant here).
fn tiny_target(tiles: u32, bytes: u64) -> Target {
    let mut t = tessera_target::target::presets::mk2();
    t.name = "tiny".into();
    t.tiles_per_chip = tiles;
    t.bytes_per_tile = bytes;
    t
}

fn f32s(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

fn piece0(plan: &MemoryPlan, n: NodeId) -> Piece {
    plan.value(n).unwrap().pieces[0]
}

#[test]
fn dead_value_bytes_are_reused() {
    // x (input, 32 B) → a = exp x (32 B) → b = broadcast a to [2,8] (64 B)
    // → c = sum_0 b (32 B) → d = neg c (output, 32 B). One tile.
    let mut g = Graph::new("chain");
    let x = g.input("x", f32s(&[8])).unwrap();
    let a = g.add(Op::Unary(UnaryOp::Exp), &[x], "").unwrap();
    let b = g
        .add(Op::BroadcastTo { shape: vec![2, 8] }, &[a], "")
        .unwrap();
    let c = g
        .add(
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![0],
                keep_dims: false,
            },
            &[b],
            "",
        )
        .unwrap();
    let d = g.add(Op::Unary(UnaryOp::Neg), &[c], "").unwrap();
    g.set_output("d", d).unwrap();
    let plan = plan_memory(&g, &tiny_target(1, 1 << 20), &PlanOptions::default()).unwrap();
    let u = plan.tile(0, 0).unwrap();
    // Always-live: x at 0, d at 32.
    assert_eq!(u.always_live, 64);
    assert_eq!(piece0(&plan, x).offset, 0);
    assert_eq!(piece0(&plan, d).offset, 32);
    // a at 64 (region offset 0), b at 96; a dies when b is written, c takes a's bytes.
    assert_eq!(piece0(&plan, a).offset, 64);
    assert_eq!(piece0(&plan, b).offset, 96);
    assert_eq!(piece0(&plan, c).offset, 64);
    // Peak not-always-live = max(a+b, b+c) = 96, not a+b+c = 128.
    assert_eq!(u.not_always_live, 96);
    assert_eq!(u.peak_live, 96);
    assert_eq!(u.peak, 160);
}

#[test]
fn always_live_parameter_is_never_reused() {
    // w is used once, at the start; it keeps its bytes while a, b, c come and go.
    let mut g = Graph::new("param");
    let x = g.input("x", f32s(&[8])).unwrap();
    let w = g.param("m.w", f32s(&[8])).unwrap();
    let a = g
        .add(Op::Binary(tessera_ir::BinaryOp::Mul), &[x, w], "m")
        .unwrap();
    let b = g.add(Op::Unary(UnaryOp::Exp), &[a], "m").unwrap();
    let c = g.add(Op::Unary(UnaryOp::Tanh), &[b], "m").unwrap();
    let d = g.add(Op::Unary(UnaryOp::Neg), &[c], "m").unwrap();
    g.set_output("d", d).unwrap();
    let plan = plan_memory(&g, &tiny_target(1, 1 << 20), &PlanOptions::default()).unwrap();
    let wp = plan.value(w).unwrap();
    assert!(wp.always_live);
    assert_eq!(wp.pieces[0].offset, 32);
    // x, w, d always live: 96 B; a, b, c alternate between region offsets 0 and 32.
    let u = plan.tile(0, 0).unwrap();
    assert_eq!(u.always_live, 96);
    assert_eq!(u.not_always_live, 64);
    for n in [a, b, c] {
        assert!(
            piece0(&plan, n).offset >= 96,
            "{n:?} overlaps always-live bytes"
        );
    }
    assert_eq!(piece0(&plan, a).offset, piece0(&plan, c).offset);
}

/// Inputs w [1,1] (tile 0, 8 B aligned), x [3,256] and output a = exp x: with rotation x
/// and a start on tile 1, which gets 2 rows (2 × 1 KiB) of each; tile 0 gets one row of
/// each plus w.
fn oom_graph() -> Graph {
    let mut g = Graph::new("oom");
    let _w = g.input("w", f32s(&[1, 1])).unwrap();
    let x = g.input("x", f32s(&[3, 256])).unwrap();
    let a = g.add(Op::Unary(UnaryOp::Exp), &[x], "blk").unwrap();
    g.set_output("a", a).unwrap();
    for n in g.node_ids().collect::<Vec<_>>() {
        g.node_mut(n).annot.stage = Some(1);
    }
    g
}

#[test]
fn out_of_memory_gives_poplar_message() {
    let g = oom_graph();
    let target = tiny_target(2, 256);
    let err = plan_memory(&g, &target, &PlanOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Out of memory on tile 1 of chip 1: 4,096 bytes used but tiles only have 256 bytes\n\
         largest tensors on tile 1:\n  %x: 2,048 bytes\n  %0 (blk): 2,048 bytes"
    );
    let opts = PlanOptions {
        allow_oom: true,
        ..PlanOptions::default()
    };
    let plan = plan_memory(&g, &target, &opts).unwrap();
    let oom = plan.oom.as_ref().unwrap();
    assert_eq!((oom.chip, oom.tile, oom.used), (1, 1, 4096));
    assert_eq!(plan.tile(1, 0).unwrap().peak, 8 + 1024 + 1024);
    assert_eq!(plan.tile(0, 0).unwrap().peak, 0);
}

#[test]
fn rejects_targets_without_tiles_and_zero_alignment() {
    let g = oom_graph();
    let e = plan_memory(&g, &tiny_target(0, 256), &PlanOptions::default()).unwrap_err();
    assert!(e.to_string().contains("tiny"), "{e}");
    let opts = PlanOptions {
        alignment: 0,
        ..PlanOptions::default()
    };
    let e = plan_memory(&g, &tiny_target(2, 256), &opts).unwrap_err();
    assert!(e.to_string().contains("alignment"), "{e}");
}

/// A piece's lifetime (first and last step) and byte range `[offset, end)`.
type Span = (usize, usize, u64, u64);

/// Independent checks of a plan: every value's pieces cover its elements exactly; no two
/// values whose lifetimes overlap (always-live values live throughout) share bytes on a
/// tile; every tile's peak covers the bytes it holds at any step.
fn check_plan(g: &Graph, plan: &MemoryPlan) {
    let n = plan.values.len();
    let mut by_tile: HashMap<(u32, u32), Vec<Span>> = HashMap::new();
    for v in &plan.values {
        let ty = &g.node(v.node).ty;
        let covered: u64 = v.pieces.iter().map(|p| p.end - p.start).sum();
        assert_eq!(covered, ty.num_elements() as u64, "{}", v.name);
        let (lo, hi) = if v.always_live {
            (0, n)
        } else {
            (v.def, v.last_use)
        };
        for p in &v.pieces {
            assert!(p.bytes >= (p.end - p.start) * ty.dtype.size_bytes() as u64);
            by_tile.entry((v.chip, p.tile)).or_default().push((
                lo,
                hi,
                p.offset,
                p.offset + p.bytes,
            ));
        }
    }
    for ((chip, tile), list) in &by_tile {
        let peak = plan.tile(*chip, *tile).unwrap().peak;
        for (i, a) in list.iter().enumerate() {
            assert!(
                a.3 <= peak,
                "piece beyond peak on tile {tile} of chip {chip}"
            );
            for b in &list[i + 1..] {
                let live_together = a.0 <= b.1 && b.0 <= a.1;
                let share = a.2 < b.3 && b.2 < a.3 && a.2 != a.3 && b.2 != b.3;
                assert!(
                    !(live_together && share),
                    "overlap on tile {tile} of chip {chip}: {a:?} {b:?}"
                );
            }
        }
    }
}

fn lxmert_forward(preset: &str, seq_len: usize, num_objects: usize) -> Graph {
    let config = tessera_lxmert::LxmertConfig::preset(preset).unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 1,
        seq_len,
        num_objects,
    };
    tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap()
}

#[test]
fn lxmert_tiny_fits_on_mk2() {
    let g = lxmert_forward("lxmert-tiny", 7, 5);
    let plan = plan_memory(
        &g,
        &tessera_target::target::presets::mk2(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(plan.oom.is_none());
    check_plan(&g, &plan);
}

#[test]
fn lxmert_base_forward_on_one_mk2() {
    let g = lxmert_forward("lxmert-base", 20, 36);
    let mk2 = tessera_target::target::presets::mk2();
    let opts = PlanOptions {
        allow_oom: true,
        ..PlanOptions::default()
    };
    let plan = plan_memory(&g, &mk2, &opts).unwrap();
    // The parameters alone, summed from the graph's own declarations in f32.
    let param_bytes: u64 = g
        .params()
        .iter()
        .map(|&p| g.node(p).ty.size_bytes() as u64)
        .sum();
    let always: u64 = plan.tiles[0].iter().map(|u| u.always_live).sum();
    assert!(always >= param_bytes, "{always} < {param_bytes}");
    let (chip, tile, u) = plan.max_tile().unwrap();
    let total_peak: u64 = plan.tiles[0].iter().map(|u| u.peak).sum();
    println!(
        "lxmert-base fwd (b1, seq 20, 36 obj, f32) on mk2: params {} B, always-live {} B, \
         sum of tile peaks {} B; worst tile {tile} of chip {chip}: always-live {} B, \
         not-always-live {} B, peak {} B of {} B; oom: {:?}",
        thousands(param_bytes),
        thousands(always),
        thousands(total_peak),
        thousands(u.always_live),
        thousands(u.not_always_live),
        thousands(u.peak),
        thousands(mk2.bytes_per_tile),
        plan.oom.as_ref().map(ToString::to_string)
    );
    check_plan(&g, &plan);
}
