//! Tests of the autodiff pass: structure of the result (outputs, pruning, scopes, errors)
//! here; finite-difference checks of every rule in the submodules.

mod elementwise;
pub(crate) mod harness;
mod linalg;
mod reduce;
mod shape;

use super::*;
use harness::{compare, Problem, Tol};
use tessera_ir::{verify, BinaryOp, CmpOp, DType, Op, ReduceKind, Tensor, TensorType, UnaryOp};

fn sum_all(g: &mut Graph, x: NodeId) -> NodeId {
    let rank = g.node(x).ty.rank();
    g.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: (0..rank).collect(),
            keep_dims: false,
        },
        &[x],
        "head",
    )
    .unwrap()
}

/// Two heads: `loss` from `a`, `other` from `b`; `b` never reaches the loss.
fn two_heads() -> (Graph, NodeId, NodeId, NodeId) {
    let f = TensorType::new(DType::F32, vec![2, 3]);
    let mut g = Graph::new("two");
    let x = g.input("x", f.clone()).unwrap();
    let a = g
        .param("enc.a", TensorType::new(DType::F32, vec![3]))
        .unwrap();
    let b = g.param("dec.b", f.clone()).unwrap();
    let xa = g.add(Op::Binary(BinaryOp::Mul), &[x, a], "enc").unwrap();
    let t = g.add(Op::Unary(UnaryOp::Tanh), &[xa], "enc").unwrap();
    let xb = g.add(Op::Binary(BinaryOp::Add), &[t, b], "dec").unwrap();
    let other = g.add(Op::Unary(UnaryOp::Exp), &[xb], "dec").unwrap();
    let loss = sum_all(&mut g, t);
    g.set_output("other", other).unwrap();
    g.set_output("loss", loss).unwrap();
    (g, b, xb, other)
}

#[test]
fn unreachable_param_gets_no_gradient_and_its_branch_is_removed() {
    let (g, b, xb, other) = two_heads();
    let ad = autodiff(&g, &AutodiffOptions::default()).unwrap();
    let names: Vec<&str> = ad.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["loss", "grad.enc.a"]);
    for gone in [b, xb, other] {
        assert!(!ad.contains(gone), "{gone:?} feeds only the dropped output");
    }
    assert!(ad.params().len() == 1);
    verify(&ad).unwrap();
}

#[test]
fn backward_nodes_are_scoped_under_their_forward_scope() {
    let (g, ..) = two_heads();
    let ad = autodiff(&g, &AutodiffOptions::default()).unwrap();
    let mut backward = 0;
    for id in ad.node_ids() {
        let n = ad.node(id);
        if g.contains(id) {
            assert!(!is_backward_scope(&n.scope), "forward node in {}", n.scope);
        } else {
            backward += 1;
            assert!(
                ["head.backward", "enc.backward"].contains(&n.scope.as_str()),
                "unexpected backward scope `{}`",
                n.scope
            );
        }
    }
    assert!(backward > 0);
    assert!(is_backward_scope(
        "lxmert.encoder.layer.0.attention.self.query.backward"
    ));
    assert!(is_backward_scope("backward"));
    assert!(!is_backward_scope("lxmert.encoder.layer.0"));
    assert!(!is_backward_scope("my_backward"));
    assert_eq!(backward_scope(""), "backward");
    assert_eq!(backward_scope("a.b"), "a.b.backward");
}

#[test]
fn seed_scale_scales_every_gradient() {
    let mut p = Problem::new(4);
    let x = p.param("x", &[2, 2], -1.0, 1.0);
    let y = p.add(Op::Unary(UnaryOp::Sigmoid), &[x]);
    let chk = p.finish(y);
    let base = chk.ad_outputs(&AutodiffOptions::default());
    let scaled = chk.ad_outputs(&AutodiffOptions {
        seed_scale: 1024.0,
        ..AutodiffOptions::default()
    });
    let want: Vec<f64> = base["grad.x"]
        .to_f64_vec()
        .iter()
        .map(|g| g * 1024.0)
        .collect();
    compare(
        "x",
        &scaled["grad.x"].to_f64_vec(),
        &want,
        Tol {
            h: 0.0,
            atol: 0.0,
            rtol: 1e-6,
        },
    )
    .unwrap();
    assert_eq!(
        base["loss"], scaled["loss"],
        "the loss itself is not scaled"
    );
}

