//! A matmul `C = A·B` with K split over 4 tiles (two chips): each tile multiplies its K slice,
//! the partials go to tile 0 by exchange (one crosses chips), tile 0 adds them and streams C out.

use super::*;
use crate::*;
use rand::{Rng, SeedableRng};

const M: usize = 8;
const K: usize = 64;
const N: usize = 12;
const PARTS: usize = 4;
const KP: usize = K / PARTS;

/// Tile `p` of the split: tiles 0..3 on chip 0, tile 3 on chip 1 (tile 0 there).
fn tile(p: usize) -> TileRef {
    if p == 3 {
        TileRef::new(1, 0)
    } else {
        TileRef::new(0, p as u32)
    }
}

/// Host buffers: A blocks (M×KP per part), B blocks (KP×N per part), C.
fn host_data(a: &[f32], b: &[f32], input: Elem, partials: Elem) -> Vec<Vec<u8>> {
    let enc = |v: &[f32], e: Elem| {
        if e == Elem::F32 {
            f32_bytes(v)
        } else {
            f16_bytes(v)
        }
    };
    let mut a_blocks = Vec::new();
    let mut b_blocks = Vec::new();
    for p in 0..PARTS {
        for i in 0..M {
            a_blocks.extend_from_slice(&a[i * K + p * KP..i * K + (p + 1) * KP]);
        }
        b_blocks.extend_from_slice(&b[p * KP * N..(p + 1) * KP * N]);
    }
    vec![
        enc(&a_blocks, input),
        enc(&b_blocks, input),
        vec![0u8; M * N * partials.size() as usize],
    ]
}

