//! Benchmarks of the reference chain: building LXMERT, differentiating it, and running it on
//! the reference evaluator (forward of lxmert-base at the shapes; a training step of
//! lxmert-tiny).

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::HashMap;
use std::time::Duration;
use tessera::data::{DataSource, SyntheticShape};
use tessera_ir::Tensor;
use tessera_lxmert::{build, init_weights, BuildOptions, LxmertConfig, Shapes};

fn base_forward(c: &mut Criterion) {
    let config = LxmertConfig::preset("lxmert-base").unwrap();
    let shapes = Shapes {
        batch: 1,
        seq_len: 20,
        num_objects: 36,
    };
    let graph = build(&config, &shapes, &BuildOptions::default()).unwrap();
    let params: HashMap<String, Tensor> = init_weights(&config, 0).into_iter().collect();
    let mut data = DataSource::synthetic(
        &config,
        SyntheticShape {
            seq_len: 20,
            num_objects: 36,
        },
        0,
    );
    let mut inputs: HashMap<String, Tensor> = data.next_batch(1).unwrap().into_iter().collect();
    inputs.remove("labels");
    let mut g = c.benchmark_group("reference");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("lxmert_base_build_seq512", |b| {
        let s = Shapes {
            batch: 1,
            seq_len: 512,
            num_objects: 36,
        };
        b.iter(|| build(&config, &s, &BuildOptions::default()).unwrap())
    });
    g.bench_function("lxmert_base_forward_b1_s20_o36", |b| {
        b.iter(|| tessera_ir::eval::evaluate(&graph, &inputs, &params).unwrap())
    });
    g.finish();
}

fn tiny_train_step(c: &mut Criterion) {
    let config = LxmertConfig::preset("lxmert-tiny").unwrap();
    let shapes = Shapes {
        batch: 8,
        seq_len: 12,
        num_objects: 10,
    };
    let forward = build(&config, &shapes, &BuildOptions::default()).unwrap();
    let params: HashMap<String, Tensor> = init_weights(&config, 0).into_iter().collect();
    let mut data = DataSource::synthetic(
        &config,
        SyntheticShape {
            seq_len: 12,
            num_objects: 10,
        },
        0,
    );
    let inputs: HashMap<String, Tensor> = data.next_batch(8).unwrap().into_iter().collect();
    let cfg = tessera::train::TrainConfig {
        steps: 1_000_000,
        grad_accum: 1,
        lr: 1e-3,
        warmup_ratio: 0.0,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        max_grad_norm: None,
        precision: None,
    };
    let mut trainer =
        tessera::train::Trainer::new(&forward, &inputs["labels"].ty(), params, cfg).unwrap();
    c.bench_function("reference/lxmert_tiny_train_step_b8", |b| {
        b.iter(|| trainer.step(|| Ok(inputs.clone())).unwrap())
    });
}

criterion_group!(benches, base_forward, tiny_train_step);
criterion_main!(benches);
