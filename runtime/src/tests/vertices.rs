//! Programs with the new vertex kinds: a gather index out of range is a run error naming the
//! site; an i64 arithmetic operand is a load error naming it; a program using every vertex
//! kind gives identical results on 1 and 4 threads (and the training vertices' results match
//! scalar recomputation); a scatter-add index out of range is a run error.

use super::*;
use crate::*;
use rand::{Rng, SeedableRng};
use tessera_ir::{BinaryOp, CmpOp, ReduceKind, UnaryOp};

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn one_step(tile: TileRef, vertices: Vec<Vertex>, bytes: u64) -> TileProgram {
    let mut p = TileProgram::new(1, 4, 1024);
    p.host_buffers = vec![HostBuffer {
        name: "in".into(),
        bytes,
    }];
    p.supersteps = vec![
        Superstep::default(),
        Superstep {
            host_to_tile: vec![StreamCopy::contiguous(
                0,
                0,
                TileRegion {
                    tile,
                    region: Region::new(0, bytes as u32),
                },
            )],
            compute: vec![TileCompute { tile, vertices }],
            ..Superstep::default()
        },
    ];
    p
}

#[test]
fn gather_index_out_of_range_is_a_run_error() {
    let gather = Vertex::Gather {
        elem: Elem::F32,
        rows: 4,
        width: 2,
        table: Region::new(0, 32),
        indices: Region::new(32, 16),
        dst: Region::new(64, 16),
    };
    let tile = TileRef::new(0, 3);
    let fill = Vertex::Fill {
        elem: Elem::F32,
        dst: Region::new(128, 4),
        value: 0.0,
    };
    let p = one_step(tile, vec![fill, gather], 48);
    let loaded = LoadedProgram::load(p).unwrap();
    let mut m = Machine::for_program(&loaded);
    let host = [vec![0u8; 32], i64_bytes(&[3, 4])].concat();
    let err = m.run(&loaded, &mut [host], TraceMode::Off).unwrap_err();
    assert_eq!(
        err,
        RunError::IndexOutOfRange {
            superstep: 1,
            tile,
            vertex: 1,
            index: 4,
            rows: 4
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("superstep 1") && msg.contains("chip 0 tile 3"),
        "{msg}"
    );
    assert!(msg.contains("index 4") && msg.contains("4 rows"), "{msg}");
}

#[test]
fn scatter_add_index_out_of_range_is_a_run_error() {
    let scatter = Vertex::ScatterAdd {
        elem: Elem::F16,
        rows: 2,
        width: 1,
        indices: Region::new(0, 16),
        updates: Region::new(16, 4),
        dst: Region::new(24, 4),
    };
    let tile = TileRef::new(0, 1);
    let loaded = LoadedProgram::load(one_step(tile, vec![scatter], 20)).unwrap();
    let mut m = Machine::for_program(&loaded);
    let host = [i64_bytes(&[1, -2]), f16_bytes(&[1.0, 2.0])].concat();
    let err = m.run(&loaded, &mut [host], TraceMode::Off).unwrap_err();
    assert_eq!(
        err,
        RunError::IndexOutOfRange {
            superstep: 1,
            tile,
            vertex: 0,
            index: -2,
            rows: 2
        }
    );
}

#[test]
fn i64_arithmetic_is_a_load_error_naming_the_vertex() {
    let add = Vertex::Binary {
        op: BinaryOp::Add,
        elem: Elem::I64,
        a: Region::new(0, 16),
        b: Region::new(16, 16),
        dst: Region::new(32, 16),
    };
    let tile = TileRef::new(0, 2);
    let err = LoadedProgram::load(one_step(tile, vec![add], 32)).unwrap_err();
    assert!(
        matches!(
            &err,
            ProgramError::At {
                superstep: 1,
                tile: TileRef { chip: 0, tile: 2 },
                site: Site::Vertex {
                    index: 0,
                    kind: "binary"
                },
                problem: Problem::ElemType {
                    elem: Elem::I64,
                    ..
                },
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("i64"), "{err}");
}

const IN: u32 = 352;
const OUT: u32 = 1024;
const TILES: u32 = 4;

/// Every vertex kind on each of 4 tiles, exchange to the next tile, all memory streamed out.
fn all_kinds() -> TileProgram {
    let r = Region::new;
    let f32s = |off: u32, n: u32| r(off, 4 * n);
    let mm = |transpose_a, transpose_b, accumulate, a, b| {
        Vertex::MatMul(MatMul {
            m: 4,
            k: 8,
            n: 4,
            input: Elem::F32,
            partials: Elem::F32,
            accumulate,
            transpose_a,
            transpose_b,
            a,
            b,
            c: f32s(384, 16),
        })
    };
    let (x, w, ids, gamma, beta) = (
        f32s(0, 32),
        f32s(128, 32),
        r(256, 24),
        f32s(288, 8),
        f32s(320, 8),
    );
    let c = f32s(384, 16);
    let vertices = vec![
        mm(false, true, false, x, w),
        mm(true, false, true, w, x),
        Vertex::Unary {
            op: UnaryOp::Tanh,
            elem: Elem::F32,
            src: c,
            dst: c,
        },
        Vertex::Binary {
            op: BinaryOp::Add,
            elem: Elem::F32,
            a: c,
            b: f32s(288, 4),
            dst: c,
        },
        Vertex::Softmax {
            elem: Elem::F32,
            cols: 4,
            src: c,
            dst: f32s(448, 16),
        },
        Vertex::LayerNorm {
            elem: Elem::F32,
            cols: 8,
            eps: 1e-5,
            x,
            gamma,
            beta,
            dst: f32s(512, 32),
        },
        Vertex::Gather {
            elem: Elem::F32,
            rows: 4,
            width: 8,
            table: x,
            indices: ids,
            dst: f32s(640, 24),
        },
        Vertex::Cast {
            from: Elem::I64,
            to: Elem::F32,
            src: ids,
            dst: f32s(736, 3),
        },
        Vertex::Cast {
            from: Elem::F32,
            to: Elem::F16,
            src: f32s(448, 16),
            dst: r(752, 32),
        },
        Vertex::Fill {
            elem: Elem::F16,
            dst: r(784, 16),
            value: 0.1,
        },
        Vertex::Copy {
            src: r(752, 32),
            dst: r(800, 32),
        },
        Vertex::AddPartials {
            elem: Elem::F32,
            dst: f32s(512, 4),
            srcs: vec![f32s(384, 4), f32s(448, 4)],
        },
        // Training vertices, results in [832, 1024) and [1472, 1728).
        Vertex::Compare {
            op: CmpOp::Gt,
            elem: Elem::F32,
            a: f32s(0, 16),
            b: f32s(128, 1),
            dst: r(832, 16),
        },
        Vertex::Copy {
            src: r(832, 16),
            dst: r(848, 16),
        },
        Vertex::Select {
            elem: Elem::F32,
            cond: r(848, 16),
            a: f32s(0, 16),
            b: f32s(128, 4),
            dst: f32s(1472, 16),
        },
        Vertex::ReduceRows {
            kind: ReduceKind::Mean,
            elem: Elem::F32,
            cols: 8,
            src: x,
            dst: f32s(1536, 4),
        },
        Vertex::ReduceRows {
            kind: ReduceKind::Max,
            elem: Elem::F16,
            cols: 4,
            src: r(752, 32),
            dst: r(1552, 8),
        },
        Vertex::ScatterAdd {
            elem: Elem::F32,
            rows: 4,
            width: 8,
            indices: ids,
            updates: f32s(128, 24),
            dst: f32s(1568, 32),
        },
        Vertex::Cast {
            from: Elem::Bool,
            to: Elem::F16,
            src: r(832, 16),
            dst: r(1696, 32),
        },
    ];
    let mut p = TileProgram::new(1, TILES, 2 * OUT);
    p.host_buffers = vec![
        HostBuffer {
            name: "in".into(),
            bytes: u64::from(IN * TILES),
        },
        HostBuffer {
            name: "out".into(),
            bytes: u64::from(2 * OUT * TILES),
        },
    ];
    let tile = |t: u32| TileRef::new(0, t);
    let whole = |t: u32, region| TileRegion {
        tile: tile(t),
        region,
    };
    p.supersteps = vec![Superstep {
        host_to_tile: (0..TILES)
            .map(|t| StreamCopy::contiguous(0, u64::from(t * IN), whole(t, r(0, IN))))
            .collect(),
        compute: (0..TILES)
            .map(|t| TileCompute {
                tile: tile(t),
                vertices: vertices.clone(),
            })
            .collect(),
        exchange: (0..TILES)
            .map(|t| Exchange {
                src: whole(t, r(384, 448)),
                dst_tile: tile((t + 1) % TILES),
                dst_offset: OUT,
            })
            .collect(),
        tile_to_host: (0..TILES)
            .map(|t| StreamCopy::contiguous(1, u64::from(t * 2 * OUT), whole(t, r(0, 2 * OUT))))
            .collect(),
    }];
    p
}

#[test]
fn every_vertex_kind_is_thread_count_independent() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let mut input = Vec::new();
    let mut xs = Vec::new();
    for t in 0..TILES {
        let x: Vec<f32> = (0..72).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        input.extend(f32_bytes(&x[..64]));
        input.extend(i64_bytes(&[3, 0, i64::from(t % 4)]));
        input.extend([0u8; 8]);
        input.extend(f32_bytes(&x[64..72]));
        input.extend(f32_bytes(&[0.25; 8]));
        xs.push(x);
    }
    let loaded = LoadedProgram::load(all_kinds()).unwrap();
    let run = |threads| {
        let mut m = Machine::for_program(&loaded);
        let mut host = vec![input.clone(), vec![0u8; (2 * OUT * TILES) as usize]];
        m.run_in(&pool(threads), &loaded, &mut host, TraceMode::On)
            .unwrap();
        host.remove(1)
    };
    let one = run(1);
    assert_eq!(one, run(4));
    // Spot checks against the inputs: gathered rows 3, 0, t of x, and the cast indices.
    let mut conds = Vec::new();
    for (t, x) in xs.iter().enumerate() {
        let base = t * 2 * OUT as usize;
        let gathered = from_f32_bytes(&one[base + 640..base + 736]);
        let want: Vec<f32> = [3, 0, t % 4]
            .iter()
            .flat_map(|&row| x[8 * row..8 * row + 8].to_vec())
            .collect();
        assert_eq!(gathered, want, "tile {t}");
        assert_eq!(
            from_f32_bytes(&one[base + 736..base + 748]),
            [3.0, 0.0, (t % 4) as f32]
        );
        conds.extend(super::training::check_training_vertices(
            &one[base..base + 2 * OUT as usize],
            x,
            t,
        ));
        // The exchange brought the previous tile's results.
        let prev = ((t + TILES as usize - 1) % TILES as usize) * 2 * OUT as usize;
        assert_eq!(one[base + 1024..base + 1472], one[prev + 384..prev + 832]);
    }
    // The comparisons are not constant (the checks above could fail).
    assert!(conds.contains(&0) && conds.contains(&1));
}

#[test]
fn expand_repeats_each_element_and_checks_its_regions() {
    let tile = TileRef::new(0, 1);
    // Three f32 elements, each written 4 times; two f16 elements, each 3 times.
    let v32 = Vertex::Expand {
        elem: Elem::F32,
        repeat: 4,
        src: Region::new(0, 12),
        dst: Region::new(64, 48),
    };
    let v16 = Vertex::Expand {
        elem: Elem::F16,
        repeat: 3,
        src: Region::new(12, 4),
        dst: Region::new(128, 12),
    };
    let p = one_step(tile, vec![v32, v16], 16);
    let loaded = LoadedProgram::load(p).unwrap();
    let mut m = Machine::for_program(&loaded);
    let h16 = [half::f16::from_f32(1.5), half::f16::from_f32(-2.0)];
    let mut host = [
        f32_bytes(&[1.0, -2.5, 7.0]),
        h16.iter().flat_map(|h| h.to_le_bytes()).collect(),
    ]
    .concat();
    m.run(&loaded, &mut [std::mem::take(&mut host)], TraceMode::Off)
        .unwrap();
    let mem = m.tile_memory(tile).unwrap();
    let want32: Vec<f32> = [1.0f32, -2.5, 7.0].iter().flat_map(|&x| [x; 4]).collect();
    assert_eq!(from_f32_bytes(&mem[64..112]), want32);
    let got16: Vec<half::f16> = mem[128..140]
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
        .collect();
    let want16: Vec<half::f16> = h16.iter().flat_map(|&h| [h; 3]).collect();
    assert_eq!(got16, want16);

    // A destination of the wrong length, and a zero repeat, are load errors.
    for bad in [
        Vertex::Expand {
            elem: Elem::F32,
            repeat: 4,
            src: Region::new(0, 12),
            dst: Region::new(64, 44),
        },
        Vertex::Expand {
            elem: Elem::F32,
            repeat: 0,
            src: Region::new(0, 12),
            dst: Region::new(64, 0),
        },
    ] {
        let err = LoadedProgram::load(one_step(tile, vec![bad], 16)).unwrap_err();
        assert!(err.to_string().contains("expand"), "{err}");
    }
}
