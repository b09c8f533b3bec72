//! Load-time and run-time errors name the superstep, tile and range; a 1472-tile program runs.

use super::*;
use crate::*;

fn fill(dst: Region) -> Vertex {
    Vertex::Fill {
        elem: Elem::F32,
        dst,
        value: 1.0,
    }
}

fn two_steps(bad: Superstep) -> TileProgram {
    let mut p = TileProgram::new(1, 4, 256);
    let ok = Superstep {
        compute: vec![TileCompute {
            tile: TileRef::new(0, 2),
            vertices: vec![fill(Region::new(0, 16))],
        }],
        ..Superstep::default()
    };
    p.supersteps = vec![ok, bad];
    p
}

#[test]
fn out_of_bounds_vertex_names_superstep_tile_and_range() {
    let bad = Superstep {
        compute: vec![TileCompute {
            tile: TileRef::new(0, 2),
            vertices: vec![fill(Region::new(0, 16)), fill(Region::new(248, 16))],
        }],
        ..Superstep::default()
    };
    let err = LoadedProgram::load(two_steps(bad)).unwrap_err();
    assert!(
        matches!(
            &err,
            ProgramError::At {
                superstep: 1,
                tile: TileRef { chip: 0, tile: 2 },
                site: Site::Vertex {
                    index: 1,
                    kind: "fill"
                },
                problem: Problem::OutOfTile {
                    region: Region {
                        offset: 248,
                        len: 16
                    },
                    bytes_per_tile: 256,
                    ..
                },
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("superstep 1") && msg.contains("chip 0 tile 2") && msg.contains("[248, 264)"),
        "{msg}"
    );
}

#[test]
fn out_of_range_and_overlapping_copies_are_load_errors() {
    let copy = |src_tile, dst_tile, dst_offset| Exchange {
        src: TileRegion {
            tile: TileRef::new(0, src_tile),
            region: Region::new(0, 16),
        },
        dst_tile: TileRef::new(0, dst_tile),
        dst_offset,
    };
    let bad = Superstep {
        exchange: vec![copy(0, 1, 0), copy(2, 3, 250)],
        ..Superstep::default()
    };
    let err = LoadedProgram::load(two_steps(bad)).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::At {
                superstep: 1,
                tile: TileRef { chip: 0, tile: 3 },
                site: Site::Exchange(1),
                problem: Problem::OutOfTile { .. }
            }
        ),
        "{err:?}"
    );
    let bad = Superstep {
        exchange: vec![copy(0, 1, 0), copy(2, 1, 8)],
        ..Superstep::default()
    };
    let err = LoadedProgram::load(two_steps(bad)).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::At {
                superstep: 1,
                site: Site::Exchange(_),
                problem: Problem::Overlap { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let bad = Superstep {
        exchange: vec![copy(0, 7, 0)],
        ..Superstep::default()
    };
    let err = LoadedProgram::load(two_steps(bad)).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::At {
                problem: Problem::TileOutsideMachine { .. },
                ..
            }
        ),
        "{err:?}"
    );
    // Adjacent destinations and a copy onto its own source tile are fine.
    let good = Superstep {
        exchange: vec![copy(0, 1, 0), copy(2, 1, 16), copy(1, 1, 32)],
        ..Superstep::default()
    };
    assert!(LoadedProgram::load(two_steps(good)).is_ok());
}

#[test]
fn duplicate_compute_sets_and_bad_streams_are_rejected() {
    let set = TileCompute {
        tile: TileRef::new(0, 1),
        vertices: vec![],
    };
    let bad = Superstep {
        compute: vec![set.clone(), set],
        ..Superstep::default()
    };
    let err = LoadedProgram::load(two_steps(bad)).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::At {
                superstep: 1,
                problem: Problem::DuplicateTile,
                ..
            }
        ),
        "{err:?}"
    );
    let stream = StreamCopy {
        buffer: 0,
        buffer_offset: 8,
        tile: TileRegion {
            tile: TileRef::new(0, 0),
            region: Region::new(0, 16),
        },
        row_bytes: 0,
        row_stride: 0,
    };
    let mut p = two_steps(Superstep {
        host_to_tile: vec![stream],
        ..Superstep::default()
    });
    let err = LoadedProgram::load(p.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::At {
                problem: Problem::UnknownBuffer {
                    buffer: 0,
                    count: 0
                },
                ..
            }
        ),
        "{err:?}"
    );
    p.host_buffers.push(HostBuffer {
        name: "x".into(),
        bytes: 20,
    });
    let err = LoadedProgram::load(p).unwrap_err();
    assert!(
        err.to_string()
            .contains("host buffer `x` bytes [8, 24) outside its 20 bytes"),
        "{err}"
    );
    let err = LoadedProgram::load(TileProgram::new(1, 0, 16)).unwrap_err();
    assert!(matches!(
        err,
        ProgramError::Machine {
            reason: "no tiles",
            ..
        }
    ));
}

#[test]
fn run_checks_host_buffers_and_machine_shape() {
    let mut p = TileProgram::new(1, 2, 64);
    p.host_buffers.push(HostBuffer {
        name: "in".into(),
        bytes: 8,
    });
    let loaded = LoadedProgram::load(p).unwrap();
    let mut m = Machine::for_program(&loaded);
    assert_eq!(
        m.run(&loaded, &mut [], TraceMode::Off),
        Err(RunError::HostBufferCount {
            expected: 1,
            got: 0
        })
    );
    let err = m
        .run(&loaded, &mut [vec![0; 7]], TraceMode::Off)
        .unwrap_err();
    assert!(matches!(
        err,
        RunError::HostBufferSize {
            index: 0,
            expected: 8,
            got: 7,
            ..
        }
    ));
    let mut other = Machine::new(1, 3, 64);
    assert!(matches!(
        other.run(&loaded, &mut [vec![0; 8]], TraceMode::Off),
        Err(RunError::MachineMismatch { .. })
    ));
}

#[test]
fn empty_program_over_1472_tiles_runs() {
    let mut p = TileProgram::new(1, 1472, 638_976);
    let all: Vec<TileCompute> = (0..1472)
        .map(|t| TileCompute {
            tile: TileRef::new(0, t),
            vertices: vec![],
        })
        .collect();
    p.supersteps = vec![
        Superstep {
            compute: all,
            ..Superstep::default()
        },
        Superstep::default(),
    ];
    let loaded = LoadedProgram::load(p).unwrap();
    let mut m = Machine::for_program(&loaded);
    assert_eq!(m.tile_count(), 1472);
    let trace = m.run_in(&pool(2), &loaded, &mut [], TraceMode::On).unwrap();
    assert_eq!(trace.supersteps.len(), 2);
    assert_eq!(trace.exchange_bytes(), 0);
    assert!(m
        .run(&loaded, &mut [], TraceMode::Off)
        .unwrap()
        .supersteps
        .is_empty());
}

#[test]
fn program_round_trips_through_json() {
    let p = super::ksplit::program(Elem::F16, Elem::F32);
    let text = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<TileProgram>(&text).unwrap(), p);
}
