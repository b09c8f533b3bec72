//! Tests of the pass manager: toy passes with exactly known effects, the built-in pass
//! wrappers, pipeline strings, reports, and snapshots of printed IR around real passes.

mod builtin;
mod manager;
mod registry;
mod report;
mod snapshot;

use tessera_ir::{BinaryOp, DType, Graph, Op, TensorType, UnaryOp};

/// `x: f32[2,3]`, `w: f32[3]`; `y = tanh(x * w)` output `y` (4 nodes).
pub(super) fn small() -> Graph {
    let mut g = Graph::new("small");
    let x = g
        .input("x", TensorType::new(DType::F32, vec![2, 3]))
        .unwrap();
    let w = g
        .param("m.w", TensorType::new(DType::F32, vec![3]))
        .unwrap();
    let p = g.add(Op::Binary(BinaryOp::Mul), &[x, w], "m").unwrap();
    let y = g.add(Op::Unary(UnaryOp::Tanh), &[p], "m").unwrap();
    g.set_output("y", y).unwrap();
    g
}
