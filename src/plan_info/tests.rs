//! Tests of the plan summary: figures of a small lowered plan whose costs and memory are
//! replaced by known values, and the pipeline line of a pipelined plan.

use super::*;
use tessera_ir::{BinaryOp, DType, Graph, Op, TensorType};
use tessera_passes::lower::program::{lower_for, StepCost, TileMemory};
use tessera_target::Target;

/// A lowered two-op graph whose costs and memory are then replaced by known figures.
fn plan() -> TilePlan {
    let mut g = Graph::new("t");
    let t = TensorType::new(DType::F32, vec![4, 8]);
    let x = g.input("x", t.clone()).unwrap();
    let w = g.param("w", t).unwrap();
    let y = g.add(Op::Binary(BinaryOp::Add), &[x, w], "m").unwrap();
    g.set_output("y", y).unwrap();
    let mut p = lower_for(&g, &Target::preset("mk2").unwrap(), 1).unwrap();
    let cost = |label: &str, c: u64, bytes: u64| StepCost {
        label: label.into(),
        compute_cycles: c,
        exchange_cycles: 10,
        sync_cycles: 5,
        exchange_bytes: bytes,
        inter_chip_bytes: bytes / 2,
        vertices: 1,
    };
    p.costs = (0..12)
        .map(|i| cost(&format!("s{i}"), 100 * (i % 4), 8))
        .collect();
    p.clock_hz = 1e9;
    p.step.tiles_per_chip = 4;
    p.step.bytes_per_tile = 1000;
    let m = |always_live, peak| TileMemory {
        always_live,
        peak,
        vertices: 0,
        ..TileMemory::default()
    };
    // Two chips of four tiles.
    p.memory = vec![
        m(10, 100),
        m(10, 300),
        m(0, 200),
        m(0, 0),
        m(5, 1200),
        m(5, 400),
        m(5, 1001),
        m(5, 1),
    ];
    p
}

/// The plan without vertices: its memory figures are the faked ones alone.
fn plan_without_vertices() -> TilePlan {
    let mut p = plan();
    for s in p.step.supersteps.iter_mut().chain(&mut p.load.supersteps) {
        s.compute.clear();
    }
    p
}

#[test]
fn code_and_vertex_state_count_in_the_peaks() {
    use tessera_runtime::program::{Region, TileCompute, TileRef};
    use tessera_runtime::vertex::{Elem, Vertex};
    let mut p = plan_without_vertices();
    // One fill vertex on tile 1 of chip 0: 1 KiB of code for its codelet, 8 bytes for its
    // region and 4 for its scalar (the documented estimate).
    p.step.supersteps[0].compute.push(TileCompute {
        tile: TileRef::new(0, 1),
        vertices: vec![Vertex::Fill {
            elem: Elem::F32,
            dst: Region::new(0, 4),
            value: 0.0,
        }],
    });
    let m = tile_info(&p).memory;
    assert_eq!(m.code_vertex_state_bytes, 1024 + 8 + 4);
    assert_eq!(
        (m.chips[0].max_peak, m.chips[0].fullest_tile),
        (300 + 1036, 1)
    );
    assert_eq!(m.tiles_over_capacity, 3);
}

#[test]
fn figures_follow_the_plan() {
    let info = tile_info(&plan_without_vertices());
    let with_vertices = tile_info(&plan());
    // Σ (c + 10 + 5) over c = 100·(i mod 4), i < 12: 3·(0+100+200+300) + 12·15.
    assert_eq!(info.cycles, 1800 + 180);
    assert!((info.seconds - 1980e-9).abs() < 1e-15);
    assert_eq!(info.exchange_bytes, 96);
    assert_eq!(info.inter_chip_bytes, 48);
    let m = &info.memory;
    assert_eq!(m.capacity, 1000);
    assert_eq!(m.always_live_bytes, 40);
    assert_eq!(m.tiles_over_capacity, 2);
    assert_eq!(
        m.fullest_tile,
        Some(TileAt {
            chip: 1,
            tile: 0,
            peak: 1200
        })
    );
    assert_eq!((m.chips[0].max_peak, m.chips[0].fullest_tile), (300, 1));
    assert_eq!(m.chips[0].mean_peak, 150.0);
    assert_eq!(m.chips[1].mean_peak, (1200.0 + 400.0 + 1001.0 + 1.0) / 4.0);
    // Top 10 by cycles (315 > 215 > 115 > 15), ties by index.
    let top: Vec<usize> = info.top_supersteps.iter().map(|s| s.index).collect();
    assert_eq!(top, vec![3, 7, 11, 2, 6, 10, 1, 5, 9, 0]);
    assert_eq!(info.top_supersteps[0].cycles, 315);
    // Vertices are counted from the program: the add is at least one binary vertex.
    let kinds = &with_vertices.vertices_by_kind;
    assert!(kinds.get("binary").is_some_and(|n| *n >= 1));
    assert_eq!(with_vertices.vertices, kinds.values().sum::<u64>());
    let text = tiles_text(&info);
    assert!(
        text.contains("chip 1: fullest tile 0 at 1,200 / 1,000 bytes (120.0%)"),
        "{text}"
    );
    assert!(info.pipeline.is_none() && !text.contains("pipeline:"));
}

