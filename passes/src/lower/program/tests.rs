//! End-to-end checks of the tile lowering: lowered programs run on the emulator and are
//! compared with the reference evaluator (an independent implementation of every op), on hand
//! graphs and on `lxmert-tiny` on 1 and 4 chips.

use super::session::TileSession;
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tessera_ir::{BinaryOp, DType, Graph, Op, Tensor, TensorType, UnaryOp};
use tessera_runtime::TraceMode;

pub(super) fn small_target(tiles: u32, bytes: u64) -> Target {
    let mut t = tessera_target::target::presets::mk2();
    t.name = "small".into();
    t.tiles_per_chip = tiles;
    t.bytes_per_tile = bytes;
    t
}

fn random(ty: &TensorType, rng: &mut ChaCha8Rng) -> Tensor {
    let n = ty.num_elements();
    match ty.dtype {
        DType::I64 => Tensor::from_i64(
            ty.shape.to_vec(),
            (0..n).map(|_| rng.gen_range(0..2)).collect(),
        ),
        _ => Tensor::from_f32(
            ty.shape.to_vec(),
            (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        )
        .map(|t| t.cast(ty.dtype)),
    }
    .unwrap()
}

/// Runs `g` on the reference evaluator and on tiles; returns the worst relative error.
fn compare(
    g: &Graph,
    target: &Target,
    chips: u32,
    params: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
) -> f64 {
    compare_with_floor(g, target, chips, params, inputs, 0.0)
}

/// As [`compare`], with each output's error relative to `max(max |reference|, floor × the
/// largest |reference| over all outputs)`: for outputs that are zero up to rounding.
fn compare_with_floor(
    g: &Graph,
    target: &Target,
    chips: u32,
    params: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
    floor: f64,
) -> f64 {
    let want = tessera_ir::eval::evaluate(g, inputs, params).unwrap();
    let plan = lower_program(
        g,
        target,
        &LowerOptions {
            chips,
            ..LowerOptions::default()
        },
    )
    .unwrap();
    let mut s = TileSession::new(&plan).unwrap();
    s.load(params).unwrap();
    let (got, _) = s.run(inputs, TraceMode::Off).unwrap();
    let max_abs = |t: &Tensor| t.to_f64_vec().iter().fold(0f64, |m, x| m.max(x.abs()));
    let global = want.values().map(max_abs).fold(0f64, f64::max);
    let mut worst = 0f64;
    for (name, w) in &want {
        let t = &got[name];
        assert_eq!(t.ty(), w.ty(), "{name}");
        let diff = t
            .to_f64_vec()
            .iter()
            .zip(w.to_f64_vec())
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        let scale = max_abs(w).max(floor * global);
        let e = if diff == 0.0 { 0.0 } else { diff / scale };
        assert!(!e.is_nan(), "{name}");
        worst = worst.max(e);
    }
    worst
}

/// `reduce(of) {kind, axes}` without kept dimensions, added to `g`.
fn reduce_of(
    g: &mut Graph,
    kind: tessera_ir::ReduceKind,
    axes: Vec<usize>,
    of: tessera_ir::NodeId,
) -> tessera_ir::NodeId {
    g.add(
        Op::Reduce {
            kind,
            axes,
            keep_dims: false,
        },
        &[of],
        "",
    )
    .unwrap()
}

fn feeds(g: &Graph, seed: u64) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut params = HashMap::new();
    let mut inputs = HashMap::new();
    for id in g.params() {
        if let Op::Param { name, ty } = &g.node(id).op {
            params.insert(name.clone(), random(ty, &mut rng));
        }
    }
    for id in g.inputs() {
        if let Op::Input { name, ty } = &g.node(id).op {
            inputs.insert(name.clone(), random(ty, &mut rng));
        }
    }
    (params, inputs)
}

