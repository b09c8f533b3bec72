//! Fused sibling products ([`super::matmul`]'s weights module): `Linear` layers reading one
//! activation, lowered as one product over their concatenated weights, checked against the
//! reference evaluator and against the same graph lowered without fusion.
#![cfg(test)]

use super::session::TileSession;
use super::tests::{lxmert, lxmert_feeds, small_target};
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tessera_ir::{BinaryOp, DType, Graph, Op, Tensor, TensorType};
use tessera_runtime::TraceMode;

/// A matmul of an activation by a weight (`x w^T` when `tb`).
fn product(tb: bool) -> Op {
    Op::MatMul {
        transpose_a: false,
        transpose_b: tb,
        half_partials: false,
    }
}

/// `y_j = x w_j^T + b_j` for weights `[n_j, k]` over `x` `[rows, k]`; every `y_j` an output.
fn siblings(rows: usize, k: usize, ns: &[usize]) -> Graph {
    let mut g = Graph::new("siblings");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let x = g.input("x", f(&[1, rows, k])).unwrap();
    for (j, &n) in ns.iter().enumerate() {
        let w = g.param(&format!("w{j}"), f(&[n, k])).unwrap();
        let b = g.param(&format!("b{j}"), f(&[n])).unwrap();
        let y = g.add(product(true), &[x, w], format!("lin{j}")).unwrap();
        let y = g.add(Op::Binary(BinaryOp::Add), &[y, b], "").unwrap();
        g.set_output(&format!("y{j}"), y).unwrap();
    }
    g
}

fn feeds(g: &Graph, seed: u64) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |ty: &TensorType| {
        let n = ty.num_elements();
        Tensor::from_f32(
            ty.shape.to_vec(),
            (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
        )
        .unwrap()
    };
    let mut params = HashMap::new();
    for id in g.params() {
        if let Op::Param { name, ty } = &g.node(id).op {
            params.insert(name.clone(), draw(ty));
        }
    }
    let mut inputs = HashMap::new();
    for id in g.inputs() {
        if let Op::Input { name, ty } = &g.node(id).op {
            inputs.insert(name.clone(), draw(ty));
        }
    }
    (params, inputs)
}

/// Lowers `g` (fused or not), runs it, and returns the plan with the worst relative error
/// of its outputs against the evaluator.
fn run(
    g: &Graph,
    t: &Target,
    chips: u32,
    fuse: bool,
    params: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
) -> (TilePlan, f64) {
    let opts = LowerOptions {
        chips,
        fuse_matmuls: fuse,
        ..LowerOptions::default()
    };
    let plan = lower_program(g, t, &opts).unwrap();
    let mut s = TileSession::new(&plan).unwrap();
    s.load(params).unwrap();
    let (got, _) = s.run(inputs, TraceMode::Off).unwrap();
    let want = tessera_ir::eval::evaluate(g, inputs, params).unwrap();
    let mut worst = 0f64;
    for (name, w) in &want {
        let e = got[name].rel_max_err(w).unwrap();
        assert!(!e.is_nan(), "{name}");
        worst = worst.max(e);
    }
    (plan, worst)
}

fn fused_labels(plan: &TilePlan) -> usize {
    plan.costs
        .iter()
        .filter(|c| c.label.contains("fused with"))
        .count()
}

fn exchange_bytes(plan: &TilePlan) -> u64 {
    plan.costs.iter().map(|c| c.exchange_bytes).sum()
}

#[test]
fn query_key_value_shapes_fuse_and_match_the_evaluator() {
    // Three [8, 16] weights over 8 tiles: one product of 24 columns.
    let g = siblings(6, 16, &[8, 8, 8]);
    let (params, inputs) = feeds(&g, 1);
    let t = small_target(8, 64 * 1024);
    let (fused, e) = run(&g, &t, 1, true, &params, &inputs);
    assert!(e < 1e-5, "fused: relative error {e}");
    let (apart, e) = run(&g, &t, 1, false, &params, &inputs);
    assert!(e < 1e-5, "unfused: relative error {e}");
    // One product's supersteps instead of three products'.
    assert!(fused_labels(&fused) > 0, "{:#?}", fused.costs);
    assert_eq!(fused_labels(&apart), 0);
    assert!(fused.step.supersteps.len() < apart.step.supersteps.len());
}