/// `plan()` with a two-stage pipeline whose F0 keeps a ring of 3 slots and F1 one of 2.
fn pipelined() -> TilePlan {
    use tessera_passes::lower::program::pipeline::{
        PipelineProgram, Schedule, SegmentProgram, StashCopies,
    };
    let mut p = plan();
    let schedule = Schedule { stages: 2 };
    let ring = |producer, slots| StashCopies {
        producer,
        slots,
        slot0: 0..1,
        others: Vec::new(),
    };
    let segments = (0..4)
        .map(|i| {
            let (stage, kind) = schedule.segment(i);
            SegmentProgram {
                stage,
                kind,
                run: i..i + 1,
                restores: Vec::new(),
                save: [Some(ring(0, 3)), Some(ring(1, 2)), None, None][i].clone(),
            }
        })
        .collect();
    p.pipeline = Some(PipelineProgram {
        schedule,
        zero: 0..1,
        segments,
        read_grads: 11..12,
        per_micro_batch: vec!["loss".into()],
        micro_buffers: 1,
        grad_buffers_end: 1,
        write_grads: 12..12,
        optimizer: None,
        optimizer_state: Vec::new(),
        optimizer_outputs: Vec::new(),
        optimizer_only: Vec::new(),
    });
    for (i, m) in p.memory.iter_mut().enumerate() {
        m.at_peak.stash = 10 * i as u64;
        m.at_peak.gradients = 4;
    }
    p
}

#[test]
fn a_pipelined_plan_shows_its_stash() {
    let info = tile_info(&pipelined());
    let want = PipelineSummary {
        stages: 2,
        segments: 4,
        stash_rings: 2,
        stash_slots: 5,
        // 10 · (0 + 1 + … + 7), 8 tiles × 4.
        stash_bytes: 280,
        gradient_bytes: 32,
        optimizer: None,
    };
    assert_eq!(info.pipeline, Some(want));
    let text = tiles_text(&info);
    assert!(
        text.contains("pipeline: 2 stages, 4 segments; stash: 2 ring(s), 5 slot(s), 280 bytes"),
        "{text}"
    );
    assert!(text.contains("optimizer: not in the plan"), "{text}");
}

#[test]
fn a_plan_with_the_optimizer_on_the_tiles_shows_it() {
    use tessera_passes::lower::program::HostTensor;
    let mut p = pipelined();
    let pl = p.pipeline.as_mut().unwrap();
    // Supersteps 8..11: compute 0, 100, 200 (100·(i mod 4)), each + 10 exchange + 5 sync.
    pl.optimizer = Some(8..11);
    let state = |name: &str, dtype, n| HostTensor {
        name: name.into(),
        ty: TensorType::new(dtype, vec![n]),
        buffer: 0,
    };
    pl.optimizer_state = vec![
        state("adam_m.w", DType::F16, 32),
        state("adam_v.w", DType::F32, 32),
    ];
    pl.optimizer_outputs = ["param.w", "adam_m.w", "adam_v.w", "lr", "step_next"]
        .map(String::from)
        .to_vec();
    pl.optimizer_only = vec!["step".into()];
    let o = tile_info(&p).pipeline.unwrap().optimizer.unwrap();
    assert_eq!(
        o,
        OptimizerSummary {
            supersteps: 3,
            cycles: 300 + 3 * 15,
            updated_weights: 1,
            state_tensors: 2,
            // 32 × 2 + 32 × 4.
            state_bytes: 192,
            inputs: vec!["step".into()],
            device_counters: vec!["step_next".into()],
        }
    );
    let text = tiles_text(&tile_info(&p));
    assert!(
        text.contains(
            "optimizer after the flush: 3 supersteps, 345 cycles; updates 1 weights in place; \
             streams 2 state tensors (192 bytes) in and out; reads step; device counters step_next"
        ),
        "{text}"
    );
}