#[test]
fn attention_like_graph_matches_the_evaluator() {
    // softmax(q k^T / s + mask) v, a bias add, a transpose, layer norm: on 7 small tiles, so
    // every op is split over several tiles and operands cross tiles.
    let mut g = Graph::new("attn");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let x = g.input("x", f(&[2, 5, 8])).unwrap();
    let w = g.param("w", f(&[12, 8])).unwrap();
    let bias = g.param("bias", f(&[12])).unwrap();
    let mask = g.input("mask", f(&[2, 1, 1, 5])).unwrap();
    let gamma = g.param("gamma", f(&[4])).unwrap();
    let beta = g.param("beta", f(&[4])).unwrap();
    let h = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: false,
            },
            &[x, w],
            "proj",
        )
        .unwrap();
    let h = g
        .add(Op::Binary(BinaryOp::Add), &[h, bias], "proj")
        .unwrap();
    let h = g
        .add(
            Op::Reshape {
                shape: vec![2, 5, 3, 4],
            },
            &[h],
            "",
        )
        .unwrap();
    let q = g
        .add(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[h],
            "",
        )
        .unwrap();
    let s = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: false,
            },
            &[q, q],
            "scores",
        )
        .unwrap();
    let two = g
        .add(
            Op::Full {
                value: 2.0,
                ty: TensorType::scalar(DType::F32),
            },
            &[],
            "",
        )
        .unwrap();
    let s = g.add(Op::Binary(BinaryOp::Div), &[s, two], "").unwrap();
    let s = g.add(Op::Binary(BinaryOp::Add), &[s, mask], "").unwrap();
    let p = g.add(Op::Softmax, &[s], "").unwrap();
    let c = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
                half_partials: false,
            },
            &[p, q],
            "ctx",
        )
        .unwrap();
    let c = g.add(Op::Unary(UnaryOp::Gelu), &[c], "").unwrap();
    let n = g
        .add(Op::LayerNorm { eps: 1e-12 }, &[c, gamma, beta], "")
        .unwrap();
    let first = g
        .add(
            Op::Slice {
                axis: 2,
                start: 0,
                end: 1,
            },
            &[n],
            "",
        )
        .unwrap();
    g.set_output("out", n).unwrap();
    g.set_output("first", first).unwrap();
    let (params, inputs) = feeds(&g, 1);
    let err = compare(&g, &small_target(7, 64 * 1024), 1, &params, &inputs);
    assert!(err < 1e-5, "relative error {err}");
}

#[test]
fn k_split_products_match() {
    // A tile budget so small that the contraction must be split and reduced.
    let mut g = Graph::new("k");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let a = g.input("a", f(&[3, 256])).unwrap();
    let b = g.param("b", f(&[256, 5])).unwrap();
    let c = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
                half_partials: false,
            },
            &[a, b],
            "",
        )
        .unwrap();
    g.set_output("c", c).unwrap();
    let (params, inputs) = feeds(&g, 2);
    let t = small_target(64, 4 * 1024);
    let plan = lower_program(&g, &t, &LowerOptions::default()).unwrap();
    let adds = plan
        .step
        .supersteps
        .iter()
        .flat_map(|s| &s.compute)
        .flat_map(|c| &c.vertices)
        .filter(|v| matches!(v, tessera_runtime::Vertex::AddPartials { .. }))
        .count();
    assert!(adds > 0, "expected a K-split");
    let err = compare(&g, &t, 1, &params, &inputs);
    assert!(err < 1e-5, "relative error {err}");
}

pub(super) fn lxmert(preset: &str, seq: usize, objects: usize) -> Graph {
    let config = tessera_lxmert::LxmertConfig::preset(preset).unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 2,
        seq_len: seq,
        num_objects: objects,
    };
    tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap()
}

pub(super) fn lxmert_feeds(
    g: &Graph,
    preset: &str,
) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let config = tessera_lxmert::LxmertConfig::preset(preset).unwrap();
    let params: HashMap<String, Tensor> = tessera_lxmert::init_weights(&config, 3)
        .into_iter()
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut inputs = HashMap::new();
    for id in g.inputs() {
        if let Op::Input { name, ty } = &g.node(id).op {
            let t = match name.as_str() {
                "input_ids" => Tensor::from_i64(
                    ty.shape.to_vec(),
                    (0..ty.num_elements())
                        .map(|_| rng.gen_range(0..config.vocab_size as i64))
                        .collect(),
                )
                .unwrap(),
                _ => random(ty, &mut rng),
            };
            inputs.insert(name.clone(), t);
        }
    }
    (params, inputs)
}

