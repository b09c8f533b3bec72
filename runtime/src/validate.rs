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
//! - stream copies name existing host buffers and stay inside them and inside their tile;
//!   tile → host copies of one superstep never write the same host bytes twice.

use crate::error::{Problem, ProgramError, Site};
use crate::program::{Region, StreamCopy, TileProgram, TileRef};
use crate::vertex::{Elem, Vertex};

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

/// Checks bounds, alignment of start and length to `elem`, and (if given) the exact length.
fn operand(
    what: &'static str,
    region: Region,
    elem: Elem,
    expected_elems: Option<u64>,
    bytes_per_tile: u32,
) -> Result<(), Problem> {
    check_in_tile(what, region, bytes_per_tile)?;
    let align = elem.size();
    if !region.offset.is_multiple_of(align) || !region.len.is_multiple_of(align) {
        return Err(Problem::Misaligned {
            what,
            region,
            align,
        });
    }
    match expected_elems {
        Some(n) if n * u64::from(align) != u64::from(region.len) => Err(Problem::Length {
            what,
            region,
            expected: n * u64::from(align),
        }),
        _ => Ok(()),
    }
}

/// `a` and `b` must not overlap (`allow_same`: unless they are identical).
fn disjoint(
    what_a: &'static str,
    a: Region,
    what_b: &'static str,
    b: Region,
    allow_same: bool,
) -> Result<(), Problem> {
    if a.overlaps(b) && !(allow_same && a == b) {
        Err(Problem::Overlap {
            what_a,
            a,
            what_b,
            b,
        })
    } else {
        Ok(())
    }
}

/// Checks one vertex's operands against a tile of `bytes_per_tile` bytes.
pub(crate) fn check_vertex(v: &Vertex, bytes_per_tile: u32) -> Result<(), Problem> {
    let t = bytes_per_tile;
    match v {
        Vertex::MatMul(mm) => {
            let (m, k, n) = (u64::from(mm.m), u64::from(mm.k), u64::from(mm.n));
            operand("a", mm.a, mm.input, Some(m * k), t)?;
            operand("b", mm.b, mm.input, Some(k * n), t)?;
            operand("c", mm.c, mm.partials, Some(m * n), t)?;
            disjoint("c", mm.c, "a", mm.a, false)?;
            disjoint("c", mm.c, "b", mm.b, false)
        }
        Vertex::Unary { elem, src, dst, .. } => {
            operand("src", *src, *elem, None, t)?;
            let n = u64::from(src.len / elem.size());
            operand("dst", *dst, *elem, Some(n), t)?;
            disjoint("dst", *dst, "src", *src, true)
        }
        Vertex::Binary {
            elem, a, b, dst, ..
        } => {
            operand("a", *a, *elem, None, t)?;
            let n = u64::from(a.len / elem.size());
            operand("b", *b, *elem, Some(n), t)?;
            operand("dst", *dst, *elem, Some(n), t)?;
            disjoint("dst", *dst, "a", *a, true)?;
            disjoint("dst", *dst, "b", *b, true)
        }
        Vertex::AddPartials { elem, dst, srcs } => {
            operand("dst", *dst, *elem, None, t)?;
            let n = u64::from(dst.len / elem.size());
            for src in srcs {
                operand("src", *src, *elem, Some(n), t)?;
                disjoint("dst", *dst, "src", *src, false)?;
            }
            Ok(())
        }
        Vertex::Cast { from, to, src, dst } => {
            operand("src", *src, *from, None, t)?;
            let n = u64::from(src.len / from.size());
            operand("dst", *dst, *to, Some(n), t)?;
            disjoint("dst", *dst, "src", *src, false)
        }
        Vertex::Fill { elem, dst, .. } => operand("dst", *dst, *elem, None, t),
        Vertex::Copy { src, dst } => {
            check_in_tile("src", *src, t)?;
            check_in_tile("dst", *dst, t)?;
            if src.len == dst.len {
                Ok(())
            } else {
                Err(Problem::Length {
                    what: "dst",
                    region: *dst,
                    expected: u64::from(src.len),
                })
            }
        }
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
    let end = s.buffer_offset.saturating_add(u64::from(s.tile.region.len));
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
    use crate::vertex::MatMul;

    fn mm(a: Region, b: Region, c: Region) -> Vertex {
        Vertex::MatMul(MatMul {
            m: 2,
            k: 3,
            n: 4,
            input: Elem::F32,
            partials: Elem::F32,
            accumulate: false,
            a,
            b,
            c,
        })
    }

    #[test]
    fn matmul_operands_are_checked() {
        let ok = mm(Region::new(0, 24), Region::new(24, 48), Region::new(72, 32));
        assert_eq!(check_vertex(&ok, 104), Ok(()));
        assert!(matches!(
            check_vertex(&ok, 103),
            Err(Problem::OutOfTile { what: "c", .. })
        ));
        let short = mm(Region::new(0, 20), Region::new(24, 48), Region::new(72, 32));
        assert!(matches!(
            check_vertex(&short, 1000),
            Err(Problem::Length {
                what: "a",
                expected: 24,
                ..
            })
        ));
        let alias = mm(Region::new(0, 24), Region::new(24, 48), Region::new(60, 32));
        assert!(matches!(
            check_vertex(&alias, 1000),
            Err(Problem::Overlap {
                what_a: "c",
                what_b: "b",
                ..
            })
        ));
        let odd = mm(Region::new(2, 24), Region::new(28, 48), Region::new(76, 32));
        assert!(matches!(
            check_vertex(&odd, 1000),
            Err(Problem::Misaligned { align: 4, .. })
        ));
    }

    #[test]
    fn elementwise_may_be_in_place_but_not_shifted() {
        let r = Region::new(0, 16);
        let unary = |dst| Vertex::Unary {
            op: tessera_ir::UnaryOp::Exp,
            elem: Elem::F16,
            src: r,
            dst,
        };
        assert_eq!(check_vertex(&unary(r), 64), Ok(()));
        assert!(check_vertex(&unary(Region::new(2, 16)), 64).is_err());
        assert_eq!(check_vertex(&unary(Region::new(16, 16)), 64), Ok(()));
    }

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
