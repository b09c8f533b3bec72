//! Finite-difference checks of the element-moving ops: reshape, transpose, broadcast_to,
//! slice, pad and concat.

use super::harness::{Problem, Tol};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::Rng;
use tessera_ir::{Op, UnaryOp};

fn shape(min_rank: usize, max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=3, min_rank..=max_rank)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn reshape_and_transpose(shape in shape(1, 3), seed in any::<u64>()) {
        let mut p = Problem::new(seed);
        let x = p.param("x", &shape, -2.0, 2.0);
        // Apply a nonlinearity so that a misplaced gradient element shows.
        let t = p.add(Op::Unary(UnaryOp::Tanh), &[x]);
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        perm.shuffle(&mut p.rng);
        let tr = p.add(Op::Transpose { perm: perm.clone() }, &[t]);
        let n: usize = shape.iter().product();
        let r = p.add(Op::Reshape { shape: vec![n] }, &[tr]);
        let y = p.add(Op::Binary(tessera_ir::BinaryOp::Mul), &[r, r]);
        let res = p.finish(y).check(Tol::default());
        prop_assert!(res.is_ok(), "{:?} perm {:?}: {}", shape, perm, res.unwrap_err());
    }

    #[test]
    fn broadcast_to_sums_back(full in shape(1, 3), seed in any::<u64>()) {
        let mut p = Problem::new(seed);
        let s = super::harness::broadcast_operand(&mut p.rng, &full);
        let x = p.param("x", &s, -2.0, 2.0);
        let y = p.add(Op::BroadcastTo { shape: full.clone() }, &[x]);
        let y = p.add(Op::Binary(tessera_ir::BinaryOp::Mul), &[y, y]);
        let res = p.finish(y).check(Tol::default());
        prop_assert!(res.is_ok(), "{:?} -> {:?}: {}", s, full, res.unwrap_err());
    }

    #[test]
    fn slice_pad_and_concat(shape in shape(1, 3), seed in any::<u64>()) {
        let mut p = Problem::new(seed);
        let axis = p.rng.gen_range(0..shape.len());
        let x = p.param("x", &shape, -2.0, 2.0);
        let mut other = shape.clone();
        other[axis] = p.rng.gen_range(1..=3);
        let z = p.param("z", &other, -2.0, 2.0);
        let cat = p.add(Op::Concat { axis }, &[x, z, x]);
        let total = shape[axis] * 2 + other[axis];
        let start = p.rng.gen_range(0..total);
        let end = p.rng.gen_range(start + 1..=total);
        let sl = p.add(Op::Slice { axis, start, end }, &[cat]);
        let (before, after) = (p.rng.gen_range(0..3), p.rng.gen_range(0..3));
        let pd = p.add(Op::Pad { axis, before, after }, &[sl]);
        let y = p.add(Op::Unary(UnaryOp::Tanh), &[pd]);
        let res = p.finish(y).check(Tol::default());
        prop_assert!(res.is_ok(), "{:?} axis {} {}..{}: {}", shape, axis, start, end, res.unwrap_err());
    }
}
