//! The shape of the rewrite: which nodes are fp16 and fp32, shared working copies,
//! re-typed constants, unchanged interface, statistics.

use super::*;

fn dtype_of(g: &Graph, name: &str) -> Vec<DType> {
    nodes_named(g, name)
        .into_iter()
        .map(|n| g.node(n).ty.dtype)
        .collect()
}

#[test]
fn policy_places_ops_and_keeps_the_interface() {
    let src = fragment();
    let (g, stats) = mixed_precision(&src, &PrecisionConfig::plain_fp16()).unwrap();
    tessera_ir::verify(&g).unwrap();
    assert_eq!(dtype_of(&g, "matmul"), vec![DType::F16; 4]);
    assert_eq!(dtype_of(&g, "gather"), vec![DType::F16]);
    assert_eq!(dtype_of(&g, "gelu"), vec![DType::F16]);
    assert_eq!(dtype_of(&g, "layer_norm"), vec![DType::F32]);
    assert_eq!(dtype_of(&g, "softmax"), vec![DType::F32]);
    assert_eq!(dtype_of(&g, "reduce_mean"), vec![DType::F32]);
    // plain_fp16: no half partials.
    for n in nodes_named(&g, "matmul") {
        assert!(matches!(
            g.node(n).op,
            Op::MatMul {
                half_partials: false,
                ..
            }
        ));
    }
    // Inputs, parameters and outputs keep their types.
    for (a, b) in src.inputs().into_iter().zip(g.inputs()) {
        assert_eq!(src.node(a).ty, g.node(b).ty);
    }
    for p in g.params() {
        assert_eq!(g.node(p).ty.dtype, DType::F32);
    }
    let out = g.output("question_answering_score").unwrap();
    assert_eq!(g.node(out).ty, f32t(&[B, C]));
    assert_eq!(stats.params_in_fp16, 0);
    assert_eq!(stats.half_partials_matmuls, 0);
}

#[test]
fn each_parameter_has_one_shared_f16_working_copy() {
    let (g, stats) = mixed_precision(&fragment(), &PrecisionConfig::plain_fp16()).unwrap();
    for p in g.params() {
        let Op::Param { name, .. } = &g.node(p).op else {
            unreachable!()
        };
        let users = g.users(p);
        let casts: Vec<NodeId> = users
            .iter()
            .copied()
            .filter(|&u| g.node(u).op == Op::Cast { to: DType::F16 })
            .collect();
        if name.starts_with("ln.") {
            // Layer-norm parameters are read in f32 by the f32 layer norm.
            assert!(casts.is_empty(), "{name}");
            continue;
        }
        assert_eq!(users.len(), 1, "{name}: {users:?}");
        assert_eq!(casts.len(), 1, "{name}");
    }
    // The 5 non-LN parameters' copies, plus: the embedding to f32 for the layer norm, its
    // output to f16 (read by 2 matmuls and the residual: one cast), the mask to f16,
    // scores + mask to f32 for softmax, softmax back to f16, logits to f32 for the mean.
    assert_eq!(stats.casts_inserted, 5 + 6, "{stats:?}");
    assert_eq!(
        nodes_named(&g, "cast").len() as u64,
        stats.casts_inserted + 1
    );
}

#[test]
fn constants_are_retyped_and_saturated() {
    let (g, stats) = mixed_precision(&fragment(), &PrecisionConfig::plain_fp16()).unwrap();
    let fulls: Vec<(f64, DType)> = nodes_named(&g, "full")
        .into_iter()
        .map(|n| match &g.node(n).op {
            Op::Full { value, ty } => (*value, ty.dtype),
            _ => unreachable!(),
        })
        .collect();
    // `1 - mask` and `* finfo(f32).min` computed in f16: the constants are f16, and the
    // f32 minimum saturates to -65504 (not -inf, which would give 0 * -inf = NaN).
    assert!(fulls.contains(&(1.0, DType::F16)), "{fulls:?}");
    assert!(fulls.contains(&(-65504.0, DType::F16)), "{fulls:?}");
    assert_eq!(
        fulls.len(),
        2,
        "the unused f32 originals are removed: {fulls:?}"
    );
    assert_eq!((stats.constants_retyped, stats.constants_saturated), (2, 1));
}