#[test]
fn random_sibling_groups_match_the_evaluator() {
    // Odd widths, so that column blocks straddle two weights; tiles from 1 to 9.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for case in 0..24 {
        let rows = rng.gen_range(1..10);
        let k = rng.gen_range(1..40);
        let ns: Vec<usize> = (0..rng.gen_range(2..5))
            .map(|_| rng.gen_range(1..12))
            .collect();
        let tiles = rng.gen_range(1..10);
        let g = siblings(rows, k, &ns);
        let (params, inputs) = feeds(&g, case);
        let t = small_target(tiles, 64 * 1024);
        let (plan, e) = run(&g, &t, 1, true, &params, &inputs);
        assert!(
            e < 1e-5,
            "case {case}: rows {rows}, k {k}, widths {ns:?}, {tiles} tiles: relative error {e}"
        );
        assert!(fused_labels(&plan) > 0, "case {case}: not fused");
    }
}

#[test]
fn lxmert_tiny_fused_matches_and_broadcasts_less() {
    // Every self-attention's query, key and value fuse; the cross-attention's are shared by
    // both directions, so their weights have two readers and stay apart.
    let g = lxmert("lxmert-tiny", 7, 5);
    let (params, inputs) = lxmert_feeds(&g, "lxmert-tiny");
    let t = small_target(64, 256 * 1024);
    let (fused, e) = run(&g, &t, 1, true, &params, &inputs);
    assert!(e < 1e-5, "fused: relative error {e}");
    let (apart, e) = run(&g, &t, 1, false, &params, &inputs);
    assert!(e < 1e-5, "unfused: relative error {e}");
    assert!(fused_labels(&fused) > 0);
    let (fb, ab) = (exchange_bytes(&fused), exchange_bytes(&apart));
    assert!(fb < ab, "fused {fb} bytes, unfused {ab}");
}

/// `y_i = x_i w` (or `x_i w^T`) for inputs `x_i` `[rows_i, k]` and one weight.
fn shared(rows: &[usize], k: usize, n: usize, tb: bool) -> Graph {
    let mut g = Graph::new("shared");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let dims = if tb { [n, k] } else { [k, n] };
    let w = g.param("w", f(&dims)).unwrap();
    for (i, &r) in rows.iter().enumerate() {
        let x = g.input(&format!("x{i}"), f(&[1, r, k])).unwrap();
        let y = g.add(product(tb), &[x, w], format!("use{i}")).unwrap();
        g.set_output(&format!("y{i}"), y).unwrap();
    }
    g
}

/// Bytes of `step`'s exchanges whose source lies in parameter `name`'s tile bytes.
fn bytes_read_from(plan: &TilePlan, name: &str) -> u64 {
    let buffer = plan
        .params
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.buffer)
        .unwrap();
    let regions: Vec<_> = plan
        .load
        .supersteps
        .iter()
        .flat_map(|s| &s.host_to_tile)
        .filter(|c| c.buffer == buffer)
        .map(|c| c.tile)
        .collect();
    plan.step
        .supersteps
        .iter()
        .flat_map(|s| &s.exchange)
        .filter(|x| {
            regions.iter().any(|r| {
                r.tile == x.src.tile
                    && x.src.region.offset < r.region.offset + r.region.len
                    && r.region.offset < x.src.region.offset + x.src.region.len
            })
        })
        .map(|x| u64::from(x.src.region.len))
        .sum()
}

#[test]
fn a_weight_read_by_several_products_is_read_in_place_by_all() {
    // LXMERT's cross-attention reads one weight from both directions. With one row per
    // product there is no row split, so no product needs another tile's weight block.
    for tb in [true, false] {
        let g = shared(&[1, 1, 1], 32, 24, tb);
        let (params, inputs) = feeds(&g, 3);
        let t = small_target(8, 64 * 1024);
        let (on, e) = run(&g, &t, 1, true, &params, &inputs);
        assert!(e < 1e-5, "transposed {tb}: relative error {e}");
        assert_eq!(bytes_read_from(&on, "w"), 0, "transposed {tb}");
        // Apart, the products other than the first fetch the whole weight.
        let (off, e) = run(&g, &t, 1, false, &params, &inputs);
        assert!(e < 1e-5, "transposed {tb}, separately: relative error {e}");
        assert!(
            bytes_read_from(&off, "w") >= 2 * 32 * 24 * 4,
            "transposed {tb}"
        );
    }
}

