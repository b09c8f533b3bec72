//! The writers: Chrome trace validity, SVG well-formedness, the golden summary, compare,
//! and the report directory round trip.

use super::xml::check_well_formed;
use super::{plan, profile};
use crate::{chrome_trace, compare, heatmap_svg, memory_svg, summary_text, timeline_svg};
use crate::{write_all, write_json, Profile, ProfileError, FILE_NAMES, NO_DIFFERENCE};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Checks every event's fields and types; returns X-event durations (µs) summed per pid.
fn check_trace(v: &Value, chips: u64) -> BTreeMap<u64, f64> {
    let events = v["traceEvents"].as_array().expect("traceEvents array");
    let mut named = BTreeSet::new();
    let mut per_pid = BTreeMap::new();
    for e in events {
        let ph = e["ph"].as_str().expect("ph string");
        assert!(e["name"].is_string(), "{e}");
        let pid = e["pid"].as_u64().expect("pid integer");
        assert!(e["tid"].is_u64(), "{e}");
        assert!(e["ts"].is_number(), "{e}");
        match ph {
            "X" => {
                assert!(e["cat"].is_string(), "{e}");
                let dur = e["dur"].as_f64().expect("dur number");
                let ts = e["ts"].as_f64().unwrap();
                assert!(dur >= 0.0 && ts >= 0.0, "{e}");
                assert!(["compute", "sync", "exchange"].contains(&e["cat"].as_str().unwrap()));
                *per_pid.entry(pid).or_insert(0.0) += dur;
            }
            "M" => {
                if e["name"] == "process_name" || e["name"] == "thread_name" {
                    assert!(e["args"]["name"].is_string(), "{e}");
                    named.insert((pid, e["name"].as_str().unwrap().to_string()));
                }
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    for chip in 0..chips {
        assert!(
            named.contains(&(chip, "process_name".into())),
            "chip {chip}"
        );
        assert!(named.contains(&(chip, "thread_name".into())), "chip {chip}");
    }
    per_pid
}

#[test]
fn chrome_trace_is_valid_and_covers_the_step() {
    let p = profile(1);
    let per_pid = check_trace(&chrome_trace(&p), 1);
    // One chip: every superstep is on chip 0, so its events cover the whole step.
    let want = plan(1).total_cycles() as f64 / 1.33e9 * 1e6;
    assert!(
        (per_pid[&0] - want).abs() < 1e-6 * want,
        "{} vs {want}",
        per_pid[&0]
    );

    let p4 = profile(4);
    let per_pid = check_trace(&chrome_trace(&p4), 4);
    assert_eq!(per_pid.len(), 4, "every chip has work");
    let total = plan(4).total_cycles() as f64 / 1.33e9 * 1e6;
    // Stages run one after another: each chip is busy for part of the step only.
    for (&pid, &busy) in &per_pid {
        assert!(busy < total, "chip {pid}: {busy} >= {total}");
    }
    // Events on one chip never overlap.
    let v = chrome_trace(&p4);
    let mut spans: Vec<(u64, f64, f64)> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            (
                e["pid"].as_u64().unwrap(),
                e["ts"].as_f64().unwrap(),
                e["dur"].as_f64().unwrap(),
            )
        })
        .collect();
    spans.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for w in spans.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(w[0].1 + w[0].2 <= w[1].1 + 1e-6, "{w:?}");
        }
    }
}

#[test]
fn svgs_are_well_formed() {
    for chips in [1, 4] {
        let p = profile(chips);
        for (name, svg) in [
            ("memory", memory_svg(&p)),
            ("heatmap", heatmap_svg(&p)),
            ("timeline", timeline_svg(&p)),
        ] {
            assert_eq!(
                check_well_formed(&svg),
                Ok("svg".to_string()),
                "{name} on {chips} chip(s)"
            );
            assert!(svg.contains("<title>"), "{name}");
        }
        let mem = memory_svg(&p);
        assert!(mem.matches("chip ").count() >= chips as usize);
        assert!(mem.contains("memory per tile (KiB)") && mem.contains("tile (within chip)"));
        assert!(heatmap_svg(&p).contains("linearGradient"));
        assert!(timeline_svg(&p).contains("time (µs at the target clock)"));
    }
}

