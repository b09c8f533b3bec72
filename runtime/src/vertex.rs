//! Vertex kinds: the closed, data-only set of kernels a tile can run on its own memory.
//!
//! Every operand is a byte [`Region`] of the running tile's memory holding little-endian
//! elements of an [`Elem`] type. The numeric semantics (what is rounded where) are documented
//! on each variant and implemented in [`crate::kernels`].

use crate::program::Region;
use serde::{Deserialize, Serialize};
use tessera_ir::{BinaryOp, CmpOp, ReduceKind, UnaryOp};

/// Element type of a tile-memory operand.
///
/// Arithmetic vertices take only the floating-point types; [`Elem::I64`] is accepted only as
/// the source of a [`Vertex::Cast`] to a float, as [`Vertex::Gather`] / [`Vertex::ScatterAdd`]
/// indices and as the operands of [`Vertex::Compare`] and [`Vertex::Select`];
/// [`Elem::Bool`] only as [`Vertex::Compare`]'s result, [`Vertex::Select`]'s condition and the
/// source of a [`Vertex::Cast`] to a float (and [`Vertex::Copy`] moves any bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Elem {
    /// IEEE binary32, 4 bytes.
    F32,
    /// IEEE binary16, 2 bytes.
    F16,
    /// Two's-complement signed 64-bit integer, 8 bytes (token ids, gather indices).
    I64,
    /// Boolean, 1 byte: 0 is false, 1 is true (a reader treats any non-zero byte as true).
    Bool,
}

impl Elem {
    /// Size of one element in bytes (also its required alignment in tile memory).
    pub const fn size(self) -> u32 {
        match self {
            Elem::F32 => 4,
            Elem::F16 => 2,
            Elem::I64 => 8,
            Elem::Bool => 1,
        }
    }

    /// Lower-case name (`f32`, `f16`, `i64`, `bool`).
    pub const fn name(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F16 => "f16",
            Elem::I64 => "i64",
            Elem::Bool => "bool",
        }
    }

    /// Whether this is a floating-point type (the operand type of arithmetic vertices).
    pub const fn is_float(self) -> bool {
        matches!(self, Elem::F32 | Elem::F16)
    }
}

