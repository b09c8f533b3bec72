//! The built-in targets, `mk2` (Graphcore GC200, the seed workload's chip) and `mk1`
//! (Graphcore GC2), with the source of every figure.
//!
//! Figures are published specifications or constants from Graphcore's open-source poplibs;
//! where a field has no published value it is derived from published ones, and the comment
//! shows the arithmetic. No figure is fitted to a measured throughput. The tests at the
//! bottom rebuild the published chip-level peaks from these per-tile parts.
//!
//! Sources, cited by tag below:
//! - [GC200]: Graphcore's Colossus Mk2 GC200 launch material (July 2020) and product pages:
//!   1,472 tiles, 8,832 threads, 900 MB In-Processor-Memory at 47.5 TB/s, IPU-Exchange
//!   8 TB/s "using any communication pattern", 10 IPU-Links at 320 GB/s, 250 TFLOPS
//!   FP16.16 ("AI compute"), 62.5 TFLOPS FP32.
//! - [M2000]: IPU-M2000 datasheet: up to 448 GB of Streaming Memory per machine of 4 IPUs,
//!   reached through the IPU-Gateway; each IPU's port is PCIe Gen4 ×16 (64 GB/s quoted,
//!   both directions).
//! - [OOM]: Poplar's out-of-memory message on Mk2, "tiles only have 638976 bytes of memory".
//! - [Jia19]: Jia, Tillman, Maggioni, Scarpazza, "Dissecting the Graphcore IPU Architecture
//!   via Microbenchmarking" (2019), on the GC2: 1,216 tiles, 256 KiB per tile (304 MiB per
//!   chip), 6 worker threads, 1.6 GHz, 31.1 TFLOPS fp32, 124.5 TFLOPS mixed precision,
//!   45 TB/s aggregate SRAM bandwidth of which 31.1 TB/s is the theoretical read ceiling.
//! - [TileConstants]: poplibs `include/poplibs_support/TileConstants.hpp`, `NUM_WORKERS` = 6.
//! - [CTC]: poplibs `lib/popnn/CTCLossPlan.cpp` cost model: 90 cycles per sync and 100
//!   cycles of fixed exchange overhead.
//! - [TestUtil]: poplibs `tools/poplibs_test/Util.cpp` (`setGlobalSyncLatency`,
//!   `addGlobalExchangeConstraints`): 15 ns global-sync latency per hop; IPU-Links modelled
//!   at 128 Gbit/s each.
//! - [ConvTool]: poplibs `tools/single_conv_layer.cpp`: on the IPU model, the number of
//!   fp16-in/fp32-out AMP units is "restricted based on store width" — fp32 partials are
//!   twice as wide to write back as fp16 ones.

use super::Target;
use crate::TargetError;

/// Names accepted by [`Target::preset`].
pub const PRESET_NAMES: &[&str] = &["mk2", "mk1"];

impl Target {
    /// The built-in target called `name` (see [`PRESET_NAMES`]).
    pub fn preset(name: &str) -> Result<Target, TargetError> {
        match name {
            "mk2" => Ok(mk2()),
            "mk1" => Ok(mk1()),
            _ => Err(TargetError::UnknownPreset {
                name: name.to_string(),
                known: PRESET_NAMES.join(", "),
            }),
        }
    }
}

