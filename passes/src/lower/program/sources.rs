//! Sources: parameters, inputs and constants — always-live values placed before anything
//! else, with the host streams (or fills) that put their bytes on the tiles.

use super::builder::{to_u32, Category};
use super::layout::{ColBlock, Layout};
use super::lowering::Ctx;
use super::{HostConstant, HostTensor};
use crate::lower::error::LowerError;
use tessera_ir::{NodeId, Op};
use tessera_runtime::program::{HostBuffer, Region, StreamCopy, TileRef, TileRegion};
use tessera_runtime::vertex::{Elem, Vertex};

impl Ctx<'_> {
    pub(crate) fn lower_source(
        &mut self,
        id: NodeId,
        gather_tables: &[NodeId],
    ) -> Result<(), LowerError> {
        let node = self.graph.node(id);
        let ty = node.ty.clone();
        let n = ty.num_elements() as u64;
        let eb = ty.dtype.size_bytes() as u64;
        let chip = self.chip(id)?;
        let name = self.label(id);
        let elem = self.elem(id)?;
        let category = match node.op {
            Op::Param { .. } => Category::Weights,
            Op::Input { .. } => Category::Inputs,
            _ => Category::Constants,
        };
        let planned = self.weights.remove(&id);
        let layout = if let Some((layout, _)) = &planned {
            layout.clone()
        } else if gather_tables.contains(&id) && ty.shape.len() == 2 {
            let lookups = self.lookups.get(&id).copied().unwrap_or(0);
            self.column_blocks(
                chip,
                (ty.shape[0] as u64, lookups),
                ty.shape[1] as u64,
                eb,
                &name,
                Category::Weights,
            )?
        } else {
            self.b
                .alloc_linear(chip, n, eb, Self::grain(&ty.shape), &name, category)?
        };
        match &node.op {
            Op::Param { name: pname, .. } => {
                let buffer = self.load_buffers.len() as u32;
                self.load_buffers.push(HostBuffer {
                    name: pname.clone(),
                    bytes: ty.size_bytes() as u64,
                });
                self.params.push(HostTensor {
                    name: pname.clone(),
                    ty: ty.clone(),
                    buffer,
                });
                match &planned {
                    Some((_, blocks)) => {
                        for b in blocks {
                            self.load_copies.push(StreamCopy::strided(
                                buffer,
                                b.host_offset,
                                TileRegion {
                                    tile: b.tile,
                                    region: Region::new(
                                        to_u32(b.offset, "offset")?,
                                        to_u32(b.bytes, "length")?,
                                    ),
                                },
                                to_u32(b.row_bytes, "row length")?,
                                b.row_stride,
                            ));
                        }
                    }
                    None => {
                        let copies = stream_copies(&layout, buffer, eb)?;
                        self.load_copies.extend(copies);
                    }
                }
            }
            Op::Input { name: iname, .. } => {
                let buffer = self.step_buffers.len() as u32;
                self.step_buffers.push(HostBuffer {
                    name: iname.clone(),
                    bytes: ty.size_bytes() as u64,
                });
                self.inputs.push(HostTensor {
                    name: iname.clone(),
                    ty: ty.clone(),
                    buffer,
                });
                let copies = stream_copies(&layout, buffer, eb)?;
                self.step_in.extend(copies);
            }
            Op::Full { value, .. } => {
                let Layout::Linear(pieces) = &layout else {
                    return Err(self.unsupported(id, "a constant cannot be a gather table"));
                };
                if elem == Elem::Bool {
                    let bytes = vec![u8::from(*value != 0.0); n as usize];
                    self.constant(&layout, bytes, &name, eb)?;
                } else if elem == Elem::I64 {
                    let bytes: Vec<u8> =
                        (0..n).flat_map(|_| (*value as i64).to_le_bytes()).collect();
                    self.constant(&layout, bytes, &name, eb)?;
                } else {
                    for p in pieces {
                        self.load_fills.push((
                            p.tile,
                            Vertex::Fill {
                                elem,
                                dst: Region::new(
                                    to_u32(p.offset, "offset")?,
                                    to_u32((p.end - p.start) * eb, "length")?,
                                ),
                                value: *value as f32,
                            },
                        ));
                    }
                }
            }
            Op::Iota { axis, .. } => {
                let strides = super::access::row_major(&ty.shape);
                let (s, d) = (
                    strides.get(*axis).copied().unwrap_or(1),
                    ty.shape.get(*axis).copied().unwrap_or(1) as u64,
                );
                let vals = (0..n).map(|i| (i / s) % d.max(1));
                let bytes: Vec<u8> = match elem {
                    Elem::I64 => vals.flat_map(|v| (v as i64).to_le_bytes()).collect(),
                    Elem::F32 => vals.flat_map(|v| (v as f32).to_le_bytes()).collect(),
                    Elem::F16 => vals
                        .flat_map(|v| half::f16::from_f64(v as f64).to_le_bytes())
                        .collect(),
                    Elem::Bool => vals.map(|v| u8::from(v != 0)).collect(),
                };
                self.constant(&layout, bytes, &name, eb)?;
            }
            _ => return Err(self.unsupported(id, "not a source")),
        }
        self.define(id, layout, true)
    }

    fn constant(
        &mut self,
        layout: &Layout,
        bytes: Vec<u8>,
        name: &str,
        eb: u64,
    ) -> Result<(), LowerError> {
        let buffer = self.load_buffers.len() as u32;
        self.load_buffers.push(HostBuffer {
            name: name.to_string(),
            bytes: bytes.len() as u64,
        });
        self.constants.push(HostConstant { buffer, bytes });
        let copies = stream_copies(layout, buffer, eb)?;
        self.load_copies.extend(copies);
        Ok(())
    }

    /// Column blocks of a `[rows, cols]` table over the chip's tiles: each block as wide as a
    /// quarter of a tile's memory allows.
    /// `(rows, lookups)`: the table's rows and the most rows a lookup or scatter-add
    /// moves through one block's tile (its indices count), both sized into the block width.
    pub(crate) fn column_blocks(
        &mut self,
        chip: u32,
        (rows, lookups): (u64, u64),
        cols: u64,
        eb: u64,
        name: &str,
        category: Category,
    ) -> Result<Layout, LowerError> {
        // A block's table columns and the looked-up (or scattered) rows of its columns share
        // a quarter of the tile.
        let budget = self.target.bytes_per_tile / 4;
        let width = (budget / ((rows + lookups) * eb).max(1)).clamp(1, cols.max(1));
        let mut blocks = Vec::new();
        let mut c0 = 0;
        let mut i = 0u64;
        let start = u64::from(self.b.reserve_tiles(chip, cols.div_ceil(width)));
        while c0 < cols {
            let c1 = (c0 + width).min(cols);
            let tile = TileRef::new(chip, ((start + i) % u64::from(self.b.tiles)) as u32);
            let offset = self.b.alloc(tile, rows * (c1 - c0) * eb, name, category)?;
            blocks.push(ColBlock {
                c0,
                c1,
                tile,
                offset,
            });
            c0 = c1;
            i += 1;
        }
        Ok(Layout::Columns { rows, cols, blocks })
    }
}

