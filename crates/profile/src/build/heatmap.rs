//! The downsampled tile × superstep heatmap: cells fold contiguous buckets of tiles and
//! supersteps with max aggregation, so the busiest tile of any superstep stays visible and
//! `profile.json` stays small whatever the machine size.

use crate::model::Heatmap;

/// Most tile buckets (heatmap rows).
pub const MAX_TILE_BUCKETS: u64 = 256;
/// Most superstep buckets (heatmap columns).
pub const MAX_STEP_BUCKETS: u64 = 512;

/// Items per bucket so that `n` items fit in at most `max` buckets (≥ 1).
pub(crate) fn per_bucket(n: u64, max: u64) -> u64 {
    n.div_ceil(max.max(1)).max(1)
}

/// Accumulates a [`Heatmap`] cell by cell.
pub(crate) struct HeatmapBuilder {
    map: Heatmap,
}

impl HeatmapBuilder {
    /// An all-zero heatmap for `tiles` global tiles and `supersteps` supersteps.
    pub(crate) fn new(tiles: u64, supersteps: u64) -> Self {
        let tpb = per_bucket(tiles, MAX_TILE_BUCKETS);
        let spb = per_bucket(supersteps, MAX_STEP_BUCKETS);
        let rows = tiles.div_ceil(tpb) as usize;
        let cols = supersteps.div_ceil(spb) as usize;
        HeatmapBuilder {
            map: Heatmap {
                tiles,
                supersteps,
                tiles_per_bucket: tpb,
                steps_per_bucket: spb,
                max_cycles: 0,
                cells: vec![vec![0; cols]; rows],
            },
        }
    }

    /// Records `cycles` for global tile `tile` in superstep `step` (max with the cell).
    pub(crate) fn add(&mut self, tile: u64, step: u64, cycles: u64) {
        let m = &mut self.map;
        let r = (tile / m.tiles_per_bucket) as usize;
        let c = (step / m.steps_per_bucket) as usize;
        if let Some(cell) = m.cells.get_mut(r).and_then(|row| row.get_mut(c)) {
            *cell = (*cell).max(cycles);
            m.max_cycles = m.max_cycles.max(cycles);
        }
    }

    /// The finished heatmap.
    pub(crate) fn finish(self) -> Heatmap {
        self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_everything_within_the_limits() {
        assert_eq!(per_bucket(0, 256), 1);
        assert_eq!(per_bucket(256, 256), 1);
        assert_eq!(per_bucket(257, 256), 2);
        // 4 × 1472 tiles: 23 per bucket, 256 buckets (23 * 256 = 5888).
        let b = HeatmapBuilder::new(5888, 1000).finish();
        assert_eq!((b.tiles_per_bucket, b.cells.len()), (23, 256));
        assert_eq!((b.steps_per_bucket, b.cells[0].len()), (2, 500));
    }

    #[test]
    fn cells_keep_the_maximum() {
        let mut b = HeatmapBuilder::new(600, 3);
        b.add(0, 0, 5);
        b.add(2, 0, 9); // same bucket of 3 tiles
        b.add(1, 0, 7);
        b.add(599, 2, 4);
        b.add(600, 0, 100); // outside: ignored
        let m = b.finish();
        assert_eq!(m.tiles_per_bucket, 3);
        assert_eq!(m.cells[0][0], 9);
        assert_eq!(m.cells[199][2], 4);
        assert_eq!(m.max_cycles, 9);
    }
}
