//! The tile program: the runtime's whole input, a plain serialisable description of what
//! every tile of every chip does in each bulk-synchronous superstep.
//!
//! A [`TileProgram`] names the machine it targets (chips × tiles × bytes per tile), the host
//! buffers it streams from and to, and a list of [`Superstep`]s. Each superstep runs in four
//! phases, separated by barriers:
//!
//! 1. `host_to_tile` stream copies (host buffer → tile memory);
//! 2. `compute`: every listed tile runs its [`Vertex`] list in order, touching only its own
//!    memory (all tiles in parallel);
//! 3. `exchange`: [`Exchange`] copies between tiles (and between chips); every copy reads the
//!    memory as it was at the end of the compute phase;
//! 4. `tile_to_host` stream copies (tile memory → host buffer).
//!
//! Everything here is data: byte [`Region`]s inside one tile's memory, element types, shapes.
//! Nothing is checked on construction; [`crate::validate`] checks a program when it is loaded.

use crate::vertex::Vertex;
use serde::{Deserialize, Serialize};

/// A byte range `[offset, offset + len)` inside one tile's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    /// First byte.
    pub offset: u32,
    /// Number of bytes.
    pub len: u32,
}

impl Region {
    /// The region `[offset, offset + len)`.
    pub const fn new(offset: u32, len: u32) -> Self {
        Region { offset, len }
    }

    /// One past the last byte, computed without overflow.
    pub fn end(self) -> u64 {
        u64::from(self.offset) + u64::from(self.len)
    }

    /// Whether the two regions share at least one byte.
    pub fn overlaps(self, other: Region) -> bool {
        self.len > 0
            && other.len > 0
            && u64::from(self.offset) < other.end()
            && u64::from(other.offset) < self.end()
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bytes [{}, {})", self.offset, self.end())
    }
}

/// One tile of the machine: a chip index and a tile index within that chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TileRef {
    /// Chip index, `< TileProgram::chips`.
    pub chip: u32,
    /// Tile index within the chip, `< TileProgram::tiles_per_chip`.
    pub tile: u32,
}

impl TileRef {
    /// Tile `tile` of chip `chip`.
    pub const fn new(chip: u32, tile: u32) -> Self {
        TileRef { chip, tile }
    }
}

impl std::fmt::Display for TileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chip {} tile {}", self.chip, self.tile)
    }
}

/// A byte range of one tile's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TileRegion {
    /// The tile.
    pub tile: TileRef,
    /// The bytes within it.
    pub region: Region,
}

/// The vertices one tile runs, in order, during a superstep's compute phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileCompute {
    /// The tile that runs them.
    pub tile: TileRef,
    /// The vertices, run one after the other.
    pub vertices: Vec<Vertex>,
}

/// An exchange copy: `src.region.len` bytes from one tile to another (possibly on another chip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// Where the bytes come from.
    pub src: TileRegion,
    /// Where they go: tile and first byte (the length is the source's).
    pub dst_tile: TileRef,
    /// First destination byte.
    pub dst_offset: u32,
}

impl Exchange {
    /// The destination byte range.
    pub fn dst_region(&self) -> Region {
        Region::new(self.dst_offset, self.src.region.len)
    }
}

/// A host stream copy: bytes between a host buffer and a tile's memory.
///
/// With `row_bytes == 0` the copy is contiguous: `tile.region.len` bytes from/to
/// `[buffer_offset, buffer_offset + len)`. With `row_bytes > 0` (host → tile only) the
/// contiguous tile region is filled row by row from a 2-D strided host range: tile bytes
/// `[r * row_bytes, (r + 1) * row_bytes)` of the region come from host bytes
/// `[buffer_offset + r * row_stride, + row_bytes)`, for `r` in `0..len / row_bytes` (e.g. a
/// column block of a row-major weight matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCopy {
    /// Index into [`TileProgram::host_buffers`].
    pub buffer: u32,
    /// First byte within the host buffer.
    pub buffer_offset: u64,
    /// The tile bytes (the copy's length is `tile.region.len`).
    pub tile: TileRegion,
    /// Bytes per row of a strided host → tile copy; 0 for a contiguous copy.
    #[serde(default)]
    pub row_bytes: u32,
    /// Distance in host bytes between the starts of consecutive rows (used when
    /// `row_bytes > 0`).
    #[serde(default)]
    pub row_stride: u64,
}

impl StreamCopy {
    /// A contiguous copy between `tile` and the host bytes starting at `buffer_offset`.
    pub const fn contiguous(buffer: u32, buffer_offset: u64, tile: TileRegion) -> Self {
        StreamCopy {
            buffer,
            buffer_offset,
            tile,
            row_bytes: 0,
            row_stride: 0,
        }
    }

    /// A strided host → tile copy: rows of `row_bytes` bytes, `row_stride` bytes apart in the
    /// host buffer, packed one after the other into `tile`.
    pub const fn strided(
        buffer: u32,
        buffer_offset: u64,
        tile: TileRegion,
        row_bytes: u32,
        row_stride: u64,
    ) -> Self {
        StreamCopy {
            buffer,
            buffer_offset,
            tile,
            row_bytes,
            row_stride,
        }
    }

