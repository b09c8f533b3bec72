//! Fixed placements: a stage per unit from `layers_per_ipu`, from the seed run's hand
//! placement of LXMERT, or from an explicit list; and the check that a placement follows
//! the forward data flow.

use super::PipelineError;
use crate::layers::{is_forward_compute, Units};
use std::collections::HashMap;
use tessera_ir::Graph;
use tessera_target::IpuConfig;

/// Stages from optimum-graphcore's `layers_per_ipu` over the numbered layers: units before
/// the first layer go to stage 0, units after the last layer to the last stage, units
/// between layers to the stage of the layer before them.
pub(crate) fn manual(
    graph: &Graph,
    units: &Units,
    layers_per_ipu: &[i64],
    stages: u32,
) -> Result<Vec<u32>, PipelineError> {
    let layers = units.units().iter().filter(|u| u.numbered).count();
    if layers == 0 {
        return Err(PipelineError::NoLayers {
            graph: graph.name.clone(),
        });
    }
    if stages as usize > layers {
        return Err(PipelineError::TooManyStages {
            stages,
            available: layers,
            what: "layers",
        });
    }
    let config = IpuConfig {
        ipus_per_replica: stages as usize,
        layers_per_ipu: layers_per_ipu.to_vec(),
        ..IpuConfig::default()
    };
    let counts = config
        .layers_per_ipu_for(layers)
        .map_err(|e| PipelineError::LayersPerIpu(e.to_string()))?;
    let mut layer_stage = Vec::with_capacity(layers);
    for (stage, &n) in counts.iter().enumerate() {
        layer_stage.extend(std::iter::repeat_n(stage as u32, n));
    }
    let last = stages - 1;
    let mut out = Vec::with_capacity(units.len());
    let mut seen = 0usize;
    let mut current = 0u32;
    for u in units.units() {
        if u.numbered {
            current = layer_stage.get(seen).copied().unwrap_or(last);
            seen += 1;
            out.push(current);
        } else if seen == layers {
            out.push(last);
        } else {
            out.push(current);
        }
    }
    Ok(out)
}

/// Which of the hand placement's stages a LXMERT layer goes to.
fn hand_stage(layer: &str) -> Option<u32> {
    let starts = |p: &str| layer.starts_with(p);
    if layer == "lxmert.embeddings" || layer == "lxmert.encoder.visn_fc" {
        Some(0)
    } else if starts("lxmert.encoder.layer.") {
        Some(1)
    } else if starts("lxmert.encoder.r_layers.") {
        Some(2)
    } else if starts("lxmert.encoder.x_layers.")
        || layer == "lxmert.pooler"
        || layer == "answer_head"
        || layer == "loss"
    {
        Some(3)
    } else {
        None
    }
}

/// The seed run's hand placement (see [`super::Placement::OptimumGraphcore`]); units of
/// other layers (e.g. top-level mask arithmetic) follow the unit before them.
pub(crate) fn optimum_graphcore(units: &Units, stages: u32) -> Result<Vec<u32>, PipelineError> {
    if stages != 4 {
        return Err(PipelineError::NotApplicable {
            reason: format!("{stages} IPUs per replica were asked for"),
        });
    }
    for (kind, prefix) in [
        ("language", "lxmert.encoder.layer."),
        ("object-relationship", "lxmert.encoder.r_layers."),
        ("cross-modality", "lxmert.encoder.x_layers."),
    ] {
        if !units.units().iter().any(|u| u.layer.starts_with(prefix)) {
            return Err(PipelineError::NotApplicable {
                reason: format!("the graph has no {kind} layers (`{prefix}N`)"),
            });
        }
    }
    let mut current = 0u32;
    Ok(units
        .units()
        .iter()
        .map(|u| {
            if let Some(s) = hand_stage(&u.layer) {
                current = s;
            }
            current
        })
        .collect())
}

/// Stages from an explicit unit-name list; every unit must be listed.
pub(crate) fn by_name(
    units: &Units,
    map: &[(String, u32)],
    stages: u32,
) -> Result<Vec<u32>, PipelineError> {
    let mut given: HashMap<&str, u32> = HashMap::new();
    for (name, stage) in map {
        if units.find(name).is_none() {
            let mut known: Vec<&str> = units.units().iter().map(|u| u.name.as_str()).collect();
            if known.len() > 12 {
                known.truncate(12);
                known.push("...");
            }
            return Err(PipelineError::UnknownUnit {
                name: name.clone(),
                known: known.join(", "),
            });
        }
        if *stage >= stages {
            return Err(PipelineError::StageOutOfRange {
                unit: name.clone(),
                stage: *stage,
                stages,
            });
        }
        given.insert(name.as_str(), *stage);
    }
    units
        .units()
        .iter()
        .map(|u| {
            given
                .get(u.name.as_str())
                .copied()
                .ok_or_else(|| PipelineError::UnplacedUnit {
                    name: u.name.clone(),
                })
        })
        .collect()
}

/// Checks that forward data never flows to an earlier stage.
pub(crate) fn check_monotone(
    graph: &Graph,
    units: &Units,
    assignment: &[u32],
) -> Result<(), PipelineError> {
    let stage_of = |u: usize| assignment.get(u).copied().unwrap_or(0);
    for id in graph.node_ids() {
        if !is_forward_compute(graph.node(id)) {
            continue;
        }
        let Some(to) = units.unit_of(id) else {
            continue;
        };
        for o in graph.operands(id) {
            if !is_forward_compute(graph.node(o)) {
                continue;
            }
            let Some(from) = units.unit_of(o) else {
                continue;
            };
            if stage_of(from) > stage_of(to) {
                let name = |u: usize| {
                    units
                        .units()
                        .get(u)
                        .map(|x| x.name.clone())
                        .unwrap_or_default()
                };
                return Err(PipelineError::BackwardFlow {
                    from: name(from),
                    from_stage: stage_of(from),
                    to: name(to),
                    to_stage: stage_of(to),
                });
            }
        }
    }
    Ok(())
}
