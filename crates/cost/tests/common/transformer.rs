//! A synthetic BERT-style training graph for size and speed tests: `layers` encoder layers
//! at sequence length `seq` (hidden 768, 12 heads, FFN 3072, fp16), each with a
//! hand-written backward pass (scoped `backward`, matmul for matmul, so its shapes and op
//! mix are those of a real one, not its numerics), the layers spread evenly over `stages`
//! pipeline stages, and `grad.<name>` outputs for every weight.

use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, ReduceKind, TensorType, UnaryOp};

const H: usize = 768;
const HEADS: usize = 12;
const FFN: usize = 3072;

struct B<'g> {
    g: &'g mut Graph,
    stage: u32,
    grads: Vec<(String, NodeId)>,
}

fn f16(s: &[usize]) -> TensorType {
    TensorType::new(DType::F16, s.to_vec())
}

fn mm(ta: bool, tb: bool) -> Op {
    Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
        half_partials: true,
    }
}

impl B<'_> {
    fn op(&mut self, op: Op, args: &[NodeId], scope: &str) -> NodeId {
        let id = self
            .g
            .add(op, args, scope)
            .expect("well-typed synthetic node");
        self.g.node_mut(id).annot.stage = Some(self.stage);
        id
    }

    fn param(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.g
            .param(name, f16(shape))
            .expect("unique parameter name")
    }

    /// `x·Wᵀ + b` with its backward: returns (y, closure data for backward).
    fn linear(&mut self, x: NodeId, din: usize, dout: usize, scope: &str) -> (NodeId, NodeId) {
        let w = self.param(&format!("{scope}.weight"), &[dout, din]);
        let b = self.param(&format!("{scope}.bias"), &[dout]);
        let xw = self.op(mm(false, true), &[x, w], scope);
        (self.op(Op::Binary(BinaryOp::Add), &[xw, b], scope), w)
    }

    /// Backward of a linear layer: dX = dY·W, dW = dYᵀ·X, db = Σ dY.
    fn linear_back(&mut self, dy: NodeId, x: NodeId, w: NodeId, scope: &str) -> NodeId {
        let bs = format!("{scope}.backward");
        let dx = self.op(mm(false, false), &[dy, w], &bs);
        let dw = self.op(mm(true, false), &[dy, x], &bs);
        let sum = Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![0],
            keep_dims: false,
        };
        let db = self.op(sum, &[dy], &bs);
        self.grads.push((format!("{scope}.weight"), dw));
        self.grads.push((format!("{scope}.bias"), db));
        dx
    }

    fn layer_norm(&mut self, x: NodeId, scope: &str) -> NodeId {
        let gamma = self.param(&format!("{scope}.weight"), &[H]);
        let beta = self.param(&format!("{scope}.bias"), &[H]);
        self.op(Op::LayerNorm { eps: 1e-12 }, &[x, gamma, beta], scope)
    }

    fn heads(&mut self, x: NodeId, seq: usize, scope: &str) -> NodeId {
        let r = self.op(
            Op::Reshape {
                shape: vec![seq, HEADS, H / HEADS],
            },
            &[x],
            scope,
        );
        self.op(
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            &[r],
            scope,
        )
    }

    fn layer(&mut self, x: NodeId, seq: usize, scope: &str) -> NodeId {
        let s = |n: &str| format!("{scope}.{n}");
        let (q, wq) = self.linear(x, H, H, &s("attention.self.query"));
        let (k, wk) = self.linear(x, H, H, &s("attention.self.key"));
        let (v, wv) = self.linear(x, H, H, &s("attention.self.value"));
        let (qh, kh, vh) = (
            self.heads(q, seq, &s("attention.self")),
            self.heads(k, seq, &s("attention.self")),
            self.heads(v, seq, &s("attention.self")),
        );
        let scores = self.op(mm(false, true), &[qh, kh], &s("attention.self"));
        let scale = self.op(
            Op::Full {
                value: 0.125,
                ty: TensorType::scalar(DType::F16),
            },
            &[],
            &s("attention.self"),
        );
        let scaled = self.op(
            Op::Binary(BinaryOp::Mul),
            &[scores, scale],
            &s("attention.self"),
        );
        let probs = self.op(Op::Softmax, &[scaled], &s("attention.self"));
        let ctx = self.op(mm(false, false), &[probs, vh], &s("attention.self"));
        let ctx_t = self.op(
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            &[ctx],
            &s("attention.self"),
        );
        let ctx_r = self.op(
            Op::Reshape {
                shape: vec![seq, H],
            },
            &[ctx_t],
            &s("attention.self"),
        );
        let (o, wo) = self.linear(ctx_r, H, H, &s("attention.output.dense"));
        let res1 = self.op(Op::Binary(BinaryOp::Add), &[o, x], &s("attention.output"));
        let ln1 = self.layer_norm(res1, &s("attention.output.LayerNorm"));
        let (f1, wi) = self.linear(ln1, H, FFN, &s("intermediate.dense"));
        let act = self.op(Op::Unary(UnaryOp::Gelu), &[f1], &s("intermediate"));
        let (f2, wf) = self.linear(act, FFN, H, &s("output.dense"));
        let res2 = self.op(Op::Binary(BinaryOp::Add), &[f2, ln1], &s("output"));
        let out = self.layer_norm(res2, &s("output.LayerNorm"));

        // Backward, in reverse, with the forward values it reads.
        let dout = self.op(
            Op::Binary(BinaryOp::Mul),
            &[out, res2],
            &s("output.LayerNorm.backward"),
        );
        let dact = self.linear_back(dout, act, wf, &s("output.dense"));
        let df1 = self.op(
            Op::Binary(BinaryOp::Mul),
            &[dact, f1],
            &s("intermediate.backward"),
        );
        let dln1 = self.linear_back(df1, ln1, wi, &s("intermediate.dense"));
        let dres1 = self.op(
            Op::Binary(BinaryOp::Add),
            &[dln1, dout],
            &s("attention.output.backward"),
        );
        let dctx_r = self.linear_back(dres1, ctx_r, wo, &s("attention.output.dense"));
        let dctx = self.heads(dctx_r, seq, &s("attention.self.backward"));
        let dprobs = self.op(mm(false, true), &[dctx, vh], &s("attention.self.backward"));
        let dvh = self.op(
            mm(true, false),
            &[probs, dctx],
            &s("attention.self.backward"),
        );
        let dsm = self.op(
            Op::Binary(BinaryOp::Mul),
            &[dprobs, probs],
            &s("attention.self.backward"),
        );
        let dqh = self.op(mm(false, false), &[dsm, kh], &s("attention.self.backward"));
        let dkh = self.op(mm(true, false), &[dsm, qh], &s("attention.self.backward"));
        let mut dx = dres1;
        for (dh, x_in, w, name) in [
            (dqh, x, wq, "attention.self.query"),
            (dkh, x, wk, "attention.self.key"),
            (dvh, x, wv, "attention.self.value"),
        ] {
            let t = self.op(
                Op::Transpose {
                    perm: vec![1, 0, 2],
                },
                &[dh],
                &s(name),
            );
            let r = self.op(
                Op::Reshape {
                    shape: vec![seq, H],
                },
                &[t],
                &s(name),
            );
            let d = self.linear_back(r, x_in, w, &s(name));
            dx = self.op(Op::Binary(BinaryOp::Add), &[dx, d], &s("backward"));
        }
        let _ = dx;
        out
    }
}

/// The synthetic training graph (see the module doc).
pub fn transformer(layers: usize, stages: u32, seq: usize) -> Graph {
    let mut g = Graph::new("synthetic_bert");
    let x = g
        .input("hidden_states", f16(&[seq, H]))
        .expect("fresh graph");
    let mut b = B {
        g: &mut g,
        stage: 0,
        grads: Vec::new(),
    };
    let mut h = x;
    let per_stage = layers.div_ceil(stages as usize).max(1);
    for l in 0..layers {
        b.stage = (l / per_stage) as u32;
        h = b.layer(h, seq, &format!("encoder.layer.{l}"));
    }
    let mean = Op::Reduce {
        kind: ReduceKind::Mean,
        axes: vec![0, 1],
        keep_dims: false,
    };
    let loss = b.op(mean, &[h], "loss");
    let grads = std::mem::take(&mut b.grads);
    g.set_output("loss", loss).expect("first output");
    for (name, node) in grads {
        g.set_output(&format!("grad.{name}"), node)
            .expect("unique gradient name");
    }
    g
}
