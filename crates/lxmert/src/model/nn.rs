//! PyTorch building blocks as IR: `nn.Linear`, `nn.LayerNorm`, `nn.Embedding`.
//!
//! Each struct registers its parameters under its module path with PyTorch's names
//! (`weight`, `bias`) and shapes (Linear weight `[out, in]`), and emits the IR nodes of
//! its forward in its own scope. Linear is `matmul {transpose_b}` + bias add.

use super::ctx::Ctx;
use crate::config::LAYER_NORM_EPS;
use crate::error::BuildError;
use crate::params::{join, ParamId, ParamInit, ParamRegistry};
use tessera_ir::{BinaryOp, NodeId, Op};

/// `torch.nn.Linear(in_dim, out_dim)` with bias.
pub(crate) struct Linear {
    path: String,
    weight: ParamId,
    bias: ParamId,
}

impl Linear {
    /// Registers `{path}.weight` `[out_dim, in_dim]` and `{path}.bias` `[out_dim]`.
    pub fn new(reg: &mut ParamRegistry, path: &str, in_dim: usize, out_dim: usize) -> Self {
        let weight = reg.add(
            join(path, "weight"),
            vec![out_dim, in_dim],
            ParamInit::Normal,
        );
        let bias = reg.add(join(path, "bias"), vec![out_dim], ParamInit::Zeros);
        Linear {
            path: path.to_string(),
            weight,
            bias,
        }
    }

    /// `x W^T + b` over the last axis of `x`.
    pub fn forward(&self, cx: &mut Ctx, x: NodeId) -> Result<NodeId, BuildError> {
        let w = cx.param(self.weight, &self.path)?;
        let b = cx.param(self.bias, &self.path)?;
        let y = cx.op(
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
                half_partials: false,
            },
            &[x, w],
            &self.path,
        )?;
        cx.binary(BinaryOp::Add, y, b, &self.path)
    }
}

/// `torch.nn.LayerNorm(dim, eps=1e-12)` (LXMERT's eps everywhere).
pub(crate) struct LayerNorm {
    path: String,
    weight: ParamId,
    bias: ParamId,
}

impl LayerNorm {
    /// Registers `{path}.weight` and `{path}.bias`, both `[dim]`.
    pub fn new(reg: &mut ParamRegistry, path: &str, dim: usize) -> Self {
        let weight = reg.add(join(path, "weight"), vec![dim], ParamInit::Ones);
        let bias = reg.add(join(path, "bias"), vec![dim], ParamInit::Zeros);
        LayerNorm {
            path: path.to_string(),
            weight,
            bias,
        }
    }

    /// Normalises `x` over its last axis.
    pub fn forward(&self, cx: &mut Ctx, x: NodeId) -> Result<NodeId, BuildError> {
        let g = cx.param(self.weight, &self.path)?;
        let b = cx.param(self.bias, &self.path)?;
        cx.op(
            Op::LayerNorm {
                eps: LAYER_NORM_EPS,
            },
            &[x, g, b],
            &self.path,
        )
    }
}

/// `torch.nn.Embedding(rows, dim, padding_idx=0)`.
pub(crate) struct Embedding {
    path: String,
    weight: ParamId,
}

impl Embedding {
    /// Registers `{path}.weight` `[rows, dim]` (row 0 zero at init: `padding_idx=0`).
    pub fn new(reg: &mut ParamRegistry, path: &str, rows: usize, dim: usize) -> Self {
        let weight = reg.add(
            join(path, "weight"),
            vec![rows, dim],
            ParamInit::NormalZeroRow0,
        );
        Embedding {
            path: path.to_string(),
            weight,
        }
    }

    /// Rows of the table selected by the i64 `ids`. LXMERT creates all three of its tables
    /// with `padding_idx=0` (`LxmertEmbeddings.__init__`): row 0 never gets a gradient.
    pub fn forward(&self, cx: &mut Ctx, ids: NodeId) -> Result<NodeId, BuildError> {
        let table = cx.param(self.weight, &self.path)?;
        cx.op(
            Op::Gather {
                padding_idx: Some(0),
            },
            &[table, ids],
            &self.path,
        )
    }
}
