//! Tests of the pipeline pass on lxmert-tiny training graphs.

use super::*;
use crate::layers::{phase, Phase, COPY_MARKER, STASH_MARKER};
use crate::recompute::{RecomputeConfig, RecomputeMode};
use crate::testing::{assert_bits_equal, tiny_training};
use tessera_cost::PipelineConfig as CostPipeline;
use tessera_ir::Op;

fn cost_opts(stages: u32) -> CostOptions {
    CostOptions::new(CostPipeline {
        stages,
        replicas: 2,
        grad_accum: 8,
        device_iterations: 1,
        micro_batch: 2,
        optimizer_state_offchip: true,
        replicated_tensor_sharding: true,
    })
}

/// `placement` on `stages` chips of LXMERT's layers, recomputing every layer.
fn config(placement: Placement, stages: u32) -> PipelineConfig {
    PipelineConfig {
        rule: LayerRule::lxmert(),
        recompute: Some(RecomputeConfig {
            rule: LayerRule::lxmert(),
            grad_accum: 8,
            ..RecomputeConfig::new(RecomputeMode::Layer)
        }),
        ..PipelineConfig::new(placement, cost_opts(stages))
    }
}

fn mk2() -> Target {
    Target::preset("mk2").unwrap()
}

fn last_component(scope: &str) -> &str {
    scope.rsplit('.').next().unwrap_or("")
}

/// The invariants of a placed graph (see the test names).
fn check_placed(g: &Graph, stages: u32) {
    let mut crossing = 0;
    for u in g.node_ids() {
        let un = g.node(u);
        let su = un.annot.stage.expect("every node has a stage");
        assert!(su < stages);
        if un.op.is_leaf() {
            continue;
        }
        for o in g.operands(u) {
            let on = g.node(o);
            if on.op.is_leaf() {
                continue;
            }
            let so = on.annot.stage.unwrap();
            let (po, pu) = (phase(on), phase(un));
            if so != su {
                crossing += 1;
                // Only copies read another stage.
                assert_eq!(
                    last_component(&un.scope),
                    COPY_MARKER,
                    "{} reads across stages",
                    un.scope
                );
                assert!(matches!(un.op, Op::Reshape { .. }) && un.ty == on.ty);
            }
            match (po, pu) {
                (Phase::Forward, Phase::Forward) | (Phase::Forward, Phase::Backward) => {
                    assert!(
                        so <= su,
                        "forward data from stage {so} back to {su}: {} -> {}",
                        on.scope,
                        un.scope
                    )
                }
                (Phase::Backward, Phase::Backward) => {
                    assert!(
                        so >= su,
                        "gradient from stage {so} forward to {su}: {} -> {}",
                        on.scope,
                        un.scope
                    )
                }
                (Phase::Backward, Phase::Forward) => {
                    panic!("backward value read by a forward node")
                }
                _ => {}
            }
            // Backward nodes read forward activations through stash restores.
            if pu == Phase::Backward && po == Phase::Forward {
                let static_root =
                    matches!(on.op, Op::Param { .. } | Op::Full { .. } | Op::Iota { .. });
                assert!(
                    static_root || last_component(&on.scope) == STASH_MARKER,
                    "{} reads {} directly",
                    un.scope,
                    on.scope
                );
            }
        }
    }
    if stages > 1 {
        assert!(crossing > 0, "a pipelined graph has copies");
    }
}

#[test]
fn auto_placement_is_monotone_copied_stashed_and_bit_identical() {
    let t = tiny_training(5);
    let want = t.eval(&t.graph);
    for p in 1..=4 {
        let (g, report) = pipeline(&t.graph, &config(Placement::Auto, p), &mk2()).unwrap();
        tessera_ir::verify(&g).unwrap();
        check_placed(&g, p);
        assert_bits_equal(&want, &t.eval(&g));
        assert_eq!(report.stages.len(), p as usize);
        assert!(
            report.stages.iter().all(|s| !s.units.is_empty()),
            "{report:#?}"
        );
        assert!(report.samples_per_s > 0.0);
        assert!(report.bottleneck_s >= report.lower_bound_s);
        if p > 1 {
            assert!(report.copies > 0 && report.stashes > 0);
        }
    }
}

