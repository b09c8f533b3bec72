//! Costing a graph of LXMERT's size: a synthetic BERT-style training graph of more than
//! 20,000 nodes is costed end to end (timing is measured by `benches/graph_cost.rs`, not
//! asserted here), and its totals are checked against independent counts.

mod common {
    pub mod transformer;
}

use tessera_cost::{graph_cost, predict_throughput, CostOptions, PipelineConfig};
use tessera_ir::flops::graph_flops;
use tessera_target::Target;

#[test]
fn a_20k_node_training_graph_is_costed_per_stage() {
    let g = common::transformer::transformer(244, 4, 128);
    assert!(g.len() > 20_000, "{} nodes", g.len());
    let target = Target::preset("mk2").unwrap();
    let pipeline = PipelineConfig {
        stages: 4,
        replicas: 4,
        grad_accum: 8,
        device_iterations: 2,
        micro_batch: 1,
        optimizer_state_offchip: true,
        replicated_tensor_sharding: true,
    };
    let c = graph_cost(&g, &target, &CostOptions::new(pipeline.clone())).unwrap();
    assert!(c.training);
    // Every node's FLOPs land in exactly one phase of one stage (the analytic
    // accumulation and optimizer FLOPs come on top and are subtracted here).
    let phases: u64 = c
        .stages
        .iter()
        .map(|s| s.forward.flops + s.backward.flops - s.accumulation.flops)
        .sum();
    assert_eq!(phases, graph_flops(&g).total());
    // Layers are spread evenly, so the stages are balanced and each holds a quarter of the
    // weights (61 layers × 7,087,872 parameters × 2 B).
    for s in &c.stages {
        assert_eq!(s.memory.weights, 61 * 7_087_872 * 2);
        // The synthetic backward trains everything but the layer norms (2 × 768 each).
        assert_eq!(s.memory.gradients, 61 * (7_087_872 - 2 * 2 * 768) * 2);
        assert!(s.forward.cycles.total() > 0 && s.backward.cycles.total() > 0);
    }
    let t = predict_throughput(&c, &target, &pipeline).unwrap();
    assert!(t.samples_per_s.is_finite() && t.samples_per_s > 0.0);
    assert!(t.balance >= 1.0 && t.balance < 1.1, "{t:?}");
}
