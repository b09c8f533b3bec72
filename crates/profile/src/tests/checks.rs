//! The profile's figures against independent recomputation from the plan.

use super::{meta, plan, profile, target};
use crate::{Profile, ProfileError};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tessera_passes::lower::program::vertex_cycles;
use tessera_passes::lower::program::TilePlan;
use tessera_runtime::{SuperstepTrace, Trace};

#[test]
fn totals_equal_the_plan_costs() {
    for chips in [1, 4] {
        let plan = plan(chips);
        let p = profile(chips);
        let t = &p.totals;
        let compute: u64 = plan.costs.iter().map(|c| c.compute_cycles).sum();
        let exchange: u64 = plan.costs.iter().map(|c| c.exchange_cycles).sum();
        let sync: u64 = plan.costs.iter().map(|c| c.sync_cycles).sum();
        assert_eq!(t.total_cycles, plan.total_cycles());
        assert_eq!(
            (t.compute_cycles, t.exchange_cycles, t.sync_cycles),
            (compute, exchange, sync)
        );
        assert_eq!(t.total_cycles, compute + exchange + sync);
        assert_eq!(t.supersteps as usize, plan.step.supersteps.len());
        let vertices: u64 = plan.costs.iter().map(|c| c.vertices).sum();
        assert_eq!(t.vertices, vertices);
        assert_eq!(t.vertices_by_kind.values().sum::<u64>(), vertices);
        let bytes: u64 = plan.costs.iter().map(|c| c.exchange_bytes).sum();
        let inter: u64 = plan.costs.iter().map(|c| c.inter_chip_bytes).sum();
        assert_eq!((t.exchange_bytes, t.inter_chip_bytes), (bytes, inter));
        assert!((t.compute_share + t.exchange_share + t.sync_share - 1.0).abs() < 1e-12);
        assert!((t.estimated_seconds - plan.total_cycles() as f64 / 1.33e9).abs() < 1e-15);
        let sps = p.throughput.samples_per_second.unwrap();
        assert!((sps - 1.33e9 / plan.total_cycles() as f64).abs() < 1e-6 * sps);
        assert!(p.pipeline.is_none());
        if chips == 1 {
            assert_eq!(inter, 0);
        } else {
            assert!(inter > 0, "stages on 4 chips exchange between chips");
        }
    }
}

#[test]
fn superstep_balance_and_heatmap_match_the_vertices() {
    let plan = plan(1);
    let p = profile(1);
    let t = target();
    let mut per_tile: HashMap<(u32, u32), u64> = HashMap::new();
    let mut start = 0;
    for (i, (s, cost)) in plan.step.supersteps.iter().zip(&plan.costs).enumerate() {
        let cycles: Vec<u64> = s
            .compute
            .iter()
            .map(|tc| tc.vertices.iter().map(|v| vertex_cycles(v, &t)).sum())
            .collect();
        for (tc, c) in s.compute.iter().zip(&cycles) {
            *per_tile.entry((tc.tile.chip, tc.tile.tile)).or_default() += c;
        }
        let sp = &p.supersteps[i];
        assert_eq!(sp.label, cost.label);
        assert_eq!(sp.start_cycle, start);
        start += cost.compute_cycles + cost.exchange_cycles + cost.sync_cycles;
        // The busiest tile is the plan's compute cost.
        assert_eq!(sp.balance.max_cycles, cost.compute_cycles, "superstep {i}");
        let busy: Vec<u64> = s
            .compute
            .iter()
            .zip(&cycles)
            .filter(|(tc, _)| !tc.vertices.is_empty())
            .map(|(_, &c)| c)
            .collect();
        assert_eq!(sp.balance.computing_tiles, busy.len() as u64);
        if !busy.is_empty() {
            let mean = busy.iter().sum::<u64>() as f64 / busy.len() as f64;
            assert!((sp.balance.mean_cycles_computing - mean).abs() < 1e-9);
            let all = busy.iter().sum::<u64>() as f64 / 1472.0;
            assert!((sp.balance.mean_cycles_all - all).abs() < 1e-9);
            assert!(sp.balance.efficiency_all <= sp.balance.efficiency_computing);
        }
    }
    // Max aggregation keeps the largest tile × superstep value.
    let max = plan.costs.iter().map(|c| c.compute_cycles).max().unwrap();
    assert_eq!(p.heatmap.max_cycles, max);
    let cells_max = p.heatmap.cells.iter().flatten().copied().max().unwrap();
    assert_eq!(cells_max, max);
    assert!(p.heatmap.cells.len() <= 256 && p.heatmap.cells[0].len() <= 512);
    assert_eq!(
        p.heatmap.cells.len() as u64,
        1472_u64.div_ceil(p.heatmap.tiles_per_bucket)
    );
    // Busiest tile over the run.
    let (&(chip, tile), &most) = per_tile
        .iter()
        .max_by_key(|(k, v)| (**v, std::cmp::Reverse(**k)))
        .unwrap();
    let b = p.busiest_tiles[0];
    assert_eq!((b.chip, b.tile, b.compute_cycles), (chip, tile, most));
}

