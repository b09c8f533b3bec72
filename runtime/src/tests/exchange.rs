//! The exchange plans (direct, staged, fused with the next compute) against a plain model of
//! the bulk-synchronous semantics: random programs of byte copies and fills on a few tiles,
//! where sources overlap destinations, copies replicate one source to many tiles, the next
//! superstep's vertices overwrite exchange sources, and host streams sit between phases. The
//! model (written here, independently of the executor) runs every phase in order on a plain
//! copy of the memory and takes every exchange source from a snapshot made before the phase.

use super::*;
use crate::exchange::ExchangePlan;
use crate::*;
use rand::{Rng, SeedableRng};

const CHIPS: u32 = 2;
const TILES: u32 = 3;
const BYTES: u32 = 256;
const STEPS: usize = 6;
/// Host bytes per superstep in the output buffer (each superstep writes its own range).
const HOST_STEP: u64 = 64;

pub(super) fn tiles() -> Vec<TileRef> {
    (0..CHIPS)
        .flat_map(|c| (0..TILES).map(move |t| TileRef::new(c, t)))
        .collect()
}

pub(super) fn flat(t: TileRef) -> usize {
    (t.chip * TILES + t.tile) as usize
}

/// A random byte range of a tile, `1..=max` long.
fn region(rng: &mut impl Rng, max: u32) -> Region {
    let len = rng.gen_range(1..=max);
    Region::new(rng.gen_range(0..=BYTES - len), len)
}

/// A random superstep: vertices on some tiles, copies with disjoint destinations per tile
/// (sources anywhere, some shared by several copies), and sometimes host streams.
fn superstep(rng: &mut impl Rng, s: usize) -> Superstep {
    let mut step = Superstep::default();
    for tile in tiles() {
        if rng.gen_bool(0.6) {
            let vertices = (0..rng.gen_range(1..4))
                .map(|_| {
                    if rng.gen_bool(0.5) {
                        let src = region(rng, 48);
                        let dst = Region::new(rng.gen_range(0..=BYTES - src.len), src.len);
                        Vertex::Copy { src, dst }
                    } else {
                        let dst = Region::new(4 * rng.gen_range(0..BYTES / 4 - 8), 32);
                        Vertex::Fill {
                            elem: Elem::F32,
                            dst,
                            value: rng.gen_range(-8.0..8.0),
                        }
                    }
                })
                .collect();
            step.compute.push(TileCompute { tile, vertices });
        }
    }
    let mut taken: Vec<(TileRef, Region)> = Vec::new();
    let shared = TileRegion {
        tile: tiles()[rng.gen_range(0..tiles().len())],
        region: region(rng, 40),
    };
    for _ in 0..rng.gen_range(0..12) {
        let src = if rng.gen_bool(0.4) {
            shared
        } else {
            TileRegion {
                tile: tiles()[rng.gen_range(0..tiles().len())],
                region: region(rng, 40),
            }
        };
        let dst_tile = tiles()[rng.gen_range(0..tiles().len())];
        let dst = Region::new(rng.gen_range(0..=BYTES - src.region.len), src.region.len);
        if taken
            .iter()
            .all(|(t, r)| *t != dst_tile || !r.overlaps(dst))
        {
            taken.push((dst_tile, dst));
            step.exchange.push(Exchange {
                src,
                dst_tile,
                dst_offset: dst.offset,
            });
        }
    }
    if rng.gen_bool(0.25) {
        let tile = TileRegion {
            tile: tiles()[rng.gen_range(0..tiles().len())],
            region: region(rng, HOST_STEP as u32),
        };
        step.host_to_tile
            .push(StreamCopy::contiguous(0, rng.gen_range(0..64), tile));
    }
    if rng.gen_bool(0.25) {
        let tile = TileRegion {
            tile: tiles()[rng.gen_range(0..tiles().len())],
            region: region(rng, HOST_STEP as u32),
        };
        step.tile_to_host
            .push(StreamCopy::contiguous(1, s as u64 * HOST_STEP, tile));
    }
    step
}

pub(super) fn program(seed: u64) -> TileProgram {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut p = TileProgram::new(CHIPS, TILES, BYTES);
    p.host_buffers = vec![
        HostBuffer {
            name: "in".into(),
            bytes: 128,
        },
        HostBuffer {
            name: "out".into(),
            bytes: STEPS as u64 * HOST_STEP,
        },
    ];
    p.supersteps = (0..STEPS).map(|s| superstep(&mut rng, s)).collect();
    p
}

