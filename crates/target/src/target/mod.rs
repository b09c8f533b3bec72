//! The description of one chip that cost models, partitioners and the tile lowering read.
//!
//! A [`Target`] holds the properties of a single chip (how many chips a replica spans is the
//! [`crate::IpuConfig`]'s business). Every number lives here, with its unit in its name or
//! doc, and its source next to the preset that sets it ([`presets`]); nothing else in Tessera
//! should write a hardware constant as a literal. Targets are plain serde data: a user can
//! dump a preset with [`Target::to_json`], edit it, and load it back with
//! [`Target::from_json_file`] (or [`Target::resolve`], which takes a preset name or a path).
//! Loading checks the values ([`Target::validate`]), so downstream code may divide by the
//! clock or the tile count without checking them again.

mod io;
pub mod presets;

use serde::{Deserialize, Serialize};

/// Which AMP (matrix unit) mode a matmul or convolution runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatmulPrecision {
    /// fp16 operands, fp16 partial sums (Graphcore's "FP16.16"; `enable_half_partials`).
    F16HalfPartials,
    /// fp16 operands, fp32 partial sums (Graphcore's "FP16.32").
    F16FloatPartials,
    /// fp32 operands and partials.
    F32,
}

impl MatmulPrecision {
    /// The fp16 mode an [`crate::IpuConfig`]'s `enable_half_partials` selects.
    pub fn for_half_operands(enable_half_partials: bool) -> Self {
        if enable_half_partials {
            MatmulPrecision::F16HalfPartials
        } else {
            MatmulPrecision::F16FloatPartials
        }
    }
}

/// One chip's properties. Units are in the field names or docs; sources are in [`presets`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name of the target (`mk2`, `mk1`, or a user's own).
    pub name: String,
    /// Tiles (cores, each with its own SRAM) per chip.
    pub tiles_per_chip: u32,
    /// SRAM per tile, bytes (code, always-live and not-always-live data share it).
    pub bytes_per_tile: u64,
    /// Worker threads per tile (hardware contexts that run vertices; the supervisor context
    /// is not counted).
    pub worker_threads_per_tile: u32,
    /// Tile clock, Hz.
    pub clock_hz: f64,
    /// Multiply-accumulates per cycle per tile, fp16 operands with fp16 partials (AMP).
    pub macs_per_cycle_f16_f16_partials: u32,
    /// Multiply-accumulates per cycle per tile, fp16 operands with fp32 partials (AMP).
    pub macs_per_cycle_f16_f32_partials: u32,
    /// Multiply-accumulates per cycle per tile, fp32 operands and partials (AMP).
    pub macs_per_cycle_f32: u32,
    /// Bytes one worker thread loads plus stores per tile cycle in a memory-bound loop
    /// (elementwise ops): the tile's SRAM bandwidth shared by its workers.
    pub load_store_bytes_per_cycle_per_worker: f64,
    /// Bytes a tile sends (and, separately, receives) per cycle over the on-chip exchange.
    pub exchange_bytes_per_cycle_per_tile: f64,
    /// Aggregate on-chip exchange bandwidth of the chip, bytes/s, for any pattern.
    pub exchange_bytes_per_s: f64,
    /// Bandwidth of one inter-chip link, bytes/s, in one direction.
    pub link_bytes_per_s: f64,
    /// Inter-chip links per chip.
    pub links_per_chip: u32,
    /// Cycles of one sync of all tiles of one chip (start of a BSP exchange phase).
    pub sync_cycles: u32,
    /// Latency of one hop of the inter-chip sync network, seconds
    /// (see [`Target::inter_chip_sync_cycles`]).
    pub inter_chip_sync_latency_per_hop_s: f64,
    /// Fixed cycles of overhead of one exchange phase, on top of the bytes moved.
    pub exchange_overhead_cycles: u32,
    /// Streaming memory (off-chip DRAM reached by explicit copies) bandwidth per chip,
    /// bytes/s, one direction.
    pub streaming_bytes_per_s: f64,
    /// Streaming memory capacity per chip, bytes; 0 means the chip has none.
    pub streaming_bytes: u64,
}

impl Target {
    /// Multiply-accumulates per cycle per tile in `precision`.
    pub fn macs_per_cycle(&self, precision: MatmulPrecision) -> u32 {
        match precision {
            MatmulPrecision::F16HalfPartials => self.macs_per_cycle_f16_f16_partials,
            MatmulPrecision::F16FloatPartials => self.macs_per_cycle_f16_f32_partials,
            MatmulPrecision::F32 => self.macs_per_cycle_f32,
        }
    }

    /// Peak arithmetic of one chip in `precision`, FLOP/s (a MAC counts as 2 FLOPs).
    pub fn peak_flops(&self, precision: MatmulPrecision) -> f64 {
        2.0 * f64::from(self.macs_per_cycle(precision))
            * f64::from(self.tiles_per_chip)
            * self.clock_hz
    }

    /// Peak fp16 arithmetic of one chip with fp16 partials, FLOP/s (the figure vendors quote).
    pub fn peak_flops_fp16(&self) -> f64 {
        self.peak_flops(MatmulPrecision::F16HalfPartials)
    }

    /// Peak fp32 arithmetic of one chip, FLOP/s.
    pub fn peak_flops_fp32(&self) -> f64 {
        self.peak_flops(MatmulPrecision::F32)
    }