/// Code and vertex state per global tile, recomputed from the vertices' serde JSON: every
/// `{offset, len}` object is an operand field (8 bytes), every array of them one more list
/// descriptor (8), every other number a scalar field (4); every distinct (variant, string
/// values) pair is one codelet (1,024 bytes).
fn code_estimate(plan: &TilePlan) -> Vec<u64> {
    fn walk(v: &Value, regions: &mut u64, scalars: &mut u64, names: &mut Vec<String>) {
        match v {
            Value::Object(o)
                if o.len() == 2 && o.contains_key("offset") && o.contains_key("len") =>
            {
                *regions += 1
            }
            Value::Object(o) => o.values().for_each(|x| walk(x, regions, scalars, names)),
            Value::Array(a) => {
                *regions += 1;
                a.iter().for_each(|x| walk(x, regions, scalars, names));
            }
            Value::Number(_) => *scalars += 1,
            Value::String(s) => names.push(s.clone()),
            _ => {}
        }
    }
    let per_chip = plan.step.tiles_per_chip as usize;
    let tiles = plan.memory.len();
    let mut state = vec![0u64; tiles];
    let mut codelets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); tiles];
    for prog in [&plan.load, &plan.step] {
        for s in &prog.supersteps {
            for tc in &s.compute {
                let g = tc.tile.chip as usize * per_chip + tc.tile.tile as usize;
                for v in &tc.vertices {
                    let json = serde_json::to_value(v).unwrap();
                    let (variant, body) = json.as_object().unwrap().iter().next().unwrap();
                    let (mut r, mut n, mut names) = (0, 0, Vec::new());
                    walk(body, &mut r, &mut n, &mut names);
                    state[g] += 8 * r + 4 * n;
                    codelets[g].insert(format!("{variant}{names:?}"));
                }
            }
        }
    }
    state
        .iter()
        .zip(&codelets)
        .map(|(s, c)| s + 1024 * c.len() as u64)
        .collect()
}

