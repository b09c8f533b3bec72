//! Criterion benchmarks of the tile lowering and the emulator on LXMERT:
//!
//! - `lower/lxmert-base-fwd-4chips`: graph → tile programs for lxmert-base forward (batch 1,
//!   seq 20, 36 objects, f32) on 4 Mk2 chips;
//! - `run/lxmert-base-fwd-4chips`: one execution of that plan on the emulator (weights already
//!   in tile memory), to compare with PyTorch's ≈ 0.25 s for the same forward on this machine
//!   (`../shared/fixtures/README.md`); the target is at most 2× that;
//! - `run/lxmert-tiny-fwd-1chip`: the same for lxmert-tiny, and `...-traced` with the
//!   per-superstep trace on (what recording costs).
//!
//! Before timing, each plan's outputs are checked against the reference evaluator (1e-5
//! relative), so the benchmark never times a wrong program.
//!
//! Stages are assigned by a simple balance of matmul FLOPs in topological order (the pipeline
//! pass's placement needs the compile driver; any placement exercises the same emulator).

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::HashMap;
use std::time::Duration;
use tessera_ir::{Graph, NodeId, Op, Tensor};
use tessera_passes::lower::program::{lower_program, LowerOptions, TilePlan, TileSession};
use tessera_runtime::TraceMode;

fn build(preset: &str) -> (Graph, HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let config = tessera_lxmert::LxmertConfig::preset(preset).unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 1,
        seq_len: 20,
        num_objects: 36,
    };
    let g =
        tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap();
    let params: HashMap<String, Tensor> = tessera_lxmert::init_weights(&config, 0)
        .into_iter()
        .collect();
    let mut inputs = HashMap::new();
    for id in g.inputs() {
        if let Op::Input { name, ty } = &g.node(id).op {
            let n = ty.num_elements();
            let t = match ty.dtype {
                tessera_ir::DType::I64 => Tensor::from_i64(
                    ty.shape.to_vec(),
                    (0..n as i64).map(|i| (i * 7 + 1) % 2).collect(),
                ),
                _ => Tensor::from_f32(
                    ty.shape.to_vec(),
                    (0..n).map(|i| ((i * 37 % 101) as f32) / 101.0).collect(),
                ),
            }
            .unwrap();
            inputs.insert(name.clone(), t);
        }
    }
    (g, params, inputs)
}

/// Stages by cumulative matmul FLOPs in topological order; sources follow their first user.
fn place(g: &mut Graph, stages: u32) {
    let order = g.topo_order();
    let cost = |g: &Graph, n: NodeId| -> u64 {
        match g.node(n).op {
            Op::MatMul { .. } => g.node(n).ty.num_elements() as u64 * 64,
            _ => g.node(n).ty.num_elements() as u64,
        }
    };
    let total: u64 = order.iter().map(|&n| cost(g, n)).sum();
    let mut acc = 0;
    for &n in &order {
        acc += cost(g, n);
        let s = ((acc * u64::from(stages)) / total.max(1)).min(u64::from(stages) - 1) as u32;
        g.node_mut(n).annot.stage = Some(s);
    }
    for &n in &order {
        if g.operands(n).is_empty() {
            let first = g
                .users(n)
                .iter()
                .filter_map(|&u| g.node(u).annot.stage)
                .min()
                .unwrap_or(0);
            g.node_mut(n).annot.stage = Some(first);
        }
    }
}

fn session(
    plan: &TilePlan,
    g: &Graph,
    params: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
) -> TileSession {
    let mut s = TileSession::new(plan).unwrap();
    s.load(params).unwrap();
    let (got, _) = s.run(inputs, TraceMode::Off).unwrap();
    let want = tessera_ir::eval::evaluate(g, inputs, params).unwrap();
    for (name, w) in &want {
        let e = got[name].rel_max_err(w).unwrap();
        assert!(e < 1e-5, "{name}: relative error {e}");
    }
    s
}

fn bench(c: &mut Criterion) {
    let mk2 = tessera_target::target::presets::mk2();
    let mut group = c.benchmark_group("tiles");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));

    let (g, params, inputs) = build("lxmert-tiny");
    let plan = lower_program(&g, &mk2, &LowerOptions::default()).unwrap();
    let mut s = session(&plan, &g, &params, &inputs);
    group.bench_function("run/lxmert-tiny-fwd-1chip", |b| {
        b.iter(|| s.run(&inputs, TraceMode::Off).unwrap())
    });
    // The same with the per-superstep trace on (the profiler's input): its cost.
    group.bench_function("run/lxmert-tiny-fwd-1chip-traced", |b| {
        b.iter(|| s.run(&inputs, TraceMode::On).unwrap())
    });

    let (mut g, params, inputs) = build("lxmert-base");
    place(&mut g, 4);
    let opts = LowerOptions {
        chips: 4,
        ..LowerOptions::default()
    };
    group.bench_function("lower/lxmert-base-fwd-4chips", |b| {
        b.iter(|| lower_program(&g, &mk2, &opts).unwrap())
    });
    let plan = lower_program(&g, &mk2, &opts).unwrap();
    let mut s = session(&plan, &g, &params, &inputs);
    group.bench_function("run/lxmert-base-fwd-4chips", |b| {
        b.iter(|| s.run(&inputs, TraceMode::Off).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
