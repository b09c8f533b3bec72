//! Reductions over leading axes (columns of the operand's flat `[rows, cols]` view), reduced
//! where the rows lie and then across tiles.
//!
//! A bias gradient sums the rows of a `[tokens, features]` activation: each output element's
//! inputs are a column, one element per row, `cols` elements apart. The single-level
//! lowering brings every output element its column by exchange — one copy per element of
//! the operand when the rows lie on different tiles (87 M copies in the seed configuration's
//! training step at seq 512). Here, as popops' multi-stage reductions do, every tile first
//! reduces the whole rows it holds into one partial row (a `ReduceCols` vertex; a single row
//! or a ragged part of one is its own partial, read in place), and each output piece then
//! gathers the matching column range of every partial — one contiguous copy per partial —
//! and reduces those rows. Partials are rounded to the result's type, as in
//! [`super::reduce_tree`]: sums differ from the single-level order by rounding only.

use super::builder::{to_u32, Category};
use super::layout::Segment;
use super::lowering::Ctx;
use super::reduce_tree::Reduction;
use crate::lower::error::LowerError;
use tessera_runtime::program::{Exchange, Region, TileRef, TileRegion};
use tessera_runtime::vertex::Vertex;

/// A partial row: columns `[c0, c1)` on `tile` at `offset`.
#[derive(Debug, Clone, Copy)]
struct Partial {
    tile: TileRef,
    offset: u64,
    c0: u64,
    c1: u64,
}

/// One stage-1 piece of an operand segment: whole rows (`rows` ≥ 1, all columns) or part of
/// one row.
enum Cut {
    Rows { seg: Segment, rows: u64 },
    Part { seg: Segment, c0: u64 },
}

/// Cuts the operand's segments at row boundaries.
fn cuts(r: &Reduction<'_>, eb: u64) -> Vec<Cut> {
    let mut segs: Vec<Segment> = Vec::new();
    r.src.layout.segments(0, r.rows * r.cols, eb, &mut segs);
    let mut out = Vec::new();
    let mut pos = 0u64;
    for s in segs {
        let (mut at, mut left) = (s.offset, s.len);
        while left > 0 {
            let c0 = pos % r.cols;
            let seg = |len| Segment {
                tile: s.tile,
                offset: at,
                len,
            };
            let take = if c0 == 0 && left >= r.cols {
                let rows = left / r.cols;
                out.push(Cut::Rows {
                    seg: seg(rows * r.cols),
                    rows,
                });
                rows * r.cols
            } else {
                let w = (r.cols - c0).min(left);
                out.push(Cut::Part { seg: seg(w), c0 });
                w
            };
            at += take * eb;
            left -= take;
            pos += take;
        }
    }
    out
}

impl Ctx<'_> {
    /// Lowers `r` in two stages (see the module docs) and defines its value; `Ok(false)`
    /// without emitting anything when the partials of one output column would not fit in a
    /// sixteenth of a tile (the caller then lowers it in one stage).
    pub(crate) fn reduce_cols(&mut self, r: &Reduction<'_>) -> Result<bool, LowerError> {
        let eb = u64::from(r.elem.size());
        let cuts = cuts(r, eb);
        let budget = (self.target.bytes_per_tile / 16).max(1);
        let width = budget / (cuts.len() as u64 * eb).max(1);
        if width == 0 || r.cols == 0 {
            return Ok(false);
        }
        let label = self.label(r.id);
        let chip = self.chip(r.id)?;
        // Stage 1: each tile's whole rows reduced into one partial row; single rows and
        // ragged parts are partials where they lie.
        let (mut work, mut temps) = (Vec::new(), Vec::new());
        let mut partials = Vec::with_capacity(cuts.len());
        for cut in cuts {
            match cut {
                Cut::Rows { seg, rows } if rows > 1 => {
                    let (src, dst) = self.partial_of(&seg, r.cols * eb, eb, &label, &mut temps)?;
                    work.push((
                        seg.tile,
                        Vertex::ReduceCols {
                            kind: r.kind,
                            elem: r.elem,
                            rows: to_u32(rows, "rows")?,
                            src,
                            dst,
                        },
                    ));
                    partials.push(Partial {
                        tile: seg.tile,
                        offset: u64::from(dst.offset),
                        c0: 0,
                        c1: r.cols,
                    });
                }
                Cut::Rows { seg, .. } => partials.push(Partial {
                    tile: seg.tile,
                    offset: seg.offset,
                    c0: 0,
                    c1: r.cols,
                }),
                Cut::Part { seg, c0 } => partials.push(Partial {
                    tile: seg.tile,
                    offset: seg.offset,
                    c0,
                    c1: c0 + seg.len,
                }),
            }
        }
        self.push_stages(&format!("{label} (partials)"), Vec::new(), work);

        // Stage 2: each output piece, cut where partials begin or end and into chunks whose
        // gathered partials fit the budget, gathers and reduces the partial rows.
        let layout = self
            .b
            .alloc_linear(chip, r.cols, eb, width, &label, Category::Activations)?;
        let (mut copies, mut work) = (Vec::new(), Vec::new());
        for p in layout.pieces().unwrap_or(&[]) {
            let mut bounds: Vec<u64> = (p.start..p.end).step_by(width as usize).collect();
            bounds.push(p.end);
            for q in &partials {
                for c in [q.c0, q.c1] {
                    if c > p.start && c < p.end {
                        bounds.push(c);
                    }
                }
            }
            bounds.sort_unstable();
            bounds.dedup();
            for w in bounds.windows(2) {
                let [a, b] = [w[0], w[1]];
                let mine: Vec<&Partial> =
                    partials.iter().filter(|q| q.c0 <= a && q.c1 >= b).collect();
                let row = (b - a) * eb;
                let bytes = row * mine.len() as u64;
                let at = self
                    .b
                    .alloc(p.tile, bytes.max(eb), &label, Category::ExchangeBuffers)?;
                temps.push((p.tile, at, bytes.max(eb)));
                for (k, q) in mine.iter().enumerate() {
                    copies.push(Exchange {
                        src: TileRegion {
                            tile: q.tile,
                            region: Region::new(
                                to_u32(q.offset + (a - q.c0) * eb, "offset")?,
                                to_u32(row, "length")?,
                            ),
                        },
                        dst_tile: p.tile,
                        dst_offset: to_u32(at + k as u64 * row, "offset")?,
                    });
                }
                let dst = Region::new(
                    to_u32(p.offset + (a - p.start) * eb, "offset")?,
                    to_u32(row, "length")?,
                );
                self.b.note_vertex(p.tile, &label, bytes + row)?;
                work.push((
                    p.tile,
                    Vertex::ReduceCols {
                        kind: r.kind,
                        elem: r.elem,
                        rows: to_u32(mine.len() as u64, "partials")?,
                        src: Region::new(to_u32(at, "offset")?, to_u32(bytes, "length")?),
                        dst,
                    },
                ));
            }
        }
        self.push_stages(&label, copies, work);
        for (tile, at, bytes) in temps {
            self.b.free(tile, at, bytes, Category::ExchangeBuffers)?;
        }
        self.define(r.id, layout, false)?;
        Ok(true)
    }
}
