//! The closed set of IR operations.
//!
//! `Op` is an enum whose payloads are plain data (no closures, no trait objects), so that
//! graphs serialise, print and compare structurally, and so that every pass that matches on
//! ops is checked for exhaustiveness by the compiler: adding an op makes every pass that does
//! not handle it fail to compile. Each op produces exactly one value. Its result type is
//! inferred from its operands by [`Op::infer`] when the node is added to a graph.

use crate::dtype::DType;
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

/// Elementwise functions of one operand (floating point only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// `ln(1 + x)`, accurate near 0.
    Log1p,
    /// Hyperbolic tangent.
    Tanh,
    /// The error function.
    Erf,
    /// Exact (erf) GELU: `x * 0.5 * (1 + erf(x / sqrt(2)))`.
    Gelu,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// Absolute value.
    Abs,
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    Sigmoid,
    /// `1 / x`.
    Recip,
}

impl UnaryOp {
    /// All unary functions, in a fixed order.
    pub const ALL: [UnaryOp; 12] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Tanh,
        UnaryOp::Erf,
        UnaryOp::Gelu,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Abs,
        UnaryOp::Sigmoid,
        UnaryOp::Recip,
    ];

    /// The op's name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Erf => "erf",
            UnaryOp::Gelu => "gelu",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Recip => "recip",
        }
    }
}

/// Elementwise functions of two operands with NumPy broadcasting; both operands have the
/// same element type, which is also the result's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)`.
    Max,
    /// `min(a, b)`.
    Min,
    /// `a ^ b` (floating point only).
    Pow,
}

impl BinaryOp {
    /// All binary functions, in a fixed order.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
    ];

    /// The op's name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Pow => "pow",
        }
    }
}

/// Elementwise comparisons with NumPy broadcasting; the result is `bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
}

impl CmpOp {
    /// All comparisons, in a fixed order.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ];

    /// The op's name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Lt => "cmp_lt",
            CmpOp::Le => "cmp_le",
            CmpOp::Gt => "cmp_gt",
            CmpOp::Ge => "cmp_ge",
            CmpOp::Eq => "cmp_eq",
            CmpOp::Ne => "cmp_ne",
        }
    }
}

/// How a reduction combines elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReduceKind {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
}

impl ReduceKind {
    /// All reduction kinds, in a fixed order.
    pub const ALL: [ReduceKind; 3] = [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max];

    /// The op's name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "reduce_sum",
            ReduceKind::Mean => "reduce_mean",
            ReduceKind::Max => "reduce_max",
        }
    }
}

