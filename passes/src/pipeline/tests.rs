//! Tests of the pipeline pass on a small synthetic encoder: the automatic search against
//! brute force over every partition costed for real, the per-segment model against the
//! cost model, and the abridged stage contents.

use super::segments::{unit_costs, Table};
use super::traffic::transfers;
use super::*;
use crate::autodiff::{autodiff, AutodiffOptions};
use tessera_cost::PipelineConfig as CostPipeline;
use tessera_ir::{DType, Op, ReduceKind, TensorType, UnaryOp};

/// Widths of the toy encoder's feed-forward layers: uneven on purpose.
const WIDTHS: [usize; 6] = [64, 512, 32, 256, 768, 64];

/// `enc.layer.i: h = gelu(h·W1ᵢᵀ)·W2ᵢᵀ` over `WIDTHS`, then `loss = mean(h)`; the
/// training graph.
fn encoder() -> Graph {
    let (b, s, h) = (4, 32, 64);
    let mut g = Graph::new("enc");
    let mut x = g
        .input("x", TensorType::new(DType::F32, vec![b, s, h]))
        .unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    for (i, &k) in WIDTHS.iter().enumerate() {
        let scope = format!("enc.layer.{i}");
        let w1 = g
            .param(
                &format!("{scope}.fc1.weight"),
                TensorType::new(DType::F32, vec![k, h]),
            )
            .unwrap();
        let w2 = g
            .param(
                &format!("{scope}.fc2.weight"),
                TensorType::new(DType::F32, vec![h, k]),
            )
            .unwrap();
        let y = g.add(mm.clone(), &[x, w1], format!("{scope}.fc1")).unwrap();
        let a = g
            .add(Op::Unary(UnaryOp::Gelu), &[y], format!("{scope}.act"))
            .unwrap();
        x = g.add(mm.clone(), &[a, w2], format!("{scope}.fc2")).unwrap();
    }
    let loss = g
        .add(
            Op::Reduce {
                kind: ReduceKind::Mean,
                axes: vec![0, 1, 2],
                keep_dims: false,
            },
            &[x],
            "loss",
        )
        .unwrap();
    g.set_output("loss", loss).unwrap();
    autodiff(&g, &AutodiffOptions::default()).unwrap()
}

fn opts(stages: u32) -> CostOptions {
    CostOptions::new(CostPipeline {
        stages,
        replicas: 2,
        grad_accum: 16,
        device_iterations: 1,
        micro_batch: 4,
        optimizer_state_offchip: false,
        replicated_tensor_sharding: false,
    })
}

fn mk2() -> Target {
    Target::preset("mk2").unwrap()
}

/// Every way to cut `n` items into `p` non-empty contiguous runs, as run starts.
fn compositions(n: usize, p: usize) -> Vec<Vec<usize>> {
    fn go(start: usize, n: usize, left: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        cur.push(start);
        if left == 1 {
            out.push(cur.clone());
        } else {
            for next in start + 1..=n - (left - 1) {
                go(next, n, left - 1, cur, out);
            }
        }
        cur.pop();
    }
    let mut out = Vec::new();
    go(0, n, p, &mut Vec::new(), &mut out);
    out
}

#[test]
fn auto_finds_the_best_partition_by_whole_layers() {
    let g = encoder();
    for p in [2u32, 3] {
        let cfg = PipelineConfig {
            split_layers: false,
            compare_hand: false,
            ..PipelineConfig::new(Placement::Auto, opts(p))
        };
        let (_, report) = pipeline(&g, &cfg, &mk2()).unwrap();
        let units = Units::new(&g, &LayerRule::numbered(), Granularity::Layer);
        let names: Vec<String> = units.units().iter().map(|u| u.name.clone()).collect();
        assert_eq!(names.len(), WIDTHS.len() + 1, "{names:?}");
        // Brute force: every partition, costed by the real cost model.
        let mut best = 0.0f64;
        for starts in compositions(names.len(), p as usize) {
            let map = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        n.clone(),
                        starts.iter().filter(|&&s| s <= i).count() as u32 - 1,
                    )
                })
                .collect();
            let fixed = PipelineConfig {
                placement: Placement::Units(map),
                ..cfg.clone()
            };
            let (_, r) = pipeline(&g, &fixed, &mk2()).unwrap();
            best = best.max(r.samples_per_s);
        }
        assert!(
            report.samples_per_s >= best * (1.0 - 1e-12),
            "P={p}: auto {} < brute force {best}",
            report.samples_per_s
        );
    }
}

