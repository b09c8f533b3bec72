//! The lowering's bookkeeping: per-tile allocators, the stage list, and exchange emission.
//!
//! Every tile of every chip has one first-fit allocator. Always-live values (parameters,
//! inputs, constants) are allocated first and never freed, so they sit at the bottom of each
//! tile; everything else (values and the scratch blocks that vertices read) is allocated when
//! its op is lowered and freed after its last reader, so bytes are reused by liveness. The
//! allocators never refuse: a tile over capacity is detected at the end and reported as
//! Poplar does (see [`super::report`]).
//!
//! Ops append [`Stage`]s in program order: a compute stage (vertices per tile), an exchange
//! stage (tile-to-tile copies) or a stream stage (copies to or from streaming memory). [`super::pack`] turns the stage list into supersteps.

use super::layout::{Layout, Piece, Segment};
use crate::lower::alloc::FirstFit;
use crate::lower::error::LowerError;
use tessera_runtime::program::{Exchange, Region, StreamCopy, TileRef, TileRegion};
use tessera_runtime::vertex::Vertex;

/// Bytes every allocation is rounded up to (a 64-bit load).
pub(crate) const ALIGN: u64 = 8;

/// One step of the lowered program, in order.
#[derive(Debug, Clone)]
pub(crate) enum Stage {
    /// Vertices, each on its tile; a tile's vertices run in the listed order.
    Compute {
        /// What the stage computes (op and scope), for reports.
        label: String,
        /// `(tile, vertex)` pairs.
        work: Vec<(TileRef, Vertex)>,
    },
    /// Tile-to-tile copies, all reading memory as the previous compute left it.
    Exchange {
        /// What the copies are for.
        label: String,
        /// The copies.
        copies: Vec<Exchange>,
    },
    /// Host-to-tile copies from streaming memory, before anything later in the list.
    StreamIn {
        /// What the copies bring.
        label: String,
        /// The copies.
        copies: Vec<StreamCopy>,
    },
    /// Tile-to-host copies into streaming memory, after everything earlier in the list.
    StreamOut {
        /// What the copies take out.
        label: String,
        /// The copies.
        copies: Vec<StreamCopy>,
    },
}

/// What an allocation holds, for the memory report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    /// Parameters (always-live).
    Weights,
    /// Graph inputs (always-live).
    Inputs,
    /// Constants (always-live).
    Constants,
    /// Op results (not always-live).
    Activations,
    /// Scratch blocks that exchange fills with a vertex's operands.
    ExchangeBuffers,
    /// A vertex's own temporaries (matmul result blocks, lookups).
    Temporaries,
    /// Gradient accumulators of a pipelined step (live for the whole step).
    Gradients,
    /// Pipeline boundary buffers and stash slots (live for the whole step).
    Stash,
    /// Optimizer state streamed onto the tiles for the optimizer step.
    OptimizerState,
}

impl Category {
    fn index(self) -> usize {
        self as usize
    }

    /// Whether the bytes stay allocated for the whole program.
    pub fn always_live(self) -> bool {
        matches!(
            self,
            Category::Weights
                | Category::Inputs
                | Category::Constants
                | Category::Gradients
                | Category::Stash
        )
    }
}

/// Number of [`Category`] values.
pub(crate) const CATEGORIES: usize = 9;

/// A named allocation on one tile (for out-of-memory reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub name: String,
    pub bytes: u64,
}

/// Per-tile accounting.
#[derive(Debug, Clone, Default)]
pub(crate) struct TileBook {
    pub arena: FirstFit,
    pub always_live: u64,
    /// The largest allocations ever made on the tile, largest first.
    pub largest: Vec<Named>,
    /// The vertices with the most operand bytes, largest first.
    pub largest_vertices: Vec<Named>,
    /// Vertices placed on the tile.
    pub vertices: u64,
    /// Live bytes per category now.
    pub live: [u64; CATEGORIES],
    /// Live bytes per category when the tile last reached a new high-water mark.
    pub at_peak: [u64; CATEGORIES],
}

const REPORT_TOP: usize = 5;

fn keep_top(list: &mut Vec<Named>, item: Named) {
    let pos = list.partition_point(|n| n.bytes >= item.bytes);
    if pos < REPORT_TOP {
        list.insert(pos, item);
        list.truncate(REPORT_TOP);
    }
}

/// The lowering's mutable state.
#[derive(Debug)]
pub(crate) struct Builder {
    pub chips: u32,
    pub tiles: u32,
    pub books: Vec<TileBook>,
    pub stages: Vec<Stage>,
    /// Next tile to start a linear layout on, per chip (mapTensorLinearlyWithOffset).
    next_tile: Vec<u32>,
    /// Live bytes per chip now.
    chip_live: Vec<u64>,
    /// Live bytes per chip after each stage (parallel to `stages`).
    pub timeline: Vec<Vec<u64>>,
}

