//! Vertex kinds: the closed, data-only set of kernels a tile can run on its own memory.
//!
//! Every operand is a byte [`Region`] of the running tile's memory holding little-endian
//! elements of an [`Elem`] type. The numeric semantics (what is rounded where) are documented
//! on each variant and implemented in [`crate::kernels`].

use crate::program::Region;
use serde::{Deserialize, Serialize};
use tessera_ir::{BinaryOp, UnaryOp};

/// Floating-point element type of a tile-memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Elem {
    /// IEEE binary32, 4 bytes.
    F32,
    /// IEEE binary16, 2 bytes.
    F16,
}

impl Elem {
    /// Size of one element in bytes (also its required alignment in tile memory).
    pub const fn size(self) -> u32 {
        match self {
            Elem::F32 => 4,
            Elem::F16 => 2,
        }
    }

    /// Lower-case name (`f32`, `f16`).
    pub const fn name(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F16 => "f16",
        }
    }
}

/// A block matrix product `C (+)= A · B` on one tile, all row-major and dense.
///
/// `A` is `m×k` and `B` is `k×n`, both of type `input`; `C` is `m×n` of type `partials`.
/// Products of two f16 values are exact in f32, so both input types are multiplied and summed
/// over `k` in f32 (as the target's AMP unit does) in an order fixed per machine (the `gemm`
/// crate picks it from the shape and the CPU), independent of threads; the sum is then rounded
/// to `partials`. With `accumulate`, the rounded sum is added to the old `C` in `partials`
/// arithmetic (`C = round(C + round(sum))`), which is how K-split partial sums are chained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatMul {
    /// Rows of `A` and `C`.
    pub m: u32,
    /// Columns of `A`, rows of `B`.
    pub k: u32,
    /// Columns of `B` and `C`.
    pub n: u32,
    /// Element type of `A` and `B`.
    pub input: Elem,
    /// Element type of `C`.
    pub partials: Elem,
    /// Add to `C` instead of overwriting it.
    pub accumulate: bool,
    /// `A`, `m*k` elements.
    pub a: Region,
    /// `B`, `k*n` elements.
    pub b: Region,
    /// `C`, `m*n` elements; must not overlap `A` or `B`.
    pub c: Region,
}

/// One vertex: a kernel instance with its operands in the running tile's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Vertex {
    /// Block matrix product, see [`MatMul`].
    MatMul(MatMul),
    /// `dst[i] = op(src[i])`, computed as `tessera_ir::eval::math::unary_f32` (f16: widened,
    /// computed in f32, rounded to f16), bit-identical to the reference evaluator. `dst` may
    /// equal `src` exactly (in place) but not partially overlap it.
    Unary {
        /// The function.
        op: UnaryOp,
        /// Element type of `src` and `dst`.
        elem: Elem,
        /// Operand.
        src: Region,
        /// Result, same length as `src`.
        dst: Region,
    },
    /// `dst[i] = op(a[i], b[i])`, computed as `tessera_ir::eval::math::binary_f32` (f16 as for
    /// `Unary`). `dst` may equal `a` or `b` exactly but not partially overlap them.
    Binary {
        /// The function.
        op: BinaryOp,
        /// Element type of all three operands.
        elem: Elem,
        /// Left operand.
        a: Region,
        /// Right operand, same length.
        b: Region,
        /// Result, same length.
        dst: Region,
    },
    /// Partial-sum reduction `dst[i] = dst[i] + srcs[0][i] + srcs[1][i] + ...`, added left to
    /// right in `elem` arithmetic (f16: each addition rounded to f16, as the target's f16 adds).
    /// No source may overlap `dst`.
    AddPartials {
        /// Element type of all operands.
        elem: Elem,
        /// Accumulator, read and written.
        dst: Region,
        /// Sources, each the length of `dst`.
        srcs: Vec<Region>,
    },
    /// Conversion between element types (f32 → f16 rounds to nearest even; f16 → f32 exact).
    Cast {
        /// Source element type.
        from: Elem,
        /// Destination element type.
        to: Elem,
        /// Source, `n` elements of `from`.
        src: Region,
        /// Destination, `n` elements of `to`; must not overlap `src`.
        dst: Region,
    },
    /// Set every element of `dst` to `value` (rounded to `elem`).
    Fill {
        /// Element type of `dst`.
        elem: Elem,
        /// Destination.
        dst: Region,
        /// The value.
        value: f32,
    },
    /// Copy bytes within the tile (`memmove` semantics: the regions may overlap).
    Copy {
        /// Source bytes.
        src: Region,
        /// Destination bytes, same length.
        dst: Region,
    },
}

impl Vertex {
    /// Short kind name for errors and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Vertex::MatMul(_) => "matmul",
            Vertex::Unary { .. } => "unary",
            Vertex::Binary { .. } => "binary",
            Vertex::AddPartials { .. } => "add_partials",
            Vertex::Cast { .. } => "cast",
            Vertex::Fill { .. } => "fill",
            Vertex::Copy { .. } => "copy",
        }
    }

    /// Floating-point operations the vertex performs (2 per multiply-add), for throughput reports.
    pub fn flops(&self) -> u64 {
        match self {
            Vertex::MatMul(mm) => 2 * u64::from(mm.m) * u64::from(mm.k) * u64::from(mm.n),
            Vertex::Unary { elem, dst, .. } | Vertex::Binary { elem, dst, .. } => {
                u64::from(dst.len / elem.size())
            }
            Vertex::AddPartials { elem, dst, srcs } => {
                u64::from(dst.len / elem.size()) * srcs.len() as u64
            }
            Vertex::Cast { .. } | Vertex::Fill { .. } | Vertex::Copy { .. } => 0,
        }
    }
}
