//! Structural tests of the built graph: parameters, inputs, outputs, scopes, masks,
//! node counts (derived by hand from the module structure) and the verifier.

use super::*;
use crate::params::param_specs;
use std::collections::{BTreeMap, BTreeSet};
use tessera_ir::{verify, Op};

fn tiny() -> LxmertConfig {
    LxmertConfig::preset("lxmert-tiny").unwrap()
}

const TINY_SHAPES: Shapes = Shapes {
    batch: 2,
    seq_len: 7,
    num_objects: 5,
};

fn all_opts() -> BuildOptions {
    BuildOptions {
        visual_attention_mask: true,
        taps: true,
    }
}

/// Shapes of the fixture outputs (read from the safetensors header).
fn fixture_outputs() -> BTreeMap<String, Vec<usize>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/lxmert-tiny/outputs.safetensors"
    );
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect()
}

fn node_of_input(g: &Graph, name: &str) -> NodeId {
    g.input_by_name(name).unwrap()
}

#[test]
fn params_are_exactly_the_state_dict() {
    let cfg = tiny();
    let g = build(&cfg, &TINY_SHAPES, &all_opts()).unwrap();
    let in_graph: BTreeMap<String, Vec<usize>> = g
        .params()
        .into_iter()
        .map(|id| match &g.node(id).op {
            Op::Param { name, ty } => (name.clone(), ty.shape.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(in_graph.len(), g.params().len(), "duplicate param names");
    let specs: BTreeMap<String, Vec<usize>> = param_specs(&cfg)
        .into_iter()
        .map(|s| (s.name, s.shape))
        .collect();
    assert_eq!(in_graph, specs);
}

#[test]
fn inputs_and_outputs() {
    let cfg = tiny();
    for vmask in [false, true] {
        let opts = BuildOptions {
            visual_attention_mask: vmask,
            taps: false,
        };
        let g = build(&cfg, &TINY_SHAPES, &opts).unwrap();
        let inputs: Vec<String> = g
            .inputs()
            .into_iter()
            .map(|id| format!("{}:{}", op_name(&g, id), g.node(id).ty))
            .collect();
        let mut expected = vec![
            "input_ids:i64[2,7]",
            "attention_mask:i64[2,7]",
            "token_type_ids:i64[2,7]",
            "visual_feats:f32[2,5,16]",
            "visual_pos:f32[2,5,4]",
        ];
        if vmask {
            expected.push("visual_attention_mask:i64[2,5]");
        }
        assert_eq!(inputs, expected);
        let outputs: Vec<String> = g
            .outputs()
            .iter()
            .map(|o| format!("{}:{}", o.name, g.node(o.node).ty))
            .collect();
        assert_eq!(
            outputs,
            [
                "question_answering_score:f32[2,10]",
                "language_output:f32[2,7,32]",
                "vision_output:f32[2,5,32]",
                "pooled_output:f32[2,32]",
            ]
        );
    }
}

fn op_name(g: &Graph, id: NodeId) -> String {
    match &g.node(id).op {
        Op::Input { name, .. } => name.clone(),
        other => other.name().to_string(),
    }
}

#[test]
fn taps_match_the_fixture_names_and_shapes() {
    let g = build(&tiny(), &TINY_SHAPES, &all_opts()).unwrap();
    let ours: BTreeMap<String, Vec<usize>> = g
        .outputs()
        .iter()
        .map(|o| (o.name.clone(), g.node(o.node).ty.shape.clone()))
        .collect();
    let fixture: BTreeMap<String, Vec<usize>> = fixture_outputs()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("vmask.") && !n.starts_with("loss_"))
        .collect();
    assert_eq!(ours, fixture);
    // the last hidden states are the final outputs
    assert_eq!(
        g.output("language_hidden_states.2").unwrap(),
        g.output("language_output").unwrap()
    );
    assert_eq!(
        g.output("vision_hidden_states.1").unwrap(),
        g.output("vision_output").unwrap()
    );
}

#[test]
fn verifier_accepts_and_scopes_are_module_paths() {
    let cfg = tiny();
    let g = build(&cfg, &TINY_SHAPES, &all_opts()).unwrap();
    verify(&g).unwrap();
    // module paths: every prefix of a parameter's module path, plus the GELU of the head
    let mut modules: BTreeSet<String> = BTreeSet::new();
    for s in param_specs(&cfg) {
        let parts: Vec<&str> = s.name.split('.').collect();
        for k in 1..parts.len() {
            modules.insert(parts[..k].join("."));
        }
    }
    modules.insert("answer_head.logit_fc.1".into());
    for id in g.node_ids() {
        let n = g.node(id);
        if matches!(n.op, Op::Input { .. }) {
            // graph arguments live at top level (`Graph::input`)
            assert_eq!(n.scope, "");
            continue;
        }
        assert!(
            modules.contains(&n.scope),
            "{} at `{}`",
            n.op.name(),
            n.scope
        );
    }
}

#[test]
fn node_count_is_lean() {
    // Hand count per module (nodes + params): Linear 2, LayerNorm 1, attention 19 (+1
    // mask add), attention output 4, intermediate 3, output 4; LxmertLayer 30 (+1),
    // XLayer 108 (+1 per masked visual direction), embeddings 7, visual encoder 9,
    // extended mask 6, pooler 5, answer head 6.
    let cfg = tiny();
    let (l, x, r) = (cfg.l_layers, cfg.x_layers, cfg.r_layers);
    let params = param_specs(&cfg).len();
    let plain = build(&cfg, &TINY_SHAPES, &BuildOptions::default()).unwrap();
    let expected = 5 + 6 + 7 + 9 + 31 * l + 30 * r + 108 * x + 5 + 6 + params;
    assert_eq!(plain.len(), expected);
    let masked = build(&cfg, &TINY_SHAPES, &all_opts()).unwrap();
    let expected = 6 + 12 + 7 + 9 + 31 * l + 31 * r + 110 * x + 5 + 6 + params;
    assert_eq!(masked.len(), expected);
}

/// Scopes of the attention-score adds that use the additive mask made from `input`.
fn mask_users(g: &Graph, input: &str) -> BTreeSet<String> {
    // input -> reshape -> cast -> sub -> mul (the additive mask)
    let mut node = node_of_input(g, input);
    for expected in ["reshape", "cast", "sub", "mul"] {
        let users = g.users(node);
        assert_eq!(users.len(), 1, "{input}: {expected}");
        node = users[0];
        assert_eq!(g.node(node).op.name(), expected);
    }
    let min = g
        .operands(node)
        .into_iter()
        .find_map(|o| match g.node(o).op {
            Op::Full { value, .. } => Some(value),
            _ => None,
        });
    assert_eq!(min, Some(f64::from(f32::MIN)));
    g.users(node)
        .into_iter()
        .map(|u| {
            assert_eq!(g.node(u).op.name(), "add");
            assert_eq!(
                g.node(u).ty.shape,
                [2, 4, g.node(u).ty.shape[2], g.node(u).ty.shape[3]]
            );
            g.node(u).scope.clone()
        })
        .collect()
}

#[test]
fn masks_are_applied_where_transformers_applies_them() {
    let g = build(&tiny(), &TINY_SHAPES, &all_opts()).unwrap();
    let text: BTreeSet<String> = [
        "lxmert.encoder.layer.0.attention.self",
        "lxmert.encoder.layer.1.attention.self",
        "lxmert.encoder.x_layers.0.visual_attention.att",
        "lxmert.encoder.x_layers.0.lang_self_att.self",
    ]
    .map(String::from)
    .into();
    assert_eq!(mask_users(&g, "attention_mask"), text);
    let visual: BTreeSet<String> = [
        "lxmert.encoder.r_layers.0.attention.self",
        "lxmert.encoder.x_layers.0.visual_attention.att",
        "lxmert.encoder.x_layers.0.visn_self_att.self",
    ]
    .map(String::from)
    .into();
    assert_eq!(mask_users(&g, "visual_attention_mask"), visual);
}

#[test]
fn cross_attention_module_is_shared_by_both_directions() {
    let g = build(&tiny(), &TINY_SHAPES, &BuildOptions::default()).unwrap();
    let q = g
        .param_by_name("lxmert.encoder.x_layers.0.visual_attention.att.query.weight")
        .unwrap();
    assert_eq!(g.users(q).len(), 2);
    let own = g
        .param_by_name("lxmert.encoder.x_layers.0.lang_self_att.self.query.weight")
        .unwrap();
    assert_eq!(g.users(own).len(), 1);
    // every LayerNorm uses LXMERT's fixed eps
    for id in g.node_ids() {
        if let Op::LayerNorm { eps } = g.node(id).op {
            assert_eq!(eps, 1e-12);
        }
    }
}

#[test]
fn bad_shapes_are_rejected() {
    let cfg = tiny();
    let opts = BuildOptions::default();
    let too_long = Shapes {
        seq_len: 65,
        ..TINY_SHAPES
    };
    let e = build(&cfg, &too_long, &opts).unwrap_err().to_string();
    assert!(
        e.contains("seq_len") && e.contains("max_position_embeddings (64)"),
        "{e}"
    );
    build(
        &cfg,
        &Shapes {
            seq_len: 64,
            ..TINY_SHAPES
        },
        &opts,
    )
    .unwrap();
    for zero in [
        Shapes {
            batch: 0,
            ..TINY_SHAPES
        },
        Shapes {
            num_objects: 0,
            ..TINY_SHAPES
        },
        Shapes {
            seq_len: 0,
            ..TINY_SHAPES
        },
    ] {
        assert!(build(&cfg, &zero, &opts).is_err());
    }
    let bad_cfg = LxmertConfig {
        hidden_size: 30,
        ..cfg
    };
    let e = build(&bad_cfg, &TINY_SHAPES, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden_size"), "{e}");
}

#[test]
fn base_builds_for_full_length() {
    let cfg = LxmertConfig::preset("lxmert-base").unwrap();
    let shapes = Shapes {
        batch: 1,
        seq_len: 512,
        num_objects: 36,
    };
    // Build speed is measured by the compile benchmark, not asserted here.
    let g = build(&cfg, &shapes, &all_opts()).unwrap();
    verify(&g).unwrap();
    assert_eq!(g.params().len(), param_specs(&cfg).len());
    let qa = g.output("question_answering_score").unwrap();
    assert_eq!(g.node(qa).ty.shape, [1, 3129]);
}