/// The stage of each layer of a placed tiny graph, by layer name; every node of a layer
/// (forward, backward and recomputed, copies and restores aside) must be on that stage.
fn layer_stages(g: &Graph) -> Vec<(String, u32)> {
    let units = Units::new(g, &LayerRule::lxmert(), Granularity::Layer);
    units
        .units()
        .iter()
        .map(|u| {
            let mut stages: Vec<u32> = u
                .nodes
                .iter()
                .filter(|&&n| {
                    let last = last_component(&g.node(n).scope);
                    last != COPY_MARKER && last != STASH_MARKER
                })
                .filter_map(|&n| g.node(n).annot.stage)
                .collect();
            stages.sort();
            stages.dedup();
            assert_eq!(stages.len(), 1, "{} spans stages {stages:?}", u.name);
            (u.name.clone(), stages[0])
        })
        .collect()
}

#[test]
fn manual_placement_follows_layers_per_ipu() {
    let t = tiny_training(5);
    // lxmert-tiny has 2 language, 1 object and 1 cross layer: [3, 1] puts the language
    // layers and the object layer on IPU 0, the cross layer on IPU 1; embeddings and the
    // visual projection precede the first layer (IPU 0), pooler, head and loss follow the
    // last (IPU 1).
    let cfg = config(
        Placement::Manual {
            layers_per_ipu: vec![3, 1],
        },
        2,
    );
    let (g, report) = pipeline(&t.graph, &cfg, &mk2()).unwrap();
    check_placed(&g, 2);
    assert_bits_equal(&t.eval(&t.graph), &t.eval(&g));
    let want = [
        ("lxmert.embeddings", 0),
        ("lxmert.encoder.visn_fc", 0),
        ("lxmert.encoder.layer.0", 0),
        ("lxmert.encoder.layer.1", 0),
        ("lxmert.encoder.r_layers.0", 0),
        ("lxmert.encoder.x_layers.0", 1),
        ("lxmert.pooler", 1),
        ("answer_head", 1),
        ("loss", 1),
    ];
    let got = layer_stages(&g);
    for (name, stage) in want {
        assert!(
            got.contains(&(name.to_string(), stage)),
            "{name} not on {stage}: {got:?}"
        );
    }
    assert_eq!(report.placement, "manual");
    assert_eq!(
        report.stages[0].contents,
        "lxmert.embeddings, lxmert.encoder.visn_fc, lxmert.encoder.layer.{0..1}, lxmert.encoder.r_layers.0"
    );
    let rs = report.recompute.as_ref().unwrap();
    assert!(rs.recomputed_nodes > 0 && rs.stash_bytes < rs.stash_bytes_before);
}

#[test]
fn manual_placement_errors() {
    let t = tiny_training(5);
    let manual = |lpi: Vec<i64>, p: u32| {
        pipeline(
            &t.graph,
            &config(
                Placement::Manual {
                    layers_per_ipu: lpi,
                },
                p,
            ),
            &mk2(),
        )
        .unwrap_err()
    };
    // Sums to 3, the model has 4 layers.
    let e = manual(vec![2, 1], 2);
    assert!(matches!(e, PipelineError::LayersPerIpu(_)), "{e}");
    assert!(
        e.to_string()
            .contains("places 3 layers, but the model has 4"),
        "{e}"
    );
    // Five stages for four layers.
    let e = manual(vec![-1], 5);
    assert_eq!(
        e,
        PipelineError::TooManyStages {
            stages: 5,
            available: 4,
            what: "layers"
        }
    );
    let e = manual(vec![-1], 0);
    assert_eq!(e, PipelineError::NoStages);
    assert!(e.to_string().contains("0 IPUs"));
}

#[test]
fn hand_placement_of_lxmert() {
    let t = tiny_training(5);
    let (g, report) = pipeline(&t.graph, &config(Placement::OptimumGraphcore, 4), &mk2()).unwrap();
    check_placed(&g, 4);
    assert_bits_equal(&t.eval(&t.graph), &t.eval(&g));
    let got = layer_stages(&g);
    for (name, stage) in [
        ("lxmert.embeddings", 0),
        ("lxmert.encoder.visn_fc", 0),
        ("lxmert.encoder.layer.0", 1),
        ("lxmert.encoder.layer.1", 1),
        ("lxmert.encoder.r_layers.0", 2),
        ("lxmert.encoder.x_layers.0", 3),
        ("lxmert.pooler", 3),
        ("answer_head", 3),
        ("loss", 3),
    ] {
        assert!(
            got.contains(&(name.to_string(), stage)),
            "{name} not on {stage}: {got:?}"
        );
    }
    assert!(report.hand.is_none(), "no comparison with itself");
    let e = pipeline(&t.graph, &config(Placement::OptimumGraphcore, 3), &mk2()).unwrap_err();
    assert!(e.to_string().contains("3 IPUs per replica"), "{e}");
}