#[test]
fn lxmert_tiny_on_one_chip_matches_the_evaluator() {
    let g = lxmert("lxmert-tiny", 7, 5);
    let (params, inputs) = lxmert_feeds(&g, "lxmert-tiny");
    let err = compare(
        &g,
        &tessera_target::target::presets::mk2(),
        1,
        &params,
        &inputs,
    );
    assert!(err < 1e-5, "relative error {err}");
}

#[test]
fn memory_categories_add_up() {
    let g = lxmert("lxmert-tiny", 7, 5);
    let plan = lower_program(
        &g,
        &tessera_target::target::presets::mk2(),
        &LowerOptions::default(),
    )
    .unwrap();
    let param_bytes: u64 = g
        .params()
        .iter()
        .map(|&p| g.node(p).ty.size_bytes() as u64)
        .sum();
    let weights: u64 = plan.memory.iter().map(|m| m.at_peak.weights).sum();
    // Every parameter byte is on some tile (pieces are rounded up to 8 bytes).
    assert!(weights >= param_bytes, "{weights} < {param_bytes}");
    assert!(weights < param_bytes + 8 * 4096, "{weights}");
    for m in &plan.memory {
        let c = m.at_peak;
        assert_eq!(c.weights + c.inputs + c.constants, m.always_live);
        let live =
            c.weights + c.inputs + c.constants + c.activations + c.exchange_buffers + c.temporaries;
        assert!(live <= m.peak, "{live} > {}", m.peak);
    }
    assert_eq!(plan.live_bytes.len(), plan.step.supersteps.len());
    let always: u64 = plan.memory.iter().map(|m| m.always_live).sum();
    assert!(plan.live_bytes.iter().all(|l| l[0] >= always));
}

#[test]
fn lxmert_tiny_on_four_small_chips_matches_the_evaluator() {
    let mut g = lxmert("lxmert-tiny", 7, 5);
    // Stages by topological position: four contiguous quarters (inter-chip copies between).
    let order = g.topo_order();
    let n = order.len();
    for (i, id) in order.into_iter().enumerate() {
        g.node_mut(id).annot.stage = Some((i * 4 / n) as u32);
    }
    let (params, inputs) = lxmert_feeds(&g, "lxmert-tiny");
    let err = compare(&g, &small_target(64, 256 * 1024), 4, &params, &inputs);
    assert!(err < 1e-5, "relative error {err}");
}

#[test]
fn out_of_memory_names_tile_tensors_and_vertices() {
    let g = lxmert("lxmert-tiny", 7, 5);
    let t = small_target(4, 16 * 1024);
    let err = lower_program(&g, &t, &LowerOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("Out of memory on tile "), "{msg}");
    assert!(
        msg.contains("bytes used but tiles only have 16,384 bytes"),
        "{msg}"
    );
    assert!(msg.contains("largest tensors on tile"), "{msg}");
    let plan = lower_program(
        &g,
        &t,
        &LowerOptions {
            allow_oom: true,
            ..LowerOptions::default()
        },
    )
    .unwrap();
    let oom = plan.oom.as_ref().unwrap();
    assert!(oom.used > 16 * 1024);
    // The tile's data peak plus its code and vertex state (always live).
    let tile = (oom.chip * t.tiles_per_chip + oom.tile) as usize;
    assert!(oom.code_bytes > 0 && oom.vertex_state_bytes > 0);
    assert_eq!(
        plan.memory[tile].peak + oom.code_bytes + oom.vertex_state_bytes,
        oom.used
    );
    assert!(TileSession::new(&plan).is_err());
}

