//! Shared helpers of the end-to-end tests: running the `tessera` binary, fixture paths,
//! and the relative-error comparison used against the Hugging Face fixtures.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tessera_ir::Tensor;

/// The fixture directory of `lxmert-tiny`.
pub fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lxmert-tiny")
}

/// A file of the `lxmert-tiny` fixture.
pub fn tiny_file(name: &str) -> PathBuf {
    tiny().join(name)
}

/// The fixture directories made with transformers: `lxmert-tiny` (the preset's config) and
/// `lxmert-alt` (another config: 3/2/2 layers, hidden 48, 6 heads, 7 answers, batch 3).
pub fn fixtures() -> [PathBuf; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [root.join("lxmert-tiny"), root.join("lxmert-alt")]
}

/// Runs `tessera` with `args`.
pub fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("the tessera binary runs")
}

/// Runs `tessera`, asserting success; returns stdout.
pub fn tessera_ok(args: &[&str]) -> String {
    let out = tessera(args);
    assert!(
        out.status.success(),
        "tessera {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The arguments of `tessera run MODEL --inputs I --outputs O`, then `extra`.
pub fn run_args<'a>(
    model: &'a Path,
    inputs: &'a Path,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        model.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
        "--outputs",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `tessera`, asserting a clean failure (exit 1, no panic); returns stderr.
pub fn tessera_err(args: &[&str]) -> String {
    let out = tessera(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "tessera {args:?} should fail with 1:\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "tessera {args:?} panicked:\n{err}"
    );
    err
}

/// Loads a safetensors file.
pub fn load(path: &Path) -> BTreeMap<String, Tensor> {
    tessera_ir::io::load_safetensors(path).expect("fixture loads")
}

/// Max abs error relative to the reference's max abs value.
pub fn rel_err(actual: &Tensor, expected: &Tensor) -> f64 {
    actual
        .rel_max_err(expected)
        .unwrap_or_else(|| panic!("shape {:?} vs {:?}", actual.shape(), expected.shape()))
}

/// Max abs error.
pub fn abs_err(actual: &Tensor, expected: &Tensor) -> f64 {
    let a = actual.to_f64_vec();
    let b = expected.to_f64_vec();
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}
