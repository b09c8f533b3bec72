//! Criterion benchmark of a pipelined training step on the emulator:
//! `step/lxmert-tiny-4stages-ga8`: lxmert-tiny's training step (batch 2, seq 12, 10 objects,
//! f32, layer recomputation) placed on 4 emulated Mk2 chips by the pipeline pass, lowered as a
//! pipeline, one step over 8 micro-batches (14 pipeline cycles; gradients summed on the tiles).
//! Before timing, the step's losses are checked against the reference evaluator (1e-5).

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::HashMap;
use std::time::Duration;
use tessera_cost::{CostOptions, PipelineConfig as CostPipeline};
use tessera_ir::{DType, Op, Tensor, TensorType};
use tessera_passes::lower::program::pipeline::{lower_pipelined, PipelineSession};
use tessera_passes::lower::program::LowerOptions;
use tessera_passes::recompute::{RecomputeConfig, RecomputeMode};
use tessera_passes::{pipeline, LayerRule, PipelineConfig, Placement};
use tessera_runtime::TraceMode;
use tessera_target::Target;

fn bench(c: &mut Criterion) {
    let config = tessera_lxmert::LxmertConfig::preset("lxmert-tiny").unwrap();
    let (b, s, n) = (2usize, 12usize, 10usize);
    let shapes = tessera_lxmert::Shapes {
        batch: b,
        seq_len: s,
        num_objects: n,
    };
    let fwd =
        tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap();
    let labels = TensorType::new(DType::F32, vec![b, config.num_qa_labels]);
    let with_loss = tessera_passes::loss::attach_vqa_loss(&fwd, &labels).unwrap();
    let grad = tessera_passes::autodiff::autodiff(&with_loss, &Default::default()).unwrap();
    let cost = CostOptions::new(CostPipeline {
        stages: 4,
        replicas: 1,
        grad_accum: 8,
        device_iterations: 1,
        micro_batch: b as u32,
        optimizer_state_offchip: true,
        replicated_tensor_sharding: false,
    });
    let cfg = PipelineConfig {
        rule: LayerRule::lxmert(),
        recompute: Some(RecomputeConfig {
            rule: LayerRule::lxmert(),
            grad_accum: 8,
            ..RecomputeConfig::new(RecomputeMode::Layer)
        }),
        ..PipelineConfig::new(Placement::Auto, cost)
    };
    let target = Target::preset("mk2").unwrap();
    let placed = pipeline(&grad, &cfg, &target).unwrap().0;
    let plan = lower_pipelined(&placed, &target, &LowerOptions::default()).unwrap();
    let params: HashMap<String, Tensor> = tessera_lxmert::init_weights(&config, 0)
        .into_iter()
        .collect();
    let micro: Vec<HashMap<String, Tensor>> = (0..8)
        .map(|m| {
            let mut feeds = HashMap::new();
            for id in placed.inputs() {
                if let Op::Input { name, ty } = &placed.node(id).op {
                    let k = ty.num_elements();
                    let t = match ty.dtype {
                        DType::I64 => Tensor::from_i64(
                            ty.shape.to_vec(),
                            (0..k as i64).map(|i| (i * 7 + 1 + m) % 2).collect(),
                        ),
                        _ => Tensor::from_f32(
                            ty.shape.to_vec(),
                            (0..k)
                                .map(|i| (((i + m as usize) * 37 % 101) as f32) / 101.0)
                                .collect(),
                        ),
                    }
                    .unwrap();
                    feeds.insert(name.clone(), t);
                }
            }
            feeds
        })
        .collect();
    let mut session = PipelineSession::new(&plan).unwrap();
    session.load(&params).unwrap();
    let out = session.step(&micro, TraceMode::Off).unwrap();
    for (m, feeds) in micro.iter().enumerate() {
        let want =
            tessera_ir::eval::evaluate(&placed, feeds, &params).unwrap()["loss"].to_f64_vec()[0];
        let got = out.micro_batches[m]["loss"].to_f64_vec()[0];
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
    }
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("step/lxmert-tiny-4stages-ga8", |bch| {
        bch.iter(|| session.step(&micro, TraceMode::Off).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
