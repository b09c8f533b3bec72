//! The schedule's values, config validation, the graph's interface and scopes, and
//! Trainer's grouping.

use super::*;
use tessera_ir::{Graph, Op};

#[test]
fn invalid_config_names_the_field() {
    let cases: Vec<(AdamWConfig, &str)> = vec![
        (AdamWConfig { lr: -1.0, ..cfg() }, "lr"),
        (
            AdamWConfig {
                lr: f64::INFINITY,
                ..cfg()
            },
            "lr",
        ),
        (
            AdamWConfig {
                beta1: 1.0,
                ..cfg()
            },
            "beta1",
        ),
        (
            AdamWConfig {
                beta2: -0.1,
                ..cfg()
            },
            "beta2",
        ),
        (AdamWConfig { eps: 0.0, ..cfg() }, "eps"),
        (
            AdamWConfig {
                weight_decay: f64::NAN,
                ..cfg()
            },
            "weight_decay",
        ),
        (
            AdamWConfig {
                grad_accum: 0,
                ..cfg()
            },
            "grad_accum",
        ),
        (
            AdamWConfig {
                total_steps: 0,
                warmup_steps: 0,
                ..cfg()
            },
            "total_steps",
        ),
        (
            AdamWConfig {
                warmup_steps: 11,
                ..cfg()
            },
            "warmup_steps",
        ),
        (
            AdamWConfig {
                max_grad_norm: Some(0.0),
                ..cfg()
            },
            "max_grad_norm",
        ),
    ];
    for (c, field) in cases {
        let e = build_optimizer_graph(&params(), &c).unwrap_err();
        assert!(
            matches!(&e, OptimError::InvalidConfig { field: f, .. } if *f == field),
            "{field}: {e}"
        );
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
    }
}

#[test]
fn graph_interface_and_scopes() {
    let mut ps = params();
    ps.push(OptimParam {
        name: "half.weight".into(),
        ty: TensorType::new(DType::F16, vec![2]),
        weight_decay: true,
    });
    let g = build_optimizer_graph(&ps, &cfg()).unwrap();
    verify(&g).unwrap();
    let outs: Vec<&str> = g.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        outs,
        [
            "param.dense.weight",
            "adam_m.dense.weight",
            "adam_v.dense.weight",
            "param.dense.bias",
            "adam_m.dense.bias",
            "adam_v.dense.bias",
            "param.half.weight",
            "adam_m.half.weight",
            "adam_v.half.weight",
            "lr",
            "grad_norm"
        ]
    );
    let half = g.output("param.half.weight").unwrap();
    assert_eq!(g.node(half).ty, TensorType::new(DType::F16, vec![2]));
    for id in g.node_ids() {
        let n = g.node(id);
        match &n.op {
            Op::Input { .. } | Op::Param { .. } => {}
            _ => assert!(
                n.scope == "optimizer" || n.scope.starts_with("optimizer."),
                "{}",
                n.scope
            ),
        }
    }
    let bad = vec![OptimParam {
        name: "ids".into(),
        ty: TensorType::new(DType::I64, vec![2]),
        weight_decay: false,
    }];
    let e = build_optimizer_graph(&bad, &cfg()).unwrap_err();
    assert!(e.to_string().contains("`ids`"), "{e}");
}

#[test]
fn trainer_grouping_excludes_biases_and_layer_norm_params() {
    let f = |s: &[usize]| TensorType::new(DType::F32, s.to_vec());
    let mut g = Graph::new("m");
    let x = g.input("x", f(&[2, 4])).unwrap();
    let w = g.param("head.0.weight", f(&[4, 4])).unwrap();
    let b = g.param("head.0.bias", f(&[4])).unwrap();
    let gamma = g.param("head.2.weight", f(&[4])).unwrap();
    let beta = g.param("head.2.bias", f(&[4])).unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let y = g.add(mm, &[x, w], "head.0").unwrap();
    let y = g
        .add(Op::Binary(tessera_ir::BinaryOp::Add), &[y, b], "head.0")
        .unwrap();
    let y = g
        .add(Op::LayerNorm { eps: 1e-12 }, &[y, gamma, beta], "head.2")
        .unwrap();
    let loss = g
        .add(
            Op::Reduce {
                kind: tessera_ir::ReduceKind::Sum,
                axes: vec![0, 1],
                keep_dims: false,
            },
            &[y],
            "loss",
        )
        .unwrap();
    g.set_output("loss", loss).unwrap();
    let ad = crate::autodiff(&g, &Default::default()).unwrap();
    let ps = trainer_optim_params(&ad).unwrap();
    let groups: Vec<(&str, bool)> = ps
        .iter()
        .map(|p| (p.name.as_str(), p.weight_decay))
        .collect();
    assert_eq!(
        groups,
        [
            ("head.0.weight", true),
            ("head.0.bias", false),
            ("head.2.weight", false),
            ("head.2.bias", false)
        ]
    );
}
