//! The precision policy: which ops compute in fp16, which in fp32, which follow their
//! operands — one table, in the spirit of PyTorch autocast's op lists and TensorFlow's
//! auto-mixed-precision allow/deny lists.
//!
//! [`op_precision`] is matched exhaustively on [`Op`], so an op added to the IR does not
//! compile until it is classified here; [`explain_precision`] renders the same table (and
//! the rules that are not per op) for `tessera inspect --explain-precision`.

use serde::Serialize;
use tessera_ir::{BinaryOp, CmpOp, DType, Op, ReduceKind, TensorType, UnaryOp};

/// The precision class of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpPrecision {
    /// Floating-point operands are cast to f16 and the op computes in f16.
    Fp16,
    /// Floating-point operands are cast to f32 and the op computes in f32.
    Fp32,
    /// Computes in the widest floating-point type of its operands (f32 if any is f32),
    /// casting the others: data movement, comparisons and selection, which are exact.
    Follow,
    /// Left as it is: leaves (inputs, parameters, constants) and explicit casts.
    Keep,
}

impl OpPrecision {
    /// The name printed in the policy table.
    pub fn name(self) -> &'static str {
        match self {
            OpPrecision::Fp16 => "fp16",
            OpPrecision::Fp32 => "fp32",
            OpPrecision::Follow => "follow",
            OpPrecision::Keep => "keep",
        }
    }
}

/// The precision class of `op` and the reason for it.
pub fn op_precision(op: &Op) -> (OpPrecision, &'static str) {
    use OpPrecision::*;
    match op {
        Op::Input { .. } => (Keep, "graph inputs keep their fed type"),
        Op::Param { .. } => (
            Keep,
            "per `master_weights`: f32 + one shared f16 copy, or f16",
        ),
        Op::Full { .. } | Op::Iota { .. } => (
            Keep,
            "constants are re-typed where used, saturating to +-65504",
        ),
        Op::OneHot { .. } => (Keep, "its element type is explicit"),
        Op::Cast { .. } => (Keep, "an explicit conversion; redundant ones are folded"),
        Op::MatMul { .. } => (
            Fp16,
            "fp16 products, partials in fp32 or fp16 (`half_partials`)",
        ),
        Op::Gather { .. } => (Fp16, "embedding lookups read the fp16 copy of the table"),
        Op::ScatterAdd { .. } => (Follow, "gradient of gather: in its updates' type"),
        Op::Unary(u) => match u {
            UnaryOp::Neg | UnaryOp::Abs => (Fp16, "elementwise, exact in fp16"),
            UnaryOp::Tanh | UnaryOp::Erf | UnaryOp::Gelu | UnaryOp::Sigmoid => {
                (Fp16, "elementwise activation with a bounded slope")
            }
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Log1p => (
                Fp32,
                "overflows or loses range in fp16 (autocast fp32 list)",
            ),
            UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Recip => {
                (Fp32, "normalisers of statistics (autocast fp32 list)")
            }
        },
        Op::Binary(b) => match b {
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Max
            | BinaryOp::Min => (Fp16, "elementwise arithmetic"),
            BinaryOp::Pow => (Fp32, "overflows in fp16 (autocast fp32 list)"),
        },
        Op::Compare(_) => (Follow, "exact in the wider operand type"),
        Op::Select => (Follow, "selection is exact"),
        Op::Softmax => (Fp32, "exponentials and their sum (autocast fp32 list)"),
        Op::LayerNorm { .. } => (
            Fp32,
            "mean and variance statistics; input cast up, result cast down",
        ),
        Op::Reduce { kind, .. } => match kind {
            ReduceKind::Sum | ReduceKind::Mean => (
                Fp32,
                "long sums (statistics, batch sums of gradients) overflow in fp16",
            ),
            ReduceKind::Max => (Follow, "exact in any precision"),
        },
        Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::BroadcastTo { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. } => (Follow, "data movement"),
    }
}