impl Builder {
    pub fn new(chips: u32, tiles: u32) -> Self {
        Builder {
            chips,
            tiles,
            books: vec![TileBook::default(); (chips as usize) * (tiles as usize)],
            stages: Vec::new(),
            next_tile: vec![0; chips as usize],
            chip_live: vec![0; chips as usize],
            timeline: Vec::new(),
        }
    }

    fn book(&mut self, tile: TileRef) -> Result<&mut TileBook, LowerError> {
        let i = tile.chip as usize * self.tiles as usize + tile.tile as usize;
        let chips = self.chips;
        self.books
            .get_mut(i)
            .ok_or_else(|| LowerError::InvalidOption {
                option: "tile",
                reason: format!("{tile} is outside the {chips}-chip machine"),
            })
    }

    /// Allocates `bytes` (rounded up to [`ALIGN`]) on `tile`; `always_live` allocations must
    /// all come before any other on that tile.
    pub fn alloc(
        &mut self,
        tile: TileRef,
        bytes: u64,
        name: &str,
        category: Category,
    ) -> Result<u64, LowerError> {
        let size = bytes.div_ceil(ALIGN) * ALIGN;
        let chip = tile.chip as usize;
        let book = self.book(tile)?;
        let before = book.arena.peak_end;
        let offset = book.arena.alloc(size);
        if category.always_live() {
            book.always_live += size;
        }
        if let Some(l) = book.live.get_mut(category.index()) {
            *l += size;
        }
        if book.arena.peak_end > before {
            book.at_peak = book.live;
        }

        if book.largest.len() < REPORT_TOP || book.largest.last().is_some_and(|n| n.bytes < size) {
            keep_top(
                &mut book.largest,
                Named {
                    name: name.to_string(),
                    bytes: size,
                },
            );
        }
        if let Some(c) = self.chip_live.get_mut(chip) {
            *c += size;
        }
        Ok(offset)
    }

    /// Frees an allocation made by [`Builder::alloc`] with the same `bytes`.
    pub fn free(
        &mut self,
        tile: TileRef,
        offset: u64,
        bytes: u64,
        category: Category,
    ) -> Result<(), LowerError> {
        let size = bytes.div_ceil(ALIGN) * ALIGN;
        let book = self.book(tile)?;
        book.arena.free(offset, size);
        if let Some(l) = book.live.get_mut(category.index()) {
            *l = l.saturating_sub(size);
        }
        if let Some(c) = self.chip_live.get_mut(tile.chip as usize) {
            *c = c.saturating_sub(size);
        }
        Ok(())
    }

    /// Records the live bytes per chip after the stage just pushed.
    pub fn snapshot(&mut self) {
        self.timeline.push(self.chip_live.clone());
    }

    /// A linear layout of `n` elements on `chip`, pieces of whole `grain`s, starting on the
    /// tile after the previous linear layout's last tile.
    pub fn alloc_linear(
        &mut self,
        chip: u32,
        n: u64,
        elem_bytes: u64,
        grain: u64,
        name: &str,
        category: Category,
    ) -> Result<Layout, LowerError> {
        let start = self.next_tile.get(chip as usize).copied().unwrap_or(0);
        let mut pieces = Vec::new();
        let mut last = start;
        for (i, (s, e)) in super::layout::split_linear(n, grain, u64::from(self.tiles))
            .into_iter()
            .enumerate()
        {
            let t = ((u64::from(start) + i as u64) % u64::from(self.tiles)) as u32;
            let tile = TileRef::new(chip, t);
            let offset = self.alloc(tile, (e - s) * elem_bytes, name, category)?;
            pieces.push(Piece {
                start: s,
                end: e,
                tile,
                offset,
            });
            last = t;
        }
        if let Some(slot) = self.next_tile.get_mut(chip as usize) {
            *slot = (last + 1) % self.tiles.max(1);
        }
        Ok(Layout::Linear(pieces))
    }

    /// The tile to start `count` consecutive placements on for `chip`; the next placement
    /// starts after them.
    pub fn reserve_tiles(&mut self, chip: u32, count: u64) -> u32 {
        let tiles = u64::from(self.tiles.max(1));
        let Some(slot) = self.next_tile.get_mut(chip as usize) else {
            return 0;
        };
        let start = *slot;
        *slot = ((u64::from(start) + count) % tiles) as u32;
        start
    }

    /// Allocates the same pieces (tiles and element ranges) as `like`, for a value of
    /// `elem_bytes` per element.
    pub fn alloc_like(
        &mut self,
        like: &[Piece],
        elem_bytes: u64,
        name: &str,
    ) -> Result<Layout, LowerError> {
        let mut pieces = Vec::with_capacity(like.len());
        for p in like {
            let offset = self.alloc(
                p.tile,
                (p.end - p.start) * elem_bytes,
                name,
                Category::Activations,
            )?;
            pieces.push(Piece { offset, ..*p });
        }
        Ok(Layout::Linear(pieces))
    }