#[test]
fn stage_beyond_the_machine_is_an_error() {
    let mut g = lxmert("lxmert-tiny", 7, 5);
    let last = *g.topo_order().last().unwrap();
    g.node_mut(last).annot.stage = Some(3);
    let e = lower_program(
        &g,
        &tessera_target::target::presets::mk2(),
        &LowerOptions {
            chips: 2,
            ..LowerOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("pipeline stage 3, but the machine has 2 chip(s)"),
        "{e}"
    );
}

#[test]
fn lxmert_tiny_training_gradients_match_the_evaluator() {
    let fwd = lxmert("lxmert-tiny", 7, 5);
    let logits = fwd.output("question_answering_score").unwrap();
    let classes = *fwd.node(logits).ty.shape.last().unwrap();
    let labels = TensorType::new(DType::F32, vec![2, classes]);
    let with_loss = crate::loss::attach_vqa_loss(&fwd, &labels).unwrap();
    let g = crate::autodiff::autodiff(&with_loss, &crate::autodiff::AutodiffOptions::default())
        .unwrap();
    let (params, mut inputs) = lxmert_feeds(&g, "lxmert-tiny");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    inputs.insert(
        "labels".into(),
        Tensor::from_f32(
            vec![2, classes],
            (0..2 * classes).map(|_| rng.gen_range(0.0..1.0)).collect(),
        )
        .unwrap(),
    );
    for chips in [1, 4] {
        let mut g = g.clone();
        if chips > 1 {
            let order = g.topo_order();
            let n = order.len();
            for (i, id) in order.into_iter().enumerate() {
                g.node_mut(id).annot.stage = Some((i * 4 / n) as u32);
            }
        }
        // The key biases' gradients are zero up to rounding (softmax ignores a constant added
        // to a row of scores), so errors are taken relative to at least 1e-3 of the largest
        // gradient; every other output is well above that.
        let err = compare_with_floor(
            &g,
            &small_target(256, 256 * 1024),
            chips,
            &params,
            &inputs,
            1e-3,
        );
        assert!(err < 1e-5, "{chips} chip(s): relative error {err}");
    }
}

#[test]
fn reductions_over_any_axes_match_the_evaluator() {
    use tessera_ir::ReduceKind;
    for (axes, keep) in [
        (vec![0, 1], false),
        (vec![2], true),
        (vec![0], false),
        (vec![1], true),
        (vec![0, 1, 2], false),
    ] {
        for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
            let mut g = Graph::new("r");
            let x = g
                .input("x", TensorType::new(DType::F32, vec![2, 7, 32]))
                .unwrap();
            let e = g.add(Op::Unary(UnaryOp::Exp), &[x], "").unwrap();
            let r = g
                .add(
                    Op::Reduce {
                        kind,
                        axes: axes.clone(),
                        keep_dims: keep,
                    },
                    &[e],
                    "",
                )
                .unwrap();
            g.set_output("r", r).unwrap();
            let (params, inputs) = feeds(&g, 5);
            let err = compare(&g, &small_target(5, 64 * 1024), 1, &params, &inputs);
            assert!(err < 1e-6, "{kind:?} {axes:?}: {err}");
        }
    }
}

