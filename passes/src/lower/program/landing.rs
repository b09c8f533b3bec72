//! Values read on another chip than the one holding them: copied across once.
//!
//! A node of pipeline stage `c` may read a value that lives on another chip (an activation
//! at a stage boundary, a boundary buffer kept on its producer's chip). Reading it in place
//! would have every tile of `c` that needs some of its elements fetch them over the
//! inter-chip link — a matmul that replicates an operand over many tiles would send it over
//! the link many times. Instead the value *lands*: it is copied once to the same tile
//! indices of chip `c` (one copy per piece or column block: the layout is mirrored), and
//! every reader on `c` reads the landed copy, as Poplar's inter-IPU copies do. A landing
//! lives until the last reader on its chip is lowered, or until the pipeline segment ends
//! (a later segment may run after the source has been overwritten for another micro-batch,
//! so landings are never reused across segments).

use super::builder::{to_u32, Category};
use super::layout::{ColBlock, Layout, Piece};
use super::lowering::{Ctx, Val};
use crate::lower::error::LowerError;
use tessera_ir::NodeId;
use tessera_runtime::program::{Exchange, Region, TileRef, TileRegion};

/// A value copied to another chip.
#[derive(Debug, Clone)]
pub(crate) struct Landing {
    /// The copy's layout on the reading chip.
    pub layout: Layout,
    /// Its buffer (pinned: freed by the landing's bookkeeping only).
    pub buf: usize,
    /// Operand slots on that chip still to read it.
    pub remaining: usize,
}

/// Whether every byte of `layout` is on `chip`.
pub(crate) fn on_chip(layout: &Layout, chip: u32) -> bool {
    match layout {
        Layout::Linear(pieces) => pieces.iter().all(|p| p.tile.chip == chip),
        Layout::Columns { blocks, .. } => blocks.iter().all(|b| b.tile.chip == chip),
    }
}

impl Ctx<'_> {
    /// Swaps in landed copies of node `n`'s operands that are not on `chip`; returns the
    /// original values, to put back with [`Ctx::unswap`] once `n` is lowered.
    pub(crate) fn land_operands(
        &mut self,
        n: NodeId,
        chip: u32,
        operands: &[NodeId],
    ) -> Result<Vec<(NodeId, Val)>, LowerError> {
        let mut swapped: Vec<(NodeId, Val)> = Vec::new();
        for &o in operands {
            if swapped.iter().any(|(x, _)| *x == o) {
                continue;
            }
            let Some(v) = self.vals.get(&o).cloned() else {
                continue;
            };
            if on_chip(&v.layout, chip) {
                continue;
            }
            let (layout, buf) = match self.landings.get(&(o, chip)) {
                Some(l) => (l.layout.clone(), l.buf),
                None => self.land(n, o, &v, chip)?,
            };
            self.vals.insert(
                o,
                Val {
                    layout,
                    chip,
                    buf,
                    ..v.clone()
                },
            );
            swapped.push((o, v));
        }
        Ok(swapped)
    }

    /// Puts back the values [`Ctx::land_operands`] swapped out.
    pub(crate) fn unswap(&mut self, swapped: Vec<(NodeId, Val)>) {
        for (o, v) in swapped {
            self.vals.insert(o, v);
        }
    }

    /// One operand slot of a node on `chip` read `o`: frees its landing after the last.
    pub(crate) fn landing_read(&mut self, o: NodeId, chip: u32) -> Result<(), LowerError> {
        let done = match self.landings.get_mut(&(o, chip)) {
            Some(l) => {
                l.remaining = l.remaining.saturating_sub(1);
                l.remaining == 0
            }
            None => false,
        };
        if done {
            if let Some(l) = self.landings.remove(&(o, chip)) {
                self.free_buf_now(l.buf)?;
            }
        }
        Ok(())
    }

    /// Frees every landing (the end of a pipeline segment).
    pub(crate) fn drop_landings(&mut self) -> Result<(), LowerError> {
        let all: Vec<Landing> = self.landings.drain().map(|(_, l)| l).collect();
        for l in all {
            self.free_buf_now(l.buf)?;
        }
        Ok(())
    }

    /// Whether buffer `buf` is a landed copy (never aliased by another value).
    pub(crate) fn is_landing(&self, buf: usize) -> bool {
        self.landings.values().any(|l| l.buf == buf)
    }

    /// Copies `v` (node `o`) to the same tiles of `chip`, as an exchange stage labelled
    /// with the reading node `n`.
    fn land(
        &mut self,
        n: NodeId,
        o: NodeId,
        v: &Val,
        chip: u32,
    ) -> Result<(Layout, usize), LowerError> {
        let eb = v.eb();
        let name = format!("{} on chip {chip}", self.label(o));
        let mut copies = Vec::new();
        let copy = |from: TileRef, src: u64, to: TileRef, dst: u64, bytes: u64| {
            Ok::<_, LowerError>(Exchange {
                src: TileRegion {
                    tile: from,
                    region: Region::new(to_u32(src, "offset")?, to_u32(bytes, "length")?),
                },
                dst_tile: to,
                dst_offset: to_u32(dst, "offset")?,
            })
        };
        let layout = match &v.layout {
            Layout::Linear(pieces) => {
                let mut out = Vec::with_capacity(pieces.len());
                for p in pieces {
                    let tile = TileRef::new(chip, p.tile.tile);
                    let bytes = (p.end - p.start) * eb;
                    let offset = self.b.alloc(tile, bytes, &name, Category::Activations)?;
                    copies.push(copy(p.tile, p.offset, tile, offset, bytes)?);
                    out.push(Piece { tile, offset, ..*p });
                }
                Layout::Linear(out)
            }
            Layout::Columns { rows, cols, blocks } => {
                let mut out = Vec::with_capacity(blocks.len());
                for b in blocks {
                    let tile = TileRef::new(chip, b.tile.tile);
                    let bytes = rows * (b.c1 - b.c0) * eb;
                    let offset = self.b.alloc(tile, bytes, &name, Category::Activations)?;
                    copies.push(copy(b.tile, b.offset, tile, offset, bytes)?);
                    out.push(ColBlock { tile, offset, ..*b });
                }
                Layout::Columns {
                    rows: *rows,
                    cols: *cols,
                    blocks: out,
                }
            }
        };
        let label = format!("land {} for {}", self.label(o), self.label(n));
        self.push_stages(&label, copies, Vec::new());
        let buf = self.new_buf(layout.clone(), eb, true);
        let remaining = self.chip_uses.get(&(o, chip)).copied().unwrap_or(0);
        self.landings.insert(
            (o, chip),
            Landing {
                layout: layout.clone(),
                buf,
                remaining,
            },
        );
        Ok((layout, buf))
    }
}
