//! Runtime benchmarks: the cost of an empty superstep over 1472 tiles (bookkeeping only), and a
//! 768×768×768 f32 matmul split into 128³ blocks over 216 tiles (K split in 6, partial sums
//! reduced through exchange), reported as throughput (GFLOP/s = elements/s ÷ 1e9 with
//! elements = flops), and the small transposed-B blocks lowering makes of lxmert-base's linear
//! layers (64 per tile), and the exchange's copy rate into cold and into cached tile memory
//! (broadcasts of 10 KiB blocks to every tile).

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use tessera_runtime::*;

const TILES: u32 = 1472;
const BYTES: u32 = 638_976;

/// `steps` supersteps over 1472 tiles; each tile gets `vertices` (possibly an empty list) or,
/// with `None`, no compute set at all.
fn empty_supersteps(steps: usize, vertices: Option<Vec<Vertex>>) -> LoadedProgram {
    let mut p = TileProgram::new(1, TILES, BYTES);
    let step = Superstep {
        compute: match vertices {
            Some(v) => (0..TILES)
                .map(|t| TileCompute {
                    tile: TileRef::new(0, t),
                    vertices: v.clone(),
                })
                .collect(),
            None => vec![],
        },
        ..Superstep::default()
    };
    p.supersteps = vec![step; steps];
    LoadedProgram::load(p).expect("valid program")
}

fn bench_empty(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().build().expect("pool");
    let steps = 100;
    let mut g = c.benchmark_group("empty_superstep_1472_tiles");
    g.throughput(Throughput::Elements(steps as u64));
    let tiny = vec![Vertex::Fill {
        elem: Elem::F32,
        dst: Region::new(0, 4),
        value: 1.0,
    }];
    let cases = [
        ("no_compute_sets", None),
        ("empty_compute_set_per_tile", Some(vec![])),
        ("one_4_byte_fill_per_tile", Some(tiny)),
    ];
    let programs = cases.map(|(name, sets)| (name, empty_supersteps(steps, sets)));
    bench_each(&mut g, &pool, programs);
    g.finish();
}

/// Benchmarks each `(name, program)` in `g` on a fresh machine: one iteration is one run.
fn bench_each<'a>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    pool: &rayon::ThreadPool,
    programs: impl IntoIterator<Item = (&'a str, LoadedProgram)>,
) {
    for (name, prog) in programs {
        let mut m = Machine::for_program(&prog);
        g.bench_function(name, |b| {
            b.iter(|| {
                m.run_in(pool, &prog, &mut [], TraceMode::Off)
                    .expect("runs")
            })
        });
    }
}

const D: u32 = 768;
const BL: u32 = 128;

/// 768³ f32 matmul: tile (i, j, p) multiplies A[i, p] · B[p, j]; tiles with p > 0 send their
/// partial to tile (i, j, 0), which adds them.
fn matmul_program() -> LoadedProgram {
    let nb = D / BL;
    let blk = BL * BL * 4;
    let (a, b, c) = (
        Region::new(0, blk),
        Region::new(blk, blk),
        Region::new(2 * blk, blk),
    );
    let slot = |p: u32| Region::new(3 * blk + (p - 1) * blk, blk);
    let tile = |i: u32, j: u32, p: u32| TileRef::new(0, (i * nb + j) * nb + p);
    let mut s0 = Superstep::default();
    let mut s1 = Superstep::default();
    for i in 0..nb {
        for j in 0..nb {
            for p in 0..nb {
                s0.compute.push(TileCompute {
                    tile: tile(i, j, p),
                    vertices: vec![Vertex::MatMul(MatMul {
                        m: BL,
                        k: BL,
                        n: BL,
                        input: Elem::F32,
                        partials: Elem::F32,
                        accumulate: false,
                        transpose_a: false,
                        transpose_b: false,
                        a,
                        b,
                        c,
                    })],
                });
                if p > 0 {
                    s0.exchange.push(Exchange {
                        src: TileRegion {
                            tile: tile(i, j, p),
                            region: c,
                        },
                        dst_tile: tile(i, j, 0),
                        dst_offset: slot(p).offset,
                    });
                }
            }
            s1.compute.push(TileCompute {
                tile: tile(i, j, 0),
                vertices: vec![Vertex::AddPartials {
                    elem: Elem::F32,
                    dst: c,
                    srcs: (1..nb).map(slot).collect(),
                }],
            });
        }
    }
    let mut p = TileProgram::new(1, TILES, BYTES);
    p.supersteps = vec![s0, s1];
    LoadedProgram::load(p).expect("valid program")
}

