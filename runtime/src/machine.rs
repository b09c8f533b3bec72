//! The emulated machine: one byte memory of exactly `bytes_per_tile` per tile, on every chip.
//!
//! Tile memories are separate boxed slices, so handing each parallel task `&mut` to its own
//! tile's memory (a split borrow of the tile vector) is how "a vertex touches only its own
//! tile" is enforced by construction. Bytes move between tiles only in the exchange phase, which
//! the executor ([`crate::exec`]) runs as the load planned it ([`crate::exchange`]), sometimes
//! through the machine's staging buffer.

use crate::error::RunError;
use crate::loaded::LoadedProgram;
use crate::program::{Region, TileRef};

/// Emulated chips: `chips × tiles_per_chip` tile memories of `bytes_per_tile` bytes each.
#[derive(Debug, Clone)]
pub struct Machine {
    pub(crate) chips: u32,
    pub(crate) tiles_per_chip: u32,
    pub(crate) bytes_per_tile: u32,
    pub(crate) tiles: Vec<Box<[u8]>>,
    /// Exchange staging bytes (grown to the largest staged or fused superstep's need).
    pub(crate) staging: Vec<u8>,
}

impl Machine {
    /// A machine with zeroed memories. Sizes are taken as given; use [`Machine::for_program`]
    /// to build one that matches a validated program.
    pub fn new(chips: u32, tiles_per_chip: u32, bytes_per_tile: u32) -> Self {
        let n = chips as usize * tiles_per_chip as usize;
        let tiles = (0..n)
            .map(|_| vec![0u8; bytes_per_tile as usize].into_boxed_slice())
            .collect();
        Machine {
            chips,
            tiles_per_chip,
            bytes_per_tile,
            tiles,
            staging: Vec::new(),
        }
    }

    /// A zeroed machine of the shape `program` targets.
    pub fn for_program(program: &LoadedProgram) -> Self {
        let p = program.program();
        Machine::new(p.chips, p.tiles_per_chip, p.bytes_per_tile)
    }

    /// Bytes of memory per tile.
    pub fn bytes_per_tile(&self) -> u32 {
        self.bytes_per_tile
    }

    /// Number of tiles over all chips.
    pub fn tile_count(&self) -> usize {
        self.tiles.len()
    }

    /// One tile's whole memory (for inspection and tests), or `None` if it does not exist.
    pub fn tile_memory(&self, tile: TileRef) -> Option<&[u8]> {
        self.flat(tile)
            .and_then(|i| self.tiles.get(i))
            .map(|b| &b[..])
    }

    /// Bytes `region` of `tile`, or `None` if out of range.
    pub fn read(&self, tile: TileRef, region: Region) -> Option<&[u8]> {
        let start = region.offset as usize;
        self.tile_memory(tile)?
            .get(start..start + region.len as usize)
    }

    /// Overwrites bytes of a tile directly (for tests and debugging; programs use stream copies).
    /// Returns `None` if the tile or range does not exist.
    pub fn write(&mut self, tile: TileRef, offset: u32, bytes: &[u8]) -> Option<()> {
        let i = self.flat(tile)?;
        let start = offset as usize;
        self.tiles
            .get_mut(i)?
            .get_mut(start..start + bytes.len())?
            .copy_from_slice(bytes);
        Some(())
    }

    /// Flat index of `tile`, if it exists.
    fn flat(&self, tile: TileRef) -> Option<usize> {
        (tile.chip < self.chips && tile.tile < self.tiles_per_chip)
            .then(|| tile.chip as usize * self.tiles_per_chip as usize + tile.tile as usize)
    }

    /// Errors unless this machine has the shape `program` was validated for.
    pub(crate) fn check_matches(&self, program: &LoadedProgram) -> Result<(), RunError> {
        let p = program.program();
        let shape = (p.chips, p.tiles_per_chip, p.bytes_per_tile);
        let mine = (self.chips, self.tiles_per_chip, self.bytes_per_tile);
        if shape == mine {
            Ok(())
        } else {
            let show = |(c, t, b): (u32, u32, u32)| format!("{c} chips × {t} tiles × {b} bytes");
            Err(RunError::MachineMismatch {
                expected: show(shape),
                got: show(mine),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_have_exactly_the_target_size() {
        let m = Machine::new(2, 3, 638_976);
        assert_eq!(m.tile_count(), 6);
        for chip in 0..2 {
            for tile in 0..3 {
                let mem = m.tile_memory(TileRef::new(chip, tile));
                assert_eq!(mem.map(<[u8]>::len), Some(638_976));
            }
        }
        assert!(m.tile_memory(TileRef::new(2, 0)).is_none());
        assert!(m.tile_memory(TileRef::new(0, 3)).is_none());
    }

    #[test]
    fn direct_access_is_range_checked() {
        let mut m = Machine::new(1, 2, 16);
        assert_eq!(m.write(TileRef::new(0, 1), 12, &[1, 2, 3, 4]), Some(()));
        assert_eq!(m.write(TileRef::new(0, 1), 13, &[1, 2, 3, 4]), None);
        assert_eq!(
            m.read(TileRef::new(0, 1), Region::new(12, 4)),
            Some(&[1u8, 2, 3, 4][..])
        );
        assert_eq!(
            m.read(TileRef::new(0, 0), Region::new(12, 4)),
            Some(&[0u8; 4][..])
        );
        assert_eq!(m.read(TileRef::new(0, 1), Region::new(12, 5)), None);
    }
}
