//! Vector-Jacobian product rules, one per op, matched exhaustively on [`Op`].
//!
//! A rule receives the forward node (its op, operands, result) and the gradient `dy` of
//! the loss with respect to its result, and returns one optional gradient per operand:
//! `None` for operands that need none (integer indices, boolean conditions, inputs,
//! constants) and for operands the caller did not ask for. Each gradient has exactly its
//! operand's type; gradients of broadcast operands are summed back over the broadcast axes.
//! There is no catch-all arm: an op added to the IR without a rule does not compile.
//!
//! Rules by family: [`unary`] (elementwise functions of one operand), [`binary`] (the
//! broadcasting binary ops, `select`, `cast`), [`linalg`] (`matmul`, `gather`,
//! `scatter_add`), [`reduce`] (reductions, softmax, layer norm), [`shape`] (reshape,
//! transpose, broadcast, slice, pad, concat).

mod binary;
mod linalg;
mod reduce;
mod shape;
mod unary;

use crate::emit::Emitter;
use tessera_ir::{Graph, IrError, NodeId, Op, TensorType};

/// One gradient per operand (`None`: no gradient flows or none was asked for).
pub(super) type Grads = Vec<Option<NodeId>>;

/// Why a rule failed.
#[derive(Debug)]
pub(super) enum RuleError {
    /// A backward node did not type-check.
    Ir(IrError),
    /// The rule does not apply to this node (the message says why).
    Unsupported(String),
}

impl From<IrError> for RuleError {
    fn from(e: IrError) -> Self {
        RuleError::Ir(e)
    }
}

/// The forward node a rule differentiates, with the incoming gradient.
pub(super) struct Site {
    /// The node's op.
    pub op: Op,
    /// The node (its value `y`).
    pub y: NodeId,
    /// The type of `y`.
    pub y_ty: TensorType,
    /// The operands, in order.
    pub xs: Vec<NodeId>,
    /// The operands' types.
    pub x_tys: Vec<TensorType>,
    /// For each operand: does the caller want its gradient.
    pub wants: Vec<bool>,
    /// The gradient of the loss with respect to `y` (type `y_ty`).
    pub dy: NodeId,
}

impl Site {
    /// The site of node `y` of `g` with operands `xs`; `wants(x)` says whether operand `x`
    /// needs a gradient.
    pub fn new(
        g: &Graph,
        y: NodeId,
        xs: Vec<NodeId>,
        dy: NodeId,
        wants: impl Fn(NodeId) -> bool,
    ) -> Self {
        let node = g.node(y);
        Site {
            op: node.op.clone(),
            y,
            y_ty: node.ty.clone(),
            x_tys: xs.iter().map(|&x| g.node(x).ty.clone()).collect(),
            wants: xs.iter().map(|&x| wants(x)).collect(),
            xs,
            dy,
        }
    }

    /// Operand `i`.
    pub fn x(&self, i: usize) -> Result<NodeId, RuleError> {
        self.xs.get(i).copied().ok_or_else(|| missing(i))
    }

    /// The type of operand `i`.
    pub fn x_ty(&self, i: usize) -> Result<&TensorType, RuleError> {
        self.x_tys.get(i).ok_or_else(|| missing(i))
    }

    /// True when the gradient of operand `i` is wanted.
    pub fn wants(&self, i: usize) -> bool {
        self.wants.get(i).copied().unwrap_or(false)
    }

    /// No gradient for any operand.
    pub fn none(&self) -> Grads {
        vec![None; self.xs.len()]
    }
}

fn missing(i: usize) -> RuleError {
    RuleError::Unsupported(format!("operand {i} is missing"))
}

/// Applies the rule of `site.op`.
pub(super) fn vjp(e: &mut Emitter, s: &Site) -> Result<Grads, RuleError> {
    match &s.op {
        Op::Input { .. } | Op::Param { .. } | Op::Full { .. } | Op::Iota { .. } => Ok(s.none()),
        Op::Compare(_) | Op::OneHot { .. } => Ok(s.none()),
        Op::Unary(u) => unary::unary(e, s, *u),
        Op::Binary(b) => binary::binary(e, s, *b),
        Op::Select => binary::select(e, s),
        Op::Cast { .. } => binary::cast(e, s),
        Op::MatMul {
            transpose_a,
            transpose_b,
            half_partials,
        } => linalg::matmul(e, s, *transpose_a, *transpose_b, *half_partials),
        Op::Gather { padding_idx } => linalg::gather(e, s, *padding_idx),
        Op::ScatterAdd { .. } => linalg::scatter_add(e, s),
        Op::Softmax => reduce::softmax(e, s),
        Op::LayerNorm { eps } => reduce::layer_norm(e, s, *eps),
        Op::Reduce {
            kind,
            axes,
            keep_dims,
        } => reduce::reduce(e, s, *kind, axes, *keep_dims),
        Op::Reshape { .. } => shape::reshape(e, s),
        Op::Transpose { perm } => shape::transpose(e, s, perm),
        Op::BroadcastTo { .. } => shape::broadcast_to(e, s),
        Op::Slice { axis, start, end } => shape::slice(e, s, *axis, *start, *end),
        Op::Pad {
            axis,
            before,
            after,
        } => shape::pad(e, s, *axis, *before, *after),
        Op::Concat { axis } => shape::concat(e, s, *axis),
    }
}
