//! Where a value's elements live: its layout over tiles.
//!
//! Most values have a [`Layout::Linear`] layout: the row-major flat element order is cut into
//! contiguous pieces, each stored contiguously at an offset of one tile (poputil's linear
//! mapping). Embedding tables read by `gather` get a [`Layout::Columns`] layout instead: each
//! tile holds a block of whole columns of every row, as popops' `multiSlice` plans split the
//! unsliced dimension, so that a lookup needs no data-dependent exchange.
//!
//! [`Layout::segments`] answers the question every emitter asks: for a flat element range of a
//! value, which tile bytes hold it, as a list of physically contiguous segments.

use tessera_runtime::program::TileRef;

/// A contiguous range `[start, end)` of flat elements stored contiguously on one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// First flat element.
    pub start: u64,
    /// One past the last flat element.
    pub end: u64,
    /// The tile.
    pub tile: TileRef,
    /// Byte offset of element `start` in the tile's memory.
    pub offset: u64,
}

/// Columns `[c0, c1)` of every row of a 2-D tensor, stored row-major on one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColBlock {
    /// First column.
    pub c0: u64,
    /// One past the last column.
    pub c1: u64,
    /// The tile.
    pub tile: TileRef,
    /// Byte offset of element `(0, c0)`.
    pub offset: u64,
}

/// A value's placement on tiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Flat pieces, sorted by `start`, disjoint, covering every element.
    Linear(Vec<Piece>),
    /// Column blocks of a `[rows, cols]` tensor, sorted by `c0`, covering every column.
    Columns {
        /// Rows of the tensor.
        rows: u64,
        /// Columns of the tensor.
        cols: u64,
        /// The blocks.
        blocks: Vec<ColBlock>,
    },
}

/// A physically contiguous run of a value's elements on one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The tile.
    pub tile: TileRef,
    /// Byte offset of the run's first element.
    pub offset: u64,
    /// Number of elements.
    pub len: u64,
}

impl Layout {
    /// Appends to `out` the segments holding flat elements `[start, start + len)`, in order.
    /// Elements outside the layout are skipped (callers only ask for elements that exist).
    pub fn segments(&self, start: u64, len: u64, elem_bytes: u64, out: &mut Vec<Segment>) {
        let end = start.saturating_add(len);
        match self {
            Layout::Linear(pieces) => {
                let mut i = pieces.partition_point(|p| p.end <= start);
                let mut at = start;
                while at < end {
                    let Some(p) = pieces.get(i) else { return };
                    if p.start > at {
                        at = p.start.min(end);
                        continue;
                    }
                    let stop = p.end.min(end);
                    out.push(Segment {
                        tile: p.tile,
                        offset: p.offset + (at - p.start) * elem_bytes,
                        len: stop - at,
                    });
                    at = stop;
                    i += 1;
                }
            }
            Layout::Columns { cols, blocks, .. } => {
                if *cols == 0 {
                    return;
                }
                let mut at = start;
                while at < end {
                    let (r, c) = (at / cols, at % cols);
                    let i = blocks.partition_point(|b| b.c1 <= c);
                    let Some(b) = blocks.get(i) else { return };
                    let width = b.c1 - b.c0;
                    let stop_col = b.c1.min(c + (end - at));
                    out.push(Segment {
                        tile: b.tile,
                        offset: b.offset + (r * width + (c - b.c0)) * elem_bytes,
                        len: stop_col - c,
                    });
                    at += stop_col - c;
                }
            }
        }
    }

    /// The linear pieces, if the layout is linear.
    pub fn pieces(&self) -> Option<&[Piece]> {
        match self {
            Layout::Linear(p) => Some(p),
            Layout::Columns { .. } => None,
        }
    }

    /// Every `(tile, bytes)` the layout occupies (for reports).
    pub fn tile_bytes(&self, elem_bytes: u64) -> Vec<(TileRef, u64)> {
        match self {
            Layout::Linear(pieces) => pieces
                .iter()
                .map(|p| (p.tile, (p.end - p.start) * elem_bytes))
                .collect(),
            Layout::Columns { rows, blocks, .. } => blocks
                .iter()
                .map(|b| (b.tile, rows * (b.c1 - b.c0) * elem_bytes))
                .collect(),
        }
    }
}

/// Cuts `n` elements into pieces of whole grains (`grain` elements, the last one possibly
/// short), at most `tiles` pieces, as even as whole grains allow. Returns `(start, end)` pairs.
pub fn split_linear(n: u64, grain: u64, tiles: u64) -> Vec<(u64, u64)> {
    if n == 0 || tiles == 0 {
        return Vec::new();
    }
    let grain = grain.max(1);
    let grains = n.div_ceil(grain);
    let parts = grains.min(tiles);
    let per = grains / parts;
    let extra = grains % parts;
    let mut out = Vec::with_capacity(parts as usize);
    let mut g = 0;
    for p in 0..parts {
        let take = per + u64::from(p < extra);
        let (s, e) = (g * grain, ((g + take) * grain).min(n));
        if s < e {
            out.push((s, e));
        }
        g += take;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(tile: u32) -> TileRef {
        TileRef::new(0, tile)
    }

    #[test]
    fn linear_segments_split_at_piece_boundaries() {
        let l = Layout::Linear(vec![
            Piece {
                start: 0,
                end: 4,
                tile: t(0),
                offset: 100,
            },
            Piece {
                start: 4,
                end: 10,
                tile: t(1),
                offset: 8,
            },
        ]);
        let mut out = Vec::new();
        l.segments(2, 5, 4, &mut out);
        assert_eq!(
            out,
            vec![
                Segment {
                    tile: t(0),
                    offset: 108,
                    len: 2
                },
                Segment {
                    tile: t(1),
                    offset: 8,
                    len: 3
                }
            ]
        );
    }

    #[test]
    fn column_segments_follow_rows() {
        // A 3x5 table: columns 0..2 on tile 0, 2..5 on tile 1.
        let l = Layout::Columns {
            rows: 3,
            cols: 5,
            blocks: vec![
                ColBlock {
                    c0: 0,
                    c1: 2,
                    tile: t(0),
                    offset: 0,
                },
                ColBlock {
                    c0: 2,
                    c1: 5,
                    tile: t(1),
                    offset: 40,
                },
            ],
        };
        let mut out = Vec::new();
        // Row 1, all columns: flat 5..10.
        l.segments(5, 5, 4, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].tile, t(0));
        assert_eq!(out[0].offset, 2 * 4); // row 1 of a 2-wide block
        assert_eq!(out[0].len, 2);
        assert_eq!(out[1].tile, t(1));
        assert_eq!(out[1].offset, 40 + 3 * 4); // row 1 of a 3-wide block
        assert_eq!(out[1].len, 3);
        let total: u64 = out.iter().map(|s| s.len).sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn split_linear_keeps_whole_grains_and_covers() {
        for (n, grain, tiles) in [(10, 3, 2), (100, 7, 1472), (5, 10, 4), (64, 8, 8)] {
            let parts = split_linear(n, grain, tiles);
            assert!(parts.len() as u64 <= tiles);
            let mut at = 0;
            for &(s, e) in &parts {
                assert_eq!(s, at);
                assert!(s < e);
                if e != n {
                    assert_eq!((e - s) % grain, 0);
                }
                at = e;
            }
            assert_eq!(at, n);
        }
    }
}
