//! Memory-bound ops: their time is the bytes the busiest tile loads and stores.
//!
//! Per op (formulas and notation in the [`super`] module doc; `s` is an element size):
//! - **elementwise** (unary, binary, compare, select, cast): the result is cut into
//!   vectors of `vector_bytes`, spread over `U = min(T, vectors)` tiles; each result
//!   element loads one element of every operand and stores one: compute =
//!   `ceil(e_t·(Σ s(operand) + s(result)) / ls)` for the busiest tile's `e_t` elements.
//!   Operands with fewer elements than the result are broadcast: each tile receives
//!   `min(operand elements, e_t)` of them (exchange). Operands of the result's size are
//!   assumed mapped like the result (no exchange). One superstep.
//! - **reduction**: the cheaper of (a) one superstep with whole outputs per tile (`U =
//!   min(T, outputs)`, each tile loads its outputs' `L = inputs/outputs` elements and
//!   stores the outputs), and (b) when there are more input vectors than outputs, two
//!   supersteps: every tile reduces its vectors to `f32` partials, then each output's
//!   tile receives the `r − 1` other partials (`r = ceil(U/outputs)`) and adds them.
//!   Reduced elements of one output are taken as adjacent (innermost-axis reduction);
//!   other axis orders are costed alike.
//! - **softmax** over the last axis: rows stay whole on a tile (`U = min(T, rows)`); three
//!   passes (max; exp and sum; normalise) load the row 3 times and store it twice; three
//!   supersteps.
//! - **layer norm**: rows whole on a tile; three passes (mean; variance; normalise with
//!   gamma and beta) load 5 and store 1 element per element; gamma and beta (`2·H`
//!   elements) are exchanged to every tile; three supersteps; per-row statistics (two
//!   `f32`) are temporaries.
//! - **scatter-add**: result vectors spread over `U` tiles; each tile zero-fills its part
//!   of the result, receives its share of update rows and indices (exchange), and does a
//!   load-add-store per update element (compute). One superstep.
//! - **one-hot**: each tile loads its share of indices and stores its part of the result.
//!   One superstep.

use tessera_ir::TensorType;

use super::{bytes, ceil_div, elem_size, elems, Cycles, OpCost, Rates};
use crate::Assumptions;

/// `pieces` spread over at most `tiles` tiles: (tiles used, pieces on the busiest tile).
pub(crate) fn spread(pieces: u64, tiles: u32) -> (u64, u64) {
    let used = pieces.min(u64::from(tiles));
    if used == 0 {
        return (0, 0);
    }
    (used, ceil_div(pieces, used))
}

/// Elements of a result of `n` elements of `size` bytes on the busiest tile when it is cut
/// into vectors of `vector_bytes` over at most `tiles` tiles: (tiles used, elements).
pub(crate) fn spread_vectors(n: u64, size: u64, tiles: u32, a: &Assumptions) -> (u64, u64) {
    let grain = (u64::from(a.vector_bytes) / size.max(1)).max(1);
    let (used, vectors) = spread(ceil_div(n, grain), tiles);
    (used, vectors.saturating_mul(grain).min(n))
}

/// An [`OpCost`] of `supersteps` supersteps with the given compute and exchange cycles.
fn cost(compute: u64, exchange: u64, supersteps: u32, used: u64, rates: &Rates) -> OpCost {
    OpCost {
        cycles: Cycles {
            compute,
            exchange,
            sync: u64::from(supersteps).saturating_mul(rates.step),
        },
        tiles_used: u32::try_from(used).unwrap_or(u32::MAX),
        supersteps,
        ..OpCost::default()
    }
}

/// Elementwise ops: result `out`, operands `operands`.
pub(crate) fn elementwise(
    out: &TensorType,
    operands: &[&TensorType],
    tiles: u32,
    rates: &Rates,
    a: &Assumptions,
) -> OpCost {
    let n = elems(out);
    if n == 0 {
        return OpCost::default();
    }
    let (used, e_t) = spread_vectors(n, elem_size(out), tiles, a);
    let per_element: u64 = operands.iter().map(|t| elem_size(t)).sum::<u64>() + elem_size(out);
    let compute = Rates::cycles(e_t.saturating_mul(per_element), rates.ls);
    let broadcast: u64 = operands
        .iter()
        .filter(|t| elems(t) < n)
        .map(|t| elems(t).min(e_t).saturating_mul(elem_size(t)))
        .sum();
    let exchange = Rates::cycles(broadcast, rates.xb);
    OpCost {
        bytes_out: bytes(out),
        ..cost(compute, exchange, 1, used, rates)
    }
}

/// Size of a reduction partial of element type `t`: `f32` for floats, else the type's.
fn partial_size(t: &TensorType) -> u64 {
    if t.dtype.is_float() {
        4
    } else {
        elem_size(t)
    }
}

