//! Operand checks of the training vertices (compare, select, row reduction, scatter-add):
//! element types (bool only as compare result and select condition), bounds, alignment,
//! cyclic operands whose element counts divide the result's, and forbidden overlaps.

use super::{disjoint, float, operand, rows_of};
use crate::error::Problem;
use crate::program::Region;
use crate::vertex::{Elem, Vertex};

/// `elem` must be a value type a compare or select accepts (f32, f16 or i64).
fn value(what: &'static str, elem: Elem) -> Result<(), Problem> {
    if elem == Elem::Bool {
        Err(Problem::ElemType {
            what,
            elem,
            expected: "f32, f16 or i64",
        })
    } else {
        Ok(())
    }
}

/// An operand of `elem` repeated cyclically over `dst` (of `dst_elem`): its element count must
/// divide `dst`'s (and be zero only if `dst` is empty).
fn cyclic(
    what: &'static str,
    r: Region,
    elem: Elem,
    (dst, dst_elem): (Region, Elem),
    t: u32,
) -> Result<(), Problem> {
    operand(what, r, elem, None, t)?;
    let n = u64::from(dst.len / dst_elem.size());
    let k = u64::from(r.len / elem.size());
    if k == 0 && n > 0 {
        return Err(Problem::Length {
            what,
            region: r,
            expected: n * u64::from(elem.size()),
        });
    }
    if k > 0 && !n.is_multiple_of(k) {
        return Err(Problem::NotMultiple {
            what: "dst",
            region: dst,
            unit: k * u64::from(dst_elem.size()),
        });
    }
    Ok(())
}

/// Checks a compare, select, reduce or scatter-add vertex; `None` for other kinds.
pub(super) fn check(v: &Vertex, t: u32) -> Option<Result<(), Problem>> {
    Some(match v {
        Vertex::Compare {
            elem, a, b, dst, ..
        } => compare(*elem, [*a, *b], *dst, t),
        Vertex::Select {
            elem,
            cond,
            a,
            b,
            dst,
        } => select(*elem, [*cond, *a, *b], *dst, t),
        Vertex::ReduceRows {
            elem,
            cols,
            src,
            dst,
            ..
        } => rows_of("src", *src, *elem, *cols, t).and_then(|n| {
            operand("dst", *dst, *elem, Some(n / u64::from(*cols)), t)?;
            disjoint("dst", *dst, "src", *src, false)
        }),
        Vertex::ReduceCols {
            elem,
            rows,
            src,
            dst,
            ..
        } => reduce_cols(*elem, *rows, *src, *dst, t),
        Vertex::ScatterAdd {
            elem,
            rows,
            width,
            indices,
            updates,
            dst,
        } => scatter_add(*elem, (*rows, *width), [*indices, *updates], *dst, t),
        _ => return None,
    })
}

fn compare(elem: Elem, [a, b]: [Region; 2], dst: Region, t: u32) -> Result<(), Problem> {
    value("a", elem)?;
    operand("dst", dst, Elem::Bool, None, t)?;
    cyclic("a", a, elem, (dst, Elem::Bool), t)?;
    cyclic("b", b, elem, (dst, Elem::Bool), t)?;
    disjoint("dst", dst, "a", a, false)?;
    disjoint("dst", dst, "b", b, false)
}

fn select(elem: Elem, [cond, a, b]: [Region; 3], dst: Region, t: u32) -> Result<(), Problem> {
    value("dst", elem)?;
    operand("dst", dst, elem, None, t)?;
    cyclic("cond", cond, Elem::Bool, (dst, elem), t)?;
    cyclic("a", a, elem, (dst, elem), t)?;
    cyclic("b", b, elem, (dst, elem), t)?;
    disjoint("dst", dst, "cond", cond, false)?;
    disjoint("dst", dst, "a", a, a.len == dst.len)?;
    disjoint("dst", dst, "b", b, b.len == dst.len)
}

fn reduce_cols(elem: Elem, rows: u32, src: Region, dst: Region, t: u32) -> Result<(), Problem> {
    if rows == 0 {
        return Err(Problem::Zero { what: "rows" });
    }
    float("src", elem)?;
    operand("dst", dst, elem, None, t)?;
    let cols = u64::from(dst.len / elem.size());
    operand("src", src, elem, Some(u64::from(rows) * cols), t)?;
    disjoint("dst", dst, "src", src, false)
}

fn scatter_add(
    elem: Elem,
    (rows, width): (u32, u32),
    [indices, updates]: [Region; 2],
    dst: Region,
    t: u32,
) -> Result<(), Problem> {
    float("dst", elem)?;
    let w = u64::from(width);
    operand("indices", indices, Elem::I64, None, t)?;
    let n = u64::from(indices.len / Elem::I64.size());
    operand("updates", updates, elem, Some(n * w), t)?;
    operand("dst", dst, elem, Some(u64::from(rows) * w), t)?;
    disjoint("dst", dst, "indices", indices, false)?;
    disjoint("dst", dst, "updates", updates, false)?;
    disjoint("updates", updates, "indices", indices, false)
}

#[cfg(test)]
mod tests;
