//! What each [`TraceMode`] records: nothing (`Off`); one record per superstep whose phases fit
//! in the run's wall time, with no per-tile records (`On`); and per-tile records for exactly
//! the tiles that ran vertices or received bytes (`Tiles`), each tile's compute time within
//! its superstep's. The expected tile sets are computed here from the program itself. That
//! the three modes give the same bytes is checked by the exchange property test
//! (`exchange::every_exchange_plan_matches_the_phase_by_phase_model`) and below on a matmul
//! program.

use super::exchange::{broadcast, flat, program, start, tiles};
use super::*;
use crate::exchange::ExchangePlan;
use crate::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Slack for comparing times measured by different clock reads.
const CLOCK_SLACK: Duration = Duration::from_micros(2);

/// Runs `loaded` from memories `mem0` and host buffers `host0` on `threads` threads; returns
/// the trace, the wall time of the run, every tile's memory and the host buffers.
fn run(
    loaded: &LoadedProgram,
    mem0: &[Vec<u8>],
    host0: &[Vec<u8>],
    mode: TraceMode,
    threads: usize,
) -> (Trace, Duration, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let p = loaded.program();
    let mut m = Machine::for_program(loaded);
    let all: Vec<TileRef> = (0..p.chips)
        .flat_map(|c| (0..p.tiles_per_chip).map(move |t| TileRef::new(c, t)))
        .collect();
    for (t, bytes) in all.iter().zip(mem0) {
        m.write(*t, 0, bytes).unwrap();
    }
    let mut host = host0.to_vec();
    let pool = pool(threads);
    let begin = Instant::now();
    let trace = m.run_in(&pool, loaded, &mut host, mode).unwrap();
    let wall = begin.elapsed();
    let mem = all
        .iter()
        .map(|t| m.tile_memory(*t).unwrap().to_vec())
        .collect();
    (trace, wall, mem, host)
}

fn phases(s: &SuperstepTrace) -> Duration {
    s.host_to_tile + s.compute + s.exchange + s.tile_to_host
}

#[test]
fn off_records_nothing() {
    for seed in 0..20 {
        let p = program(seed);
        let (mem0, host0) = start(&p, seed);
        let loaded = LoadedProgram::load(p).unwrap();
        let (trace, ..) = run(&loaded, &mem0, &host0, TraceMode::Off, 2);
        assert_eq!(trace, Trace::default(), "seed {seed}");
    }
}

#[test]
fn on_records_every_superstep_within_the_runs_wall_time() {
    for seed in 0..50 {
        let p = program(seed);
        let (mem0, host0) = start(&p, seed);
        let loaded = LoadedProgram::load(p.clone()).unwrap();
        let (trace, wall, ..) = run(&loaded, &mem0, &host0, TraceMode::On, 2);
        assert_eq!(trace.supersteps.len(), p.supersteps.len(), "seed {seed}");
        let total: Duration = trace.supersteps.iter().map(phases).sum();
        assert!(
            total <= wall,
            "seed {seed}: phases {total:?} > run {wall:?}"
        );
        for (s, (rec, step)) in trace.supersteps.iter().zip(&p.supersteps).enumerate() {
            assert!(rec.tiles.is_empty(), "seed {seed} superstep {s}");
            let bytes: u64 = step
                .exchange
                .iter()
                .map(|x| u64::from(x.src.region.len))
                .sum();
            let vertices: usize = step.compute.iter().map(|tc| tc.vertices.len()).sum();
            assert_eq!(rec.exchange_bytes, bytes, "seed {seed} superstep {s}");
            assert_eq!(rec.vertices, vertices as u64, "seed {seed} superstep {s}");
            let fused = matches!(loaded.plans[s].exchange, ExchangePlan::Fused(_));
            assert_eq!(rec.fused, fused, "seed {seed} superstep {s}");
            // Phases with nothing to do take no time.
            if step.host_to_tile.is_empty() {
                assert_eq!(rec.host_to_tile, Duration::ZERO);
            }
            if step.exchange.is_empty() {
                assert_eq!(rec.exchange, Duration::ZERO);
            }
        }
    }
}

/// The global tiles that run vertices, and those that receive bytes, in each superstep.
fn busy_tiles(p: &TileProgram) -> Vec<(BTreeSet<u32>, BTreeSet<u32>)> {
    let g = |t: TileRef| t.chip * p.tiles_per_chip + t.tile;
    p.supersteps
        .iter()
        .map(|step| {
            let compute = step
                .compute
                .iter()
                .filter(|tc| !tc.vertices.is_empty())
                .map(|tc| g(tc.tile))
                .collect();
            let exchange = step
                .exchange
                .iter()
                .filter(|x| x.src.region.len > 0)
                .map(|x| g(x.dst_tile))
                .collect();
            (compute, exchange)
        })
        .collect()
}

