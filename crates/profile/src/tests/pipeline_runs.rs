//! The pipelined profile with measured runs: a traced `PipelineSession` step of the plan of
//! [`super::pipeline`], its runs mapped onto the profile, the Chrome trace (one event per
//! segment run, at cost-model times and measured), per-tile times, the pipeline SVG, the
//! summary and the report directory; and runs that do not match the schedule refused.

use super::pipeline::{config, meta, pipelined, plan, small_target, BATCH, STAGES};
use super::xml::check_well_formed;
use crate::{chrome_trace, pipeline_svg, summary_text, write_all};
use crate::{Parallelism, Profile, ProfileError, MEASURED_HEATMAP_FILE, PIPELINE_FILE};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use tessera_ir::Tensor;
use tessera_passes::lower::program::pipeline::{MicroBatchRun, PipelineSession};
use tessera_runtime::TraceMode;

/// Deterministic feeds of micro-batch `m`.
fn feeds(m: usize) -> HashMap<String, Tensor> {
    let c = config();
    let (s, n, f) = (7, 5, c.visual_feat_dim);
    let ids = (0..BATCH * s).map(|i| ((i * 7 + m * 3) % (c.vocab_size - 1) + 1) as i64);
    let frac = |i: usize, k: usize| ((i * 37 + m * 11) % k) as f32 / k as f32;
    let t = |shape: Vec<usize>, v: Vec<f32>| Tensor::from_f32(shape, v).unwrap();
    HashMap::from([
        (
            "input_ids".into(),
            Tensor::from_i64(vec![BATCH, s], ids.collect()).unwrap(),
        ),
        (
            "attention_mask".into(),
            Tensor::from_i64(vec![BATCH, s], vec![1; BATCH * s]).unwrap(),
        ),
        (
            "token_type_ids".into(),
            Tensor::from_i64(vec![BATCH, s], vec![0; BATCH * s]).unwrap(),
        ),
        (
            "visual_feats".into(),
            t(
                vec![BATCH, n, f],
                (0..BATCH * n * f).map(|i| frac(i, 17) - 0.5).collect(),
            ),
        ),
        (
            "visual_pos".into(),
            t(
                vec![BATCH, n, 4],
                (0..BATCH * n * 4).map(|i| frac(i, 13)).collect(),
            ),
        ),
        (
            "labels".into(),
            t(
                vec![BATCH, c.num_qa_labels],
                (0..BATCH * c.num_qa_labels).map(|i| frac(i, 7)).collect(),
            ),
        ),
    ])
}

/// A measured profile of `g` micro-batches, from a traced `PipelineSession` step.
fn measured(g: usize) -> (Profile, Vec<MicroBatchRun>) {
    let mut session = PipelineSession::new(plan()).unwrap();
    let weights: HashMap<String, Tensor> = tessera_lxmert::init_weights(&config(), 3)
        .into_iter()
        .collect();
    session.load(&weights).unwrap();
    let micro: Vec<_> = (0..g).map(feeds).collect();
    let step = session.step(&micro, TraceMode::Tiles).unwrap();
    let par = Parallelism {
        micro_batches: g as u64,
        replicas: 1,
    };
    let p = Profile::pipelined(plan(), &small_target(), par, Some(&step.runs), meta()).unwrap();
    (p, step.runs)
}