/// The semantics, phase by phase, on plain vectors.
fn model(p: &TileProgram, mem: &mut [Vec<u8>], host: &mut [Vec<u8>]) {
    let range = |r: Region| r.offset as usize..r.offset as usize + r.len as usize;
    for step in &p.supersteps {
        for c in &step.host_to_tile {
            let h = c.buffer_offset as usize;
            let len = c.tile.region.len as usize;
            let bytes = host[c.buffer as usize][h..h + len].to_vec();
            mem[flat(c.tile.tile)][range(c.tile.region)].copy_from_slice(&bytes);
        }
        for tc in &step.compute {
            let m = &mut mem[flat(tc.tile)];
            for v in &tc.vertices {
                match v {
                    Vertex::Copy { src, dst } => m.copy_within(range(*src), dst.offset as usize),
                    Vertex::Fill { dst, value, .. } => {
                        for chunk in m[range(*dst)].chunks_exact_mut(4) {
                            chunk.copy_from_slice(&value.to_le_bytes());
                        }
                    }
                    other => panic!("the model has no {}", other.kind()),
                }
            }
        }
        let before = mem.to_vec();
        for x in &step.exchange {
            let bytes = &before[flat(x.src.tile)][range(x.src.region)];
            mem[flat(x.dst_tile)][range(x.dst_region())].copy_from_slice(bytes);
        }
        for c in &step.tile_to_host {
            let h = c.buffer_offset as usize;
            let len = c.tile.region.len as usize;
            host[c.buffer as usize][h..h + len]
                .copy_from_slice(&mem[flat(c.tile.tile)][range(c.tile.region)]);
        }
    }
}

/// Memories filled with a pattern (so copies are visible) and the host buffers.
pub(super) fn start(p: &TileProgram, seed: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mem = (0..CHIPS * TILES)
        .map(|_| (0..BYTES).map(|_| rng.gen()).collect())
        .collect();
    let host = p
        .host_buffers
        .iter()
        .map(|b| (0..b.bytes).map(|_| rng.gen()).collect())
        .collect();
    (mem, host)
}

#[test]
fn every_exchange_plan_matches_the_phase_by_phase_model() {
    let mut kinds = [0usize; 3];
    // Fused plans with tasks in the direct wave, in the staged wave, and in both.
    let mut waves = [0usize; 3];
    for seed in 0..300 {
        let p = program(seed);
        let (mem0, host0) = start(&p, seed);
        let (mut want_mem, mut want_host) = (mem0.clone(), host0.clone());
        model(&p, &mut want_mem, &mut want_host);
        let mut loaded = LoadedProgram::load(p).unwrap();
        for plan in &loaded.plans {
            match plan.exchange {
                ExchangePlan::Direct(_) => kinds[0] += 1,
                ExchangePlan::Staged(_) => kinds[1] += 1,
                ExchangePlan::Fused(ref f) => {
                    kinds[2] += 1;
                    let (direct, staged) = f.waves();
                    waves[0] += usize::from(direct > 0);
                    waves[1] += usize::from(staged > 0);
                    waves[2] += usize::from(direct > 0 && staged > 0);
                }
                ExchangePlan::Empty => {}
            }
        }
        // Every trace mode gives the same bytes (tracing only reads clocks).
        let modes = [TraceMode::Off, TraceMode::On, TraceMode::Tiles];
        for (threads, mode) in [1, 3].into_iter().flat_map(|n| modes.map(|m| (n, m))) {
            let mut m = Machine::for_program(&loaded);
            for t in tiles() {
                m.write(t, 0, &mem0[flat(t)]).unwrap();
            }
            let mut host = host0.clone();
            m.run_in(&pool(threads), &loaded, &mut host, mode).unwrap();
            for t in tiles() {
                assert_eq!(
                    m.tile_memory(t).unwrap(),
                    &want_mem[flat(t)][..],
                    "seed {seed}, {threads} threads, {mode:?}, {t}"
                );
            }
            assert_eq!(
                host, want_host,
                "seed {seed}, {threads} threads, {mode:?}, host"
            );
        }
        // Without the copy lists the plans made redundant, the same bytes: only staged
        // exchanges keep (and read) theirs.
        let copies: usize = loaded
            .program()
            .supersteps
            .iter()
            .map(|s| s.exchange.len())
            .sum();
        let staged: usize = loaded
            .program()
            .supersteps
            .iter()
            .zip(&loaded.plans)
            .filter(|(_, p)| matches!(p.exchange, ExchangePlan::Staged(_)))
            .map(|(s, _)| s.exchange.len())
            .sum();
        assert_eq!(loaded.compact() as usize, copies - staged, "seed {seed}");
        let kept: usize = loaded
            .program()
            .supersteps
            .iter()
            .map(|s| s.exchange.len())
            .sum();
        assert_eq!(kept, staged, "seed {seed}");
        for threads in [1, 3] {
            let mut m = Machine::for_program(&loaded);
            for t in tiles() {
                m.write(t, 0, &mem0[flat(t)]).unwrap();
            }
            let mut host = host0.clone();
            m.run_in(&pool(threads), &loaded, &mut host, TraceMode::Tiles)
                .unwrap();
            for t in tiles() {
                assert_eq!(
                    m.tile_memory(t).unwrap(),
                    &want_mem[flat(t)][..],
                    "seed {seed}, compacted, {threads} threads, {t}"
                );
            }
            assert_eq!(host, want_host, "seed {seed}, compacted, host");
        }
    }
    // The random programs exercise all three plans.
    assert!(kinds.iter().all(|&k| k > 10), "plans used: {kinds:?}");
    assert!(waves.iter().all(|&w| w > 10), "fused waves used: {waves:?}");
}

