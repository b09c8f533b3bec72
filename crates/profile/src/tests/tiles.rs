//! Measured per-tile times in the profile: a synthetic trace whose tile times are the cost
//! model's cycles must reproduce the cost model's balance (figures recomputed here from the
//! plan's vertices); a real `TraceMode::Tiles` run of lxmert-tiny gives a record for every
//! computing tile, a measured heatmap SVG and a summary section; and the report round-trips.

use super::xml::check_well_formed;
use super::{meta, plan, target};
use crate::build::tiles::Folder;
use crate::{measured_heatmap_svg, summary_text, write_all, Profile, MEASURED_HEATMAP_FILE};
use std::collections::HashMap;
use tessera_ir::{DType, Op, Tensor};
use tessera_passes::lower::program::{vertex_cycles, TileSession};
use tessera_runtime::{SuperstepTrace, TileTime, Trace, TraceMode};

/// Per superstep of lxmert-tiny's plan on one chip: every computing tile's model cycles, by
/// global tile (one chip: the tile index).
fn model_cycles() -> Vec<Vec<(u32, u64)>> {
    let t = target();
    plan(1)
        .step
        .supersteps
        .iter()
        .map(|s| {
            let mut v: Vec<(u32, u64)> = s
                .compute
                .iter()
                .filter(|tc| !tc.vertices.is_empty())
                .map(|tc| {
                    let c = tc.vertices.iter().map(|v| vertex_cycles(v, &t)).sum();
                    (tc.tile.tile, c)
                })
                .collect();
            v.sort_unstable();
            v
        })
        .collect()
}

#[test]
fn tile_times_equal_to_the_model_give_the_models_balance() {
    let cycles = model_cycles();
    // One "nanosecond" per modelled cycle, nothing received.
    let trace = Trace {
        supersteps: cycles
            .iter()
            .map(|tiles| SuperstepTrace {
                tiles: tiles
                    .iter()
                    .map(|&(tile, c)| TileTime {
                        tile,
                        compute_ns: u32::try_from(c).unwrap(),
                        exchange_ns: 0,
                    })
                    .collect(),
                ..SuperstepTrace::default()
            })
            .collect(),
    };
    let p = Profile::new(plan(1), &target(), Some(&trace), meta(1)).unwrap();
    let m = p.measured_tiles.as_ref().unwrap();
    assert_eq!(m.runs, 1);
    assert_eq!(m.supersteps.len(), cycles.len());
    let (mut sum_max, mut sum_mean) = (0.0, 0.0);
    for (s, (b, tiles)) in m.supersteps.iter().zip(&cycles).enumerate() {
        assert_eq!(b.computing_tiles, tiles.len() as u64, "superstep {s}");
        let max = tiles.iter().map(|t| t.1).max().unwrap_or(0) as f64;
        let mean = if tiles.is_empty() {
            0.0
        } else {
            tiles.iter().map(|t| t.1 as f64).sum::<f64>() / tiles.len() as f64
        };
        sum_max += max;
        sum_mean += mean;
        assert!((b.max_compute_us - max / 1e3).abs() < 1e-9, "superstep {s}");
        assert!(
            (b.mean_compute_us - mean / 1e3).abs() < 1e-9,
            "superstep {s}"
        );
        let want = if mean > 0.0 { max / mean } else { 1.0 };
        assert!((b.max_over_mean - want).abs() < 1e-9, "superstep {s}");
        assert!(
            (b.modelled_max_over_mean - want).abs() < 1e-9,
            "superstep {s}"
        );
        // The first tile with the most cycles, by both counts.
        let busiest = tiles
            .iter()
            .max_by_key(|t| (t.1, std::cmp::Reverse(t.0)))
            .map(|t| u64::from(t.0));
        assert_eq!(b.slowest_tile, busiest, "superstep {s}");
        assert_eq!(b.modelled_busiest_tile, busiest, "superstep {s}");
        assert_eq!(b.max_exchange_us, 0.0);
    }
    assert!((m.efficiency - sum_mean / sum_max).abs() < 1e-9);
    assert!((m.modelled_efficiency - m.efficiency).abs() < 1e-9);
    // Tile totals: the busiest by time are the cost model's busiest, in the same order.
    let mut totals: HashMap<u32, u64> = HashMap::new();
    for (tile, c) in cycles.iter().flatten() {
        *totals.entry(*tile).or_default() += c;
    }
    let mut order: Vec<(u32, u64)> = totals.into_iter().collect();
    order.sort_by_key(|&(t, c)| (std::cmp::Reverse(c), t));
    let all: u64 = order.iter().map(|t| t.1).sum();
    assert_eq!(m.busiest_tiles.len(), 10);
    for (r, (mt, (tile, c))) in m.busiest_tiles.iter().zip(&order).enumerate() {
        assert_eq!((mt.chip, mt.tile), (0, *tile), "rank {r}");
        assert!((mt.compute_us - *c as f64 / 1e3).abs() < 1e-9);
        assert_eq!(mt.compute_cycles, *c);
        assert_eq!(mt.modelled_rank, Some(r as u64 + 1));
        assert!((mt.share_of_measured - *c as f64 / all as f64).abs() < 1e-12);
    }
    assert_eq!(m.common_with_modelled, 10);
    // The measured heatmap is the modelled one, cell for cell.
    assert_eq!(m.heatmap.cells, p.heatmap.cells);
    assert_eq!(m.heatmap.max_ns, p.heatmap.max_cycles);
}

