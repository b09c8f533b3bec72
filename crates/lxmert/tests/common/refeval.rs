//! A small, slow, f64 interpreter of the IR ops the LXMERT graph uses, written from the op
//! documentation in `tessera_ir::op` only. It lets the numerics tests compare the built
//! graph with the Hugging Face fixtures without depending on the project's evaluator.

use std::collections::{BTreeMap, HashMap};
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, Tensor, UnaryOp};

/// A dense row-major f64 value.
#[derive(Clone, Debug)]
pub struct Val {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        idx[i] = flat % shape[i];
        flat /= shape[i];
    }
    idx
}

/// Flat index into `shape` of the NumPy-broadcast element at output index `out`.
fn bcast_index(out: &[usize], shape: &[usize]) -> usize {
    let off = out.len() - shape.len();
    let st = strides(shape);
    (0..shape.len())
        .map(|i| {
            if shape[i] == 1 {
                0
            } else {
                out[off + i] * st[i]
            }
        })
        .sum()
}

/// Numerical Recipes' `erfcc` (fractional error < 1.2e-7 everywhere).
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - erfc
    } else {
        erfc - 1.0
    }
}

fn unary(u: UnaryOp, x: f64) -> f64 {
    match u {
        UnaryOp::Gelu => x * 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        UnaryOp::Tanh => x.tanh(),
        other => panic!("refeval: unary {other:?} not implemented"),
    }
}

fn binary(b: BinaryOp, x: f64, y: f64) -> f64 {
    match b {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        other => panic!("refeval: binary {other:?} not implemented"),
    }
}

fn matmul(a: &Val, b: &Val, ta: bool, tb: bool, out_shape: &[usize]) -> Val {
    let r = out_shape.len();
    let (m, n) = (out_shape[r - 2], out_shape[r - 1]);
    let k = if ta {
        a.shape[a.shape.len() - 2]
    } else {
        a.shape[a.shape.len() - 1]
    };
    let batch_shape = &out_shape[..r - 2];
    let nb: usize = batch_shape.iter().product();
    let (ab, bb) = (&a.shape[..a.shape.len() - 2], &b.shape[..b.shape.len() - 2]);
    let (am, an) = (a.shape[a.shape.len() - 2], a.shape[a.shape.len() - 1]);
    let (bm, bn) = (b.shape[b.shape.len() - 2], b.shape[b.shape.len() - 1]);
    let mut data = vec![0.0; nb * m * n];
    for bi in 0..nb {
        let bidx = unravel(bi, batch_shape);
        let a0 = bcast_index(&bidx, ab) * am * an;
        let b0 = bcast_index(&bidx, bb) * bm * bn;
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    let av = if ta {
                        a.data[a0 + p * an + i]
                    } else {
                        a.data[a0 + i * an + p]
                    };
                    let bv = if tb {
                        b.data[b0 + j * bn + p]
                    } else {
                        b.data[b0 + p * bn + j]
                    };
                    acc += av * bv;
                }
                data[bi * m * n + i * n + j] = acc;
            }
        }
    }
    Val {
        shape: out_shape.to_vec(),
        data,
    }
}

fn last_axis_rows(v: &Val) -> (usize, usize) {
    let h = *v.shape.last().unwrap();
    (v.data.len() / h, h)
}

