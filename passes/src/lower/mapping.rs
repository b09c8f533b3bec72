//! Linear tile mappings: which tile holds which elements of a tensor.
//!
//! This is Tessera's counterpart of poputil's `mapTensorLinearly`: the flattened elements
//! of a tensor are cut into grains (a whole number of elements that must not be split
//! across tiles), the grains are spread evenly over the tiles in order, and every tile
//! that gets anything gets at least `min_elements_per_tile` (rounded up to whole grains)
//! so that tiny tensors are not smeared over the whole chip. Like poputil's
//! `mapTensorLinearlyWithOffset`, the first tile can be rotated so that consecutive small
//! tensors do not all pile onto tile 0.
//!
//! The grain [`default_grain`] picks is documented there: whole rows when the tensor has
//! at least one row per tile, otherwise one 64-bit vector of elements.

use serde::{Deserialize, Serialize};

/// Bytes below which poputil does not spread a tensor further (its `minBytesPerTile`).
pub const MIN_BYTES_PER_TILE: u64 = 128;

/// Width of a tile's load/store vector, bytes (64-bit loads on a Colossus tile).
pub const VECTOR_BYTES: u64 = 8;

/// Elements `start..end` (of the flattened tensor) held by `tile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// The tile, numbered within its chip.
    pub tile: u32,
    /// First element held.
    pub start: u64,
    /// One past the last element held.
    pub end: u64,
}

impl Interval {
    /// Number of elements in the interval.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the interval holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where every element of one tensor lives: disjoint intervals covering `0..num_elements`
/// in increasing element order, at most one per tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileMapping {
    /// Bytes per element.
    pub elem_bytes: u64,
    /// The intervals, in increasing element order.
    pub intervals: Vec<Interval>,
}

impl TileMapping {
    /// Bytes of the tensor held by `tile` (0 when the tile holds none of it).
    pub fn bytes_on(&self, tile: u32) -> u64 {
        self.intervals
            .iter()
            .filter(|i| i.tile == tile)
            .map(|i| i.len().saturating_mul(self.elem_bytes))
            .sum()
    }

    /// Number of elements mapped (the tensor's element count).
    pub fn num_elements(&self) -> u64 {
        self.intervals.iter().map(Interval::len).sum()
    }
}

/// Maps `num_elements` elements of `elem_bytes` bytes each linearly over tiles
/// `0..tiles`, as poputil's `mapTensorLinearly(graph, t, minElementsPerTile, grainSize)`:
///
/// - `grains = ceil(num_elements / grain)`,
/// - `grains_per_tile = max(ceil(grains / tiles), ceil(min_elements_per_tile / grain))`,
/// - tile `k` gets elements `k·g·grain .. min((k+1)·g·grain, num_elements)`.
///
/// A `grain` of 0 is treated as 1. With `tiles == 0` or no elements the mapping is empty.
pub fn map_linearly(
    num_elements: u64,
    elem_bytes: u64,
    tiles: u32,
    grain: u64,
    min_elements_per_tile: u64,
) -> TileMapping {
    map_linearly_with_offset(
        num_elements,
        elem_bytes,
        tiles,
        grain,
        min_elements_per_tile,
        0,
    )
}

/// [`map_linearly`] with the tiles rotated: the chunk that [`map_linearly`] puts on tile
/// `k` goes to tile `(k + offset) % tiles` (poputil's `mapTensorLinearlyWithOffset`).
pub fn map_linearly_with_offset(
    num_elements: u64,
    elem_bytes: u64,
    tiles: u32,
    grain: u64,
    min_elements_per_tile: u64,
    offset: u32,
) -> TileMapping {
    let grain = grain.max(1);
    let mut intervals = Vec::new();
    if tiles > 0 && num_elements > 0 {
        let grains = num_elements.div_ceil(grain);
        let per_tile = grains
            .div_ceil(u64::from(tiles))
            .max(min_elements_per_tile.div_ceil(grain))
            .max(1);
        let chunk = per_tile.saturating_mul(grain);
        let mut start = 0u64;
        let mut k = 0u32;
        while start < num_elements && k < tiles {
            let end = start.saturating_add(chunk).min(num_elements);
            let tile = ((u64::from(k) + u64::from(offset)) % u64::from(tiles)) as u32;
            intervals.push(Interval { tile, start, end });
            start = end;
            k += 1;
        }
    }
    TileMapping {
        elem_bytes,
        intervals,
    }
}

