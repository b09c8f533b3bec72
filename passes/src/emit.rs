//! A small node builder shared by the passes: adds type-checked nodes under one scope.
//!
//! Every node goes through [`Graph::add`], so a rule that builds an ill-typed node fails
//! with an [`IrError`] instead of producing a graph the verifier would reject. The helpers
//! skip no-op nodes (a reshape to the same shape, a reduction over no axes) so that the
//! emitted graphs stay small.

use tessera_ir::{
    BinaryOp, CmpOp, DType, Graph, IrError, NodeId, Op, ReduceKind, TensorType, UnaryOp,
};

/// Adds nodes to a graph under a fixed scope.
pub(crate) struct Emitter<'g> {
    g: &'g mut Graph,
    scope: String,
}

impl<'g> Emitter<'g> {
    /// A builder adding nodes to `g` under `scope`.
    pub(crate) fn new(g: &'g mut Graph, scope: impl Into<String>) -> Self {
        Emitter {
            g,
            scope: scope.into(),
        }
    }

    /// Changes the scope of the nodes added from now on.
    pub(crate) fn set_scope(&mut self, scope: impl Into<String>) {
        self.scope = scope.into();
    }

    /// The type of node `id`.
    pub(crate) fn ty(&self, id: NodeId) -> &TensorType {
        &self.g.node(id).ty
    }

    /// Adds `op` applied to `operands`.
    pub(crate) fn op(&mut self, op: Op, operands: &[NodeId]) -> Result<NodeId, IrError> {
        self.g.add(op, operands, self.scope.as_str())
    }

    /// A constant of type `ty` with every element `value`.
    pub(crate) fn full(&mut self, value: f64, ty: TensorType) -> Result<NodeId, IrError> {
        self.op(Op::Full { value, ty }, &[])
    }

    /// A scalar constant (broadcasts against any shape).
    pub(crate) fn scalar(&mut self, value: f64, dtype: DType) -> Result<NodeId, IrError> {
        self.full(value, TensorType::scalar(dtype))
    }

    /// A scalar constant of the same element type as `like`.
    pub(crate) fn scalar_like(&mut self, value: f64, like: NodeId) -> Result<NodeId, IrError> {
        let dtype = self.ty(like).dtype;
        self.scalar(value, dtype)
    }

    /// An elementwise function of one operand.
    pub(crate) fn unary(&mut self, u: UnaryOp, x: NodeId) -> Result<NodeId, IrError> {
        self.op(Op::Unary(u), &[x])
    }

    /// An elementwise function of two operands.
    pub(crate) fn binary(&mut self, b: BinaryOp, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.op(Op::Binary(b), &[x, y])
    }

    /// `x + y`.
    pub(crate) fn add(&mut self, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.binary(BinaryOp::Add, x, y)
    }

    /// `x - y`.
    pub(crate) fn sub(&mut self, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.binary(BinaryOp::Sub, x, y)
    }

    /// `x * y`.
    pub(crate) fn mul(&mut self, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.binary(BinaryOp::Mul, x, y)
    }

    /// `x / y`.
    pub(crate) fn div(&mut self, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.binary(BinaryOp::Div, x, y)
    }

    /// `x * c` for a constant `c` (in `x`'s element type).
    pub(crate) fn scale(&mut self, x: NodeId, c: f64) -> Result<NodeId, IrError> {
        let c = self.scalar_like(c, x)?;
        self.mul(x, c)
    }

    /// `-x`.
    pub(crate) fn neg(&mut self, x: NodeId) -> Result<NodeId, IrError> {
        self.unary(UnaryOp::Neg, x)
    }

    /// An elementwise comparison.
    pub(crate) fn cmp(&mut self, c: CmpOp, x: NodeId, y: NodeId) -> Result<NodeId, IrError> {
        self.op(Op::Compare(c), &[x, y])
    }

    /// `cond ? a : b`, broadcast.
    pub(crate) fn select(&mut self, cond: NodeId, a: NodeId, b: NodeId) -> Result<NodeId, IrError> {
        self.op(Op::Select, &[cond, a, b])
    }