/// Reductions of `x` to `out`.
pub(crate) fn reduce(
    x: &TensorType,
    out: &TensorType,
    tiles: u32,
    rates: &Rates,
    a: &Assumptions,
) -> OpCost {
    let (n_in, n_out) = (elems(x), elems(out));
    if n_in == 0 || n_out == 0 {
        return OpCost::default();
    }
    let (s_in, s_out, ps) = (elem_size(x), elem_size(out), partial_size(x));
    let per_output = ceil_div(n_in, n_out);
    // (a) whole outputs per tile.
    let (u1, o_t) = spread(n_out, tiles);
    let loads = o_t.saturating_mul(per_output).saturating_mul(s_in);
    let single = cost(
        Rates::cycles(loads.saturating_add(o_t * s_out), rates.ls),
        0,
        1,
        u1,
        rates,
    );
    // (b) inputs spread wider than the outputs, partials combined in a second superstep.
    let (u2, e_t) = spread_vectors(n_in, s_in, tiles, a);
    let mut best = single;
    if u2 > u1 {
        let partials_per_tile = ceil_div(e_t, per_output);
        let stage1 = Rates::cycles(
            e_t.saturating_mul(s_in)
                .saturating_add(partials_per_tile.saturating_mul(ps)),
            rates.ls,
        );
        let r = ceil_div(u2, n_out);
        let exchange = Rates::cycles((r - 1).saturating_mul(ps), rates.xb);
        let stage2 = Rates::cycles(r.saturating_mul(ps).saturating_add(s_out), rates.ls);
        let two = cost(stage1.saturating_add(stage2), exchange, 2, u2, rates);
        if two.cycles.total() < best.cycles.total() {
            best = two;
        }
    }
    OpCost {
        bytes_out: bytes(out),
        ..best
    }
}

/// Rows of `t` (elements / last extent) and the last extent.
fn rows(t: &TensorType) -> (u64, u64) {
    let last = t.shape.last().map(|&d| d as u64).unwrap_or(1);
    (ceil_div(elems(t), last), last)
}

/// Softmax over the last axis of `out`'s shape.
pub(crate) fn softmax(out: &TensorType, tiles: u32, rates: &Rates) -> OpCost {
    if elems(out) == 0 {
        return OpCost::default();
    }
    let (rows, last) = rows(out);
    let (used, rows_t) = spread(rows, tiles);
    // Loads: max pass, exp pass, normalise pass; stores: exp, result.
    let moved = rows_t
        .saturating_mul(last)
        .saturating_mul(5 * elem_size(out));
    OpCost {
        bytes_out: bytes(out),
        ..cost(Rates::cycles(moved, rates.ls), 0, 3, used, rates)
    }
}

/// Layer norm with result `out` (gamma and beta have the last extent).
pub(crate) fn layer_norm(out: &TensorType, tiles: u32, rates: &Rates) -> OpCost {
    if elems(out) == 0 {
        return OpCost::default();
    }
    let (rows, h) = rows(out);
    let (used, rows_t) = spread(rows, tiles);
    let s = elem_size(out);
    // Loads: x for the mean, x for the variance, x, gamma and beta to normalise; one store.
    let moved = rows_t.saturating_mul(h).saturating_mul(6 * s);
    let params = 2 * h * s;
    OpCost {
        bytes_out: bytes(out),
        temp_bytes: rows.saturating_mul(8),
        ..cost(
            Rates::cycles(moved, rates.ls),
            Rates::cycles(params, rates.xb),
            3,
            used,
            rates,
        )
    }
}

/// Bytes of operand `t` (if present) that each of `used` tiles holds when it is spread evenly.
fn share_per_tile(t: Option<&&TensorType>, used: u64) -> u64 {
    t.map(|t| ceil_div(elems(t), used).saturating_mul(elem_size(t)))
        .unwrap_or(0)
}

/// Scatter-add of `operands = [indices, updates]` into a zero result `out`.
pub(crate) fn scatter_add(
    out: &TensorType,
    operands: &[&TensorType],
    tiles: u32,
    rates: &Rates,
    a: &Assumptions,
) -> OpCost {
    let n = elems(out);
    if n == 0 {
        return OpCost::default();
    }
    let s = elem_size(out);
    let (used, e_t) = spread_vectors(n, s, tiles, a);
    let (idx_t, upd_t) = (
        share_per_tile(operands.first(), used),
        share_per_tile(operands.get(1), used),
    );
    // Zero fill, then load update, load sum, store sum per update element; index loads.
    let moved = e_t
        .saturating_mul(s)
        .saturating_add(upd_t.saturating_mul(3))
        .saturating_add(idx_t);
    OpCost {
        bytes_out: bytes(out),
        ..cost(
            Rates::cycles(moved, rates.ls),
            Rates::cycles(upd_t.saturating_add(idx_t), rates.xb),
            1,
            used,
            rates,
        )
    }
}

/// One-hot of `operands = [indices]` into `out`.
pub(crate) fn one_hot(
    out: &TensorType,
    operands: &[&TensorType],
    tiles: u32,
    rates: &Rates,
    a: &Assumptions,
) -> OpCost {
    let n = elems(out);
    if n == 0 {
        return OpCost::default();
    }
    let s = elem_size(out);
    let (used, e_t) = spread_vectors(n, s, tiles, a);
    let idx_t = share_per_tile(operands.first(), used);
    let moved = e_t.saturating_mul(s).saturating_add(idx_t);
    OpCost {
        bytes_out: bytes(out),
        ..cost(Rates::cycles(moved, rates.ls), 0, 1, used, rates)
    }
}
