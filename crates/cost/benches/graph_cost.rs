//! Time to cost a training graph of LXMERT's size (the target: well under 50 ms for
//! 20,000 nodes), and to plan one large matmul without the graph-level plan cache.

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_cost::{graph_cost, op_cost, CostOptions, PipelineConfig};
use tessera_target::Target;

#[path = "../tests/common/transformer.rs"]
mod transformer;

fn bench(c: &mut Criterion) {
    let target = Target::preset("mk2").expect("built-in preset");
    let graph = transformer::transformer(244, 4, 512);
    let opts = CostOptions::new(PipelineConfig {
        stages: 4,
        grad_accum: 8,
        replicas: 4,
        ..PipelineConfig::default()
    });
    c.bench_function("graph_cost/20k_nodes", |b| {
        b.iter(|| graph_cost(&graph, &target, &opts).expect("costable graph"))
    });
    let ffn = graph
        .node_ids()
        .find(|&id| {
            let n = graph.node(id);
            n.scope.ends_with("intermediate.dense") && n.op.name() == "matmul"
        })
        .expect("an FFN matmul");
    c.bench_function("op_cost/ffn_matmul_1472_tiles", |b| {
        b.iter(|| op_cost(&graph, ffn, 1472, &target).expect("costable node"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
