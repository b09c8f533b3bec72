//! Tests of unit partitions on lxmert-tiny and on small hand-built graphs.

use super::*;
use crate::testing::tiny_training;
use tessera_ir::{BinaryOp, DType, Graph, Op, TensorType, UnaryOp};

fn names(units: &Units) -> Vec<String> {
    units.units().iter().map(|u| u.name.clone()).collect()
}

#[test]
fn lxmert_layers_come_in_forward_order() {
    let t = tiny_training(1);
    let units = Units::new(&t.graph, &LayerRule::lxmert(), Granularity::Layer);
    assert_eq!(
        names(&units),
        [
            "lxmert.embeddings",
            "lxmert.encoder.visn_fc",
            "lxmert.encoder.layer.0",
            "lxmert.encoder.layer.1",
            "lxmert.encoder.r_layers.0",
            "lxmert.encoder.x_layers.0",
            "lxmert.pooler",
            "answer_head",
            "loss",
        ]
    );
    let numbered: Vec<bool> = units.units().iter().map(|u| u.numbered).collect();
    assert_eq!(
        numbered,
        [false, false, true, true, true, true, false, false, false]
    );
    // Every computed node has a unit, forward and backward alike; leaves have none.
    for id in t.graph.node_ids() {
        let n = t.graph.node(id);
        assert_eq!(units.unit_of(id).is_some(), !n.op.is_leaf(), "{}", n.scope);
    }
    // The top-level attention-mask arithmetic joins its first user, the first language layer.
    let mask = t
        .graph
        .node_ids()
        .find(|&id| t.graph.node(id).scope == "lxmert" && !t.graph.node(id).op.is_leaf())
        .unwrap();
    assert_eq!(units.unit_of(mask), units.find("lxmert.encoder.layer.0"));
    // Backward nodes join their forward module's unit.
    let bwd = t
        .graph
        .node_ids()
        .find(|&id| {
            t.graph
                .node(id)
                .scope
                .starts_with("lxmert.encoder.x_layers.0.")
                && phase(t.graph.node(id)) == Phase::Backward
        })
        .unwrap();
    assert_eq!(units.unit_of(bwd), units.find("lxmert.encoder.x_layers.0"));
}

#[test]
fn sub_layer_units_split_layers_into_their_modules() {
    let t = tiny_training(1);
    let units = Units::new(&t.graph, &LayerRule::lxmert(), Granularity::SubLayer);
    let n = names(&units);
    for want in [
        "lxmert.encoder.layer.0.attention",
        "lxmert.encoder.layer.0.intermediate",
        "lxmert.encoder.layer.0.output",
        "lxmert.encoder.x_layers.0.visual_attention",
        "lxmert.encoder.x_layers.0.lang_self_att",
        "answer_head.logit_fc",
        // The pooler's own slice and its dense sub-module feed each other: merged.
        "lxmert.pooler+lxmert.pooler.dense",
    ] {
        assert!(n.iter().any(|x| x == want), "{want} missing from {n:?}");
    }
    let pos = |name: &str| n.iter().position(|x| x == name).unwrap();
    assert!(pos("lxmert.encoder.layer.0.attention") < pos("lxmert.encoder.layer.0.intermediate"));
    assert!(pos("lxmert.encoder.layer.0.output") < pos("lxmert.encoder.layer.1.attention"));
    for u in units.units() {
        assert!(u.name.starts_with(&u.layer));
    }
}

/// `a → b → c` where `b`'s scope is covered by no rule and `c` feeds back into a unit
/// scoped like `a`: units `m.0` (a, and d = c·a) and `m.1` (c) form a cycle.
#[test]
fn cyclic_units_are_merged_and_uncovered_nodes_attached() {
    let t = TensorType::new(DType::F32, vec![2]);
    let mut g = Graph::new("cyc");
    let x = g.input("x", t).unwrap();
    let a = g.add(Op::Unary(UnaryOp::Tanh), &[x], "m.0").unwrap();
    let b = g.add(Op::Unary(UnaryOp::Exp), &[a], "").unwrap();
    let c = g.add(Op::Unary(UnaryOp::Neg), &[b], "m.1").unwrap();
    let d = g.add(Op::Binary(BinaryOp::Mul), &[c, a], "m.0").unwrap();
    let e = g.add(Op::Unary(UnaryOp::Abs), &[d], "m.2").unwrap();
    g.set_output("y", e).unwrap();
    let units = Units::new(&g, &LayerRule::numbered(), Granularity::Layer);
    assert_eq!(names(&units), ["m.0+m.1", "m.2"]);
    assert!(!units.units()[0].numbered, "a merged unit is not one layer");
    // The unscoped b joins its user c's unit, merged.
    assert_eq!(units.unit_of(b), Some(0));
    assert_eq!(units.unit_of(e), Some(1));
}

#[test]
fn topological_fallback_cuts_by_flops() {
    let t = TensorType::new(DType::F32, vec![4]);
    let mut g = Graph::new("chain");
    let mut v = g.input("x", t).unwrap();
    for _ in 0..8 {
        v = g.add(Op::Unary(UnaryOp::Tanh), &[v], "").unwrap();
    }
    g.set_output("y", v).unwrap();
    let units = Units::topological(&g, 4);
    assert_eq!(names(&units), ["topo.0", "topo.1", "topo.2", "topo.3"]);
    // Eight equal nodes in four chunks: two each.
    assert!(units.units().iter().all(|u| u.nodes.len() == 2));
    // The numbered rule on empty scopes gives nothing but the catch-all.
    let plain = Units::new(&g, &LayerRule::numbered(), Granularity::Layer);
    assert_eq!(names(&plain), ["(unscoped)"]);
}