/// Host → tile stream copies filling `layout` from a row-major host buffer.
fn stream_copies(layout: &Layout, buffer: u32, eb: u64) -> Result<Vec<StreamCopy>, LowerError> {
    Ok(match layout {
        Layout::Linear(pieces) => pieces
            .iter()
            .map(|p| {
                Ok(StreamCopy::contiguous(
                    buffer,
                    p.start * eb,
                    TileRegion {
                        tile: p.tile,
                        region: Region::new(
                            to_u32(p.offset, "offset")?,
                            to_u32((p.end - p.start) * eb, "length")?,
                        ),
                    },
                ))
            })
            .collect::<Result<_, LowerError>>()?,
        Layout::Columns { rows, cols, blocks } => blocks
            .iter()
            .map(|b| {
                let row_bytes = (b.c1 - b.c0) * eb;
                Ok(StreamCopy {
                    buffer,
                    buffer_offset: b.c0 * eb,
                    tile: TileRegion {
                        tile: b.tile,
                        region: Region::new(
                            to_u32(b.offset, "offset")?,
                            to_u32(rows * row_bytes, "length")?,
                        ),
                    },
                    row_bytes: to_u32(row_bytes, "row length")?,
                    row_stride: cols * eb,
                })
            })
            .collect::<Result<_, LowerError>>()?,
    })
}
