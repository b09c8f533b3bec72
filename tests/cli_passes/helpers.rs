//! Running `tessera inspect` on a small lxmert-tiny and reading what it prints and dumps.

pub use crate::common::*;
use std::path::Path;

/// lxmert-tiny with small shapes, so that every test runs in well under a second.
pub const TINY: [&str; 5] = ["lxmert-tiny", "--seq-len", "4", "--num-objects", "3"];

/// `tessera inspect` on [`TINY`] with `extra` arguments.
pub fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["inspect"];
    v.extend_from_slice(&TINY);
    v.extend_from_slice(extra);
    v
}

/// Splits printed output into (banner, IR) chunks.
pub fn chunks(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if line.starts_with("// -----// IR Dump") {
            v.push((line.to_string(), String::new()));
        } else if let Some(last) = v.last_mut() {
            last.1 += line;
            last.1.push('\n');
        }
    }
    v
}

/// The text of a dump file without its header comment line.
pub fn body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    assert!(header.starts_with("// "), "{header}");
    rest.to_string()
}

/// A JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The file names in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}
