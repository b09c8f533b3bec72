//! Properties of op costs over random shapes and tile counts.

use super::tests::{matmul, mk2, one_op};
use super::*;
use proptest::prelude::*;
use tessera_ir::{BinaryOp, DType};

fn matmul_cost(b: usize, m: usize, n: usize, k: usize, half: bool, tiles: u32) -> OpCost {
    let (g, y) = one_op(
        matmul(half),
        &[
            TensorType::new(DType::F16, vec![b, m, k]),
            TensorType::new(DType::F16, vec![k, n]),
        ],
    );
    op_cost(&g, y, tiles, &mk2()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Offering more tiles never costs more cycles, in total or in compute.
    #[test]
    fn more_tiles_never_cost_more(
        b in 1usize..6, m in 1usize..300, n in 1usize..300, k in 1usize..300,
        half in any::<bool>(), t1 in 1u32..1472, extra in 0u32..400,
    ) {
        let t2 = (t1 + extra).min(1472);
        let c1 = matmul_cost(b, m, n, k, half, t1);
        let c2 = matmul_cost(b, m, n, k, half, t2);
        prop_assert!(c2.cycles.total() <= c1.cycles.total(), "{c1:?} -> {c2:?}");
        prop_assert!(c2.cycles.compute <= c1.cycles.compute, "{c1:?} -> {c2:?}");
        prop_assert!(c1.tiles_used <= t1 && c2.tiles_used <= t2);
    }

    /// No plan beats a perfect spread of the MACs over the tiles it uses, and the FLOPs
    /// are 2·b·m·n·k whatever the plan.
    #[test]
    fn compute_respects_the_perfect_spread_bound(
        b in 1usize..6, m in 1usize..300, n in 1usize..300, k in 1usize..300,
        tiles in 1u32..1472,
    ) {
        let c = matmul_cost(b, m, n, k, true, tiles);
        let macs = (b * m * n * k) as u64;
        let bound = macs.div_ceil(u64::from(c.tiles_used) * 64);
        prop_assert!(c.cycles.compute >= bound, "{c:?} < {bound}");
        prop_assert_eq!(c.flops, 2 * macs);
        prop_assert!(c.tiles_used >= 1);
    }

    /// Elementwise ops: more tiles never cost more, and the time never drops below one
    /// superstep.
    #[test]
    fn elementwise_is_monotone_in_tiles(
        rows in 1usize..600, cols in 1usize..800, t1 in 1u32..1472, extra in 0u32..400,
    ) {
        let (g, y) = one_op(
            Op::Binary(BinaryOp::Mul),
            &[
                TensorType::new(DType::F16, vec![rows, cols]),
                TensorType::new(DType::F16, vec![cols]),
            ],
        );
        let t2 = (t1 + extra).min(1472);
        let c1 = op_cost(&g, y, t1, &mk2()).unwrap();
        let c2 = op_cost(&g, y, t2, &mk2()).unwrap();
        prop_assert!(c2.cycles.total() <= c1.cycles.total());
        prop_assert!(c2.cycles.compute <= c1.cycles.compute);
        prop_assert!(c1.cycles.total() >= 190);
    }
}

/// The case where plain total-cycle minimisation would raise compute when tiles are added
/// (found by `more_tiles_never_cost_more`): [133,113] x [113,113] with fp32 partials.
#[test]
fn adding_tiles_does_not_trade_compute_for_exchange() {
    let c1 = matmul_cost(1, 133, 113, 113, false, 618);
    let c2 = matmul_cost(1, 133, 113, 113, false, 704);
    assert!(c2.cycles.compute <= c1.cycles.compute, "{c1:?} -> {c2:?}");
    assert!(c2.cycles.total() <= c1.cycles.total(), "{c1:?} -> {c2:?}");
}