/// An IR operation. Operand order and constraints are given per variant; the result type
/// is computed by [`Op::infer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A graph input fed at run time (no operands). `name` is the feed name, e.g. `input_ids`.
    Input {
        /// Feed name (transformers' forward argument name for models).
        name: String,
        /// Declared type.
        ty: TensorType,
    },
    /// A parameter (weight) with its exact checkpoint name (no operands), e.g.
    /// `lxmert.embeddings.word_embeddings.weight`.
    Param {
        /// The Hugging Face state-dict name.
        name: String,
        /// Declared type.
        ty: TensorType,
    },
    /// A constant tensor with every element equal to `value` (no operands).
    Full {
        /// The element value (converted to the element type).
        value: f64,
        /// Result type.
        ty: TensorType,
    },
    /// A constant whose elements equal their index along `axis` (no operands), e.g.
    /// position ids.
    Iota {
        /// The axis whose index gives the value.
        axis: usize,
        /// Result type.
        ty: TensorType,
    },
    /// Elementwise function of one floating-point operand.
    Unary(UnaryOp),
    /// Elementwise function of two operands of the same element type, broadcast.
    Binary(BinaryOp),
    /// Elementwise comparison of two operands of the same element type, broadcast; `bool` result.
    Compare(CmpOp),
    /// `select(cond, a, b)`: `a` where `cond` is true, else `b`; all three broadcast.
    Select,
    /// Batched matrix product `a[..., M, K] x b[..., K, N] -> [..., M, N]` with broadcast
    /// batch axes; the transposes swap the last two axes of an operand first.
    MatMul {
        /// Use `a` with its last two axes swapped.
        transpose_a: bool,
        /// Use `b` with its last two axes swapped (a `Linear` layer's `x W^T`).
        transpose_b: bool,
        /// Accumulate partial sums in the operands' precision (fp16 partials) instead of f32.
        half_partials: bool,
    },
    /// Embedding lookup `gather(table[V, ...], indices i64[...]) -> [..., ...]`: rows of the
    /// table selected by the indices.
    Gather {
        /// Like PyTorch's `nn.Embedding(padding_idx=...)`: this row never receives a gradient
        /// (the forward is unchanged). LXMERT's three embedding tables use row 0.
        padding_idx: Option<usize>,
    },
    /// The adjoint of [`Op::Gather`]: `scatter_add(indices i64[...], updates[..., D...]) ->
    /// [rows, D...]`, zeros plus each update row added at its index.
    ScatterAdd {
        /// Number of rows of the result (the table's first extent).
        rows: usize,
    },
    /// `one_hot(indices i64[...]) -> dtype[..., depth]`.
    OneHot {
        /// Number of classes.
        depth: usize,
        /// Element type of the result.
        dtype: DType,
    },
    /// Softmax over the last axis.
    Softmax,
    /// `layer_norm(x[..., H], gamma[H], beta[H])`: normalise over the last axis.
    LayerNorm {
        /// Added to the variance before the square root.
        eps: f64,
    },
    /// Reduction over `axes` (ascending, unique).
    Reduce {
        /// How elements are combined.
        kind: ReduceKind,
        /// Reduced axes.
        axes: Vec<usize>,
        /// Keep reduced axes with extent 1.
        keep_dims: bool,
    },
    /// Same elements, new shape (same element count).
    Reshape {
        /// The new shape.
        shape: Vec<usize>,
    },
    /// Axis permutation: result axis `i` is operand axis `perm[i]`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Explicit NumPy broadcast to `shape`.
    BroadcastTo {
        /// The target shape.
        shape: Vec<usize>,
    },
    /// Elements `start..end` along `axis`.
    Slice {
        /// The sliced axis.
        axis: usize,
        /// First index kept.
        start: usize,
        /// One past the last index kept.
        end: usize,
    },
    /// Zero padding along `axis` (the adjoint of [`Op::Slice`]).
    Pad {
        /// The padded axis.
        axis: usize,
        /// Zeros before.
        before: usize,
        /// Zeros after.
        after: usize,
    },
    /// Concatenation of all operands along `axis`.
    Concat {
        /// The concatenation axis.
        axis: usize,
    },
    /// Element type conversion (round to nearest even).
    Cast {
        /// The result's element type.
        to: DType,
    },
}

/// Why an op cannot be applied to the given operand types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TypeError> {
    Err(TypeError(msg.into()))
}

fn expect_arity(op: &Op, operands: &[&TensorType], n: usize) -> Result<(), TypeError> {
    if operands.len() != n {
        return err(format!(
            "`{}` takes {n} operand(s), got {}",
            op.name(),
            operands.len()
        ));
    }
    Ok(())
}

fn expect_float(what: &str, t: &TensorType) -> Result<(), TypeError> {
    if !t.dtype.is_float() {
        return err(format!("{what} must be floating point, got {t}"));
    }
    Ok(())
}

fn expect_same_dtype(a: &TensorType, b: &TensorType) -> Result<(), TypeError> {
    if a.dtype != b.dtype {
        return err(format!(
            "operand element types differ: {a} vs {b} (insert a cast)"
        ));
    }
    Ok(())
}

fn broadcast(a: &TensorType, b: &TensorType) -> Result<Vec<usize>, TypeError> {
    crate::types::broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| TypeError(format!("shapes {a} and {b} do not broadcast")))
}

fn expect_axis(axis: usize, t: &TensorType) -> Result<(), TypeError> {
    if axis >= t.rank() {
        return err(format!("axis {axis} out of range for {t}"));
    }
    Ok(())
}

