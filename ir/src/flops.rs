//! Floating-point operation counts per node.
//!
//! The counting convention is the usual one for transformer accounting: a multiply-add is
//! two FLOPs, so a matmul `[.., M, K] x [.., K, N]` costs `2·batch·M·N·K`; an elementwise op
//! one FLOP per result element (transcendentals included); a reduction one per input
//! element; softmax and layer norm a small fixed number per element (5 and 8: the
//! subtract/exp/sum/divide and mean/centre/square/sum/scale/shift passes). Data movement
//! (reshape, transpose, gather, slice, cast, ...) counts zero. Matmul FLOPs are reported
//! separately because they dominate and are what published model FLOP figures count.

use crate::graph::{Graph, NodeId};
use crate::op::Op;

/// FLOPs of one node, split into matmul and other arithmetic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flops {
    /// FLOPs of matrix products (2 per multiply-add).
    pub matmul: u64,
    /// FLOPs of everything else (elementwise, reductions, normalisations).
    pub other: u64,
}

impl Flops {
    /// Total FLOPs.
    pub fn total(&self) -> u64 {
        self.matmul + self.other
    }
}

impl std::ops::AddAssign for Flops {
    fn add_assign(&mut self, rhs: Flops) {
        self.matmul += rhs.matmul;
        self.other += rhs.other;
    }
}

/// FLOPs of node `id` of `graph`.
pub fn node_flops(graph: &Graph, id: NodeId) -> Flops {
    let node = graph.node(id);
    let out = node.ty.num_elements() as u64;
    let first_operand_elems = || {
        graph
            .operands(id)
            .first()
            .map(|&o| graph.node(o).ty.num_elements() as u64)
            .unwrap_or(0)
    };
    match &node.op {
        Op::MatMul { transpose_a, .. } => {
            let ops = graph.operands(id);
            let k = ops
                .first()
                .map(|&a| {
                    let s = &graph.node(a).ty.shape;
                    let r = s.len();
                    if *transpose_a {
                        s[r - 2]
                    } else {
                        s[r - 1]
                    }
                })
                .unwrap_or(0) as u64;
            Flops {
                matmul: 2 * out * k,
                other: 0,
            }
        }
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => Flops {
            matmul: 0,
            other: out,
        },
        Op::Softmax => Flops {
            matmul: 0,
            other: 5 * out,
        },
        Op::LayerNorm { .. } => Flops {
            matmul: 0,
            other: 8 * out,
        },
        Op::Reduce { .. } => Flops {
            matmul: 0,
            other: first_operand_elems(),
        },
        Op::ScatterAdd { .. } => Flops {
            matmul: 0,
            other: first_operand_elems(),
        },
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Full { .. }
        | Op::Iota { .. }
        | Op::Gather { .. }
        | Op::OneHot { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::BroadcastTo { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. }
        | Op::Cast { .. } => Flops::default(),
    }
}

/// Total FLOPs of every node of `graph`.
pub fn graph_flops(graph: &Graph) -> Flops {
    let mut total = Flops::default();
    for id in graph.node_ids() {
        total += node_flops(graph, id);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, TensorType};

    #[test]
    fn linear_layer_flops() {
        // x[2,7,32] · W[64,32]^T: 2·(2·7)·64·32 FLOPs.
        let mut g = Graph::new("t");
        let x = g
            .input("x", TensorType::new(DType::F32, vec![2, 7, 32]))
            .unwrap();
        let w = g
            .param("w", TensorType::new(DType::F32, vec![64, 32]))
            .unwrap();
        let y = g
            .add(
                Op::MatMul {
                    transpose_a: false,
                    transpose_b: true,
                    half_partials: false,
                },
                &[x, w],
                "",
            )
            .unwrap();
        assert_eq!(node_flops(&g, y).matmul, 2 * 14 * 64 * 32);
        let t = g.add(Op::Unary(crate::UnaryOp::Tanh), &[y], "").unwrap();
        assert_eq!(node_flops(&g, t).other, 14 * 64);
        assert_eq!(graph_flops(&g).total(), 2 * 14 * 64 * 32 + 14 * 64);
    }
}