#[test]
fn splitting_inside_layers_never_loses() {
    let g = encoder();
    for p in [2u32, 3, 4] {
        let whole = PipelineConfig {
            split_layers: false,
            ..PipelineConfig::new(Placement::Auto, opts(p))
        };
        let split = PipelineConfig {
            split_layers: true,
            ..whole.clone()
        };
        let (_, a) = pipeline(&g, &whole, &mk2()).unwrap();
        let (_, b) = pipeline(&g, &split, &mk2()).unwrap();
        // Sub-layer units refine layer units, so the search space only grows; the
        // estimate-then-cost selection may lose a little, never much.
        assert!(
            b.samples_per_s >= a.samples_per_s * 0.98,
            "P={p}: {b:?} vs {a:?}"
        );
    }
}

#[test]
fn segment_model_agrees_with_the_cost_model() {
    let g = encoder();
    let target = mk2();
    for p in [1u32, 2, 3] {
        let cfg = PipelineConfig {
            split_layers: false,
            compare_hand: false,
            ..PipelineConfig::new(Placement::Auto, opts(p))
        };
        let planner = Planner::new(&g, &cfg, &target).unwrap();
        let units = planner.units(&cfg.rule, Granularity::Layer);
        let costs = unit_costs(&g, &units, &target, &cfg.cost).unwrap();
        let table = Table::new(&costs, &transfers(&g, &units), &target, &cfg.cost);
        for starts in compositions(units.len(), p as usize) {
            let mut assignment = vec![0u32; units.len()];
            for (s, &a) in starts.iter().enumerate() {
                for x in assignment.iter_mut().skip(a) {
                    *x = s as u32;
                }
            }
            let placed = planner.place(&units, &assignment, true).unwrap();
            let real = placed.throughput.step_s;
            let est = table.evaluate(&starts);
            assert!(
                (est - real).abs() <= 0.02 * real,
                "P={p} {starts:?}: estimate {est} vs cost model {real}"
            );
            // Memory: the estimate of every stage within 10% of the real figure.
            for st in &placed.cost.stages {
                let s = st.stage as usize;
                let b = starts.get(s + 1).copied().unwrap_or(units.len());
                let m = table.memory(starts[s], b, st.stage);
                let r = st.memory.total;
                assert!(
                    (m as f64 - r as f64).abs() <= 0.1 * r as f64,
                    "P={p} {starts:?} stage {s}: estimate {m} vs {r}"
                );
            }
        }
    }
}

#[test]
fn stage_contents_are_abridged() {
    let g = encoder();
    let units = Units::new(&g, &LayerRule::numbered(), Granularity::SubLayer);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let all: Vec<String> = units.units().iter().map(|u| u.name.clone()).collect();
    assert_eq!(all.first().map(String::as_str), Some("enc.layer.0.fc1"));
    assert_eq!(
        describe_units(
            &names(&[
                "enc.layer.0.fc1",
                "enc.layer.0.act",
                "enc.layer.0.fc2",
                "enc.layer.1.fc1",
                "enc.layer.1.act",
                "enc.layer.1.fc2",
                "enc.layer.2.fc1",
            ]),
            &units
        ),
        "enc.layer.{0..1}, enc.layer.2[fc1]"
    );
    assert_eq!(
        describe_units(&names(&["enc.layer.3.fc2", "loss"]), &units),
        "enc.layer.3[fc2], loss"
    );
}

#[test]
fn dynamic_programme_with_local_search_is_close_to_exhaustive() {
    use super::search::{dynamic, enumerate, local_search, Best};
    let g = encoder();
    let target = mk2();
    for p in [2u32, 3, 4] {
        let cfg = PipelineConfig {
            compare_hand: false,
            ..PipelineConfig::new(Placement::Auto, opts(p))
        };
        let planner = Planner::new(&g, &cfg, &target).unwrap();
        let units = planner.units(&cfg.rule, Granularity::SubLayer);
        let costs = unit_costs(&g, &units, &target, &cfg.cost).unwrap();
        let table = Table::new(&costs, &transfers(&g, &units), &target, &cfg.cost);
        let mut best = Best::new(1);
        let (mut starts, mut visited) = (Vec::new(), 0);
        enumerate(
            &table,
            0,
            (0.0, 0.0, 0.0),
            &mut starts,
            &mut best,
            &mut visited,
        );
        let exact = best.best_step_s().unwrap();
        let dp = dynamic(&table).unwrap();
        let refined = local_search(&table, dp, &mut visited);
        assert_eq!(refined.len(), p as usize);
        assert!(refined.windows(2).all(|w| w[0] < w[1]));
        let heuristic = table.evaluate(&refined);
        assert!(
            heuristic >= exact * (1.0 - 1e-12),
            "P={p}: {heuristic} beats the exhaustive {exact}"
        );
        assert!(
            heuristic <= exact * 1.05,
            "P={p}: {heuristic} vs exhaustive {exact}"
        );
    }
}