impl Op {
    /// The op's name in the text IR (`matmul`, `layer_norm`, `add`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::Full { .. } => "full",
            Op::Iota { .. } => "iota",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::MatMul { .. } => "matmul",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::OneHot { .. } => "one_hot",
            Op::Softmax => "softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Reduce { kind, .. } => kind.name(),
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::BroadcastTo { .. } => "broadcast_to",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concat { .. } => "concat",
            Op::Cast { .. } => "cast",
        }
    }

    /// True for ops without operands whose value is fixed at compile time or fed
    /// (inputs, parameters, constants).
    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Op::Input { .. } | Op::Param { .. } | Op::Full { .. } | Op::Iota { .. }
        )
    }

    /// Infers the result type from the operand types, or says why the op does not apply.
    pub fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        match self {
            Op::Input { ty, .. } | Op::Param { ty, .. } | Op::Full { ty, .. } => {
                expect_arity(self, operands, 0)?;
                Ok(ty.clone())
            }
            Op::Iota { axis, ty } => {
                expect_arity(self, operands, 0)?;
                expect_axis(*axis, ty)?;
                Ok(ty.clone())
            }
            Op::Unary(_) => {
                expect_arity(self, operands, 1)?;
                expect_float("operand", operands[0])?;
                Ok(operands[0].clone())
            }
            Op::Binary(b) => {
                expect_arity(self, operands, 2)?;
                let (x, y) = (operands[0], operands[1]);
                expect_same_dtype(x, y)?;
                if x.dtype == DType::Bool {
                    return err("arithmetic on bool operands (cast first)");
                }
                if *b == BinaryOp::Pow {
                    expect_float("operand", x)?;
                }
                Ok(TensorType::new(x.dtype, broadcast(x, y)?))
            }
            Op::Compare(_) => {
                expect_arity(self, operands, 2)?;
                expect_same_dtype(operands[0], operands[1])?;
                Ok(TensorType::new(
                    DType::Bool,
                    broadcast(operands[0], operands[1])?,
                ))
            }
            Op::Select => {
                expect_arity(self, operands, 3)?;
                let (c, a, b) = (operands[0], operands[1], operands[2]);
                if c.dtype != DType::Bool {
                    return err(format!("select condition must be bool, got {c}"));
                }
                expect_same_dtype(a, b)?;
                let ab = broadcast(a, b)?;
                let shape = crate::types::broadcast_shapes(&c.shape, &ab).ok_or_else(|| {
                    TypeError(format!("condition {c} does not broadcast with {a} and {b}"))
                })?;
                Ok(TensorType::new(a.dtype, shape))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
                ..
            } => {
                expect_arity(self, operands, 2)?;
                let (a, b) = (operands[0], operands[1]);
                expect_float("matmul operand", a)?;
                expect_same_dtype(a, b)?;
                if a.rank() < 2 || b.rank() < 2 {
                    return err(format!("matmul operands need rank >= 2, got {a} and {b}"));
                }
                let (ra, rb) = (a.rank(), b.rank());
                let (m, ka) = if *transpose_a {
                    (a.shape[ra - 1], a.shape[ra - 2])
                } else {
                    (a.shape[ra - 2], a.shape[ra - 1])
                };
                let (kb, n) = if *transpose_b {
                    (b.shape[rb - 1], b.shape[rb - 2])
                } else {
                    (b.shape[rb - 2], b.shape[rb - 1])
                };
                if ka != kb {
                    return err(format!(
                        "matmul contraction extents differ: {ka} (of {a}) vs {kb} (of {b})"
                    ));
                }
                let batch = crate::types::broadcast_shapes(&a.shape[..ra - 2], &b.shape[..rb - 2])
                    .ok_or_else(|| {
                        TypeError(format!("matmul batch axes of {a} and {b} do not broadcast"))
                    })?;
                let mut shape = batch;
                shape.push(m);
                shape.push(n);
                Ok(TensorType::new(a.dtype, shape))
            }
            Op::Gather { padding_idx } => {
                expect_arity(self, operands, 2)?;
                let (table, idx) = (operands[0], operands[1]);
                if table.rank() < 1 {
                    return err("gather table must have rank >= 1");
                }
                if let Some(p) = padding_idx {
                    if *p >= table.shape[0] {
                        return err(format!("gather padding_idx {p} out of range for {table}"));
                    }
                }
                if idx.dtype != DType::I64 {
                    return err(format!("gather indices must be i64, got {idx}"));
                }
                let mut shape = idx.shape.clone();
                shape.extend_from_slice(&table.shape[1..]);
                Ok(TensorType::new(table.dtype, shape))
            }
            Op::ScatterAdd { rows } => {
                expect_arity(self, operands, 2)?;
                let (idx, upd) = (operands[0], operands[1]);
                if idx.dtype != DType::I64 {
                    return err(format!("scatter_add indices must be i64, got {idx}"));
                }
                expect_float("scatter_add updates", upd)?;
                if upd.rank() < idx.rank() || upd.shape[..idx.rank()] != idx.shape[..] {
                    return err(format!(
                        "scatter_add updates {upd} must start with the indices' shape {idx}"
                    ));
                }
                let mut shape = vec![*rows];
                shape.extend_from_slice(&upd.shape[idx.rank()..]);
                Ok(TensorType::new(upd.dtype, shape))
            }
            Op::OneHot { depth, dtype } => {
                expect_arity(self, operands, 1)?;
                if operands[0].dtype != DType::I64 {
                    return err(format!("one_hot indices must be i64, got {}", operands[0]));
                }
                if !dtype.is_float() {
                    return err("one_hot result must be floating point");
                }
                let mut shape = operands[0].shape.clone();
                shape.push(*depth);
                Ok(TensorType::new(*dtype, shape))
            }
            Op::Softmax => {
                expect_arity(self, operands, 1)?;
                expect_float("softmax operand", operands[0])?;
                if operands[0].rank() == 0 {
                    return err("softmax needs rank >= 1");
                }
                Ok(operands[0].clone())
            }
            Op::LayerNorm { eps } => {
                expect_arity(self, operands, 3)?;
                let (x, g, b) = (operands[0], operands[1], operands[2]);
                expect_float("layer_norm input", x)?;
                if eps.is_nan() || *eps < 0.0 {
                    return err(format!("layer_norm eps must be >= 0, got {eps}"));
                }
                let h = *x
                    .shape
                    .last()
                    .ok_or_else(|| TypeError("layer_norm needs rank >= 1".into()))?;
                for (what, t) in [("gamma", g), ("beta", b)] {
                    expect_same_dtype(x, t)?;
                    if t.shape != [h] {
                        return err(format!("layer_norm {what} must be [{h}], got {t}"));
                    }
                }
                Ok(x.clone())
            }
            Op::Reduce {
                kind,
                axes,
                keep_dims,
            } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                if *kind == ReduceKind::Mean {
                    expect_float("reduce_mean operand", x)?;
                }
                if x.dtype == DType::Bool {
                    return err("reduction of bool operand");
                }
                if axes.windows(2).any(|w| w[0] >= w[1]) {
                    return err(format!("reduce axes {axes:?} must be ascending and unique"));
                }
                for &a in axes {
                    expect_axis(a, x)?;
                }
                let shape = x
                    .shape
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
                        (false, _) => Some(d),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect::<Vec<_>>();
                Ok(TensorType::new(x.dtype, shape))
            }
            Op::Reshape { shape } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                let n: usize = shape.iter().product();
                if n != x.num_elements() {
                    return err(format!(
                        "reshape of {x} ({} elements) to {} ({n} elements)",
                        x.num_elements(),
                        crate::types::shape_string(shape)
                    ));
                }
                Ok(TensorType::new(x.dtype, shape.clone()))
            }
            Op::Transpose { perm } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                let mut seen = vec![false; x.rank()];
                if perm.len() != x.rank() {
                    return err(format!("transpose perm {perm:?} does not fit {x}"));
                }
                for &p in perm {
                    if p >= x.rank() || seen[p] {
                        return err(format!("transpose perm {perm:?} is not a permutation"));
                    }
                    seen[p] = true;
                }
                Ok(TensorType::new(
                    x.dtype,
                    perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
                ))
            }
            Op::BroadcastTo { shape } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                if !crate::types::broadcasts_to(&x.shape, shape) {
                    return err(format!(
                        "{x} does not broadcast to {}",
                        crate::types::shape_string(shape)
                    ));
                }
                Ok(TensorType::new(x.dtype, shape.clone()))
            }
            Op::Slice { axis, start, end } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                expect_axis(*axis, x)?;
                if start >= end || *end > x.shape[*axis] {
                    return err(format!(
                        "slice {start}..{end} out of range for axis {axis} of {x}"
                    ));
                }
                let mut shape = x.shape.clone();
                shape[*axis] = end - start;
                Ok(TensorType::new(x.dtype, shape))
            }
            Op::Pad {
                axis,
                before,
                after,
            } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                expect_axis(*axis, x)?;
                let mut shape = x.shape.clone();
                shape[*axis] += before + after;
                Ok(TensorType::new(x.dtype, shape))
            }
            Op::Concat { axis } => {
                if operands.is_empty() {
                    return err("concat needs at least one operand");
                }
                let first = operands[0];
                expect_axis(*axis, first)?;
                let mut shape = first.shape.clone();
                for t in &operands[1..] {
                    expect_same_dtype(first, t)?;
                    let compatible = t.rank() == first.rank()
                        && (0..t.rank()).all(|i| i == *axis || t.shape[i] == first.shape[i]);
                    if !compatible {
                        return err(format!(
                            "concat operands {first} and {t} differ off axis {axis}"
                        ));
                    }
                    shape[*axis] += t.shape[*axis];
                }
                Ok(TensorType::new(first.dtype, shape))
            }
            Op::Cast { to } => {
                expect_arity(self, operands, 1)?;
                Ok(operands[0].with_dtype(*to))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(d: DType, s: &[usize]) -> TensorType {
        TensorType::new(d, s.to_vec())
    }

    #[test]
    fn matmul_linear_layer() {
        let x = t(DType::F32, &[2, 7, 32]);
        let w = t(DType::F32, &[64, 32]);
        let op = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
            half_partials: false,
        };
        assert_eq!(op.infer(&[&x, &w]).unwrap(), t(DType::F32, &[2, 7, 64]));
        let bad = t(DType::F32, &[64, 31]);
        assert!(op.infer(&[&x, &bad]).is_err());
    }

    #[test]
    fn binary_needs_same_dtype() {
        let a = t(DType::F32, &[2, 3]);
        let b = t(DType::F16, &[3]);
        assert!(Op::Binary(BinaryOp::Add).infer(&[&a, &b]).is_err());
        assert_eq!(
            Op::Binary(BinaryOp::Add)
                .infer(&[&a, &a.with_dtype(DType::F32)])
                .unwrap(),
            a
        );
    }

    #[test]
    fn gather_and_scatter_are_adjoint_in_shape() {
        let table = t(DType::F32, &[100, 32]);
        let ids = t(DType::I64, &[2, 7]);
        let g = Op::Gather { padding_idx: None }
            .infer(&[&table, &ids])
            .unwrap();
        assert_eq!(g, t(DType::F32, &[2, 7, 32]));
        let s = Op::ScatterAdd { rows: 100 }.infer(&[&ids, &g]).unwrap();
        assert_eq!(s, table);
    }

    #[test]
    fn reduce_and_reshape() {
        let x = t(DType::F32, &[2, 7, 32]);
        let r = Op::Reduce {
            kind: ReduceKind::Mean,
            axes: vec![2],
            keep_dims: true,
        };
        assert_eq!(r.infer(&[&x]).unwrap(), t(DType::F32, &[2, 7, 1]));
        assert!(Op::Reshape {
            shape: vec![14, 33]
        }
        .infer(&[&x])
        .is_err());
    }
}
