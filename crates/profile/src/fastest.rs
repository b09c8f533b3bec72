//! The element-wise fastest of several traces of the same program ([`fastest_of`]): on a
//! shared host, the scheduler's preemptions only ever add time to a phase or a tile's task,
//! and one preempted tile dominates a superstep's measured max; the minimum over a few runs
//! keeps what the work itself costs.

use std::time::Duration;
use tessera_runtime::{SuperstepTrace, TileTime, Trace};

/// Per superstep the fastest of each phase, and per tile the fastest compute and exchange
/// time, over `traces` (runs of one program with the same trace mode); counts are the first
/// run's. `None` when `traces` is empty or the runs differ in supersteps or recorded tiles.
pub fn fastest_of(traces: &[Trace]) -> Option<Trace> {
    let (first, rest) = traces.split_first()?;
    let mut out = first.clone();
    for t in rest {
        if t.supersteps.len() != out.supersteps.len() {
            return None;
        }
        for (o, s) in out.supersteps.iter_mut().zip(&t.supersteps) {
            merge(o, s)?;
        }
    }
    Some(out)
}

fn merge(o: &mut SuperstepTrace, s: &SuperstepTrace) -> Option<()> {
    let min = |a: &mut Duration, b: Duration| *a = (*a).min(b);
    min(&mut o.host_to_tile, s.host_to_tile);
    min(&mut o.compute, s.compute);
    min(&mut o.exchange, s.exchange);
    min(&mut o.tile_to_host, s.tile_to_host);
    if o.tiles.len() != s.tiles.len() {
        return None;
    }
    for (a, b) in o.tiles.iter_mut().zip(&s.tiles) {
        if a.tile != b.tile {
            return None;
        }
        *a = TileTime {
            tile: a.tile,
            compute_ns: a.compute_ns.min(b.compute_ns),
            exchange_ns: a.exchange_ns.min(b.exchange_ns),
        };
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(compute_us: u64, tiles: &[(u32, u32, u32)]) -> SuperstepTrace {
        SuperstepTrace {
            compute: Duration::from_micros(compute_us),
            vertices: 7,
            tiles: tiles
                .iter()
                .map(|&(tile, compute_ns, exchange_ns)| TileTime {
                    tile,
                    compute_ns,
                    exchange_ns,
                })
                .collect(),
            ..SuperstepTrace::default()
        }
    }

    #[test]
    fn keeps_each_phase_and_tile_at_its_fastest() {
        let a = Trace {
            supersteps: vec![step(10, &[(1, 500, 3), (4, 90, 0)])],
        };
        let b = Trace {
            supersteps: vec![step(8, &[(1, 700, 2), (4, 80, 0)])],
        };
        let f = fastest_of(&[a.clone(), b]).unwrap();
        assert_eq!(f.supersteps[0].compute, Duration::from_micros(8));
        assert_eq!(f.supersteps[0].vertices, 7);
        let tiles: Vec<_> = f.supersteps[0]
            .tiles
            .iter()
            .map(|t| (t.tile, t.compute_ns, t.exchange_ns))
            .collect();
        assert_eq!(tiles, vec![(1, 500, 2), (4, 80, 0)]);
        assert_eq!(fastest_of(std::slice::from_ref(&a)), Some(a.clone()));
        assert_eq!(fastest_of(&[]), None);
        // Runs of different programs do not merge.
        let other = Trace {
            supersteps: vec![step(8, &[(2, 1, 1), (4, 80, 0)])],
        };
        assert_eq!(fastest_of(&[a.clone(), other]), None);
        assert_eq!(fastest_of(&[a, Trace::default()]), None);
    }
}