/// The K-split program. Tile layout: A at 0, B after it, C after that, then 3 partial slots
/// (used on tile 0 only).
pub(crate) fn program(input: Elem, partials: Elem) -> TileProgram {
    let (is, ps) = (input.size(), partials.size());
    let a_len = (M * KP) as u32 * is;
    let b_len = (KP * N) as u32 * is;
    let c_len = (M * N) as u32 * ps;
    let (a, b, c) = (
        Region::new(0, a_len),
        Region::new(a_len, b_len),
        Region::new(a_len + b_len, c_len),
    );
    let slot = |j: u32| Region::new(c.offset + c_len * j, c_len);
    let mut prog = TileProgram::new(2, 4, 4096);
    prog.host_buffers = vec![
        HostBuffer {
            name: "a".into(),
            bytes: u64::from(a_len) * PARTS as u64,
        },
        HostBuffer {
            name: "b".into(),
            bytes: u64::from(b_len) * PARTS as u64,
        },
        HostBuffer {
            name: "c".into(),
            bytes: u64::from(c_len),
        },
    ];
    let mut s0 = Superstep::default();
    for p in 0..PARTS {
        let t = tile(p);
        let pu = p as u64;
        s0.host_to_tile.push(StreamCopy::contiguous(
            0,
            pu * u64::from(a_len),
            TileRegion { tile: t, region: a },
        ));
        s0.host_to_tile.push(StreamCopy::contiguous(
            1,
            pu * u64::from(b_len),
            TileRegion { tile: t, region: b },
        ));
        s0.compute.push(TileCompute {
            tile: t,
            vertices: vec![Vertex::MatMul(MatMul {
                m: M as u32,
                k: KP as u32,
                n: N as u32,
                input,
                partials,
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
                src: TileRegion { tile: t, region: c },
                dst_tile: tile(0),
                dst_offset: slot(p as u32).offset,
            });
        }
    }
    let s1 = Superstep {
        compute: vec![TileCompute {
            tile: tile(0),
            vertices: vec![Vertex::AddPartials {
                elem: partials,
                dst: c,
                srcs: (1..4).map(slot).collect(),
            }],
        }],
        tile_to_host: vec![StreamCopy {
            buffer: 2,
            buffer_offset: 0,
            tile: TileRegion {
                tile: tile(0),
                region: c,
            },
            row_bytes: 0,
            row_stride: 0,
        }],
        ..Superstep::default()
    };
    prog.supersteps = vec![s0, s1];
    prog
}

fn operands(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let a = (0..M * K).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let b = (0..K * N).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    (a, b)
}

/// Runs the program on `threads` threads; returns C's bytes and the trace.
fn run(input: Elem, partials: Elem, a: &[f32], b: &[f32], threads: usize) -> (Vec<u8>, Trace) {
    let loaded = LoadedProgram::load(program(input, partials)).unwrap();
    let mut machine = Machine::for_program(&loaded);
    let mut host = host_data(a, b, input, partials);
    let trace = machine
        .run_in(&pool(threads), &loaded, &mut host, TraceMode::On)
        .unwrap();
    (host.pop().unwrap(), trace)
}

/// Exact f64 matmul of the given (already rounded) operands.
fn f64_matmul(a: &[f32], b: &[f32]) -> Vec<f64> {
    (0..M * N)
        .map(|ij| {
            (0..K)
                .map(|k| f64::from(a[ij / N * K + k]) * f64::from(b[k * N + ij % N]))
                .sum()
        })
        .collect()
}

#[test]
fn f32_split_matches_f64_and_is_thread_count_independent() {
    let (a, b) = operands(1);
    let (c1, trace) = run(Elem::F32, Elem::F32, &a, &b, 1);
    let want = f64_matmul(&a, &b);
    for (got, want) in from_f32_bytes(&c1).iter().zip(&want) {
        assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
    }
    for threads in [2, 8] {
        assert_eq!(
            run(Elem::F32, Elem::F32, &a, &b, threads).0,
            c1,
            "{threads} threads"
        );
    }
    // Trace: 3 partials of M*N f32 exchanged, one of them from chip 1.
    let bytes = (M * N * 4) as u64;
    assert_eq!(trace.supersteps.len(), 2);
    assert_eq!(trace.supersteps[0].exchange_bytes, 3 * bytes);
    assert_eq!(trace.supersteps[0].inter_chip_bytes, bytes);
    assert_eq!(trace.supersteps[0].flops, (2 * M * K * N) as u64);
}

#[test]
fn f16_storage_and_partials() {
    let (a, b) = operands(2);
    let round = |v: &[f32]| {
        v.iter()
            .map(|x| f16::from_f32(*x).to_f32())
            .collect::<Vec<_>>()
    };
    let (a16, b16) = (round(&a), round(&b));
    let (c, _) = run(Elem::F16, Elem::F16, &a, &b, 1);
    assert_eq!(c.len(), M * N * 2, "C is stored as f16");
    // Independent model: each part's sum exact in f64, rounded to f16; partials added in f16.
    let part = |p: usize, ij: usize| -> f32 {
        let s: f64 = (p * KP..(p + 1) * KP)
            .map(|k| f64::from(a16[ij / N * K + k]) * f64::from(b16[k * N + ij % N]))
            .sum();
        f16::from_f64(s).to_f32()
    };
    let exact = f64_matmul(&a16, &b16);
    for (ij, got) in from_f16_bytes(&c).iter().enumerate() {
        let mut acc = part(0, ij);
        for p in 1..PARTS {
            acc = f16::from_f32(acc + part(p, ij)).to_f32();
        }
        let ulp = f64::from(f16::from_f32(acc.abs()).to_f32()).max(1e-3) * 2f64.powi(-10);
        // f32 vs f64 part sums can differ in the f16 rounding by one ulp per partial.
        assert!(
            (f64::from(*got) - f64::from(acc)).abs() <= 4.0 * ulp,
            "{ij}: {got} vs {acc}"
        );
        assert!(
            (f64::from(*got) - exact[ij]).abs() <= 8.0 * ulp + 1e-3,
            "{ij}: {got} vs {}",
            exact[ij]
        );
    }
    for threads in [2, 8] {
        assert_eq!(
            run(Elem::F16, Elem::F16, &a, &b, threads).0,
            c,
            "{threads} threads"
        );
    }
    // f16 inputs with f32 partials: close to the exact product of the rounded inputs.
    let (c32, _) = run(Elem::F16, Elem::F32, &a, &b, 2);
    for (got, want) in from_f32_bytes(&c32).iter().zip(&exact) {
        assert!((f64::from(*got) - want).abs() < 1e-5);
    }
}