/// Checks a `Tiles` trace of `p`: records for exactly the busy tiles, sorted, times only
/// where there was work, and each tile's compute within its superstep's compute.
fn check_tile_records(p: &TileProgram, trace: &Trace, what: &str) {
    assert_eq!(trace.supersteps.len(), p.supersteps.len(), "{what}");
    for (s, (rec, (compute, exchange))) in trace.supersteps.iter().zip(busy_tiles(p)).enumerate() {
        let got: Vec<u32> = rec.tiles.iter().map(|t| t.tile).collect();
        let want: Vec<u32> = compute.union(&exchange).copied().collect();
        assert_eq!(got, want, "{what} superstep {s}: recorded tiles");
        for t in &rec.tiles {
            // Time only where there was work, and some wherever there was.
            let at = format!("{what} superstep {s} tile {}", t.tile);
            assert_eq!(t.compute_ns > 0, compute.contains(&t.tile), "{at}: compute");
            assert_eq!(
                t.exchange_ns > 0,
                exchange.contains(&t.tile),
                "{at}: exchange"
            );
            let ns = Duration::from_nanos(u64::from(t.compute_ns));
            assert!(
                ns <= rec.compute + CLOCK_SLACK,
                "{what} superstep {s} tile {}: {ns:?} > phase {:?}",
                t.tile,
                rec.compute
            );
        }
    }
}

#[test]
fn tiles_records_exactly_the_tiles_with_work() {
    for seed in 0..100 {
        let p = program(seed);
        let (mem0, host0) = start(&p, seed);
        let loaded = LoadedProgram::load(p.clone()).unwrap();
        for threads in [1, 3] {
            let (trace, wall, ..) = run(&loaded, &mem0, &host0, TraceMode::Tiles, threads);
            check_tile_records(&p, &trace, &format!("seed {seed}, {threads} threads"));
            let total: Duration = trace.supersteps.iter().map(phases).sum();
            assert!(
                total <= wall,
                "seed {seed}: phases {total:?} > run {wall:?}"
            );
        }
    }
    // The broadcast's exchange is fused: tile 0 sends to the 5 others, then every tile
    // computes (global tiles 0..6).
    let p = broadcast();
    let loaded = LoadedProgram::load(p.clone()).unwrap();
    assert!(matches!(loaded.plans[0].exchange, ExchangePlan::Fused(_)));
    let mem0 = vec![vec![0u8; 256]; tiles().len()];
    let (trace, ..) = run(&loaded, &mem0, &[], TraceMode::Tiles, 2);
    check_tile_records(&p, &trace, "broadcast");
    let receivers: Vec<u32> = trace.supersteps[0]
        .tiles
        .iter()
        .filter(|t| t.tile != 0)
        .map(|t| t.tile)
        .collect();
    let want: Vec<u32> = tiles()
        .into_iter()
        .skip(1)
        .map(|t| flat(t) as u32)
        .collect();
    assert_eq!(receivers, want);
}

/// 48 tiles of one chip: tile 0 fills a 32×32 f32 block and sends it to every tile (a fused
/// exchange), each tile multiplies its own 32×32 block by it (fused compute), then once more
/// by its result (a compute phase of its own), and tile 47's result streams out.
fn matmul_program() -> (TileProgram, Vec<Vec<u8>>) {
    const T: u32 = 48;
    const BLOCK: u32 = 32 * 32 * 4;
    let (a, b, c, d) = (
        Region::new(0, BLOCK),
        Region::new(BLOCK, BLOCK),
        Region::new(2 * BLOCK, BLOCK),
        Region::new(3 * BLOCK, BLOCK),
    );
    let mm = |a, b, c| {
        Vertex::MatMul(MatMul {
            m: 32,
            k: 32,
            n: 32,
            input: Elem::F32,
            partials: Elem::F32,
            accumulate: false,
            transpose_a: false,
            transpose_b: false,
            a,
            b,
            c,
        })
    };
    let mut p = TileProgram::new(1, T, 4 * BLOCK);
    p.host_buffers = vec![HostBuffer {
        name: "out".into(),
        bytes: u64::from(BLOCK),
    }];
    let src = TileRef::new(0, 0);
    let s0 = Superstep {
        compute: vec![TileCompute {
            tile: src,
            vertices: vec![Vertex::Fill {
                elem: Elem::F32,
                dst: b,
                value: 0.5,
            }],
        }],
        exchange: (1..T)
            .map(|t| Exchange {
                src: TileRegion {
                    tile: src,
                    region: b,
                },
                dst_tile: TileRef::new(0, t),
                dst_offset: b.offset,
            })
            .collect(),
        ..Superstep::default()
    };
    let each = |v: &dyn Fn() -> Vertex| -> Vec<TileCompute> {
        (0..T)
            .map(|t| TileCompute {
                tile: TileRef::new(0, t),
                vertices: vec![v()],
            })
            .collect()
    };
    let s1 = Superstep {
        compute: each(&|| mm(a, b, c)),
        ..Superstep::default()
    };
    let s2 = Superstep {
        compute: each(&|| mm(a, c, d)),
        tile_to_host: vec![StreamCopy::contiguous(
            0,
            0,
            TileRegion {
                tile: TileRef::new(0, T - 1),
                region: d,
            },
        )],
        ..Superstep::default()
    };
    p.supersteps = vec![s0, s1, s2];
    // Each tile's A: small values that differ per tile.
    let mem0 = (0..T)
        .map(|t| {
            let vals: Vec<f32> = (0..32 * 32)
                .map(|i| ((i * 7 + t as usize * 3) % 17) as f32 / 17.0)
                .collect();
            let mut m = f32_bytes(&vals);
            m.resize(4 * BLOCK as usize, 0);
            m
        })
        .collect();
    (p, mem0)
}