    /// `(host offset, tile offset, length)` of each contiguous piece of the copy, or `None`
    /// if `row_bytes` does not divide the tile length or an offset overflows `u64`.
    pub fn pieces(&self) -> Option<Vec<(u64, u32, u32)>> {
        let (t0, len) = (self.tile.region.offset, self.tile.region.len);
        if self.row_bytes == 0 {
            return Some(vec![(self.buffer_offset, t0, len)]);
        }
        if !len.is_multiple_of(self.row_bytes) {
            return None;
        }
        (0..len / self.row_bytes)
            .map(|r| {
                let host = u64::from(r)
                    .checked_mul(self.row_stride)?
                    .checked_add(self.buffer_offset)?;
                let tile = t0.checked_add(r * self.row_bytes)?;
                Some((host, tile, self.row_bytes))
            })
            .collect()
    }

    /// One past the last host byte the copy touches (`buffer_offset` for an empty copy), or
    /// `None` if `row_bytes` does not divide the tile length or the end overflows `u64`.
    pub fn host_end(&self) -> Option<u64> {
        let len = self.tile.region.len;
        if self.row_bytes == 0 {
            return self.buffer_offset.checked_add(u64::from(len));
        }
        if !len.is_multiple_of(self.row_bytes) {
            return None;
        }
        match (len / self.row_bytes).checked_sub(1) {
            None => Some(self.buffer_offset),
            Some(last) => u64::from(last)
                .checked_mul(self.row_stride)?
                .checked_add(self.buffer_offset)?
                .checked_add(u64::from(self.row_bytes)),
        }
    }
}

/// A host buffer the program streams from or to (e.g. an input or output tensor's bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBuffer {
    /// Name for error messages and reports (e.g. the tensor's name).
    pub name: String,
    /// Size in bytes; the buffer handed to the runtime must have exactly this size.
    pub bytes: u64,
}

/// One bulk-synchronous superstep: stream in, compute, exchange, stream out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Superstep {
    /// Host → tile copies before the compute phase.
    pub host_to_tile: Vec<StreamCopy>,
    /// Per-tile compute sets; at most one entry per tile.
    pub compute: Vec<TileCompute>,
    /// Tile → tile copies after the compute phase; destinations never overlap.
    pub exchange: Vec<Exchange>,
    /// Tile → host copies after the exchange phase; destinations never overlap.
    pub tile_to_host: Vec<StreamCopy>,
}

/// A complete program for an emulated multi-chip machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileProgram {
    /// Number of chips.
    pub chips: u32,
    /// Tiles per chip.
    pub tiles_per_chip: u32,
    /// Memory per tile in bytes (each tile owns exactly this many).
    pub bytes_per_tile: u32,
    /// Host buffers the stream copies refer to by index.
    pub host_buffers: Vec<HostBuffer>,
    /// The supersteps, run in order.
    pub supersteps: Vec<Superstep>,
}

impl TileProgram {
    /// An empty program (no buffers, no supersteps) for the given machine.
    pub fn new(chips: u32, tiles_per_chip: u32, bytes_per_tile: u32) -> Self {
        TileProgram {
            chips,
            tiles_per_chip,
            bytes_per_tile,
            host_buffers: Vec::new(),
            supersteps: Vec::new(),
        }
    }

    /// Total number of tiles over all chips.
    pub fn total_tiles(&self) -> u64 {
        u64::from(self.chips) * u64::from(self.tiles_per_chip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_pieces_and_host_end() {
        let tile = TileRegion {
            tile: TileRef::new(0, 0),
            region: Region::new(16, 12),
        };
        let c = StreamCopy::contiguous(1, 100, tile);
        assert_eq!(c.pieces(), Some(vec![(100, 16, 12)]));
        assert_eq!(c.host_end(), Some(112));
        // 3 rows of 4 bytes, 10 apart: host starts 100, 110, 120; last ends at 124.
        let s = StreamCopy::strided(1, 100, tile, 4, 10);
        assert_eq!(
            s.pieces(),
            Some(vec![(100, 16, 4), (110, 20, 4), (120, 24, 4)])
        );
        assert_eq!(s.host_end(), Some(124));
        assert_eq!(StreamCopy::strided(1, 100, tile, 5, 10).pieces(), None);
        assert_eq!(StreamCopy::strided(1, 100, tile, 5, 10).host_end(), None);
        assert_eq!(
            StreamCopy::strided(1, 0, tile, 4, u64::MAX).host_end(),
            None
        );
        let empty = TileRegion {
            region: Region::new(0, 0),
            ..tile
        };
        assert_eq!(StreamCopy::strided(1, 7, empty, 4, 10).host_end(), Some(7));
        assert_eq!(
            StreamCopy::strided(1, 7, empty, 4, 10).pieces(),
            Some(vec![])
        );
    }

    #[test]
    fn overlap_is_half_open() {
        let a = Region::new(0, 8);
        assert!(!a.overlaps(Region::new(8, 4)));
        assert!(a.overlaps(Region::new(7, 1)));
        assert!(!a.overlaps(Region::new(3, 0)));
        assert_eq!(
            Region::new(u32::MAX, u32::MAX).end(),
            2 * u64::from(u32::MAX)
        );
    }
}