#[test]
fn a_value_read_on_another_chip_crosses_the_link_once() {
    // x (chip 0, after a gelu) feeds a matmul on chip 1 whose output columns are spread over
    // many tiles, each needing all of x; and a per-row scale [6, 1] broadcast over the
    // columns (expanded on the tiles). The link carries x and the scale once each.
    let mut g = Graph::new("two_chips");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let x = g.input("x", f(&[6, 8])).unwrap();
    let scale = g.input("scale", f(&[6, 1])).unwrap();
    let w = g.param("w", f(&[8, 64])).unwrap();
    let h = g.add(Op::Unary(UnaryOp::Gelu), &[x], "a").unwrap();
    let y = g
        .add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
                half_partials: false,
            },
            &[h, w],
            "b",
        )
        .unwrap();
    let y = g.add(Op::Binary(BinaryOp::Mul), &[y, scale], "b").unwrap();
    g.set_output("y", y).unwrap();
    for id in g.topo_order() {
        let stage = u32::from(g.node(id).scope == "b" || g.node(id).op.name() == "param");
        g.node_mut(id).annot.stage = Some(stage);
    }
    let target = small_target(16, 64 * 1024);
    let (params, inputs) = feeds(&g, 3);
    let err = compare(&g, &target, 2, &params, &inputs);
    assert!(err < 1e-5, "relative error {err}");
    let opts = LowerOptions {
        chips: 2,
        ..LowerOptions::default()
    };
    let plan = lower_program(&g, &target, &opts).unwrap();
    let inter: u64 = plan.costs.iter().map(|c| c.inter_chip_bytes).sum();
    // gelu(x) is 6 × 8 f32; the scale input streams onto chip 0 (stage 0 by default).
    let scale_bytes = if g.node(scale).annot.stage == Some(1) {
        0
    } else {
        6 * 4
    };
    assert_eq!(inter, 6 * 8 * 4 + scale_bytes);
}

#[test]
fn reductions_of_rows_larger_than_a_tile_budget_are_reduced_where_they_lie() {
    // Rows of 32 KiB and 64 KiB on 16 tiles of 64 KiB (budget 4 KiB): a single-level
    // reduction would gather a whole row on one tile. Squares first, as the gradient norm.
    use tessera_ir::ReduceKind;
    let mut g = Graph::new("norm");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let x = g.input("x", f(&[64, 256])).unwrap();
    let y = g.input("y", f(&[2, 8192])).unwrap();
    let sq = g.add(Op::Binary(BinaryOp::Mul), &[x, x], "").unwrap();
    let total = reduce_of(&mut g, ReduceKind::Sum, vec![0, 1], sq);
    let rows = reduce_of(&mut g, ReduceKind::Max, vec![1], y);
    let mean = reduce_of(&mut g, ReduceKind::Mean, vec![1], y);
    g.set_output("total", total).unwrap();
    g.set_output("rows", rows).unwrap();
    g.set_output("mean", mean).unwrap();
    let target = small_target(16, 64 * 1024);
    let (params, inputs) = feeds(&g, 5);
    let err = compare(&g, &target, 1, &params, &inputs);
    assert!(err < 1e-6, "relative error {err}");
    let plan = lower_program(&g, &target, &LowerOptions::default()).unwrap();
    assert!(plan.oom.is_none());
    // The sum alone: its partials are computed where the squares lie, and only the partials
    // (one f32 per piece, at most one piece per tile) cross tiles, not the 64 KiB row.
    let mut only = Graph::new("sum");
    let x = only.input("x", f(&[64, 256])).unwrap();
    let sq = only.add(Op::Binary(BinaryOp::Mul), &[x, x], "").unwrap();
    let total = reduce_of(&mut only, ReduceKind::Sum, vec![0, 1], sq);
    only.set_output("total", total).unwrap();
    let plan = lower_program(&only, &target, &LowerOptions::default()).unwrap();
    let moved: u64 = plan.costs.iter().map(|c| c.exchange_bytes).sum();
    assert!(moved <= 16 * 4, "{moved} bytes exchanged");
}