/// Graphcore Colossus Mk2 GC200, the chip of the IPU-M2000 and of the seed run's IPU-POD16.
pub fn mk2() -> Target {
    Target {
        name: "mk2".into(),
        // [GC200].
        tiles_per_chip: 1472,
        // [OOM]; = 624 KiB. 1,472 × 638,976 B = 940.6e6 B ≈ 897 MiB, the "900 MB" of [GC200].
        bytes_per_tile: 638_976,
        // [TileConstants]; [GC200]'s 8,832 threads = 1,472 × 6.
        worker_threads_per_tile: 6,
        // Derived: no clock is published beside the 250 TFLOPS. 64 fp16 MAC/cycle/tile (below)
        // at 1.33 GHz gives 2 × 64 × 1,472 × 1.33e9 = 250.6e12 FLOP/s, the quoted 250 TFLOPS.
        clock_hz: 1.33e9,
        // Derived from [GC200]'s 250 TFLOPS FP16.16: 250e12 / (2 × 1,472 × 1.33e9) = 63.8,
        // i.e. the power of two 64 — twice the GC2's 32 (see `mk1`).
        macs_per_cycle_f16_f16_partials: 64,
        // Assumption: half the fp16-partials rate. Graphcore publishes no FP16.32 figure for
        // the GC200; [ConvTool] states that fp16-in/fp32-out AMP throughput is limited by the
        // store width, and fp32 partials are twice as wide as fp16 ones.
        macs_per_cycle_f16_f32_partials: 32,
        // Derived from [GC200]'s 62.5 TFLOPS FP32: 62.5e12 / (2 × 1,472 × 1.33e9) = 15.96 → 16.
        macs_per_cycle_f32: 16,
        // Derived from [GC200]'s 47.5 TB/s SRAM bandwidth: 47.5e12 / (1,472 × 1.33e9) =
        // 24.3 B/cycle/tile → 24 (one 128-bit load plus one 64-bit store per cycle, the split
        // [Jia19]'s 16 B/cycle read ceiling implies), shared by 6 workers = 4 B/cycle/worker.
        load_store_bytes_per_cycle_per_worker: 4.0,
        // Derived from [GC200]'s 8 TB/s exchange: 8e12 / (1,472 × 1.33e9) = 4.09 → 4 B
        // (one 32-bit word per cycle per tile).
        exchange_bytes_per_cycle_per_tile: 4.0,
        // [GC200].
        exchange_bytes_per_s: 8e12,
        // Derived: [GC200]'s 320 GB/s over 10 links, read as both directions together (as
        // for the GC2, whose 10 × 128 Gbit/s per direction of [TestUtil] total 320 GB/s both
        // ways): 320e9 / 10 / 2 = 16e9 B/s per link per direction.
        link_bytes_per_s: 16e9,
        // [GC200].
        links_per_chip: 10,
        // [CTC].
        sync_cycles: 90,
        // [TestUtil].
        inter_chip_sync_latency_per_hop_s: 15e-9,
        // [CTC].
        exchange_overhead_cycles: 100,
        // Assumption: bounded by the IPU's PCIe Gen4 ×16 port to the gateway [M2000]:
        // 16 GT/s × 16 lanes × 128/130 / 8 = 31.5e9 B/s per direction.
        streaming_bytes_per_s: 31.5e9,
        // [M2000]: 448 GB per machine / 4 IPUs.
        streaming_bytes: 112_000_000_000,
    }
}