#[test]
fn memory_headroom_is_capacity_minus_the_fullest_tile_with_code() {
    let plan = plan(1);
    let p = profile(1);
    let c = &p.chips[0];
    let (_, _, m) = plan.fullest_tile().unwrap();
    assert_eq!(c.max_peak_bytes, m.peak);
    assert_eq!(c.data_headroom_bytes, 638_976 - m.peak as i64);
    // With the code and vertex state estimate added to every tile's peak.
    let code = code_estimate(plan);
    let totals: Vec<u64> = plan
        .memory
        .iter()
        .zip(&code)
        .map(|(m, c)| m.peak + c)
        .collect();
    let max_total = *totals.iter().max().unwrap();
    let fullest = totals.iter().position(|&t| t == max_total).unwrap();
    assert_eq!(c.max_total_bytes, max_total);
    assert_eq!(c.headroom_bytes, 638_976 - max_total as i64);
    assert_eq!(c.max_code_vertex_state_bytes, *code.iter().max().unwrap());
    assert_eq!(c.at_peak.code_vertex_state, code.iter().sum::<u64>());
    assert_eq!(c.fullest_tiles[0].tile as usize, fullest);
    assert_eq!(
        c.fullest_tiles[0].code_vertex_state_bytes, code[fullest],
        "tile {fullest}"
    );
    assert!(max_total > m.peak && c.tiles_over_capacity == 0);
    let always: u64 = plan.memory.iter().map(|m| m.always_live).sum();
    let rest: u64 = plan.memory.iter().map(|m| m.peak - m.always_live).sum();
    assert_eq!(
        (c.always_live_bytes, c.not_always_live_bytes),
        (always, rest)
    );
    let weights: u64 = plan.memory.iter().map(|m| m.at_peak.weights).sum();
    assert_eq!(c.at_peak.weights, weights);
    let temporaries: u64 = plan.memory.iter().map(|m| m.at_peak.temporaries).sum();
    assert_eq!(c.at_peak.temporaries, temporaries);
    // A forward plan has no gradient accumulators and no stash.
    assert_eq!((c.at_peak.gradients, c.at_peak.stash), (0, 0));
    assert_eq!(
        c.max_live_bytes,
        plan.live_bytes.iter().map(|l| l[0]).max().unwrap()
    );
    // Buckets: every tile once, max of the peaks kept.
    let tiles: u32 = c.memory_buckets.iter().map(|b| b.tiles).sum();
    assert_eq!(tiles, 1472);
    assert_eq!(
        c.memory_buckets.iter().map(|b| b.max_peak_bytes).max(),
        Some(m.peak)
    );
    // Four chips: one entry per chip, each chip's own fullest tile.
    let plan4 = plan4_memory();
    let p4 = profile(4);
    assert_eq!(p4.chips.len(), 4);
    for (chip, peak) in plan4.into_iter().enumerate() {
        assert_eq!(p4.chips[chip].max_peak_bytes, peak, "chip {chip}");
    }
}

fn plan4_memory() -> Vec<u64> {
    plan(4)
        .memory
        .chunks(1472)
        .map(|c| c.iter().map(|m| m.peak).max().unwrap())
        .collect()
}

#[test]
fn a_trace_adds_measured_times_and_must_match_the_plan() {
    let plan = plan(1);
    let n = plan.step.supersteps.len();
    let step = SuperstepTrace {
        host_to_tile: Duration::from_micros(1),
        compute: Duration::from_micros(10),
        exchange: Duration::from_micros(3),
        ..SuperstepTrace::default()
    };
    let trace = Trace {
        supersteps: vec![step; n],
    };
    let p = Profile::new(plan, &target(), Some(&trace), meta(1)).unwrap();
    let m = p.totals.measured.unwrap();
    assert!((m.compute_seconds - n as f64 * 10e-6).abs() < 1e-12);
    assert!((m.total_seconds - n as f64 * 14e-6).abs() < 1e-12);
    assert_eq!(p.supersteps[0].measured.unwrap().exchange_us, 3.0);
    assert!(crate::summary_text(&p).contains("Measured on the emulator"));
    assert!(!crate::summary_text(&profile(1)).contains("Measured"));
    let short = Trace {
        supersteps: vec![SuperstepTrace::default(); n - 1],
    };
    let e = Profile::new(plan, &target(), Some(&short), meta(1)).unwrap_err();
    assert!(matches!(e, ProfileError::TraceMismatch { .. }), "{e}");
    let mut other = target();
    other.tiles_per_chip = 1216;
    let e = Profile::new(plan, &other, None, meta(1)).unwrap_err();
    assert!(e.to_string().contains("1472 tiles per chip"), "{e}");
}