/// A block matrix product `C (+)= op(A) · op(B)` on one tile, all dense.
///
/// `op(A)` is `m×k` and `op(B)` is `k×n`, both of type `input`; `C` is `m×n` of type
/// `partials`, row-major. `A` is stored row-major `m×k`, or `k×m` when `transpose_a`; `B` is
/// stored row-major `k×n`, or `n×k` when `transpose_b` (read through strides, not copied).
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
    /// `A` is stored `k×m` (row-major), i.e. the product uses its transpose.
    #[serde(default)]
    pub transpose_a: bool,
    /// `B` is stored `n×k` (row-major), i.e. the product uses its transpose.
    #[serde(default)]
    pub transpose_b: bool,
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
    /// `dst[i] = op(a[i % len_a], b[i % len_b])`, computed as
    /// `tessera_ir::eval::math::binary_f32` (f16 as for `Unary`). Each operand either has
    /// `dst`'s length or a length (in elements) dividing it, and is then repeated cyclically
    /// (a broadcast of a trailing block, e.g. a bias row). `dst` may equal an operand of its
    /// own length exactly but not otherwise overlap it.
    Binary {
        /// The function.
        op: BinaryOp,
        /// Element type of all three operands.
        elem: Elem,
        /// Left operand, length dividing `dst`'s.
        a: Region,
        /// Right operand, length dividing `dst`'s.
        b: Region,
        /// Result.
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
    /// Conversion between element types (f32 → f16 rounds to nearest even; f16 → f32 exact;
    /// i64 → f32 rounds the integer to nearest even in one step, i64 → f16 converts it to f64
    /// and rounds that to f16, both as `tessera_ir::Tensor::cast`; bool → float gives 1 for
    /// a non-zero byte, else 0). Nothing converts to i64 or bool.
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
    /// Softmax over each row of `cols` elements (rows = elements / `cols`), computed by
    /// `tessera_ir::eval::rows::softmax_rows` for `elem` (f16: statistics in f32, each result
    /// rounded to f16), bit-identical to the reference evaluator. `dst` may equal `src`
    /// exactly but not partially overlap it.
    Softmax {
        /// Element type of `src` and `dst` (a float).
        elem: Elem,
        /// Row length in elements (> 0).
        cols: u32,
        /// Operand, a whole number of rows.
        src: Region,
        /// Result, same length.
        dst: Region,
    },
    /// Layer norm over each row of `cols` elements, computed by
    /// `tessera_ir::eval::rows::layer_norm_rows` for `elem`, bit-identical to the reference
    /// evaluator. `dst` may equal `x` exactly; it must not overlap `gamma` or `beta`.
    LayerNorm {
        /// Element type of all operands (a float).
        elem: Elem,
        /// Row length in elements (> 0).
        cols: u32,
        /// Added to the variance before the square root.
        eps: f64,
        /// Operand, a whole number of rows.
        x: Region,
        /// Weight, `cols` elements.
        gamma: Region,
        /// Bias, `cols` elements.
        beta: Region,
        /// Result, same length as `x`.
        dst: Region,
    },
    /// Row gather: `dst` row `i` = `table` row `indices[i]`. `table` holds `rows` rows of
    /// `width` elements (row-major, e.g. a column block of an embedding table); `indices`
    /// holds `n` i64 values; `dst` gets `n` rows of `width` elements. An index outside
    /// `[0, rows)` is a run-time error. No two operands may overlap.
    Gather {
        /// Element type of `table` and `dst` (a float).
        elem: Elem,
        /// Rows in `table`.
        rows: u32,
        /// Elements per row.
        width: u32,
        /// The table, `rows * width` elements.
        table: Region,
        /// The row indices, i64.
        indices: Region,
        /// The result, `n * width` elements.
        dst: Region,
    },
    /// Elementwise comparison `dst[i] = op(a[i % len_a], b[i % len_b])` as bool bytes (1 or
    /// 0), computed by `tessera_ir::eval::accum::compare_values` on the `elem` values (f16
    /// compared as f16, i64 as integers), bit-identical to the reference evaluator: every
    /// comparison with a NaN is false except `Ne`. Each operand's element count divides
    /// `dst`'s, and it is repeated cyclically as for `Binary`. `dst` overlaps neither operand.
    Compare {
        /// The comparison.
        op: CmpOp,
        /// Element type of `a` and `b` (f32, f16 or i64).
        elem: Elem,
        /// Left operand, element count dividing `dst`'s.
        a: Region,
        /// Right operand, element count dividing `dst`'s.
        b: Region,
        /// Result, bool bytes.
        dst: Region,
    },
    /// Elementwise choice `dst[i] = cond[i % n_c] ? a[i % n_a] : b[i % n_b]`, copying the
    /// element's bytes (no rounding); each operand's element count divides `dst`'s and it is
    /// repeated cyclically as for `Binary`. `dst` may equal `a` or `b` exactly when it has the
    /// same length, and otherwise overlaps no operand.
    Select {
        /// Element type of `a`, `b` and `dst` (f32, f16 or i64).
        elem: Elem,
        /// Condition, bool bytes (non-zero is true).
        cond: Region,
        /// Chosen where `cond` is true.
        a: Region,
        /// Chosen where `cond` is false.
        b: Region,
        /// Result.
        dst: Region,
    },
    /// Row reduction: `src` holds R rows of `cols` elements and `dst[r]` is the sum, mean or
    /// max of row `r`, computed by `tessera_ir::eval::accum::reduce_rows_into` for `elem`:
    /// added left to right in the evaluator's accumulator (f64 for f32, f32 for f16), a mean
    /// divided by `cols` in it, max NaN-propagating; each result rounded once to `elem`. This
    /// equals the evaluator's `reduce` when each row lists one output's reduced elements in
    /// increasing input index. `dst` does not overlap `src`.
    ReduceRows {
        /// Sum, mean or max.
        kind: ReduceKind,
        /// Element type of `src` and `dst` (a float).
        elem: Elem,
        /// Row length in elements (> 0).
        cols: u32,
        /// Operand, R rows of `cols` elements.
        src: Region,
        /// Result, R elements.
        dst: Region,
    },
    /// Column reduction: `src` holds `rows` rows of C elements (C = `dst`'s length) and
    /// `dst[c]` is the sum, mean or max of column `c`, computed as [`Vertex::ReduceRows`]
    /// computes a row (each column's elements in increasing row order, in the evaluator's
    /// accumulator, rounded once to `elem`). A reduction over leading axes (a bias gradient
    /// sums the rows of a `[tokens, features]` activation) reduces each tile's rows where they
    /// lie with it, and then the tiles' partial rows. `dst` does not overlap `src`.
    ReduceCols {
        /// Sum, mean or max.
        kind: ReduceKind,
        /// Element type of `src` and `dst` (a float).
        elem: Elem,
        /// Rows in `src` (> 0).
        rows: u32,
        /// Operand, `rows` rows of C elements.
        src: Region,
        /// Result, C elements.
        dst: Region,
    },
    /// Scatter-add of update rows into zero rows, OVERWRITING `dst`: `dst` holds `rows` rows
    /// of `width` elements (a column block of the result table) and becomes zeros plus, for
    /// each `i` in order, update row `i` added into row `indices[i]`, accumulated as
    /// `tessera_ir::eval::accum::scatter_add_rows_into` (f64 for f32, f32 for f16) and
    /// rounded once to `elem`: bit-identical to the evaluator's `scatter_add` on these
    /// columns. `updates` holds `n` rows of `width` elements (the same columns of the update
    /// rows); `indices` holds `n` i64 values, each checked to lie in `[0, rows)` (else a
    /// run-time error). No two operands overlap.
    ScatterAdd {
        /// Element type of `updates` and `dst` (a float).
        elem: Elem,
        /// Rows in `dst`.
        rows: u32,
        /// Elements per row.
        width: u32,
        /// The row indices, `n` i64 values.
        indices: Region,
        /// The update rows, `n * width` elements.
        updates: Region,
        /// The result, `rows * width` elements.
        dst: Region,
    },
    /// `dst[i] = src[i / repeat]`: each element of `src` written `repeat` times in a row. An
    /// operand broadcast along its trailing axes (a per-row scale `[rows, 1]` of a `[rows,
    /// cols]` product, a row mask) is exchanged once in compact form and expanded on the tile,
    /// instead of one exchange copy per repeated element. `dst` does not overlap `src`.
    Expand {
        /// Element type (only its size matters: the bytes are copied).
        elem: Elem,
        /// How many times each element is repeated (at least 1).
        repeat: u32,
        /// The compact elements.
        src: Region,
        /// The expansion, `repeat` times `src`'s length.
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
            Vertex::Softmax { .. } => "softmax",
            Vertex::LayerNorm { .. } => "layer_norm",
            Vertex::Gather { .. } => "gather",
            Vertex::Compare { .. } => "compare",
            Vertex::Select { .. } => "select",
            Vertex::ReduceRows { .. } => "reduce",
            Vertex::ReduceCols { .. } => "reduce_cols",
            Vertex::ScatterAdd { .. } => "scatter_add",
            Vertex::Expand { .. } => "expand",
        }
    }

    /// Floating-point operations the vertex performs (2 per multiply-add; softmax counts 5 and
    /// layer norm 8 per element; compare 1 per result, a reduction 1 per source element plus
    /// 1 per result for a mean, scatter-add 1 per update element; data movement 0), for
    /// throughput reports.
    pub fn flops(&self) -> u64 {
        match self {
            Vertex::MatMul(mm) => 2 * u64::from(mm.m) * u64::from(mm.k) * u64::from(mm.n),
            Vertex::Unary { elem, dst, .. } | Vertex::Binary { elem, dst, .. } => {
                u64::from(dst.len / elem.size())
            }
            Vertex::AddPartials { elem, dst, srcs } => {
                u64::from(dst.len / elem.size()) * srcs.len() as u64
            }
            Vertex::Softmax { elem, dst, .. } => 5 * u64::from(dst.len / elem.size()),
            Vertex::LayerNorm { elem, dst, .. } => 8 * u64::from(dst.len / elem.size()),
            Vertex::Compare { dst, .. } => u64::from(dst.len / Elem::Bool.size()),
            Vertex::ReduceRows {
                kind,
                elem,
                src,
                dst,
                ..
            }
            | Vertex::ReduceCols {
                kind,
                elem,
                src,
                dst,
                ..
            } => {
                let mean = if *kind == ReduceKind::Mean {
                    u64::from(dst.len / elem.size())
                } else {
                    0
                };
                u64::from(src.len / elem.size()) + mean
            }
            Vertex::ScatterAdd { elem, updates, .. } => u64::from(updates.len / elem.size()),
            Vertex::Cast { .. }
            | Vertex::Fill { .. }
            | Vertex::Copy { .. }
            | Vertex::Gather { .. }
            | Vertex::Select { .. }
            | Vertex::Expand { .. } => 0,
        }
    }
}
