//! The whole `tessera compile` of LXMERT-base in the seed run's configuration (build,
//! mixed precision, loss and autodiff, recompute per layer, automatic pipeline placement
//! with the hand placement costed for comparison): the issue asks for under 1 s.
//!
//! Run with `cargo bench --bench compile`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use tessera::compile::{compile, precision_transforms, CompileOptions};
use tessera_lxmert::{build, BuildOptions, LxmertConfig, Shapes};
use tessera_passes::mixed_precision::PrecisionConfig;
use tessera_passes::recompute::RecomputeMode;
use tessera_passes::{LayerRule, Placement};
use tessera_plan::RunSettings;
use tessera_target::{IpuConfig, Target};

fn seed_options(placement: Placement) -> CompileOptions {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lxmert-vqa-uncased.ipu_config.json"
    );
    let (ipu_config, _) = IpuConfig::from_file(path).expect("the seed run's IPU config");
    CompileOptions {
        settings: RunSettings {
            model: "lxmert-base".into(),
            precision: "fp16".into(),
            ..RunSettings::default()
        },
        train: true,
        ipu_config,
        warnings: Vec::new(),
        target: Target::preset("mk2").expect("mk2 preset"),
        placement,
        recompute: RecomputeMode::Layer,
        rule: LayerRule::lxmert(),
        split_layers: true,
        micro_batch: 1,
        scaled_loss: true,
    }
}

fn seed_compile(c: &mut Criterion) {
    let config = LxmertConfig::preset("lxmert-base").expect("preset");
    let shapes = Shapes {
        batch: 1,
        seq_len: 512,
        num_objects: 36,
    };
    // The seed run: f16 weights, fp16 partials, loss scale 16384, stochastic rounding.
    let precision = PrecisionConfig::seed_run();
    let transforms = precision_transforms(Some(&precision));
    let mut group = c.benchmark_group("compile");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, placement) in [
        ("lxmert_base_seed_auto", Placement::Auto),
        (
            "lxmert_base_seed_optimum_graphcore",
            Placement::OptimumGraphcore,
        ),
    ] {
        let opts = seed_options(placement);
        group.bench_function(name, |b| {
            b.iter(|| {
                compile(
                    || Ok(build(&config, &shapes, &BuildOptions::default())?),
                    &opts,
                    &transforms,
                )
                .expect("the seed configuration compiles")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, seed_compile);
criterion_main!(benches);