    /// Frees every byte of a layout (activations).
    pub fn free_layout(&mut self, layout: &Layout, elem_bytes: u64) -> Result<(), LowerError> {
        self.free_layout_as(layout, elem_bytes, Category::Activations)
    }

    /// Frees every byte of a layout allocated as `category`.
    pub fn free_layout_as(
        &mut self,
        layout: &Layout,
        elem_bytes: u64,
        category: Category,
    ) -> Result<(), LowerError> {
        match layout {
            Layout::Linear(pieces) => {
                for p in pieces {
                    self.free(p.tile, p.offset, (p.end - p.start) * elem_bytes, category)?;
                }
            }
            Layout::Columns { rows, blocks, .. } => {
                for b in blocks {
                    self.free(
                        b.tile,
                        b.offset,
                        rows * (b.c1 - b.c0) * elem_bytes,
                        category,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Records a vertex for the out-of-memory report of its tile.
    pub fn note_vertex(&mut self, tile: TileRef, name: &str, bytes: u64) -> Result<(), LowerError> {
        let book = self.book(tile)?;
        book.vertices += 1;
        if book.largest_vertices.len() < REPORT_TOP
            || book
                .largest_vertices
                .last()
                .is_some_and(|n| n.bytes < bytes)
        {
            keep_top(
                &mut book.largest_vertices,
                Named {
                    name: name.to_string(),
                    bytes,
                },
            );
        }
        Ok(())
    }
}

/// Converts a byte offset or length to the runtime's `u32`.
pub(crate) fn to_u32(v: u64, what: &str) -> Result<u32, LowerError> {
    u32::try_from(v).map_err(|_| LowerError::InvalidOption {
        option: "tile memory",
        reason: format!("{what} {v} does not fit in 32 bits"),
    })
}

/// Appends copies moving source runs `(start, len)` of a value laid out as `src` into
/// consecutive bytes of `dst_tile` from `dst_offset`; adjacent copies are merged.
pub(crate) fn emit_runs(
    copies: &mut Vec<Exchange>,
    src: &Layout,
    elem_bytes: u64,
    runs: &[(u64, u64)],
    dst_tile: TileRef,
    dst_offset: u64,
) -> Result<u64, LowerError> {
    let mut segs: Vec<Segment> = Vec::new();
    let mut at = dst_offset;
    for &(start, len) in runs {
        segs.clear();
        src.segments(start, len, elem_bytes, &mut segs);
        for s in &segs {
            let bytes = s.len * elem_bytes;
            if let Some(last) = copies.last_mut() {
                let l = last.src.region;
                if last.dst_tile == dst_tile
                    && last.src.tile == s.tile
                    && l.end() == s.offset
                    && u64::from(last.dst_offset) + u64::from(l.len) == at
                {
                    last.src.region.len = to_u32(u64::from(l.len) + bytes, "exchange length")?;
                    at += bytes;
                    continue;
                }
            }
            copies.push(Exchange {
                src: TileRegion {
                    tile: s.tile,
                    region: Region::new(to_u32(s.offset, "offset")?, to_u32(bytes, "length")?),
                },
                dst_tile,
                dst_offset: to_u32(at, "offset")?,
            });
            at += bytes;
        }
    }
    Ok(at - dst_offset)
}

/// Appends copies moving elements `[src_start, src_start + len)` of a value laid out as `src`
/// to elements `[dst_start, dst_start + len)` of one laid out as `dst` (both split at their
/// pieces).
pub(crate) fn emit_range(
    copies: &mut Vec<Exchange>,
    (src, src_start): (&Layout, u64),
    (dst, dst_start): (&Layout, u64),
    len: u64,
    elem_bytes: u64,
) -> Result<(), LowerError> {
    let (mut s, mut d) = (Vec::new(), Vec::new());
    src.segments(src_start, len, elem_bytes, &mut s);
    dst.segments(dst_start, len, elem_bytes, &mut d);
    let (mut i, mut j) = (0, 0);
    let (mut si, mut dj) = (0u64, 0u64);
    while let (Some(a), Some(b)) = (s.get(i), d.get(j)) {
        let n = (a.len - si).min(b.len - dj);
        copies.push(Exchange {
            src: TileRegion {
                tile: a.tile,
                region: Region::new(
                    to_u32(a.offset + si * elem_bytes, "offset")?,
                    to_u32(n * elem_bytes, "length")?,
                ),
            },
            dst_tile: b.tile,
            dst_offset: to_u32(b.offset + dj * elem_bytes, "offset")?,
        });
        si += n;
        dj += n;
        if si == a.len {
            i += 1;
            si = 0;
        }
        if dj == b.len {
            j += 1;
            dj = 0;
        }
    }
    Ok(())
}