#[test]
fn random_shared_weights_match_the_evaluator() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for case in 0..16 {
        let rows: Vec<usize> = (0..rng.gen_range(2..4))
            .map(|_| rng.gen_range(1..12))
            .collect();
        let (k, n) = (rng.gen_range(1..40), rng.gen_range(1..30));
        let tb = rng.gen_bool(0.5);
        let tiles = rng.gen_range(1..10);
        let g = shared(&rows, k, n, tb);
        let (params, inputs) = feeds(&g, case);
        let t = small_target(tiles, 64 * 1024);
        let (_, e) = run(&g, &t, 1, true, &params, &inputs);
        assert!(
            e < 1e-5,
            "case {case}: rows {rows:?}, k {k}, n {n}, transposed {tb}, {tiles} tiles: {e}"
        );
    }
}

/// Cross-attention's projections: `x` and `y` each read by the query of one direction and
/// the key and value of the other, with one set of weights `wq`, `wk`, `wv` `[n, k]`.
fn cross(rows: [usize; 2], k: usize, n: usize) -> Graph {
    let mut g = Graph::new("cross");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let w: Vec<_> = ["wq", "wk", "wv"]
        .iter()
        .map(|name| g.param(name, f(&[n, k])).unwrap())
        .collect();
    let x = g.input("x", f(&[1, rows[0], k])).unwrap();
    let y = g.input("y", f(&[1, rows[1], k])).unwrap();
    for (name, a, wi) in [
        ("q1", x, 0),
        ("k1", y, 1),
        ("v1", y, 2),
        ("q2", y, 0),
        ("k2", x, 1),
        ("v2", x, 2),
    ] {
        let out = g.add(product(true), &[a, w[wi]], name).unwrap();
        g.set_output(name, out).unwrap();
    }
    g
}

#[test]
fn groups_reading_the_same_weights_share_their_layout() {
    // One row per activation: no row split, so neither fused product fetches a weight block.
    let g = cross([1, 1], 24, 16);
    let (params, inputs) = feeds(&g, 5);
    let t = small_target(8, 64 * 1024);
    let (plan, e) = run(&g, &t, 1, true, &params, &inputs);
    assert!(e < 1e-5, "relative error {e}");
    let groups: std::collections::BTreeSet<&str> = plan
        .costs
        .iter()
        .filter(|c| c.label.contains("fused with"))
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    for w in ["wq", "wk", "wv"] {
        assert_eq!(bytes_read_from(&plan, w), 0, "{w}");
    }
    // And with row splits, against the evaluator.
    for (case, rows) in [[5, 9], [20, 36], [3, 1]].into_iter().enumerate() {
        let g = cross(rows, 24, 16);
        let (params, inputs) = feeds(&g, case as u64);
        let (_, e) = run(&g, &t, 1, true, &params, &inputs);
        assert!(e < 1e-5, "rows {rows:?}: relative error {e}");
    }
}

#[test]
fn a_product_repeated_on_one_activation_is_not_fused_with_itself() {
    let mut g = Graph::new("twice");
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let x = g.input("x", f(&[1, 4, 8])).unwrap();
    let w = g.param("w", f(&[6, 8])).unwrap();
    let v = g.param("v", f(&[5, 8])).unwrap();
    for (name, b) in [("a", w), ("b", w), ("c", v)] {
        let out = g.add(product(true), &[x, b], name).unwrap();
        g.set_output(name, out).unwrap();
    }
    let (params, inputs) = feeds(&g, 9);
    for tiles in [1, 3, 8] {
        let (plan, e) = run(
            &g,
            &small_target(tiles, 64 * 1024),
            1,
            true,
            &params,
            &inputs,
        );
        assert!(e < 1e-5, "{tiles} tiles: relative error {e}");
        // Each weight is stored once: the tiles hold exactly the parameters' bytes.
        let weights: u64 = plan.memory.iter().map(|m| m.at_peak.weights).sum();
        assert_eq!(weights, (6 + 5) * 8 * 4, "{tiles} tiles");
    }
}