/// Tile 0 sends 16 bytes to every other tile; the next superstep overwrites the source on
/// tile 0 and copies the received bytes within each receiver.
pub(super) fn broadcast() -> TileProgram {
    let mut p = TileProgram::new(CHIPS, TILES, BYTES);
    let src = TileRegion {
        tile: TileRef::new(0, 0),
        region: Region::new(0, 16),
    };
    let s0 = Superstep {
        compute: vec![TileCompute {
            tile: src.tile,
            vertices: vec![Vertex::Fill {
                elem: Elem::F32,
                dst: src.region,
                value: 3.0,
            }],
        }],
        exchange: tiles()
            .into_iter()
            .skip(1)
            .map(|t| Exchange {
                src,
                dst_tile: t,
                dst_offset: 64,
            })
            .collect(),
        ..Superstep::default()
    };
    let mut s1 = Superstep::default();
    for t in tiles() {
        let vertex = if t == src.tile {
            Vertex::Fill {
                elem: Elem::F32,
                dst: src.region,
                value: -1.0,
            }
        } else {
            Vertex::Copy {
                src: Region::new(64, 16),
                dst: Region::new(128, 16),
            }
        };
        s1.compute.push(TileCompute {
            tile: t,
            vertices: vec![vertex],
        });
    }
    p.supersteps = vec![s0, s1];
    p
}

#[test]
fn replicated_sources_fuse_with_the_next_compute_and_keep_its_order() {
    let loaded = LoadedProgram::load(broadcast()).unwrap();
    assert!(matches!(loaded.plans[0].exchange, ExchangePlan::Fused(_)));
    assert!(loaded.plans[1].compute_fused);
    for mode in [TraceMode::Off, TraceMode::On, TraceMode::Tiles] {
        let mut m = Machine::for_program(&loaded);
        let trace = m.run_in(&pool(2), &loaded, &mut [], mode).unwrap();
        let three = f32_bytes(&[3.0; 4]);
        for t in tiles().into_iter().skip(1) {
            // Delivered before the copy ran, and from before tile 0 overwrote its source.
            assert_eq!(m.read(t, Region::new(64, 16)).unwrap(), &three[..]);
            assert_eq!(m.read(t, Region::new(128, 16)).unwrap(), &three[..]);
        }
        let minus_one = f32_bytes(&[-1.0; 4]);
        assert_eq!(
            m.read(TileRef::new(0, 0), Region::new(0, 16)).unwrap(),
            &minus_one[..]
        );
        if mode.records() {
            assert_eq!(trace.supersteps.len(), 2);
            assert_eq!(trace.exchange_bytes(), 16 * 5);
            assert_eq!(trace.supersteps[1].vertices, 6);
        }
    }
}

#[test]
fn a_stream_between_the_phases_prevents_fusion() {
    let mut p = broadcast();
    p.host_buffers = vec![HostBuffer {
        name: "out".into(),
        bytes: 16,
    }];
    p.supersteps[0].tile_to_host.push(StreamCopy::contiguous(
        0,
        0,
        TileRegion {
            tile: TileRef::new(1, 2),
            region: Region::new(64, 16),
        },
    ));
    let loaded = LoadedProgram::load(p).unwrap();
    assert!(matches!(loaded.plans[0].exchange, ExchangePlan::Direct(_)));
    assert!(!loaded.plans[1].compute_fused);
    let mut host = vec![vec![0u8; 16]];
    Machine::for_program(&loaded)
        .run(&loaded, &mut host, TraceMode::Off)
        .unwrap();
    // The stream saw the delivered bytes, before the next superstep.
    assert_eq!(host[0], f32_bytes(&[3.0; 4]));
}
