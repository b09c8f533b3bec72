//! Load-time checks of one vertex's operands: element types (floats for arithmetic; i64 only
//! as a cast source, as gather / scatter-add indices and as compare / select values; bool
//! only as a cast source, compare result and select condition), bounds, alignment, lengths
//! implied by the shape, and which operands may share bytes (a written range is disjoint from
//! the read ranges, or identical to a same-length elementwise input: in place). The training
//! vertices (compare, select, reduce, scatter-add) are checked in [`train`].

use super::check_in_tile;
use crate::error::Problem;
use crate::program::Region;
use crate::vertex::{Elem, Vertex};

/// `elem` must be a float type.
fn float(what: &'static str, elem: Elem) -> Result<(), Problem> {
    if elem.is_float() {
        Ok(())
    } else {
        Err(Problem::ElemType {
            what,
            elem,
            expected: "f32 or f16",
        })
    }
}

/// Checks bounds, alignment of start and length to `elem`, and (if given) the exact length.
fn operand(
    what: &'static str,
    region: Region,
    elem: Elem,
    expected_elems: Option<u64>,
    bytes_per_tile: u32,
) -> Result<(), Problem> {
    check_in_tile(what, region, bytes_per_tile)?;
    let align = elem.size();
    if !region.offset.is_multiple_of(align) || !region.len.is_multiple_of(align) {
        return Err(Problem::Misaligned {
            what,
            region,
            align,
        });
    }
    match expected_elems {
        Some(n) if n * u64::from(align) != u64::from(region.len) => Err(Problem::Length {
            what,
            region,
            expected: n * u64::from(align),
        }),
        _ => Ok(()),
    }
}

/// `a` and `b` must not overlap (`allow_same`: unless they are identical).
fn disjoint(
    what_a: &'static str,
    a: Region,
    what_b: &'static str,
    b: Region,
    allow_same: bool,
) -> Result<(), Problem> {
    if a.overlaps(b) && !(allow_same && a == b) {
        Err(Problem::Overlap {
            what_a,
            a,
            what_b,
            b,
        })
    } else {
        Ok(())
    }
}

/// A float operand holding a whole number of rows of `cols > 0` elements; returns its
/// element count.
fn rows_of(
    what: &'static str,
    region: Region,
    elem: Elem,
    cols: u32,
    bytes_per_tile: u32,
) -> Result<u64, Problem> {
    float(what, elem)?;
    operand(what, region, elem, None, bytes_per_tile)?;
    if cols == 0 {
        return Err(Problem::Zero { what: "cols" });
    }
    let row = u64::from(cols) * u64::from(elem.size());
    if !u64::from(region.len).is_multiple_of(row) {
        return Err(Problem::NotMultiple {
            what,
            region,
            unit: row,
        });
    }
    Ok(u64::from(region.len / elem.size()))
}

/// A binary operand broadcast cyclically over `dst`: its length must divide `dst`'s (and be
/// zero only if `dst` is empty); it may be `dst` itself only if the lengths are equal.
fn broadcast_operand(
    what: &'static str,
    r: Region,
    dst: Region,
    elem: Elem,
    t: u32,
) -> Result<(), Problem> {
    operand(what, r, elem, None, t)?;
    if r.len == 0 && dst.len > 0 {
        return Err(Problem::Length {
            what,
            region: r,
            expected: u64::from(dst.len),
        });
    }
    if r.len > 0 && !dst.len.is_multiple_of(r.len) {
        return Err(Problem::NotMultiple {
            what: "dst",
            region: dst,
            unit: u64::from(r.len),
        });
    }
    disjoint("dst", dst, what, r, r.len == dst.len)
}