#[test]
fn reductions_over_leading_axes_reduce_rows_where_they_lie() {
    // A bias gradient's shape: sum over the rows of [256, 96] spread over 16 tiles (whole
    // rows per piece), and a max over the leading axis of [4, 3, 16] whose pieces cut its
    // 48-element rows (grain 16 over 5 tiles): ragged partial rows.
    use tessera_ir::ReduceKind;
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    for (shape, axes, kind, tiles) in [
        (vec![256, 96], vec![0], ReduceKind::Sum, 16),
        (vec![4, 3, 16], vec![0], ReduceKind::Max, 5),
        (vec![2, 64, 24], vec![0, 1], ReduceKind::Sum, 7),
    ] {
        let mut g = Graph::new("bias");
        let x = g.input("x", f(&shape)).unwrap();
        let e = g.add(Op::Unary(UnaryOp::Exp), &[x], "").unwrap();
        let r = reduce_of(&mut g, kind, axes.clone(), e);
        g.set_output("r", r).unwrap();
        let target = small_target(tiles, 64 * 1024);
        let (params, inputs) = feeds(&g, 9);
        let err = compare(&g, &target, 1, &params, &inputs);
        assert!(err < 1e-6, "{shape:?} {axes:?}: relative error {err}");
        let plan = lower_program(&g, &target, &LowerOptions::default()).unwrap();
        let copies: usize = plan.step.supersteps.iter().map(|s| s.exchange.len()).sum();
        let cols_vertices = plan
            .step
            .supersteps
            .iter()
            .flat_map(|s| &s.compute)
            .flat_map(|c| &c.vertices)
            .filter(|v| v.kind() == "reduce_cols")
            .count();
        assert!(cols_vertices > 0, "{shape:?}: no column reduction");
        // One copy per partial row and output chunk, at most one partial per tile and two
        // ragged ones per piece: far fewer than one copy per element gathered.
        let elements: usize = shape.iter().product();
        let pieces = tiles as usize;
        assert!(
            copies <= 3 * pieces * pieces,
            "{shape:?}: {copies} copies for {elements} elements"
        );
    }
}

#[test]
fn elementwise_ops_of_a_table_in_column_blocks_keep_the_blocks() {
    // A gather table's scaled copy with its rows masked (the embedding gradient's
    // `select(row == padding_idx, 0, dtable)`): the table operand read in place, the scalar
    // fetched once per block, the per-row mask expanded on each block's tile; rows of the
    // masked table are then looked up as from the table itself.
    use tessera_ir::CmpOp;
    let (rows, cols) = (200usize, 16usize);
    let mut g = Graph::new("table");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let table = g.param("table", f(&[rows, cols])).unwrap();
    let idx = g
        .input("idx", TensorType::new(DType::I64, vec![3]))
        .unwrap();
    let scale = g.input("scale", f(&[])).unwrap();
    let key = g.input("key", f(&[rows, 1])).unwrap();
    let zero = g.input("zero", f(&[])).unwrap();
    let looked = g
        .add(Op::Gather { padding_idx: None }, &[table, idx], "")
        .unwrap();
    let scaled = g
        .add(Op::Binary(BinaryOp::Mul), &[table, scale], "")
        .unwrap();
    let cond = g.add(Op::Compare(CmpOp::Gt), &[key, zero], "").unwrap();
    let masked = g.add(Op::Select, &[cond, zero, scaled], "").unwrap();
    let again = g
        .add(Op::Gather { padding_idx: None }, &[masked, idx], "")
        .unwrap();
    g.set_output("looked", looked).unwrap();
    g.set_output("again", again).unwrap();
    let target = small_target(8, 64 * 1024);
    let (params, inputs) = feeds(&g, 4);
    let err = compare(&g, &target, 1, &params, &inputs);
    assert!(err < 1e-6, "relative error {err}");
    let plan = lower_program(&g, &target, &LowerOptions::default()).unwrap();
    let kinds: Vec<&str> = plan
        .step
        .supersteps
        .iter()
        .flat_map(|s| &s.compute)
        .flat_map(|c| &c.vertices)
        .map(|v| v.kind())
        .collect();
    assert!(kinds.contains(&"expand"), "{kinds:?}");
    // The scaled table is read only by the select, which overwrites it in place.
    let in_place = plan
        .step
        .supersteps
        .iter()
        .flat_map(|s| &s.compute)
        .flat_map(|c| &c.vertices)
        .filter(|v| matches!(v, tessera_runtime::vertex::Vertex::Select { b, dst, .. } if b == dst))
        .count();
    assert!(in_place > 0, "no select wrote over its table operand");
    // Re-laid out linearly, every block row would be one copy (rows × blocks ≥ 200).
    let copies: usize = plan.step.supersteps.iter().map(|s| s.exchange.len()).sum();
    assert!(copies < rows, "{copies} copies");
}