#[test]
fn folded_runs_are_means_over_the_runs_of_each_superstep() {
    let n = plan(1).step.supersteps.len();
    let t = |tile, compute_ns, exchange_ns| TileTime {
        tile,
        compute_ns,
        exchange_ns,
    };
    // Superstep 0 traced twice (tile 5 only once), superstep 1 once.
    let mut folder = Folder::new(n);
    folder.add(0, &[t(3, 10, 2), t(5, 8, 0)]);
    folder.add(0, &[t(3, 20, 4)]);
    folder.add(1, &[t(7, 6, 1)]);
    let steps = folder.finish().unwrap();
    let got: Vec<(u64, f64, f64)> = steps[0]
        .iter()
        .map(|m| (m.tile, m.compute_ns, m.exchange_ns))
        .collect();
    assert_eq!(got, vec![(3, 15.0, 3.0), (5, 4.0, 0.0)]);
    assert_eq!(steps[1].len(), 1);
    assert!(steps[2..].iter().all(Vec::is_empty));
    // Without per-tile records there is nothing to fold.
    let mut empty = Folder::new(n);
    empty.add(0, &[]);
    assert!(empty.finish().is_none());
}

/// lxmert-tiny's forward inputs (batch 1, 20 tokens, 36 objects), deterministic.
fn inputs() -> HashMap<String, Tensor> {
    let config = tessera_lxmert::LxmertConfig::preset("lxmert-tiny").unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 1,
        seq_len: 20,
        num_objects: 36,
    };
    let g =
        tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap();
    let mut out = HashMap::new();
    for id in g.inputs() {
        if let Op::Input { name, ty } = &g.node(id).op {
            let n = ty.num_elements();
            let t = match ty.dtype {
                DType::I64 => Tensor::from_i64(ty.shape.to_vec(), vec![1; n]),
                _ => Tensor::from_f32(
                    ty.shape.to_vec(),
                    (0..n).map(|i| (i % 13) as f32 / 13.0).collect(),
                ),
            };
            out.insert(name.clone(), t.unwrap());
        }
    }
    out
}

#[test]
fn a_tiles_run_of_lxmert_tiny_is_profiled_per_tile() {
    let plan = plan(1);
    let config = tessera_lxmert::LxmertConfig::preset("lxmert-tiny").unwrap();
    let weights: HashMap<String, Tensor> = tessera_lxmert::init_weights(&config, 0)
        .into_iter()
        .collect();
    let mut session = TileSession::new(plan).unwrap();
    session.load(&weights).unwrap();
    let (_, trace) = session.run(&inputs(), TraceMode::Tiles).unwrap();
    let p = Profile::new(plan, &target(), Some(&trace), meta(1)).unwrap();
    let m = p.measured_tiles.as_ref().unwrap();
    for (s, (b, tiles)) in m.supersteps.iter().zip(model_cycles()).enumerate() {
        assert_eq!(b.computing_tiles, tiles.len() as u64, "superstep {s}");
        assert!(b.max_compute_us >= b.mean_compute_us, "superstep {s}");
        if tiles.is_empty() {
            assert_eq!(b.slowest_tile, None);
        }
    }
    assert!(m.efficiency > 0.0 && m.efficiency <= 1.0);
    assert!(m
        .busiest_tiles
        .windows(2)
        .all(|w| { w[0].compute_us + w[0].exchange_us >= w[1].compute_us + w[1].exchange_us }));
    let svg = measured_heatmap_svg(&p).unwrap();
    assert_eq!(check_well_formed(&svg), Ok("svg".to_string()));
    assert!(svg.contains("Measured compute time") && svg.contains("µs"));
    let text = summary_text(&p);
    for want in [
        "Measured tile balance",
        "model max/mean",
        "Tiles with the most measured time",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    // The report directory adds the measured heatmap and reads back with the tile figures.
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(&p, dir.path()).unwrap();
    assert_eq!(
        files.last().unwrap().file_name().unwrap(),
        MEASURED_HEATMAP_FILE
    );
    let back = Profile::load(dir.path()).unwrap();
    let b = back.measured_tiles.as_ref().unwrap();
    assert_eq!(b.heatmap, m.heatmap);
    let tiles = |t: &crate::model::MeasuredTiles| -> Vec<(u32, u32, Option<u64>)> {
        t.busiest_tiles
            .iter()
            .map(|x| (x.chip, x.tile, x.modelled_rank))
            .collect()
    };
    assert_eq!(tiles(b), tiles(m));
    // Floats up to JSON's decimal round trip.
    for (x, y) in b.supersteps.iter().zip(&m.supersteps) {
        assert_eq!(
            (x.computing_tiles, x.slowest_tile),
            (y.computing_tiles, y.slowest_tile)
        );
        assert!((x.max_over_mean - y.max_over_mean).abs() <= 1e-12 * y.max_over_mean);
    }
    // Without per-tile records (`On`), no tile figures.
    let (_, on) = session.run(&inputs(), TraceMode::On).unwrap();
    let p = Profile::new(plan, &target(), Some(&on), meta(1)).unwrap();
    assert!(p.measured_tiles.is_none() && measured_heatmap_svg(&p).is_none());
    assert!(!summary_text(&p).contains("Measured tile balance"));
}