/// Checks one vertex's operands against a tile of `bytes_per_tile` bytes.
pub(crate) fn check_vertex(v: &Vertex, bytes_per_tile: u32) -> Result<(), Problem> {
    let t = bytes_per_tile;
    if let Some(checked) = train::check(v, t) {
        return checked;
    }
    match v {
        Vertex::MatMul(mm) => {
            float("a", mm.input)?;
            float("c", mm.partials)?;
            let (m, k, n) = (u64::from(mm.m), u64::from(mm.k), u64::from(mm.n));
            operand("a", mm.a, mm.input, Some(m * k), t)?;
            operand("b", mm.b, mm.input, Some(k * n), t)?;
            operand("c", mm.c, mm.partials, Some(m * n), t)?;
            disjoint("c", mm.c, "a", mm.a, false)?;
            disjoint("c", mm.c, "b", mm.b, false)
        }
        Vertex::Unary { elem, src, dst, .. } => {
            float("src", *elem)?;
            operand("src", *src, *elem, None, t)?;
            let n = u64::from(src.len / elem.size());
            operand("dst", *dst, *elem, Some(n), t)?;
            disjoint("dst", *dst, "src", *src, true)
        }
        Vertex::Binary {
            elem, a, b, dst, ..
        } => {
            float("dst", *elem)?;
            operand("dst", *dst, *elem, None, t)?;
            broadcast_operand("a", *a, *dst, *elem, t)?;
            broadcast_operand("b", *b, *dst, *elem, t)
        }
        Vertex::AddPartials { elem, dst, srcs } => {
            float("dst", *elem)?;
            operand("dst", *dst, *elem, None, t)?;
            let n = u64::from(dst.len / elem.size());
            for src in srcs {
                operand("src", *src, *elem, Some(n), t)?;
                disjoint("dst", *dst, "src", *src, false)?;
            }
            Ok(())
        }
        Vertex::Cast { from, to, src, dst } => {
            float("dst", *to)?;
            operand("src", *src, *from, None, t)?;
            let n = u64::from(src.len / from.size());
            operand("dst", *dst, *to, Some(n), t)?;
            disjoint("dst", *dst, "src", *src, false)
        }
        Vertex::Fill { elem, dst, .. } => {
            float("dst", *elem)?;
            operand("dst", *dst, *elem, None, t)
        }
        Vertex::Copy { src, dst } => {
            check_in_tile("src", *src, t)?;
            check_in_tile("dst", *dst, t)?;
            if src.len == dst.len {
                Ok(())
            } else {
                Err(Problem::Length {
                    what: "dst",
                    region: *dst,
                    expected: u64::from(src.len),
                })
            }
        }
        Vertex::Softmax {
            elem,
            cols,
            src,
            dst,
        } => {
            let n = rows_of("src", *src, *elem, *cols, t)?;
            operand("dst", *dst, *elem, Some(n), t)?;
            disjoint("dst", *dst, "src", *src, true)
        }
        Vertex::LayerNorm {
            elem,
            cols,
            x,
            gamma,
            beta,
            dst,
            ..
        } => {
            let n = rows_of("x", *x, *elem, *cols, t)?;
            operand("gamma", *gamma, *elem, Some(u64::from(*cols)), t)?;
            operand("beta", *beta, *elem, Some(u64::from(*cols)), t)?;
            operand("dst", *dst, *elem, Some(n), t)?;
            disjoint("dst", *dst, "x", *x, true)?;
            disjoint("dst", *dst, "gamma", *gamma, false)?;
            disjoint("dst", *dst, "beta", *beta, false)
        }
        Vertex::Gather {
            elem,
            rows,
            width,
            table,
            indices,
            dst,
        } => {
            float("table", *elem)?;
            let w = u64::from(*width);
            operand("table", *table, *elem, Some(u64::from(*rows) * w), t)?;
            operand("indices", *indices, Elem::I64, None, t)?;
            let n = u64::from(indices.len / Elem::I64.size());
            operand("dst", *dst, *elem, Some(n * w), t)?;
            disjoint("dst", *dst, "table", *table, false)?;
            disjoint("dst", *dst, "indices", *indices, false)?;
            disjoint("indices", *indices, "table", *table, false)
        }
        Vertex::Compare { .. }
        | Vertex::Select { .. }
        | Vertex::ReduceRows { .. }
        | Vertex::ReduceCols { .. }
        | Vertex::ScatterAdd { .. } => Ok(()),
        Vertex::Expand {
            elem,
            repeat,
            src,
            dst,
        } => {
            operand("src", *src, *elem, None, t)?;
            if *repeat == 0 {
                return Err(Problem::Zero { what: "repeat" });
            }
            let n = u64::from(src.len / elem.size()) * u64::from(*repeat);
            operand("dst", *dst, *elem, Some(n), t)?;
            disjoint("dst", *dst, "src", *src, false)
        }
    }
}

mod train;

#[cfg(test)]
mod tests;