fn bench_matmul(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().build().expect("pool");
    let prog = matmul_program();
    let mut m = Machine::for_program(&prog);
    let ones: Vec<u8> = (0..2 * BL * BL)
        .flat_map(|i| (1.0 + (i % 7) as f32 * 0.125).to_le_bytes())
        .collect();
    for t in 0..216 {
        m.write(TileRef::new(0, t), 0, &ones).expect("in range");
    }
    let mut g = c.benchmark_group("matmul_768_over_216_tiles");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2 * u64::from(D).pow(3)));
    g.bench_function("f32", |b| {
        b.iter(|| {
            m.run_in(&pool, &prog, &mut [], TraceMode::Off)
                .expect("runs")
        })
    });
    // One tile's 128³ block alone (kernel rate).
    let mut one = TileProgram::new(1, 1, BYTES);
    let blk = BL * BL * 4;
    one.supersteps = vec![Superstep {
        compute: vec![TileCompute {
            tile: TileRef::new(0, 0),
            vertices: vec![Vertex::MatMul(MatMul {
                m: BL,
                k: BL,
                n: BL,
                input: Elem::F32,
                partials: Elem::F32,
                accumulate: false,
                transpose_a: false,
                transpose_b: false,
                a: Region::new(0, blk),
                b: Region::new(blk, blk),
                c: Region::new(2 * blk, blk),
            })],
        }],
        ..Superstep::default()
    }];
    let one = LoadedProgram::load(one).expect("valid");
    let mut m1 = Machine::for_program(&one);
    g.throughput(Throughput::Elements(2 * u64::from(BL).pow(3)));
    g.bench_function("one_tile_128_cubed", |b| {
        b.iter(|| m1.run(&one, &mut [], TraceMode::Off).expect("runs"))
    });
    g.finish();
}

/// The block shapes lowering gives lxmert-base's linear layers (B stored transposed, as
/// `nn.Linear` weights are): 64 products of each shape on one tile, in one superstep.
fn bench_small_blocks(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_small_blocks");
    for (m, k, n) in [
        (9u32, 192u32, 9u32),
        (12, 384, 13),
        (20, 192, 12),
        (5, 192, 9),
    ] {
        let (a, b) = (Region::new(0, m * k * 4), Region::new(m * k * 4, k * n * 4));
        let c_at = |i: u32| Region::new((m + n) * k * 4 + i * m * n * 4, m * n * 4);
        let vertices: Vec<Vertex> = (0..64)
            .map(|i| {
                Vertex::MatMul(MatMul {
                    m,
                    k,
                    n,
                    input: Elem::F32,
                    partials: Elem::F32,
                    accumulate: false,
                    transpose_a: false,
                    transpose_b: true,
                    a,
                    b,
                    c: c_at(i),
                })
            })
            .collect();
        let mut p = TileProgram::new(1, 1, BYTES);
        p.supersteps = vec![Superstep {
            compute: vec![TileCompute {
                tile: TileRef::new(0, 0),
                vertices,
            }],
            ..Superstep::default()
        }];
        let prog = LoadedProgram::load(p).expect("valid");
        let mut mach = Machine::for_program(&prog);
        let ones: Vec<u8> = (0..(m + n) * k)
            .flat_map(|i| (0.5 + (i % 5) as f32 * 0.25).to_le_bytes())
            .collect();
        mach.write(TileRef::new(0, 0), 0, &ones).expect("in range");
        g.throughput(Throughput::Elements(64 * 2 * u64::from(m * k * n)));
        g.bench_function(format!("{m}x{k}x{n}_bt"), |bch| {
            bch.iter(|| mach.run(&prog, &mut [], TraceMode::Off).expect("runs"))
        });
    }
    g.finish();
}

/// Bytes each tile receives per superstep in [`bench_exchange`] (about one weight block plus one
/// activation block of an lxmert-base matmul tile).
const BLOCK: u32 = 10 * 1024;
/// Supersteps per iteration of [`bench_exchange`].
const ROUNDS: u32 = 48;

/// `ROUNDS` supersteps, each broadcasting tile 0's first [`BLOCK`] bytes to every other tile;
/// with `rotate`, superstep `s` writes at offset `16 KiB + s·BLOCK`, so that each iteration
/// writes 480 KiB of every tile (723 MB in all, far beyond the host's caches), else always at
/// 16 KiB (15 MB in all).
fn broadcast_program(rotate: bool) -> LoadedProgram {
    let mut p = TileProgram::new(1, TILES, BYTES);
    p.supersteps = (0..ROUNDS)
        .map(|s| Superstep {
            exchange: (1..TILES)
                .map(|t| Exchange {
                    src: TileRegion {
                        tile: TileRef::new(0, 0),
                        region: Region::new(0, BLOCK),
                    },
                    dst_tile: TileRef::new(0, t),
                    dst_offset: 16 * 1024 + if rotate { s * BLOCK } else { 0 },
                })
                .collect(),
            ..Superstep::default()
        })
        .collect();
    LoadedProgram::load(p).expect("valid program")
}

/// The exchange's copy rate when its destinations are cold (as in lxmert-base's matmul phases,
/// whose destinations span 15–45 MB each and the 3.7 GB a forward moves) and when they stay in
/// the host's caches: the floor the host's memory puts under a plan's exchange time.
fn bench_exchange(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().build().expect("pool");
    let mut g = c.benchmark_group("exchange_1472_tiles");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(
        u64::from(ROUNDS) * u64::from(TILES - 1) * u64::from(BLOCK),
    ));
    let cases = [
        ("broadcast_10KiB_cold_destinations", true),
        ("broadcast_10KiB_same_destinations", false),
    ];
    // Built one at a time: each machine holds 1472 tile memories (940 MB).
    let programs = cases
        .into_iter()
        .map(|(name, rotate)| (name, broadcast_program(rotate)));
    bench_each(&mut g, &pool, programs);
    g.finish();
}

criterion_group!(
    benches,
    bench_empty,
    bench_matmul,
    bench_small_blocks,
    bench_exchange
);
criterion_main!(benches);
