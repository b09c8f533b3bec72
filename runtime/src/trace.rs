//! Per-superstep timing and traffic records, collected only when asked for.
//!
//! Three levels ([`TraceMode`]): `Off` reads no clock; `On` reads the clock twice per phase
//! that has work (a handful of reads per superstep, whatever the number of tiles), and splits
//! a fused exchange + compute phase by a proxy fixed at load (see [`SuperstepTrace::fused`]);
//! `Tiles` also times every tile's task in every parallel phase and keeps sparse per-tile
//! records ([`TileTime`]: 12 bytes per tile that did something).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What [`crate::Machine::run`] records in its [`Trace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceMode {
    /// Record nothing (the returned trace is empty).
    #[default]
    Off,
    /// Record one [`SuperstepTrace`] per superstep, with its phases' wall times (no per-tile
    /// clock reads: [`SuperstepTrace::tiles`] stays empty).
    On,
    /// As `On`, plus every tile's measured time per superstep in [`SuperstepTrace::tiles`]
    /// (two clock reads per tile task; the phases' own times are measured as with `On`).
    Tiles,
}

impl TraceMode {
    /// Whether per-superstep records are kept (`On` and `Tiles`).
    pub fn records(self) -> bool {
        self != TraceMode::Off
    }

    /// Whether per-tile times are measured (`Tiles`).
    pub fn per_tile(self) -> bool {
        self == TraceMode::Tiles
    }
}

/// One tile's measured wall time in one superstep ([`TraceMode::Tiles`]). Times are host
/// nanoseconds, saturating at `u32::MAX` (4.29 s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileTime {
    /// Global tile index: `chip * tiles_per_chip + tile`.
    pub tile: u32,
    /// Running the tile's vertices of this superstep (its compute set, in order); 0 when the
    /// tile has none (at least 1 when it has some).
    pub compute_ns: u32,
    /// Receiving this superstep's exchange into the tile: the copies into its destination
    /// ranges (direct exchange), its gather and scatter through the staging buffer (staged
    /// exchange), or its deliveries (exchange fused with the next superstep's compute; staging
    /// the sources the source tiles receive is not per tile and is not included).
    /// 0 when the tile receives nothing (at least 1 when it receives bytes).
    pub exchange_ns: u32,
}

/// What one superstep did and how long each phase took (wall time on the host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuperstepTrace {
    /// Host → tile stream copies.
    pub host_to_tile: Duration,
    /// Compute phase.
    pub compute: Duration,
    /// Exchange phase.
    pub exchange: Duration,
    /// Tile → host stream copies.
    pub tile_to_host: Duration,
    /// Bytes moved by exchange.
    pub exchange_bytes: u64,
    /// Of which between chips.
    pub inter_chip_bytes: u64,
    /// Vertices run.
    pub vertices: u64,
    /// Floating-point operations of the vertices.
    pub flops: u64,
    /// This superstep's exchange ran fused with the next superstep's compute, as one parallel
    /// phase (each tile's task takes its deliveries, then runs its next vertices): that
    /// phase's wall time is measured once and split into this `exchange` and the next
    /// superstep's `compute`. The staging of the source tiles' sources (measured on its own) counts
    /// as exchange; the rest is split in proportion to the load-time estimate of the two
    /// parts' work — bytes delivered against the vertices' flops, written bytes and
    /// per-vertex cost ([`crate::loaded`]'s work units, calibrated on the emulator's measured
    /// per-tile times) — with `On`, and to the tasks' measured delivery and compute times
    /// with `Tiles` (then the compute share is at least the slowest tile's compute).
    pub fused: bool,
    /// Per-tile times ([`TraceMode::Tiles`] only, else empty): one record per tile that ran
    /// vertices or received exchange bytes in this superstep, sorted by tile.
    pub tiles: Vec<TileTime>,
}

/// The record of one run: one entry per superstep when tracing was on, none otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Per-superstep records, in order.
    pub supersteps: Vec<SuperstepTrace>,
}

impl Trace {
    /// Total compute-phase time.
    pub fn compute_time(&self) -> Duration {
        self.supersteps.iter().map(|s| s.compute).sum()
    }

    /// Total exchange-phase time.
    pub fn exchange_time(&self) -> Duration {
        self.supersteps.iter().map(|s| s.exchange).sum()
    }

    /// Total bytes exchanged.
    pub fn exchange_bytes(&self) -> u64 {
        self.supersteps.iter().map(|s| s.exchange_bytes).sum()
    }
}

/// Nanoseconds of `d` as `u32`, saturating.
pub(crate) fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Per-tile times of one superstep from its compute times and exchange times (each
/// `(flat tile, time)`, sorted by tile; a tile may repeat in `exchange`, its times add up).
pub(crate) fn tile_times(
    compute: &[(usize, Duration)],
    exchange: &[(usize, Duration)],
) -> Vec<TileTime> {
    let mut out: Vec<TileTime> = Vec::with_capacity(compute.len().max(exchange.len()));
    let (mut c, mut x) = (compute.iter().peekable(), exchange.iter().peekable());
    loop {
        let tile = match (c.peek(), x.peek()) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        let mut rec = TileTime {
            tile: u32::try_from(tile).unwrap_or(u32::MAX),
            ..TileTime::default()
        };
        // A tile listed did that work: at least 1 ns, so that 0 always means "none".
        let mut compute_time: Option<Duration> = None;
        while let Some((_, d)) = c.next_if(|e| e.0 == tile) {
            *compute_time.get_or_insert_default() += *d;
        }
        let mut exchange_time: Option<Duration> = None;
        while let Some((_, d)) = x.next_if(|e| e.0 == tile) {
            *exchange_time.get_or_insert_default() += *d;
        }
        rec.compute_ns = compute_time.map_or(0, |d| nanos(d).max(1));
        rec.exchange_ns = exchange_time.map_or(0, |d| nanos(d).max(1));
        out.push(rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_times_merge_sorted_lists_and_add_repeats() {
        let ns = Duration::from_nanos;
        let compute = [(1, ns(10)), (4, ns(40)), (9, ns(0))];
        let exchange = [(0, ns(1)), (4, ns(2)), (4, ns(3)), (7, ns(5))];
        let got = tile_times(&compute, &exchange);
        // Tile 9 computed in less than the clock's resolution: 1 ns, not "nothing".
        let want = [(0, 0, 1), (1, 10, 0), (4, 40, 5), (7, 0, 5), (9, 1, 0)];
        assert_eq!(got.len(), want.len());
        for (g, (t, c, x)) in got.iter().zip(want) {
            assert_eq!((g.tile, g.compute_ns, g.exchange_ns), (t, c, x));
        }
        assert_eq!(nanos(Duration::from_secs(5)), u32::MAX);
        assert!(tile_times(&[], &[]).is_empty());
    }
}