/// One op of every kind (every variant, every unary/binary function, every comparison and
/// reduction), for the printed table.
pub(crate) fn sample_ops() -> Vec<Op> {
    let ty = TensorType::scalar(DType::F32);
    let mut ops = vec![
        Op::Input {
            name: String::new(),
            ty: ty.clone(),
        },
        Op::Param {
            name: String::new(),
            ty: ty.clone(),
        },
        Op::Full {
            value: 0.0,
            ty: ty.clone(),
        },
        Op::Iota { axis: 0, ty },
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
            half_partials: false,
        },
        Op::Gather { padding_idx: None },
        Op::ScatterAdd { rows: 1 },
        Op::OneHot {
            depth: 1,
            dtype: DType::F32,
        },
    ];
    ops.extend(UnaryOp::ALL.map(Op::Unary));
    ops.extend(BinaryOp::ALL.map(Op::Binary));
    ops.extend(CmpOp::ALL.map(Op::Compare));
    ops.push(Op::Select);
    ops.push(Op::Softmax);
    ops.push(Op::LayerNorm { eps: 0.0 });
    ops.extend(ReduceKind::ALL.map(|kind| Op::Reduce {
        kind,
        axes: vec![],
        keep_dims: false,
    }));
    ops.extend([
        Op::Reshape { shape: vec![] },
        Op::Transpose { perm: vec![] },
        Op::BroadcastTo { shape: vec![] },
        Op::Slice {
            axis: 0,
            start: 0,
            end: 1,
        },
        Op::Pad {
            axis: 0,
            before: 0,
            after: 0,
        },
        Op::Concat { axis: 0 },
        Op::Cast { to: DType::F16 },
    ]);
    ops
}

/// The policy table and the rules that are not per op, as printed by
/// `tessera inspect --explain-precision`.
pub fn explain_precision() -> String {
    let mut out = String::from(
        "mixed-precision policy (pass `mixed-precision`; ops grouped as PyTorch autocast's lists)\n\n",
    );
    let rows: Vec<(String, &str, &str)> = sample_ops()
        .iter()
        .map(|op| {
            let (p, why) = op_precision(op);
            (op.name().to_string(), p.name(), why)
        })
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(2).max(2);
    out.push_str(&format!("{:<width$}  {:<9}  why\n", "op", "precision"));
    for (name, p, why) in &rows {
        out.push_str(&format!("{name:<width$}  {p:<9}  {why}\n"));
    }
    out.push_str(
        "\nrules beyond the table:\n\
         - nodes in the fp32 scopes (default `loss` and `optimizer`, sub-scopes such as \
         `loss.backward` included) compute in fp32 whatever the op;\n\
         - backward nodes get the same table as forward ones (as TensorFlow's graph-level \
         pass); run the pass before autodiff and they follow the forward's types instead;\n\
         - graph inputs and outputs keep their types; a `grad.<param>` output takes its \
         parameter's type;\n\
         - master_weights = f32: parameters stay f32 and are cast once to an f16 working copy \
         shared by all fp16 users; master_weights = f16: parameters become f16;\n\
         - float constants are re-typed instead of cast, saturating to +-65504 (the f16 range, \
         as transformers' finfo(dtype).min masks);\n\
         - enable_half_partials: fp16 matmuls accumulate in fp16 (`half_partials`);\n\
         - casts to the same type and cast(cast(x)) through an exact widening are folded;\n\
         - optimizer: f32 arithmetic; f16 weights and (with enable_half_first_order_momentum) \
         an f16 first moment are cast in and out; the second moment is always f32;\n\
         - loss scaling: the loss is multiplied by the scale before differentiation and the \
         optimizer divides it out; a step with inf/NaN gradients is skipped.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_op_name_once() {
        let ops = sample_ops();
        let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        // 22 op variants, of which Unary/Binary/Compare/Reduce expand to 12/7/6/3 names.
        assert_eq!(names.len(), 22 - 4 + 12 + 7 + 6 + 3);
        let text = explain_precision();
        for n in &names {
            assert!(
                text.lines().any(|l| l.split_whitespace().next() == Some(n)),
                "{n} missing from\n{text}"
            );
        }
    }

    #[test]
    fn autocast_style_classes() {
        let class = |op: Op| op_precision(&op).0;
        let mm = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
            half_partials: false,
        };
        assert_eq!(class(mm), OpPrecision::Fp16);
        assert_eq!(class(Op::Unary(UnaryOp::Gelu)), OpPrecision::Fp16);
        assert_eq!(class(Op::Binary(BinaryOp::Add)), OpPrecision::Fp16);
        assert_eq!(class(Op::Softmax), OpPrecision::Fp32);
        assert_eq!(class(Op::LayerNorm { eps: 1e-12 }), OpPrecision::Fp32);
        assert_eq!(class(Op::Unary(UnaryOp::Exp)), OpPrecision::Fp32);
        assert_eq!(class(Op::Binary(BinaryOp::Pow)), OpPrecision::Fp32);
        assert_eq!(
            class(Op::Transpose { perm: vec![1, 0] }),
            OpPrecision::Follow
        );
        assert_eq!(class(Op::Cast { to: DType::F32 }), OpPrecision::Keep);
    }
}