#[test]
fn auto_beats_or_matches_the_hand_placement_on_tiny() {
    let t = tiny_training(5);
    let (_, report) = pipeline(&t.graph, &config(Placement::Auto, 4), &mk2()).unwrap();
    let hand = report
        .hand
        .as_ref()
        .expect("LXMERT on 4 chips has a hand placement");
    assert!(hand.fits);
    assert!(
        report.samples_per_s >= hand.samples_per_s,
        "auto {} vs hand {}",
        report.samples_per_s,
        hand.samples_per_s
    );
    assert!((hand.speedup - report.samples_per_s / hand.samples_per_s).abs() < 1e-9);
    let search = report.search.as_ref().unwrap();
    assert!(search.exhaustive && search.visited > 0);
}

/// mk2 with so little memory per tile that nothing fits.
fn small_chip(bytes_per_tile: u64) -> Target {
    Target {
        bytes_per_tile,
        ..mk2()
    }
}

#[test]
fn memory_that_nothing_fits_in_is_an_error_naming_the_chip() {
    let t = tiny_training(5);
    let chip = small_chip(1024);
    let e = pipeline(&t.graph, &config(Placement::Auto, 2), &chip).unwrap_err();
    let PipelineError::NothingFits {
        needed,
        capacity,
        over,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(*capacity, 1472 * 1024);
    assert_eq!(*over, needed - capacity);
    assert!(
        e.to_string().contains("over its capacity of 1507328 bytes"),
        "{e}"
    );
    let e = pipeline(&t.graph, &config(Placement::OptimumGraphcore, 4), &chip).unwrap_err();
    let PipelineError::DoesNotFit {
        stage,
        needed,
        over,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert!(*stage < 4 && *over == needed - 1472 * 1024, "{e}");
    assert!(e
        .to_string()
        .contains(&format!("stage {stage} (IPU {stage}) needs {needed} bytes")));
}

#[test]
fn explicit_placement_errors() {
    let t = tiny_training(5);
    let with = |map: Vec<(&str, u32)>| {
        let map = map.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
        let cfg = PipelineConfig {
            split_layers: false,
            ..config(Placement::Units(map), 2)
        };
        pipeline(&t.graph, &cfg, &mk2())
    };
    let e = with(vec![("nope", 0)]).unwrap_err();
    assert!(matches!(e, PipelineError::UnknownUnit { .. }), "{e}");
    let e = with(vec![("loss", 2)]).unwrap_err();
    assert!(
        matches!(e, PipelineError::StageOutOfRange { stage: 2, .. }),
        "{e}"
    );
    let e = with(vec![("loss", 1)]).unwrap_err();
    assert!(matches!(e, PipelineError::UnplacedUnit { .. }), "{e}");
    // Everything on 0 except the embeddings: forward data would flow back.
    let units = Units::new(&t.graph, &LayerRule::lxmert(), Granularity::Layer);
    let map: Vec<(&str, u32)> = units
        .units()
        .iter()
        .map(|u| (u.name.as_str(), u32::from(u.name == "lxmert.embeddings")))
        .collect();
    let e = with(map).unwrap_err();
    assert!(
        matches!(&e, PipelineError::BackwardFlow { from, from_stage: 1, to_stage: 0, .. } if from == "lxmert.embeddings"),
        "{e}"
    );
}

#[test]
fn a_graph_recomputed_before_placement_is_placed_by_whole_layers() {
    let t = tiny_training(5);
    let rc = RecomputeConfig {
        rule: LayerRule::lxmert(),
        ..RecomputeConfig::new(RecomputeMode::Layer)
    };
    let pre = crate::recompute::recompute(&t.graph, &rc).unwrap().0;
    let cfg = PipelineConfig {
        recompute: None,
        ..config(Placement::Auto, 4)
    };
    let (g, report) = pipeline(&pre, &cfg, &mk2()).unwrap();
    check_placed(&g, 4);
    assert_bits_equal(&t.eval(&t.graph), &t.eval(&g));
    assert!(
        report.stages.iter().all(|s| !s.contents.contains('[')),
        "{report:#?}"
    );
}
