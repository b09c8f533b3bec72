//! Property test: random well-typed graphs built from the whole op set round-trip through
//! the text IR exactly (printout and structure), and the parsed graph verifies.
//!
//! A graph is generated as a list of instructions interpreted against the graph built so
//! far: each picks an op kind, operands among existing nodes and parameters derived from
//! their shapes, and is skipped when the checked API rejects it.

use super::{assert_same_graph, verify_but_scopes};
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, Op, ReduceKind, UnaryOp};
use crate::text::{parse, print};
use crate::{Annotations, DType, TensorType};
use proptest::prelude::*;

const SCOPES: [&str; 5] = ["", "enc", "enc.layer.0.attention", "with space", "a-b.c_d"];

fn pick(nodes: &[NodeId], k: u32) -> NodeId {
    nodes[k as usize % nodes.len()]
}

/// The op an instruction asks for, given its first operand's type `tx`.
fn make_op(kind: u8, c: u32, b: u32, tx: &TensorType) -> Op {
    let rank = tx.rank().max(1);
    let ax = c as usize % rank;
    let dt = DType::ALL[c as usize % 4];
    match kind % 20 {
        0 => Op::Unary(UnaryOp::ALL[c as usize % UnaryOp::ALL.len()]),
        1 => Op::Binary(BinaryOp::ALL[c as usize % BinaryOp::ALL.len()]),
        2 => Op::Compare(CmpOp::ALL[c as usize % CmpOp::ALL.len()]),
        3 => Op::Select,
        4 => Op::MatMul {
            transpose_a: c & 1 == 1,
            transpose_b: c & 1 == 0,
            half_partials: c & 4 == 4,
        },
        5 => Op::Gather { padding_idx: None },
        6 => Op::ScatterAdd {
            rows: 1 + c as usize % 5,
        },
        7 => Op::OneHot {
            depth: 1 + c as usize % 5,
            dtype: if c & 8 == 0 { DType::F32 } else { DType::F16 },
        },
        8 => Op::Softmax,
        9 => Op::LayerNorm {
            eps: f64::from_bits((u64::from(b) << 20) | 0x3e00_0000_0000_0000),
        },
        10 => Op::Reduce {
            kind: ReduceKind::ALL[c as usize % 3],
            axes: (0..tx.rank()).filter(|i| b >> i & 1 == 1).collect(),
            keep_dims: c & 8 == 8,
        },
        11 => Op::Reshape {
            shape: if c & 1 == 0 {
                vec![tx.num_elements()]
            } else {
                [1].iter().chain(&tx.shape).copied().collect()
            },
        },
        12 => Op::Transpose {
            perm: (0..tx.rank()).map(|i| (i + ax) % tx.rank()).collect(),
        },
        13 => Op::BroadcastTo {
            shape: [1 + b as usize % 3]
                .iter()
                .chain(&tx.shape)
                .copied()
                .collect(),
        },
        14 => {
            let n = tx.shape.get(ax).copied().unwrap_or(1);
            let start = b as usize % n.max(1);
            Op::Slice {
                axis: ax,
                start,
                end: start + 1 + (c as usize >> 8) % (n - start).max(1),
            }
        }
        15 => Op::Pad {
            axis: ax,
            before: b as usize % 3,
            after: (b as usize >> 4) % 3,
        },
        16 => Op::Concat { axis: ax },
        17 => Op::Cast { to: dt },
        18 => Op::Full {
            value: f64::from_bits(u64::from(b) << 32 | u64::from(c)),
            ty: TensorType::new(dt, tx.shape.clone()),
        },
        _ => Op::Iota {
            axis: ax,
            ty: TensorType::new(dt, tx.shape.clone()),
        },
    }
}

/// The `k`-th (cyclically) node whose type satisfies `pred`.
fn pick_where(
    g: &Graph,
    nodes: &[NodeId],
    k: u32,
    pred: impl Fn(&TensorType) -> bool,
) -> Option<NodeId> {
    let fit: Vec<NodeId> = nodes
        .iter()
        .copied()
        .filter(|&n| pred(&g.node(n).ty))
        .collect();
    (!fit.is_empty()).then(|| pick(&fit, k))
}