#[test]
fn summary_of_lxmert_tiny_is_stable() {
    insta::assert_snapshot!("lxmert_tiny_mk2_summary", summary_text(&profile(1)));
}

#[test]
fn compare_finds_no_difference_with_itself_and_some_with_four_chips() {
    let one = profile(1);
    let same = compare(&one, &one);
    assert!(same.contains(NO_DIFFERENCE), "{same}");
    assert!(same.contains("Compute sets with the largest change") && same.contains("  none"));
    let four = profile(4);
    let diff = compare(&one, &four);
    assert!(!diff.contains(NO_DIFFERENCE), "{diff}");
    let line = |name: &str| {
        diff.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{diff}"))
            .to_string()
    };
    // Inter-chip bytes: 0 on one chip, the four-chip plan's sum on four.
    let inter: u64 = plan(4).costs.iter().map(|c| c.inter_chip_bytes).sum();
    let l = line("inter-chip bytes");
    assert!(
        l.contains(&format!("+{}", crate::fmt::thousands(inter))),
        "{l}"
    );
    let d = plan(4).total_cycles() as i128 - plan(1).total_cycles() as i128;
    assert!(
        line("total cycles").contains(&crate::fmt::signed(d)),
        "{diff}"
    );
    // Chips 1..3 exist only in B.
    assert!(
        diff.lines()
            .any(|l| l.trim_start().starts_with("3") && l.contains(" - ")),
        "{diff}"
    );
}

#[test]
fn report_directory_round_trips() {
    let p = profile(1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/report");
    let files = write_all(&p, &out).unwrap();
    assert_eq!(files.len(), FILE_NAMES.len());
    for (f, name) in files.iter().zip(FILE_NAMES) {
        assert_eq!(f.file_name().unwrap(), name);
        assert!(std::fs::metadata(f).unwrap().len() > 0, "{name}");
    }
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        FILE_NAMES.len(),
        "no temporary files left"
    );
    let back = Profile::load(&out).unwrap();
    assert_eq!(back.totals.total_cycles, p.totals.total_cycles);
    assert_eq!(back.supersteps.len(), p.supersteps.len());
    assert_eq!(back.heatmap.cells, p.heatmap.cells);
    assert_eq!(summary_text(&back), summary_text(&p));
    assert_eq!(
        std::fs::read_to_string(out.join("summary.txt")).unwrap(),
        summary_text(&p)
    );
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trace.json")).unwrap()).unwrap();
    check_trace(&trace, 1);
    // profile.json stays small for a small model.
    assert!(std::fs::metadata(out.join("profile.json")).unwrap().len() < 2_000_000);
    let file = dir.path().join("p.json");
    write_json(&p, &file).unwrap();
    assert_eq!(
        Profile::load(&file).unwrap().totals.total_cycles,
        p.totals.total_cycles
    );
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let e = Profile::load(&missing).unwrap_err();
    assert!(
        matches!(e, ProfileError::Io { .. }) && e.to_string().contains("missing.json"),
        "{e}"
    );
    let bad = dir.path().join("bad.json");
    let bad_text = format!(
        "{{\"format_version\": {}, \"meta\": 3}}",
        crate::FORMAT_VERSION
    );
    std::fs::write(&bad, bad_text).unwrap();
    let e = Profile::load(&bad).unwrap_err();
    assert!(
        matches!(e, ProfileError::Json { .. }) && e.to_string().contains("bad.json"),
        "{e}"
    );
    let old = dir.path().join("old.json");
    std::fs::write(&old, "{\"format_version\": 99}").unwrap();
    let e = Profile::load(&old).unwrap_err();
    assert!(e.to_string().contains("version 99"), "{e}");
    // Version 1 (before the pipeline figures and the code estimate) is refused by name.
    std::fs::write(&old, "{\"format_version\": 1}").unwrap();
    let e = Profile::load(&old).unwrap_err();
    assert!(matches!(e, ProfileError::Version { found: 1, .. }), "{e}");
}

#[test]
#[ignore = "writes a report for manual inspection to $TESSERA_PROFILE_OUT"]
fn write_report_for_inspection() {
    if let Ok(dir) = std::env::var("TESSERA_PROFILE_OUT") {
        write_all(&profile(1), &std::path::Path::new(&dir).join("one")).unwrap();
        write_all(&profile(4), &std::path::Path::new(&dir).join("four")).unwrap();
    }
}