/// Graphcore Colossus Mk1 GC2 (C2 PCIe cards), as measured by [Jia19].
pub fn mk1() -> Target {
    Target {
        name: "mk1".into(),
        // [Jia19].
        tiles_per_chip: 1216,
        // [Jia19]: 256 KiB.
        bytes_per_tile: 262_144,
        // [Jia19], [TileConstants].
        worker_threads_per_tile: 6,
        // [Jia19].
        clock_hz: 1.6e9,
        // Assumption: as the fp32-partials rate; only one fp16 ("mixed precision") figure is
        // published for the GC2.
        macs_per_cycle_f16_f16_partials: 32,
        // Derived from [Jia19]'s 124.5 TFLOPS mixed precision:
        // 124.5e12 / (2 × 1,216 × 1.6e9) = 31.99 → 32.
        macs_per_cycle_f16_f32_partials: 32,
        // Derived from [Jia19]'s 31.1 TFLOPS fp32: 31.1e12 / (2 × 1,216 × 1.6e9) = 7.99 → 8.
        macs_per_cycle_f32: 8,
        // Derived from [Jia19]: 31.1 TB/s read ceiling / (1,216 × 1.6e9) = 16 B/cycle/tile of
        // loads, plus 8 B of stores (45 TB/s total / (1,216 × 1.6e9) = 23.1 → 24), over 6
        // workers = 4 B/cycle/worker.
        load_store_bytes_per_cycle_per_worker: 4.0,
        // As `mk2`: 4 B/cycle/tile; 4 × 1,216 × 1.6e9 = 7.8e12 B/s, the GC2's quoted 8 TB/s.
        exchange_bytes_per_cycle_per_tile: 4.0,
        // Graphcore's GC2 product material ("IPU-Exchange 8 TB/s").
        exchange_bytes_per_s: 8e12,
        // [TestUtil]: 128 Gbit/s per link = 16e9 B/s per direction.
        link_bytes_per_s: 16e9,
        // GC2 product material: 10 IPU-Links (2.5 Tbit/s both directions = 10 × 128 × 2).
        links_per_chip: 10,
        // [CTC].
        sync_cycles: 90,
        // [TestUtil].
        inter_chip_sync_latency_per_hop_s: 15e-9,
        // [CTC].
        exchange_overhead_cycles: 100,
        // The C2 card has no IPU-attached Streaming Memory; off-chip traffic goes to the host
        // over the card's PCIe Gen4 ×16 link, 31.5e9 B/s per direction (as for `mk2`).
        streaming_bytes_per_s: 31.5e9,
        streaming_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatmulPrecision;

    fn within(actual: f64, published: f64, rel: f64) -> bool {
        ((actual - published) / published).abs() <= rel
    }

    #[test]
    fn mk2_reproduces_the_published_peaks_from_its_parts() {
        let t = mk2();
        // 250 TFLOPS FP16.16 and 62.5 TFLOPS FP32 [GC200].
        assert!(
            within(t.peak_flops_fp16(), 250e12, 0.02),
            "{}",
            t.peak_flops_fp16()
        );
        assert!(
            within(t.peak_flops_fp32(), 62.5e12, 0.02),
            "{}",
            t.peak_flops_fp32()
        );
        // 900 MB of SRAM, 8,832 threads [GC200].
        assert!(within(
            t.bytes_per_chip() as f64,
            900.0 * 1024.0 * 1024.0,
            0.01
        ));
        assert_eq!(t.tiles_per_chip * t.worker_threads_per_tile, 8832);
        // 47.5 TB/s SRAM bandwidth and 8 TB/s exchange [GC200].
        assert!(within(t.memory_bytes_per_s(), 47.5e12, 0.02));
        let exchange = t.exchange_bytes_per_cycle_per_tile * 1472.0 * t.clock_hz;
        assert!(within(exchange, t.exchange_bytes_per_s, 0.03));
        // 320 GB/s over IPU-Links, both directions [GC200].
        assert_eq!(2.0 * t.total_link_bytes_per_s(), 320e9);
        // POD16 sync: hops = 1 + (16/2)/2 = 5; ceil(15e-9 · 1.33e9 · 5 · 2) = ceil(199.5).
        assert_eq!(t.inter_chip_sync_cycles(16), 200);
        // 448 GB of streaming memory per 4-IPU machine [M2000].
        assert_eq!(4 * t.streaming_bytes, 448_000_000_000);
    }

    #[test]
    fn mk1_reproduces_jia_et_al_from_its_parts() {
        let t = mk1();
        assert!(within(t.peak_flops_fp32(), 31.1e12, 0.01));
        assert!(within(
            t.peak_flops(MatmulPrecision::F16FloatPartials),
            124.5e12,
            0.01
        ));
        // 304 MiB per chip exactly.
        assert_eq!(t.bytes_per_chip(), 304 * 1024 * 1024);
        // 45 TB/s aggregate; 31.1 TB/s of it reads (16 B/cycle/tile).
        assert!(within(t.memory_bytes_per_s(), 45e12, 0.04));
        assert!(within(16.0 * 1216.0 * t.clock_hz, 31.1e12, 0.01));
    }

    #[test]
    fn fp32_partials_never_beat_fp16_partials() {
        for t in [mk1(), mk2()] {
            assert!(t.macs_per_cycle_f16_f32_partials <= t.macs_per_cycle_f16_f16_partials);
            assert!(t.macs_per_cycle_f32 <= t.macs_per_cycle_f16_f32_partials);
        }
    }

    #[test]
    fn presets_by_name_and_unknown_names() {
        for name in PRESET_NAMES {
            let t = Target::preset(name).unwrap();
            assert_eq!(&t.name, name);
            t.validate().unwrap();
        }
        let err = Target::preset("mk3").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`mk3`") && msg.contains("mk2, mk1"), "{msg}");
    }
}