/// X events of `trace` as `(pid, tid, name, cat, ts, dur)`.
fn x_events(trace: &Value) -> Vec<(u64, u64, String, String, f64, f64)> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            (
                e["pid"].as_u64().unwrap(),
                e["tid"].as_u64().unwrap(),
                e["name"].as_str().unwrap().to_string(),
                e["cat"].as_str().unwrap().to_string(),
                e["ts"].as_f64().unwrap(),
                e["dur"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn is_run_label(name: &str) -> bool {
    let mut parts = name.split(' ');
    let seg = parts.next().unwrap_or("");
    matches!(seg.chars().next(), Some('F' | 'B'))
        && seg[1..].parse::<usize>().is_ok()
        && parts.next() == Some("mb")
        && parts.next().and_then(|m| m.parse::<usize>().ok()).is_some()
        && parts.next().is_none()
}

#[test]
fn measured_runs_trace_and_svg() {
    let g = 3;
    let (p, runs) = measured(g);
    let pl = p.pipeline.as_ref().unwrap();
    let runs_total: f64 = runs
        .iter()
        .flat_map(|r| &r.trace.supersteps)
        .map(|s| (s.host_to_tile + s.compute + s.exchange + s.tile_to_host).as_secs_f64())
        .sum();
    assert!((pl.measured_seconds.unwrap() - runs_total).abs() < 1e-9);
    assert!((p.totals.measured.unwrap().total_seconds - runs_total).abs() < 1e-9);
    // Chrome trace: one cost-model event per segment run on its chip, one measured event per
    // run in the emulator's process, each labelled with its micro-batch.
    let trace = chrome_trace(&p);
    let ev = x_events(&trace);
    let model: Vec<_> = ev
        .iter()
        .filter(|e| e.0 < STAGES as u64 && is_run_label(&e.2))
        .collect();
    let emu: Vec<_> = ev.iter().filter(|e| e.0 == STAGES as u64).collect();
    assert_eq!(model.len(), 2 * STAGES * g);
    assert_eq!(emu.len(), 2 * STAGES * g);
    let labels: BTreeSet<&str> = model.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        labels.len(),
        2 * STAGES * g,
        "one event per (segment, micro-batch)"
    );
    for e in &model {
        // `F2 mb 1` runs on chip 2, as `B2 mb 1` does.
        let stage: u64 = e.2[1..].split(' ').next().unwrap().parse().unwrap();
        assert_eq!(e.0, stage, "{e:?}");
        let kind = if e.2.starts_with('F') {
            "forward"
        } else {
            "backward"
        };
        assert_eq!(e.3, kind);
    }
    for e in &emu {
        assert!(is_run_label(&e.2) && e.5 > 0.0, "{e:?}");
    }
    // On each chip, cost-model events never overlap.
    let mut spans: Vec<_> = ev
        .iter()
        .filter(|e| e.0 < STAGES as u64)
        .map(|e| (e.0, e.4, e.5))
        .collect();
    spans.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for w in spans.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(w[0].1 + w[0].2 <= w[1].1 + 1e-6, "{w:?}");
        }
    }
    // SVG: well formed, titled, with units, one box per run.
    let svg = pipeline_svg(&p).unwrap();
    assert_eq!(check_well_formed(&svg), Ok("svg".to_string()));
    assert!(svg.contains("Pipeline schedule per chip"));
    assert!(svg.contains("time (µs at the target clock)") && svg.contains("chip (pipeline stage)"));
    assert_eq!(svg.matches("(pipeline cycle ").count(), 2 * STAGES * g);
    assert!(svg.contains("fill/flush"));
    // Summary and report directory.
    let text = summary_text(&p);
    for want in [
        "Pipeline schedule",
        "utilisation",
        "fill/flush bubble",
        "samples/s",
        "measured on the emulator",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    // Per-tile times: every run folded in; in each segment's own supersteps, a record for
    // every tile that runs vertices there (means over the runs of that superstep).
    let m = p.measured_tiles.as_ref().unwrap();
    assert_eq!(m.runs, runs.len() as u64);
    assert_eq!(m.supersteps.len(), plan().step.supersteps.len());
    for seg in &plan().pipeline.as_ref().unwrap().segments {
        for s in seg.run.clone() {
            let computing = plan().step.supersteps[s]
                .compute
                .iter()
                .filter(|tc| !tc.vertices.is_empty())
                .count();
            assert_eq!(m.supersteps[s].computing_tiles, computing as u64, "{s}");
        }
    }
    assert!(text.contains("Measured tile balance") && text.contains("segment runs"));
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(&p, dir.path()).unwrap();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(
        names[names.len() - 2..],
        [PIPELINE_FILE, MEASURED_HEATMAP_FILE]
    );
    // profile.json keeps the pipeline (floats up to JSON's decimal round trip).
    let back = Profile::load(dir.path()).unwrap().pipeline.unwrap();
    assert_eq!(
        (
            back.step_cycles,
            back.busy_chip_cycles,
            back.bubble_chip_cycles
        ),
        (pl.step_cycles, pl.busy_chip_cycles, pl.bubble_chip_cycles)
    );
    assert_eq!(back.segments, pl.segments);
    assert!((back.utilisation - pl.utilisation).abs() < 1e-12);
    let labels = |q: &crate::model::PipelineInfo| -> Vec<String> {
        q.cycles
            .iter()
            .flat_map(|c| c.runs.iter().map(|r| r.label.clone()))
            .collect()
    };
    assert_eq!(labels(&back), labels(pl));
}

#[test]
fn runs_that_are_not_the_schedule_are_refused() {
    let g = 2;
    let (_, runs) = measured(g);
    let par = |g| Parallelism {
        micro_batches: g,
        replicas: 1,
    };
    let t = small_target();
    let e = Profile::pipelined(plan(), &t, par(3), Some(&runs), meta()).unwrap_err();
    assert!(
        matches!(
            e,
            ProfileError::RunCount {
                runs: 16,
                expected: 24,
                ..
            }
        ),
        "{e}"
    );
    let mut bad = runs.clone();
    bad[0].trace.supersteps.pop();
    let e = Profile::pipelined(plan(), &t, par(2), Some(&bad), meta()).unwrap_err();
    assert!(matches!(e, ProfileError::RunMismatch { .. }), "{e}");
    let mut twice = runs.clone();
    twice[1] = twice[0].clone();
    let e = Profile::pipelined(plan(), &t, par(2), Some(&twice), meta()).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    let e = Profile::pipelined(plan(), &t, par(0), None, meta()).unwrap_err();
    assert!(matches!(e, ProfileError::EmptyStep { .. }), "{e}");
    let forward = super::plan(1);
    let e = Profile::pipelined(forward, &super::target(), par(1), None, meta()).unwrap_err();
    assert!(matches!(e, ProfileError::NotPipelined), "{e}");
}

#[test]
#[ignore = "writes a pipelined report for manual inspection to $TESSERA_PROFILE_OUT"]
fn write_pipelined_report_for_inspection() {
    if let Ok(dir) = std::env::var("TESSERA_PROFILE_OUT") {
        let (p, _) = measured(3);
        write_all(&p, &std::path::Path::new(&dir).join("pipelined")).unwrap();
        let p = pipelined(32, 2);
        write_all(&p, &std::path::Path::new(&dir).join("pipelined32")).unwrap();
    }
}