/// The grain Tessera maps a tensor of `shape` with, in elements:
///
/// - whole rows (the innermost extent) when there are at least as many rows as `tiles`,
///   so that row-wise vertices (layer norm, softmax, a matmul's output rows) find each row
///   on one tile and every tile still gets work;
/// - otherwise one 64-bit vector of elements ([`VECTOR_BYTES`] / `elem_bytes`, at least 1),
///   poputil's default grain, so that small tensors still spread.
pub fn default_grain(shape: &[usize], elem_bytes: u64, tiles: u32) -> u64 {
    let vector = (VECTOR_BYTES / elem_bytes.max(1)).max(1);
    let Some((&last, outer)) = shape.split_last() else {
        return vector;
    };
    let rows: u64 = outer.iter().map(|&d| d as u64).product();
    if last > 0 && rows >= u64::from(tiles) {
        last as u64
    } else {
        vector
    }
}

/// poputil's default `minElementsPerTile`: [`MIN_BYTES_PER_TILE`] worth of elements.
pub fn default_min_elements(elem_bytes: u64) -> u64 {
    MIN_BYTES_PER_TILE.div_ceil(elem_bytes.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(tile: u32, start: u64, end: u64) -> Interval {
        Interval { tile, start, end }
    }

    #[test]
    fn thousand_elements_over_four_tiles_grain_eight() {
        // 1000 / 8 = 125 grains; ceil(125 / 4) = 32 grains = 256 elements per tile;
        // the last tile gets 1000 - 3·256 = 232.
        let m = map_linearly(1000, 4, 4, 8, 0);
        assert_eq!(
            m.intervals,
            vec![
                iv(0, 0, 256),
                iv(1, 256, 512),
                iv(2, 512, 768),
                iv(3, 768, 1000)
            ]
        );
        assert_eq!(m.bytes_on(3), 232 * 4);
        assert_eq!(m.num_elements(), 1000);
    }

    #[test]
    fn min_elements_keeps_small_tensors_together() {
        // 100 elements, grain 8, at least 64 per tile: 8 grains (64 elements) per tile,
        // so only two tiles are used: 0..64 and 64..100.
        let m = map_linearly(100, 4, 16, 8, 64);
        assert_eq!(m.intervals, vec![iv(0, 0, 64), iv(1, 64, 100)]);
    }

    #[test]
    fn offset_rotates_and_wraps() {
        let m = map_linearly_with_offset(12, 2, 4, 1, 0, 3);
        let tiles: Vec<u32> = m.intervals.iter().map(|i| i.tile).collect();
        assert_eq!(tiles, vec![3, 0, 1, 2]);
    }

    #[test]
    fn degenerate_inputs_give_empty_or_single_mappings() {
        assert!(map_linearly(0, 4, 4, 8, 0).intervals.is_empty());
        assert!(map_linearly(10, 4, 0, 8, 0).intervals.is_empty());
        // Grain 0 acts as 1: 3 elements over 8 tiles, one each.
        assert_eq!(map_linearly(3, 4, 8, 0, 0).intervals.len(), 3);
    }

    #[test]
    fn default_grain_rows_or_vector() {
        // 2000 rows of 768 over 1472 tiles: whole rows.
        assert_eq!(default_grain(&[2000, 768], 4, 1472), 768);
        // 20 rows: one 8-byte vector (2 f32 or 4 f16 elements).
        assert_eq!(default_grain(&[20, 768], 4, 1472), 2);
        assert_eq!(default_grain(&[20, 768], 2, 1472), 4);
        assert_eq!(default_grain(&[], 8, 4), 1);
        assert_eq!(default_min_elements(4), 32);
    }
}
