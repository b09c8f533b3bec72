//! Load-time checks of a [`TileProgram`]: after these pass, no vertex or copy can reach
//! outside its tile, no two exchange copies write the same destination bytes, and every vertex
//! operand has the length and alignment its shape and element type demand.
//!
//! Invariants checked (each failure is a [`ProgramError`] naming superstep, tile and site):
//! - the machine has at least one chip and tile, and `bytes_per_tile > 0`;
//! - every tile reference lies on the machine; at most one compute set per tile per superstep;
//! - every vertex range lies inside `[0, bytes_per_tile)`, starts on its element size and has a
//!   length consistent with the vertex's shape; a vertex's written range is disjoint from its
//!   read ranges (or, for elementwise vertices, identical to them: in place);
//! - exchange sources and destinations lie inside their tiles; destination ranges on one tile
//!   are pairwise disjoint;
//! - arithmetic vertices take float operands only; i64 is accepted as a cast source, as
//!   gather / scatter-add indices and as compare / select values; bool as a cast source, a
//!   compare result and a select condition ([`vertex`] checks all vertex operands);
//! - stream copies name existing host buffers and stay inside them and inside their tile;
//!   strided (2-D) copies are host → tile only, with a tile length that is a whole number of
//!   rows; tile → host copies of one superstep never write the same host bytes twice.

use crate::error::{Problem, ProgramError, Site};
use crate::program::{Region, StreamCopy, TileProgram, TileRef};

mod vertex;

pub(crate) use vertex::check_vertex;

/// Checks the machine description.
pub(crate) fn check_machine(p: &TileProgram) -> Result<(), ProgramError> {
    let reason = if p.chips == 0 {
        Some("no chips")
    } else if p.tiles_per_chip == 0 {
        Some("no tiles")
    } else if p.bytes_per_tile == 0 {
        Some("tiles have no memory")
    } else if usize::try_from(p.total_tiles()).is_err() {
        Some("too many tiles for this host")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ProgramError::Machine {
            chips: p.chips,
            tiles_per_chip: p.tiles_per_chip,
            bytes_per_tile: p.bytes_per_tile,
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks that `tile` exists.
pub(crate) fn check_tile(p: &TileProgram, tile: TileRef) -> Result<(), Problem> {
    if tile.chip < p.chips && tile.tile < p.tiles_per_chip {
        Ok(())
    } else {
        Err(Problem::TileOutsideMachine {
            chips: p.chips,
            tiles_per_chip: p.tiles_per_chip,
        })
    }
}

/// Checks that `region` lies inside a tile of `bytes_per_tile` bytes.
pub(crate) fn check_in_tile(
    what: &'static str,
    region: Region,
    bytes_per_tile: u32,
) -> Result<(), Problem> {
    if region.end() <= u64::from(bytes_per_tile) {
        Ok(())
    } else {
        Err(Problem::OutOfTile {
            what,
            region,
            bytes_per_tile,
        })
    }
}

/// Checks a stream copy's buffer, host range, tile and tile range.
pub(crate) fn check_stream(
    p: &TileProgram,
    s: &StreamCopy,
    superstep: usize,
    site: Site,
) -> Result<(), ProgramError> {
    let at = |problem| ProgramError::At {
        superstep,
        tile: s.tile.tile,
        site: site.clone(),
        problem,
    };
    check_tile(p, s.tile.tile).map_err(at)?;
    check_in_tile("tile range", s.tile.region, p.bytes_per_tile).map_err(at)?;
    let buffer = p.host_buffers.get(s.buffer as usize).ok_or_else(|| {
        at(Problem::UnknownBuffer {
            buffer: s.buffer,
            count: p.host_buffers.len(),
        })
    })?;
    if s.row_bytes != 0 {
        if matches!(site, Site::TileToHost(_)) {
            return Err(at(Problem::StridedToHost {
                row_bytes: s.row_bytes,
            }));
        }
        if !s.tile.region.len.is_multiple_of(s.row_bytes) {
            return Err(at(Problem::NotMultiple {
                what: "tile range",
                region: s.tile.region,
                unit: u64::from(s.row_bytes),
            }));
        }
    }
    let end = s.host_end().unwrap_or(u64::MAX);
    if end > buffer.bytes {
        return Err(at(Problem::HostOutOfRange {
            name: buffer.name.clone(),
            offset: s.buffer_offset,
            end,
            size: buffer.bytes,
        }));
    }
    Ok(())
}

/// Finds a pair of overlapping non-empty `[start, end)` ranges (each tagged with an index);
/// returns the tags of the first overlapping pair in start order.
pub(crate) fn find_overlap(mut ranges: Vec<(u64, u64, usize)>) -> Option<(usize, usize)> {
    // Among non-empty ranges sorted by start, if any two overlap then two neighbours do.
    ranges.retain(|r| r.1 > r.0);
    ranges.sort_unstable();
    ranges.windows(2).find_map(|w| match w {
        [a, b] if b.0 < a.1 => Some((a.2, b.2)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_finder() {
        assert_eq!(find_overlap(vec![(0, 4, 0), (8, 12, 1), (4, 8, 2)]), None);
        assert_eq!(
            find_overlap(vec![(0, 4, 0), (8, 12, 1), (3, 8, 2)]),
            Some((0, 2))
        );
        assert_eq!(find_overlap(vec![(0, 4, 0), (2, 2, 1)]), None);
        // An empty range between two overlapping ones must not hide the overlap.
        assert_eq!(
            find_overlap(vec![(0, 10, 0), (1, 1, 1), (5, 6, 2)]),
            Some((0, 2))
        );
    }
}