#[test]
fn matmul_tiles_times_fit_their_phases_and_every_mode_gives_the_same_bytes() {
    let (p, mem0) = matmul_program();
    let loaded = LoadedProgram::load(p.clone()).unwrap();
    assert!(matches!(loaded.plans[0].exchange, ExchangePlan::Fused(_)));
    let host0 = vec![vec![0u8; 32 * 32 * 4]];
    let (_, _, want_mem, want_host) = run(&loaded, &mem0, &host0, TraceMode::Off, 2);
    for mode in [TraceMode::On, TraceMode::Tiles] {
        for _ in 0..5 {
            let (trace, wall, mem, host) = run(&loaded, &mem0, &host0, mode, 2);
            assert!(
                mem == want_mem && host == want_host,
                "{mode:?}: other bytes"
            );
            let total: Duration = trace.supersteps.iter().map(phases).sum();
            assert!(total <= wall, "{mode:?}: phases {total:?} > run {wall:?}");
            assert!(trace.supersteps[0].fused);
            // The fused compute (superstep 1) and the plain one (superstep 2) are timed.
            assert!(trace.supersteps[1].compute > Duration::ZERO);
            assert!(trace.supersteps[2].compute > Duration::ZERO);
            if mode == TraceMode::Tiles {
                check_tile_records(&p, &trace, "matmul");
                // Every tile ran a 32³ matmul in supersteps 1 and 2.
                for s in 1..3 {
                    let recs = &trace.supersteps[s].tiles;
                    assert_eq!(recs.len(), 48);
                    assert!(recs.iter().all(|t| t.compute_ns > 0), "superstep {s}");
                }
            }
        }
    }
}

#[test]
fn a_fused_phase_is_split_by_the_load_estimate_or_by_the_tasks_times() {
    use crate::exchange::fused::{FusedPlan, FusedTimes};
    use crate::exchange::DELIVERY_UNITS_PER_BYTE;
    use crate::exec::split_fused;
    let us = Duration::from_micros;
    // 100 bytes from tile 0 to tiles 1 and 2 (50 each); 400 units of compute work next.
    let copies = [(0, 0, 1, 0, 50, 0), (0, 0, 2, 0, 50, 1)];
    let plan = FusedPlan::build(&copies, &[(1, 0)])
        .unwrap()
        .with_compute_work(400);
    let times = FusedTimes {
        gather: us(10),
        tasks: us(100),
        deliveries: vec![(1, us(20)), (2, us(20))],
        computes: vec![(1, us(60))],
    };
    // On: the compute share is 400 / (400 + 100 × the delivery units per byte).
    let share = 400.0 / (400.0 + 100.0 * DELIVERY_UNITS_PER_BYTE);
    let (x, c) = split_fused(TraceMode::On, &plan, &times);
    assert!((c.as_secs_f64() - 100e-6 * share).abs() < 1e-9, "{c:?}");
    assert_eq!(x + c, us(110));
    // Tiles: by the tasks' times, 60 of 100 computing.
    let (x, c) = split_fused(TraceMode::Tiles, &plan, &times);
    assert_eq!((x, c), (us(50), us(60)));
    // The compute part is at least the slowest tile's compute, at most the task pass.
    let slow = FusedTimes {
        computes: vec![(1, us(90))],
        deliveries: vec![(1, us(300))],
        ..times
    };
    let (x, c) = split_fused(TraceMode::Tiles, &plan, &slow);
    assert_eq!((x, c), (us(20), us(90)));
    let long = FusedTimes {
        computes: vec![(1, us(150))],
        deliveries: vec![],
        gather: us(10),
        tasks: us(100),
    };
    assert_eq!(
        split_fused(TraceMode::Tiles, &plan, &long),
        (us(10), us(100))
    );
    // Off: nothing measured, nothing split.
    let (x, c) = split_fused(TraceMode::Off, &plan, &FusedTimes::default());
    assert_eq!((x, c), (Duration::ZERO, Duration::ZERO));
}