#[test]
fn no_gradient_through_inputs_constants_and_comparisons() {
    // loss = Σ w ⊙ (select(x > c, y, 0) + one_hot(i) + iota): `x` only feeds a comparison.
    let mut p = Problem::new(8);
    let x = p.param("x", &[3], -1.0, 1.0);
    let yv = p.param("y", &[3], -1.0, 1.0);
    let c = p.input(
        "c",
        Tensor::from_f32(vec![3], vec![0.0, 0.5, -0.5]).unwrap(),
    );
    let i = p.input("i", Tensor::from_i64(vec![], vec![1]).unwrap());
    let gt = p.add(Op::Compare(CmpOp::Gt), &[x, c]);
    let zero = p.add(
        Op::Full {
            value: 0.0,
            ty: TensorType::scalar(DType::F32),
        },
        &[],
    );
    let sel = p.add(Op::Select, &[gt, yv, zero]);
    let oh = p.add(
        Op::OneHot {
            depth: 3,
            dtype: DType::F32,
        },
        &[i],
    );
    let io = p.add(
        Op::Iota {
            axis: 0,
            ty: TensorType::new(DType::F32, vec![3]),
        },
        &[],
    );
    let s = p.add(Op::Binary(BinaryOp::Add), &[sel, oh]);
    let s = p.add(Op::Binary(BinaryOp::Add), &[s, io]);
    let s = p.add(Op::Binary(BinaryOp::Mul), &[s, c]);
    let chk = p.finish(s);
    let ad = autodiff(&chk.g, &AutodiffOptions::default()).unwrap();
    let names: Vec<&str> = ad.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["loss", "grad.y"],
        "x reaches the loss only through a comparison"
    );
    let e = chk.check(Tol::default()).unwrap_err();
    assert!(e.contains("no output grad.x"), "{e}");
    let out = chk.ad_outputs(&AutodiffOptions::default());
    let fd = chk.fd_grad("y", 1e-3);
    compare("y", &out["grad.y"].to_f64_vec(), &fd, Tol::default()).unwrap();
}

#[test]
fn integer_params_get_no_gradient() {
    let mut g = Graph::new("int");
    let ids = g
        .param("ids", TensorType::new(DType::I64, vec![2]))
        .unwrap();
    let table = g
        .param("emb.weight", TensorType::new(DType::F32, vec![4, 3]))
        .unwrap();
    let e = g
        .add(Op::Gather { padding_idx: None }, &[table, ids], "emb")
        .unwrap();
    let loss = sum_all(&mut g, e);
    g.set_output("loss", loss).unwrap();
    let ad = autodiff(&g, &AutodiffOptions::default()).unwrap();
    let names: Vec<&str> = ad.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["loss", "grad.emb.weight"]);
}

#[test]
fn loss_without_params_gives_only_the_loss() {
    let mut g = Graph::new("const");
    let x = g.input("x", TensorType::new(DType::F32, vec![2])).unwrap();
    let loss = sum_all(&mut g, x);
    g.set_output("loss", loss).unwrap();
    let ad = autodiff(&g, &AutodiffOptions::default()).unwrap();
    assert_eq!(ad.outputs().len(), 1);
    assert_eq!(ad.len(), 2);
}

