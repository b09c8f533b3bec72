//! The closed set of IR operations.
//!
//! `Op` is an enum whose payloads are plain data (no closures, no trait objects), so that
//! graphs serialise, print and compare structurally, and so that every pass that matches on
//! ops is checked for exhaustiveness by the compiler: adding an op makes every pass that does
//! not handle it fail to compile. Each op produces exactly one value. Its result type is
//! inferred from its operands by [`Op::infer`] when the node is added to a graph.

use crate::dtype::DType;
pub use crate::infer::TypeError;
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
