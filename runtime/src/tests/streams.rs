//! 2-D strided host → tile streams, their load-time checks, and a machine running a `load`
//! program once and a `step` program repeatedly on the memory it left behind.

use super::*;
use crate::*;

fn at(tile: u32, offset: u32, len: u32) -> TileRegion {
    TileRegion {
        tile: TileRef::new(0, tile),
        region: Region::new(offset, len),
    }
}

fn buffer(name: &str, bytes: u64) -> HostBuffer {
    HostBuffer {
        name: name.into(),
        bytes,
    }
}

/// A 4×6 f32 matrix, element (i, j) = 10 i + j, row-major.
fn matrix() -> Vec<f32> {
    (0..24).map(|e| (10 * (e / 6) + e % 6) as f32).collect()
}

#[test]
fn strided_stream_gathers_a_column_block() {
    let mut p = TileProgram::new(1, 2, 128);
    p.host_buffers = vec![buffer("w", 96), buffer("out", 48 + 32)];
    p.supersteps = vec![Superstep {
        // Columns 2..5 of every row (12 bytes per row, rows 24 bytes apart) to tile 1; row 3
        // repeated twice (stride 0) after it.
        host_to_tile: vec![
            StreamCopy::strided(0, 8, at(1, 0, 48), 12, 24),
            StreamCopy::strided(0, 72, at(1, 48, 32), 16, 0),
        ],
        tile_to_host: vec![StreamCopy::contiguous(1, 0, at(1, 0, 80))],
        ..Superstep::default()
    }];
    let loaded = LoadedProgram::load(p).unwrap();
    let mut m = Machine::for_program(&loaded);
    let mut host = vec![f32_bytes(&matrix()), vec![0; 80]];
    m.run(&loaded, &mut host, TraceMode::Off).unwrap();
    let want = [
        2.0, 3.0, 4.0, 12.0, 13.0, 14.0, 22.0, 23.0, 24.0, 32.0, 33.0, 34.0, // block
        30.0, 31.0, 32.0, 33.0, 30.0, 31.0, 32.0, 33.0, // row 3, twice
    ];
    assert_eq!(from_f32_bytes(&host[1]), want);
}

fn load_one(h2t: Vec<StreamCopy>, t2h: Vec<StreamCopy>) -> Result<LoadedProgram, ProgramError> {
    let mut p = TileProgram::new(1, 2, 128);
    p.host_buffers = vec![buffer("w", 96)];
    p.supersteps = vec![Superstep {
        host_to_tile: h2t,
        tile_to_host: t2h,
        ..Superstep::default()
    }];
    LoadedProgram::load(p)
}

#[test]
fn strided_streams_are_checked_at_load() {
    // Last row starts at 8 + 3 * 24 = 80 and ends at 92: fits; one more byte of offset
    // with 16-byte rows ends at 9 + 72 + 16 = 97 > 96.
    assert!(load_one(
        vec![StreamCopy::strided(0, 8, at(1, 0, 48), 12, 24)],
        vec![]
    )
    .is_ok());
    let err = load_one(
        vec![StreamCopy::strided(0, 9, at(1, 0, 64), 16, 24)],
        vec![],
    );
    assert!(
        matches!(
            &err,
            Err(ProgramError::At {
                site: Site::HostToTile(0),
                problem: Problem::HostOutOfRange {
                    offset: 9,
                    end: 97,
                    size: 96,
                    ..
                },
                ..
            })
        ),
        "{err:?}"
    );
    let err = load_one(
        vec![StreamCopy::strided(0, 0, at(1, 0, 40), 12, 24)],
        vec![],
    );
    assert!(
        matches!(
            &err,
            Err(ProgramError::At {
                problem: Problem::NotMultiple { unit: 12, .. },
                ..
            })
        ),
        "{err:?}"
    );
    let err = load_one(
        vec![],
        vec![StreamCopy::strided(0, 0, at(1, 0, 48), 12, 24)],
    );
    assert!(
        matches!(
            &err,
            Err(ProgramError::At {
                site: Site::TileToHost(0),
                tile: TileRef { chip: 0, tile: 1 },
                problem: Problem::StridedToHost { row_bytes: 12 },
                ..
            })
        ),
        "{err:?}"
    );
    // A huge stride overflows u64: out of range, not a panic.
    let err = load_one(
        vec![StreamCopy::strided(0, 0, at(1, 0, 48), 12, u64::MAX / 2)],
        vec![],
    );
    assert!(matches!(
        err,
        Err(ProgramError::At {
            problem: Problem::HostOutOfRange { .. },
            ..
        })
    ));
}

#[test]
fn memory_persists_across_programs() {
    // `load` streams x into tile 1 once; `step` (another superstep list) squares it in place
    // and streams it out; run twice it gives x^4.
    let x = [1.5f32, -2.0, 3.0];
    let mut load = TileProgram::new(1, 2, 64);
    load.host_buffers = vec![buffer("x", 12)];
    load.supersteps = vec![Superstep {
        host_to_tile: vec![StreamCopy::contiguous(0, 0, at(1, 16, 12))],
        ..Superstep::default()
    }];
    let r = Region::new(16, 12);
    let mut step = TileProgram::new(1, 2, 64);
    step.host_buffers = vec![buffer("y", 12)];
    step.supersteps = vec![
        Superstep {
            compute: vec![TileCompute {
                tile: TileRef::new(0, 1),
                vertices: vec![Vertex::Binary {
                    op: tessera_ir::BinaryOp::Mul,
                    elem: Elem::F32,
                    a: r,
                    b: r,
                    dst: r,
                }],
            }],
            ..Superstep::default()
        },
        Superstep {
            tile_to_host: vec![StreamCopy::contiguous(0, 0, at(1, 16, 12))],
            ..Superstep::default()
        },
    ];
    let (load, step) = (
        LoadedProgram::load(load).unwrap(),
        LoadedProgram::load(step).unwrap(),
    );
    let mut m = Machine::for_program(&load);
    m.run(&load, &mut [f32_bytes(&x)], TraceMode::Off).unwrap();
    let mut y = vec![vec![0u8; 12]];
    m.run(&step, &mut y, TraceMode::Off).unwrap();
    assert_eq!(from_f32_bytes(&y[0]), [2.25, 4.0, 9.0]);
    m.run(&step, &mut y, TraceMode::Off).unwrap();
    assert_eq!(from_f32_bytes(&y[0]), [5.0625, 16.0, 81.0]);
}