fn eval_node(g: &Graph, id: NodeId, args: &[&Val], feeds: &Feeds) -> Val {
    let node = g.node(id);
    let shape = node.ty.shape.clone();
    let n: usize = shape.iter().product();
    let data = match &node.op {
        Op::Input { name, .. } => feeds.inputs[name].to_f64_vec(),
        Op::Param { name, .. } => feeds.params[name].to_f64_vec(),
        Op::Full { value, .. } => vec![*value; n],
        Op::Iota { axis, .. } => (0..n).map(|f| unravel(f, &shape)[*axis] as f64).collect(),
        Op::Unary(u) => args[0].data.iter().map(|&x| unary(*u, x)).collect(),
        Op::Binary(b) => (0..n)
            .map(|f| {
                let idx = unravel(f, &shape);
                let x = args[0].data[bcast_index(&idx, &args[0].shape)];
                let y = args[1].data[bcast_index(&idx, &args[1].shape)];
                binary(*b, x, y)
            })
            .collect(),
        Op::MatMul {
            transpose_a,
            transpose_b,
            ..
        } => return matmul(args[0], args[1], *transpose_a, *transpose_b, &shape),
        Op::Gather { .. } => {
            let (table, idx) = (args[0], args[1]);
            let row: usize = table.shape[1..].iter().product();
            idx.data
                .iter()
                .flat_map(|&i| table.data[i as usize * row..(i as usize + 1) * row].to_vec())
                .collect()
        }
        Op::Softmax => {
            let (rows, h) = last_axis_rows(args[0]);
            let mut out = Vec::with_capacity(n);
            for r in 0..rows {
                let x = &args[0].data[r * h..(r + 1) * h];
                let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = x.iter().map(|&v| (v - max).exp()).collect();
                let s: f64 = e.iter().sum();
                out.extend(e.iter().map(|v| v / s));
            }
            out
        }
        Op::LayerNorm { eps } => {
            let (rows, h) = last_axis_rows(args[0]);
            let (gamma, beta) = (&args[1].data, &args[2].data);
            let mut out = Vec::with_capacity(n);
            for r in 0..rows {
                let x = &args[0].data[r * h..(r + 1) * h];
                let mean = x.iter().sum::<f64>() / h as f64;
                let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
                let inv = 1.0 / (var + eps).sqrt();
                out.extend((0..h).map(|i| (x[i] - mean) * inv * gamma[i] + beta[i]));
            }
            out
        }
        Op::Reshape { .. } => args[0].data.clone(),
        Op::Transpose { perm } => {
            let st = strides(&args[0].shape);
            (0..n)
                .map(|f| {
                    let idx = unravel(f, &shape);
                    (0..perm.len()).map(|i| idx[i] * st[perm[i]]).sum::<usize>()
                })
                .map(|src| args[0].data[src])
                .collect()
        }
        Op::Slice { axis, start, .. } => {
            let st = strides(&args[0].shape);
            (0..n)
                .map(|f| {
                    let mut idx = unravel(f, &shape);
                    idx[*axis] += start;
                    args[0].data[(0..idx.len()).map(|i| idx[i] * st[i]).sum::<usize>()]
                })
                .collect()
        }
        Op::Cast { to } => args[0]
            .data
            .iter()
            .map(|&x| match to {
                DType::F32 => x as f32 as f64,
                DType::I64 => x.trunc(),
                other => panic!("refeval: cast to {other} not implemented"),
            })
            .collect(),
        other => panic!("refeval: op {} not implemented", other.name()),
    };
    assert_eq!(
        data.len(),
        n,
        "refeval: {} at {}",
        node.op.name(),
        node.scope
    );
    Val { shape, data }
}

/// Graph inputs and parameters by name.
pub struct Feeds<'a> {
    pub inputs: &'a HashMap<String, Tensor>,
    pub params: &'a BTreeMap<String, Tensor>,
}

/// Every named output of `g`, computed in f64.
pub fn evaluate(g: &Graph, feeds: &Feeds) -> BTreeMap<String, Val> {
    let mut vals: HashMap<NodeId, Val> = HashMap::new();
    for id in g.topo_order() {
        let operands = g.operands(id);
        let args: Vec<&Val> = operands.iter().map(|o| &vals[o]).collect();
        let v = eval_node(g, id, &args, feeds);
        vals.insert(id, v);
    }
    g.outputs()
        .iter()
        .map(|o| (o.name.clone(), vals[&o.node].clone()))
        .collect()
}

#[test]
fn erf_matches_tabulated_values() {
    // Abramowitz & Stegun table 7.1
    for (x, e) in [
        (0.5, 0.520_499_877_8),
        (1.0, 0.842_700_792_9),
        (2.0, 0.995_322_265_0),
    ] {
        assert!((erf(x) - e).abs() < 3e-7, "erf({x})");
        assert!((erf(-x) + e).abs() < 3e-7, "erf(-{x})");
    }
}