fn build(inputs: &[(u8, Vec<usize>)], instrs: &[(u8, u32, u32, u32, u8)]) -> Graph {
    let mut g = Graph::new("random");
    let mut nodes = Vec::new();
    for (i, (d, shape)) in inputs.iter().enumerate() {
        let ty = TensorType::new(DType::ALL[*d as usize % 4], shape.clone());
        nodes.push(g.input(&format!("in{i}"), ty).unwrap());
    }
    for (n, &(kind, a, b, c, extra)) in instrs.iter().enumerate() {
        let x = pick(&nodes, a);
        let tx = g.node(x).ty.clone();
        let scope = SCOPES[extra as usize % SCOPES.len()];
        let same = b & 1 == 1;
        let y = if same { x } else { pick(&nodes, b) };
        let op = make_op(kind, c, b, &tx);
        let operands: Vec<NodeId> = match &op {
            Op::Full { .. } | Op::Iota { .. } => vec![],
            Op::Binary(_) | Op::Compare(_) | Op::MatMul { .. } => vec![x, y],
            Op::Gather { .. } => {
                let ids = pick_where(&g, &nodes, b, |t| t.dtype == DType::I64);
                vec![x, ids.unwrap_or(y)]
            }
            Op::ScatterAdd { .. } => {
                let prefix =
                    |t: &TensorType| t.dtype == DType::I64 && tx.shape.starts_with(&t.shape);
                vec![pick_where(&g, &nodes, b, prefix).unwrap_or(y), x]
            }
            Op::Select => {
                let cond = pick_where(&g, &nodes, c, |t| t.dtype == DType::Bool);
                vec![cond.unwrap_or(y), x, y]
            }
            Op::Concat { .. } => vec![x; 1 + c as usize % 3],
            Op::LayerNorm { .. } => {
                let h = tx.shape.last().copied().unwrap_or(1);
                let ty = TensorType::new(tx.dtype, vec![h]);
                let gm = g.param(&format!("p{n}.weight"), ty.clone()).unwrap();
                let bt = g.param(&format!("p{n}.bias"), ty).unwrap();
                vec![x, gm, bt]
            }
            _ => vec![x],
        };
        if let Ok(id) = g.add(op, &operands, scope) {
            g.node_mut(id).annot = Annotations {
                stage: (extra & 0x10 != 0).then_some(u32::from(extra >> 5)),
                recompute: extra & 0x08 != 0,
            };
            nodes.push(id);
        }
    }
    let last = *nodes.last().unwrap();
    g.set_output("out", last).unwrap();
    g.set_output("first", nodes[0]).unwrap();
    g
}

fn inputs() -> impl Strategy<Value = Vec<(u8, Vec<usize>)>> {
    prop::collection::vec((0u8..4, prop::collection::vec(1usize..5, 0..4)), 1..4)
}

fn instrs() -> impl Strategy<Value = Vec<(u8, u32, u32, u32, u8)>> {
    prop::collection::vec(any::<(u8, u32, u32, u32, u8)>(), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_graphs_round_trip(inputs in inputs(), instrs in instrs()) {
        let g = build(&inputs, &instrs);
        verify_but_scopes(&g);
        let text = print(&g);
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(print(&back), text);
        assert_same_graph(&g, &back);
        verify_but_scopes(&back);
    }
}

#[test]
fn generator_covers_every_op() {
    // Sanity check of the generator itself: over a fixed sweep, every op kind is built.
    let mut seen = std::collections::HashSet::new();
    for seed in 0u32..400 {
        let instrs: Vec<_> = (0..40u32)
            .map(|i| {
                let h = (seed * 40 + i).wrapping_mul(2_654_435_761);
                (
                    (h >> 3) as u8,
                    h,
                    h.rotate_left(7),
                    h.rotate_left(13),
                    (h >> 11) as u8,
                )
            })
            .collect();
        let g = build(&[(0, vec![2, 3]), (2, vec![2])], &instrs);
        for id in g.node_ids() {
            seen.insert(std::mem::discriminant(&g.node(id).op));
        }
    }
    assert_eq!(seen.len(), 22, "op variants built: {}", seen.len());
}
