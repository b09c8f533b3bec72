//! Folding of redundant casts.
//!
//! Two patterns, both exact (the folded graph computes the same bits):
//! - `cast(x) {to=T}` where `x` already has type `T`: uses of the cast use `x`;
//! - `cast(cast(y) {to=U}) {to=T}` where `y → U` is lossless (f16 → f32, or from bool):
//!   the outer cast reads `y` directly, or, when `y` has type `T` (a widening and its
//!   narrowing back), its uses use `y`.
//!
//! `f32 → f16 → f32` is *not* folded: the narrowing rounds, and dropping it would change
//! the values. Casts left without users by the folding are removed.

use std::collections::HashSet;
use tessera_ir::{DType, Graph, NodeId, Op};

/// True when converting a `from` value to `to` never changes the value.
pub fn lossless(from: DType, to: DType) -> bool {
    from == to || matches!((from, to), (DType::F16, DType::F32) | (DType::Bool, _))
}

/// Folds the redundant casts of `graph` in place; returns how many casts were folded.
pub fn fold_casts(graph: &mut Graph) -> u64 {
    let mut folded = 0;
    let mut touched = Vec::new();
    for c in graph.topo_order() {
        if !graph.contains(c) {
            continue;
        }
        let Op::Cast { to } = graph.node(c).op else {
            continue;
        };
        let [x] = graph.operands(c)[..] else {
            continue;
        };
        if graph.node(x).ty.dtype == to {
            graph.replace_all_uses(c, x);
            touched.push(c);
            folded += 1;
            continue;
        }
        let inner = graph.node(x);
        let (Op::Cast { to: mid }, [y]) = (&inner.op, &graph.operands(x)[..]) else {
            continue;
        };
        let y = *y;
        if !lossless(graph.node(y).ty.dtype, *mid) {
            continue;
        }
        if graph.node(y).ty.dtype == to {
            graph.replace_all_uses(c, y);
            touched.push(c);
        } else {
            graph.set_operand(c, 0, y);
        }
        touched.push(x);
        folded += 1;
    }
    // Remove the casts left unused (and, in turn, unused casts they read).
    let outputs_now: HashSet<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
    while let Some(c) = touched.pop() {
        let unused = graph.contains(c)
            && matches!(graph.node(c).op, Op::Cast { .. })
            && graph.users(c).is_empty()
            && !outputs_now.contains(&c);
        if unused {
            let operands = graph.operands(c);
            graph.remove(c);
            touched.extend(operands);
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tessera_ir::{eval::evaluate, Tensor, TensorData, TensorType};

    fn cast(g: &mut Graph, x: NodeId, to: DType) -> NodeId {
        g.add(Op::Cast { to }, &[x], "s").unwrap()
    }

    #[test]
    fn folds_identity_and_round_trips_but_not_roundings() {
        let mut g = Graph::new("t");
        let h = g.input("h", TensorType::new(DType::F16, vec![3])).unwrap();
        let f = g.input("f", TensorType::new(DType::F32, vec![3])).unwrap();
        let same = cast(&mut g, f, DType::F32); // f32 -> f32: folded
        let up = cast(&mut g, h, DType::F32);
        let back = cast(&mut g, up, DType::F16); // f16 -> f32 -> f16: h
        let up2 = cast(&mut g, h, DType::F32);
        let to_int = cast(&mut g, up2, DType::I64); // f16 -> f32 -> i64: f16 -> i64
        let down = cast(&mut g, f, DType::F16);
        let round = cast(&mut g, down, DType::F32); // f32 -> f16 -> f32: kept
        g.set_output("same", same).unwrap();
        g.set_output("back", back).unwrap();
        g.set_output("to_int", to_int).unwrap();
        g.set_output("round", round).unwrap();
        let before = g.clone();

        assert_eq!(fold_casts(&mut g), 3);
        tessera_ir::verify(&g).unwrap();
        assert_eq!(g.output("same").unwrap(), f);
        assert_eq!(g.output("back").unwrap(), h);
        assert_eq!(g.operands(g.output("to_int").unwrap()), vec![h]);
        assert_eq!(g.output("round").unwrap(), round);
        assert_eq!(g.operands(round), vec![down]);
        // same, up, back and up2 are gone; to_int, down and round remain.
        assert_eq!(g.len(), 2 + 3);

        let feeds = HashMap::from([
            (
                "h".to_string(),
                Tensor::new(
                    vec![3],
                    TensorData::F16(vec![
                        half::f16::from_f32(1.5),
                        half::f16::from_f32(-2.75),
                        half::f16::from_f32(1e-3),
                    ]),
                )
                .unwrap(),
            ),
            (
                "f".to_string(),
                Tensor::from_f32(vec![3], vec![0.1, 1e-8, 3.0e4]).unwrap(),
            ),
        ]);
        let no_params = HashMap::new();
        assert_eq!(
            evaluate(&before, &feeds, &no_params).unwrap(),
            evaluate(&g, &feeds, &no_params).unwrap()
        );
    }

    #[test]
    fn lossless_conversions() {
        assert!(lossless(DType::F16, DType::F32));
        assert!(lossless(DType::Bool, DType::F16));
        assert!(!lossless(DType::F32, DType::F16));
        assert!(!lossless(DType::I64, DType::F32));
        assert!(!lossless(DType::F32, DType::I64));
    }
}
