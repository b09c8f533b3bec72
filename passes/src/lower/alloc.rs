//! A first-fit allocator over one tile's not-always-live region.
//!
//! The region is unbounded (the plan reports how much of it was needed rather than failing
//! early), so the free list starts as one interval `0..u64::MAX`. Allocation takes the
//! lowest free interval large enough; freeing merges the interval back with its
//! neighbours. The high-water mark (`peak_end`) is the bytes the region must have;
//! `peak_live` is the largest sum of simultaneously live bytes (equal to it when there is
//! no fragmentation).

/// First-fit allocator of one tile's not-always-live bytes.
#[derive(Debug, Clone)]
pub(crate) struct FirstFit {
    /// Free intervals `(start, end)`, sorted and disjoint, never adjacent.
    free: Vec<(u64, u64)>,
    live: u64,
    pub(crate) peak_live: u64,
    pub(crate) peak_end: u64,
}

impl Default for FirstFit {
    fn default() -> Self {
        FirstFit {
            free: vec![(0, u64::MAX)],
            live: 0,
            peak_live: 0,
            peak_end: 0,
        }
    }
}

impl FirstFit {
    /// Allocates `size` bytes and returns their offset (`size` 0 gets offset 0).
    pub(crate) fn alloc(&mut self, size: u64) -> u64 {
        if size == 0 {
            return 0;
        }
        let Some(pos) = self.free.iter().position(|&(s, e)| e - s >= size) else {
            // Unreachable in practice: the last interval ends at u64::MAX.
            return u64::MAX;
        };
        let (start, end) = self.free[pos];
        if end - start == size {
            self.free.remove(pos);
        } else {
            self.free[pos].0 = start + size;
        }
        self.live += size;
        self.peak_live = self.peak_live.max(self.live);
        self.peak_end = self.peak_end.max(start + size);
        start
    }

    /// Returns `size` bytes at `offset` (from [`FirstFit::alloc`]) to the free list.
    pub(crate) fn free(&mut self, offset: u64, size: u64) {
        if size == 0 {
            return;
        }
        let end = offset.saturating_add(size);
        self.live = self.live.saturating_sub(size);
        let pos = self.free.partition_point(|&(s, _)| s < offset);
        self.free.insert(pos, (offset, end));
        // Merge with the next, then with the previous interval.
        if pos + 1 < self.free.len() && self.free[pos + 1].0 == end {
            self.free[pos].1 = self.free[pos + 1].1;
            self.free.remove(pos + 1);
        }
        if pos > 0 && self.free[pos - 1].1 == offset {
            self.free[pos - 1].1 = self.free[pos].1;
            self.free.remove(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_freed_bytes_first_fit() {
        let mut a = FirstFit::default();
        assert_eq!(a.alloc(100), 0);
        assert_eq!(a.alloc(50), 100);
        a.free(0, 100);
        // 40 fits in the hole at 0; 80 then fits in the remaining 60? No: it goes at 150.
        assert_eq!(a.alloc(40), 0);
        assert_eq!(a.alloc(80), 150);
        assert_eq!(a.alloc(60), 40);
        assert_eq!(a.peak_end, 230);
        assert_eq!(a.peak_live, 40 + 50 + 80 + 60);
    }

    #[test]
    fn freeing_merges_neighbours() {
        let mut a = FirstFit::default();
        let x = a.alloc(10);
        let y = a.alloc(10);
        let z = a.alloc(10);
        a.free(x, 10);
        a.free(z, 10);
        a.free(y, 10);
        assert_eq!(a.free, vec![(0, u64::MAX)]);
        assert_eq!(a.alloc(30), 0);
    }
}