#[test]
fn f16_master_weights_and_half_partials() {
    let cfg = PrecisionConfig::seed_run();
    assert_eq!(cfg, PrecisionConfig::default());
    let src = fragment();
    let (g, stats) = mixed_precision(&src, &cfg).unwrap();
    tessera_ir::verify(&g).unwrap();
    let mut param_bytes = 0;
    for p in g.params() {
        assert_eq!(g.node(p).ty.dtype, DType::F16);
        param_bytes += 4 * g.node(p).ty.num_elements() as u64;
    }
    assert_eq!(stats.params_in_fp16, src.params().len() as u64);
    assert_eq!(stats.param_bytes_moved_to_fp16, param_bytes);
    for n in nodes_named(&g, "matmul") {
        assert!(matches!(
            g.node(n).op,
            Op::MatMul {
                half_partials: true,
                ..
            }
        ));
    }
    assert_eq!(stats.half_partials_matmuls, 4);
    // The layer norm reads its f16 parameters through one f32 cast each.
    let ln = nodes_named(&g, "layer_norm")[0];
    for o in g.operands(ln) {
        assert_eq!(g.node(o).op, Op::Cast { to: DType::F32 });
    }
    // Activation bytes: every f32 activation now f16, counted at its f32 size.
    let mut act = 0;
    let map_src: Vec<NodeId> = src.node_ids().collect();
    for n in map_src {
        let node = src.node(n);
        let f16_now = matches!(
            node.op.name(),
            "gather" | "matmul" | "add" | "gelu" | "sub" | "mul"
        ) && node.ty.dtype == DType::F32;
        if f16_now {
            act += 4 * node.ty.num_elements() as u64;
        }
    }
    assert_eq!(stats.activation_bytes_moved_to_fp16, act);
    assert_eq!(stats.bytes_moved_to_fp16, act + param_bytes);
}

#[test]
fn fp32_scopes_and_redundant_input_casts() {
    let mut g = Graph::new("t");
    let x = g.input("x", f32t(&[4])).unwrap();
    let same = g.add(Op::Cast { to: DType::F32 }, &[x], "m").unwrap();
    let a = g.add(Op::Unary(UnaryOp::Tanh), &[same], "m").unwrap();
    let b = g.add(Op::Unary(UnaryOp::Tanh), &[a], "loss").unwrap();
    let c = g
        .add(Op::Unary(UnaryOp::Tanh), &[b], "loss.backward")
        .unwrap();
    let d = g.add(Op::Unary(UnaryOp::Tanh), &[c], "lossy").unwrap();
    g.set_output("d", d).unwrap();
    let (r, stats) = mixed_precision(&g, &PrecisionConfig::plain_fp16()).unwrap();
    let tanh: Vec<(String, DType)> = r
        .topo_order()
        .into_iter()
        .filter(|&n| r.node(n).op == Op::Unary(UnaryOp::Tanh))
        .map(|n| (r.node(n).scope.clone(), r.node(n).ty.dtype))
        .collect();
    let want = [
        ("m", DType::F16),
        ("loss", DType::F32),
        ("loss.backward", DType::F32),
        ("lossy", DType::F16),
    ];
    assert_eq!(tanh.len(), 4);
    for ((s, d), (ws, wd)) in tanh.iter().zip(want) {
        assert_eq!((s.as_str(), *d), (ws, wd));
    }
    assert_eq!(stats.casts_folded, 1, "{stats:?}");
    assert!(r
        .users(r.inputs()[0])
        .iter()
        .all(|&u| r.node(u).op == Op::Cast { to: DType::F16 }));
}

#[test]
fn config_validation_and_serde() {
    let mut cfg = PrecisionConfig::plain_fp16();
    cfg.loss_scaling = LossScaling::Static(0.0);
    let e = mixed_precision(&fragment(), &cfg).unwrap_err();
    assert!(e.to_string().contains("loss_scaling"), "{e}");
    cfg.loss_scaling = LossScaling::Dynamic(DynamicScaling {
        init_scale: 8.0,
        growth_interval: 0,
    });
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("growth_interval"));
    cfg.fp32_scopes = vec![String::new()];
    cfg.loss_scaling = LossScaling::None;
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("fp32_scopes"));

    let seed = PrecisionConfig::seed_run();
    let json = serde_json::to_string(&seed).unwrap();
    assert!(json.contains("\"master_weights\":\"f16\""), "{json}");
    assert!(json.contains("\"static\":16384"), "{json}");
    let back: PrecisionConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, seed);
    let partial: PrecisionConfig =
        serde_json::from_str(r#"{"loss_scaling": {"dynamic": {"growth_interval": 10}}}"#).unwrap();
    assert_eq!(
        partial.loss_scaling,
        LossScaling::Dynamic(DynamicScaling {
            init_scale: 65536.0,
            growth_interval: 10
        })
    );
    assert!(serde_json::from_str::<PrecisionConfig>(r#"{"half_partial": true}"#).is_err());
}

#[test]
fn running_the_pass_twice_changes_nothing() {
    for cfg in [PrecisionConfig::plain_fp16(), PrecisionConfig::seed_run()] {
        let (once, _) = mixed_precision(&fragment(), &cfg).unwrap();
        let (twice, stats) = mixed_precision(&once, &cfg).unwrap();
        assert_eq!(
            tessera_ir::text::print(&once),
            tessera_ir::text::print(&twice)
        );
        assert_eq!(stats.casts_inserted, 0, "{stats:?}");
        assert_eq!(stats.params_in_fp16, 0, "{stats:?}");
    }
}
