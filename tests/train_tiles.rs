//! `tessera train --engine tiles`: the training loop with the gradient graph on the emulated
//! chips gives the reference engine's losses step after step.

mod common;

use common::tessera_ok;

fn losses(extra: &[&str]) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let mut args = vec![
        "train",
        "lxmert-tiny",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--grad-accum",
        "2",
        "--quiet",
        "--log",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    tessera_ok(&args);
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["loss"].as_f64().unwrap()
        })
        .collect()
}

#[test]
fn training_on_tiles_follows_the_reference_engine() {
    let reference = losses(&[]);
    assert_eq!(reference.len(), 3);
    for ipus in ["1", "4"] {
        let tiles = losses(&["--engine", "tiles", "--ipus", ipus]);
        assert_eq!(tiles.len(), reference.len());
        for (step, (t, r)) in tiles.iter().zip(&reference).enumerate() {
            assert!(
                ((t - r) / r).abs() < 1e-5,
                "{ipus} IPU(s), step {}: {t} vs {r}",
                step + 1
            );
        }
    }
}

#[test]
fn tile_options_need_the_tile_engine_and_fp32() {
    let out = common::tessera(&[
        "train",
        "lxmert-tiny",
        "--steps",
        "1",
        "--ipus",
        "4",
        "--quiet",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--engine tiles"));
    let out = common::tessera(&[
        "train",
        "lxmert-tiny",
        "--steps",
        "1",
        "--quiet",
        "--engine",
        "tiles",
        "--precision",
        "fp16",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fp32"));
}
