//! Tests of the whole profiler on `lxmert-tiny` (batch 1, 20 tokens, 36 objects) lowered for
//! `mk2` on 1 chip and on 4 chips (stages assigned by hand, by topological quarters). Expected
//! figures are recomputed here from the plan's own `costs`, `memory` and vertices.

mod checks;
mod pipeline;
mod pipeline_runs;
mod reports;
mod tiles;
mod xml;

use crate::{Profile, ProfileMeta};
use std::sync::OnceLock;
use tessera_passes::lower::program::{lower_program, LowerOptions, TilePlan};
use tessera_target::Target;

pub(crate) fn target() -> Target {
    tessera_target::target::presets::mk2()
}

fn graph(stages: u32) -> tessera_ir::Graph {
    let config = tessera_lxmert::LxmertConfig::preset("lxmert-tiny").unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 1,
        seq_len: 20,
        num_objects: 36,
    };
    let mut g =
        tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap();
    if stages > 1 {
        let order = g.topo_order();
        let n = order.len();
        for (i, id) in order.into_iter().enumerate() {
            g.node_mut(id).annot.stage = Some((i * stages as usize / n) as u32);
        }
    }
    g
}

/// The plan of lxmert-tiny on `chips` mk2 chips (1 or 4), lowered once per test binary.
pub(crate) fn plan(chips: u32) -> &'static TilePlan {
    static ONE: OnceLock<TilePlan> = OnceLock::new();
    static FOUR: OnceLock<TilePlan> = OnceLock::new();
    let cell = if chips == 1 { &ONE } else { &FOUR };
    cell.get_or_init(|| {
        let opts = LowerOptions {
            chips,
            ..LowerOptions::default()
        };
        lower_program(&graph(chips), &target(), &opts).unwrap()
    })
}

pub(crate) fn meta(chips: u32) -> ProfileMeta {
    ProfileMeta {
        model: "lxmert-tiny".into(),
        batch: 1,
        settings: [
            ("chips".to_string(), chips.to_string()),
            ("num_objects".to_string(), "36".to_string()),
            ("seq_len".to_string(), "20".to_string()),
        ]
        .into_iter()
        .collect(),
    }
}

/// The profile of [`plan`] without a trace.
pub(crate) fn profile(chips: u32) -> Profile {
    Profile::new(plan(chips), &target(), None, meta(chips)).unwrap()
}