#[test]
fn errors_name_the_output_and_node() {
    let (g, ..) = two_heads();
    let e = autodiff(
        &g,
        &AutodiffOptions {
            loss: "total".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "graph @two has no output `total` to differentiate (its outputs: other, loss)"
    );
    let e = autodiff(
        &g,
        &AutodiffOptions {
            loss: "other".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("`other`") && msg.contains("@dec") && msg.contains("f32[2,3]"),
        "{msg}"
    );
    let e = autodiff(
        &g,
        &AutodiffOptions {
            seed_scale: f64::NAN,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, AutodiffError::InvalidSeed(_)));
}

#[test]
fn loss_keeps_a_custom_name() {
    let (mut g, ..) = two_heads();
    let loss = g.output("loss").unwrap();
    g.set_outputs(vec![Output {
        name: "objective".into(),
        node: loss,
    }]);
    let ad = autodiff(
        &g,
        &AutodiffOptions {
            loss: "objective".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ad.outputs()[0].name, "objective");
    assert_eq!(ad.outputs()[1].name, "grad.enc.a");
}

/// `loss = mean(cast_f32(gelu(softmax(layer_norm(x · wᵀ, g, b)))))` in element type `dt`.
fn mixed_graph(dt: DType) -> Graph {
    let t = |s: &[usize]| TensorType::new(dt, s.to_vec());
    let mut g = Graph::new("half");
    let x = g.param("x", t(&[2, 3])).unwrap();
    let w = g.param("lin.weight", t(&[4, 3])).unwrap();
    let gamma = g.param("ln.weight", t(&[4])).unwrap();
    let beta = g.param("ln.bias", t(&[4])).unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: dt == DType::F16,
    };
    let y = g.add(mm, &[x, w], "lin").unwrap();
    let y = g
        .add(Op::LayerNorm { eps: 1e-5 }, &[y, gamma, beta], "ln")
        .unwrap();
    let y = g.add(Op::Softmax, &[y], "act").unwrap();
    let y = g.add(Op::Unary(UnaryOp::Gelu), &[y], "act").unwrap();
    let y = g.add(Op::Cast { to: DType::F32 }, &[y], "act").unwrap();
    let mean = Op::Reduce {
        kind: ReduceKind::Mean,
        axes: vec![0, 1],
        keep_dims: false,
    };
    let loss = g.add(mean, &[y], "loss").unwrap();
    g.set_output("loss", loss).unwrap();
    g
}

#[test]
fn fp16_graphs_get_fp16_gradients_close_to_fp32() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let mut params32 = std::collections::HashMap::new();
    for (name, shape) in [
        ("x", vec![2, 3]),
        ("lin.weight", vec![4, 3]),
        ("ln.weight", vec![4]),
        ("ln.bias", vec![4]),
    ] {
        let n = shape.iter().product();
        // Values representable in f16, so both graphs see the same inputs.
        let v = (0..n)
            .map(|_| half::f16::from_f64(rng.gen_range(-1.0..1.0)).to_f32())
            .collect();
        params32.insert(name.to_string(), Tensor::from_f32(shape, v).unwrap());
    }
    let params16 = params32
        .iter()
        .map(|(k, v)| (k.clone(), v.cast(DType::F16)))
        .collect();
    let opts = AutodiffOptions::default();
    let ad16 = autodiff(&mixed_graph(DType::F16), &opts).unwrap();
    let ad32 = autodiff(&mixed_graph(DType::F32), &opts).unwrap();
    let none = std::collections::HashMap::new();
    let out16 = tessera_ir::eval::evaluate(&ad16, &none, &params16).unwrap();
    let out32 = tessera_ir::eval::evaluate(&ad32, &none, &params32).unwrap();
    for name in ["x", "lin.weight", "ln.weight", "ln.bias"] {
        let key = format!("grad.{name}");
        assert_eq!(out16[&key].dtype(), DType::F16, "{key}");
        let err = out16[&key].rel_max_err(&out32[&key]).unwrap();
        assert!(err < 2e-2, "{key}: f16 vs f32 relative error {err}");
    }
}

#[test]
fn linear_tanh_before_and_after() {
    // loss = Σ tanh(x · Wᵀ + b): the printed backward of a linear layer, for review.
    let mut g = Graph::new("linear");
    let x = g
        .input("x", TensorType::new(DType::F32, vec![2, 3, 4]))
        .unwrap();
    let w = g
        .param("dense.weight", TensorType::new(DType::F32, vec![5, 4]))
        .unwrap();
    let b = g
        .param("dense.bias", TensorType::new(DType::F32, vec![5]))
        .unwrap();
    let mm = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
        half_partials: false,
    };
    let y = g.add(mm, &[x, w], "dense").unwrap();
    let y = g.add(Op::Binary(BinaryOp::Add), &[y, b], "dense").unwrap();
    let y = g.add(Op::Unary(UnaryOp::Tanh), &[y], "act").unwrap();
    let loss = sum_all(&mut g, y);
    g.set_output("loss", loss).unwrap();
    let before = tessera_ir::text::print(&g);
    let after = tessera_ir::text::print(&autodiff(&g, &AutodiffOptions::default()).unwrap());
    insta::assert_snapshot!("linear_tanh", format!("{before}\n{after}"));
}