    /// A reduction over `axes`; returns `x` itself when `axes` is empty.
    pub(crate) fn reduce(
        &mut self,
        kind: ReduceKind,
        x: NodeId,
        axes: Vec<usize>,
        keep_dims: bool,
    ) -> Result<NodeId, IrError> {
        if axes.is_empty() {
            return Ok(x);
        }
        self.op(
            Op::Reduce {
                kind,
                axes,
                keep_dims,
            },
            &[x],
        )
    }

    /// Sum over `axes` (no node when `axes` is empty).
    pub(crate) fn sum(
        &mut self,
        x: NodeId,
        axes: Vec<usize>,
        keep: bool,
    ) -> Result<NodeId, IrError> {
        self.reduce(ReduceKind::Sum, x, axes, keep)
    }

    /// Mean over `axes` (no node when `axes` is empty).
    pub(crate) fn mean(
        &mut self,
        x: NodeId,
        axes: Vec<usize>,
        keep: bool,
    ) -> Result<NodeId, IrError> {
        self.reduce(ReduceKind::Mean, x, axes, keep)
    }

    /// Sum over every axis, giving a scalar.
    pub(crate) fn sum_all(&mut self, x: NodeId) -> Result<NodeId, IrError> {
        let rank = self.ty(x).rank();
        self.sum(x, (0..rank).collect(), false)
    }

    /// `x` with shape `shape` (no node when the shape is already `shape`).
    pub(crate) fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId, IrError> {
        if self.ty(x).shape == shape {
            return Ok(x);
        }
        self.op(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }

    /// `x` broadcast to `shape` (no node when the shape is already `shape`).
    pub(crate) fn broadcast_to(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId, IrError> {
        if self.ty(x).shape == shape {
            return Ok(x);
        }
        self.op(
            Op::BroadcastTo {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }

    /// `x` converted to `dtype` (no node when it already has it).
    pub(crate) fn cast(&mut self, x: NodeId, dtype: DType) -> Result<NodeId, IrError> {
        if self.ty(x).dtype == dtype {
            return Ok(x);
        }
        self.op(Op::Cast { to: dtype }, &[x])
    }

    /// Undoes NumPy broadcasting for a gradient: sums `x` over the axes along which a value
    /// of shape `target` was broadcast (the extra leading axes and the axes where `target`
    /// has extent 1), then reshapes to `target`.
    pub(crate) fn unbroadcast(&mut self, x: NodeId, target: &[usize]) -> Result<NodeId, IrError> {
        let shape = self.ty(x).shape.clone();
        if shape == target {
            return Ok(x);
        }
        let lead = shape.len().saturating_sub(target.len());
        let axes: Vec<usize> = shape
            .iter()
            .enumerate()
            .filter(|&(i, &d)| i < lead || (d != 1 && target.get(i - lead) == Some(&1)))
            .map(|(i, _)| i)
            .collect();
        let summed = self.sum(x, axes, false)?;
        self.reshape(summed, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbroadcast_sums_leading_and_unit_axes() {
        let mut g = Graph::new("t");
        let x = g
            .input("x", TensorType::new(DType::F32, vec![4, 2, 3]))
            .unwrap();
        let mut e = Emitter::new(&mut g, "s");
        let r = e.unbroadcast(x, &[1, 3]).unwrap();
        assert_eq!(e.ty(r).shape, vec![1, 3]);
        // Sum over axes 0 (leading) and 1 (unit in target), then reshape [3] -> [1,3].
        let reshape = r;
        let sum = g.operands(reshape)[0];
        assert_eq!(
            g.node(sum).op,
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![0, 1],
                keep_dims: false
            }
        );
        let mut e = Emitter::new(&mut g, "s");
        assert_eq!(e.unbroadcast(x, &[4, 2, 3]).unwrap(), x);
        let s = e.unbroadcast(x, &[]).unwrap();
        assert_eq!(e.ty(s).shape, Vec::<usize>::new());
    }
}