    /// SRAM of one chip, bytes (saturates at `u64::MAX`, which [`Target::validate`] rules out).
    pub fn bytes_per_chip(&self) -> u64 {
        u64::from(self.tiles_per_chip).saturating_mul(self.bytes_per_tile)
    }

    /// Bytes one tile loads plus stores per cycle with all its workers busy.
    pub fn load_store_bytes_per_cycle_per_tile(&self) -> f64 {
        self.load_store_bytes_per_cycle_per_worker * f64::from(self.worker_threads_per_tile)
    }

    /// Aggregate SRAM bandwidth of one chip, bytes/s (derived from the per-worker rate).
    pub fn memory_bytes_per_s(&self) -> f64 {
        self.load_store_bytes_per_cycle_per_tile() * f64::from(self.tiles_per_chip) * self.clock_hz
    }

    /// Total inter-chip link bandwidth of one chip, bytes/s, one direction.
    pub fn total_link_bytes_per_s(&self) -> f64 {
        self.link_bytes_per_s * f64::from(self.links_per_chip)
    }

    /// Seconds taken by `cycles` tile cycles.
    pub fn cycles_to_seconds(&self, cycles: f64) -> f64 {
        cycles / self.clock_hz
    }

    /// Tile cycles in `seconds` (fractional; round as the caller needs).
    pub fn seconds_to_cycles(&self, seconds: f64) -> f64 {
        seconds * self.clock_hz
    }

    /// Cycles of one sync across `num_chips` chips, by the model of poplibs'
    /// `poplibs_test/Util.cpp` (`setGlobalSyncLatency`): one hop within a card plus one per
    /// card pair, `hops = 1 + (num_chips / 2) / 2`, there and back, rounded up:
    /// `ceil(latency_per_hop · clock · hops · 2)`. With one chip (or none) there is no
    /// inter-chip sync and the result is 0; the on-chip [`Target::sync_cycles`] applies.
    pub fn inter_chip_sync_cycles(&self, num_chips: u32) -> u64 {
        if num_chips <= 1 {
            return 0;
        }
        let hops = 1 + (num_chips / 2) / 2;
        let cycles =
            (self.inter_chip_sync_latency_per_hop_s * self.clock_hz * f64::from(hops) * 2.0).ceil();
        // A validated target has a finite, non-negative latency and clock, so the cast only
        // saturates for absurd inputs.
        cycles as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small made-up chip whose derived figures are easy to work out by hand.
    fn toy() -> Target {
        Target {
            name: "toy".into(),
            tiles_per_chip: 4,
            bytes_per_tile: 1000,
            worker_threads_per_tile: 6,
            clock_hz: 1e9,
            macs_per_cycle_f16_f16_partials: 8,
            macs_per_cycle_f16_f32_partials: 4,
            macs_per_cycle_f32: 2,
            load_store_bytes_per_cycle_per_worker: 2.0,
            exchange_bytes_per_cycle_per_tile: 4.0,
            exchange_bytes_per_s: 16e9,
            link_bytes_per_s: 1e9,
            links_per_chip: 3,
            sync_cycles: 90,
            inter_chip_sync_latency_per_hop_s: 15e-9,
            exchange_overhead_cycles: 100,
            streaming_bytes_per_s: 1e9,
            streaming_bytes: 0,
        }
    }

    #[test]
    fn derived_figures_by_hand() {
        let t = toy();
        // 2 FLOP/MAC · 8 MAC/cycle/tile · 4 tiles · 1e9 cycles/s.
        assert_eq!(t.peak_flops_fp16(), 64e9);
        assert_eq!(t.peak_flops(MatmulPrecision::F16FloatPartials), 32e9);
        assert_eq!(t.peak_flops_fp32(), 16e9);
        assert_eq!(t.bytes_per_chip(), 4000);
        assert_eq!(t.load_store_bytes_per_cycle_per_tile(), 12.0);
        assert_eq!(t.memory_bytes_per_s(), 48e9);
        assert_eq!(t.total_link_bytes_per_s(), 3e9);
        assert_eq!(t.cycles_to_seconds(500.0), 5e-7);
        assert_eq!(t.seconds_to_cycles(2e-6), 2000.0);
    }

    #[test]
    fn inter_chip_sync_follows_the_poplibs_hop_model() {
        let t = toy();
        assert_eq!(t.inter_chip_sync_cycles(1), 0);
        // 2 chips: hops = 1 + 0 = 1 → 15 ns · 1 GHz · 1 · 2 = 30 cycles.
        assert_eq!(t.inter_chip_sync_cycles(2), 30);
        // 4 chips: hops = 1 + 1 = 2 → 60; 16 chips: hops = 1 + 4 = 5 → 150.
        assert_eq!(t.inter_chip_sync_cycles(4), 60);
        assert_eq!(t.inter_chip_sync_cycles(16), 150);
    }

    #[test]
    fn half_partials_flag_selects_the_amp_mode() {
        assert_eq!(
            MatmulPrecision::for_half_operands(true),
            MatmulPrecision::F16HalfPartials
        );
        assert_eq!(
            MatmulPrecision::for_half_operands(false),
            MatmulPrecision::F16FloatPartials
        );
        let t = toy();
        assert_eq!(t.macs_per_cycle(MatmulPrecision::F32), 2);
    }
}
