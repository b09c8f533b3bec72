//! [`DumpDir`]: the instrumentation behind `--dump-dir DIR`, in the manner of XLA's
//! `--xla_dump_to`.
//!
//! It writes `00-input.tir` (the pipeline's input), then `NN-<pass>.tir` after pass `NN`,
//! and `passes.json`: a list with one entry per pass that ran (`status` `ok` with index,
//! name, seconds, nodes before/after, added, removed, changed and counters, or `failed`
//! with the error). When a pass fails, the IR it was given is already on disk (the previous
//! file), so the failure can be reproduced from it; a graph rejected by the verifier is
//! kept as `NN-<pass>.invalid.tir`. `passes.json` is rewritten after every pass, so it is
//! complete even when a pass fails. Every file is written atomically, and every `.tir`
//! file starts with a comment line and parses back as text IR. Dump files left in `DIR` by
//! an earlier run (`NN-*.tir`, `passes.json`) are removed first; nothing else is touched.

use std::path::{Path, PathBuf};
use tessera_ir::Graph;
use tessera_passes::manager::{HookError, Instrumentation, PassEntry, PassFailure, PassRecord};

/// A dump directory could not be prepared or written.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// A file-system operation failed.
    #[error("dump directory: {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a dump file failed.
    #[error("dump directory: {0}")]
    Write(#[from] tessera_ir::io::IoError),
    /// `passes.json` could not be serialised.
    #[error("dump directory: serialising passes.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes one text-IR file per pass and `passes.json` into a directory.
#[derive(Debug)]
pub struct DumpDir {
    dir: PathBuf,
    pipeline: String,
    entries: Vec<PassEntry>,
    last: Option<PathBuf>,
}

impl DumpDir {
    /// Creates `dir` if needed and removes the dump files of an earlier run from it.
    /// `pipeline` (`loss,autodiff`) is recorded in every file's header.
    pub fn create(dir: &Path, pipeline: &str) -> Result<Self, DumpError> {
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| DumpError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
            let path = entry.map_err(io("reading", dir))?.path();
            let stale = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_dump_file);
            if stale && path.is_file() {
                std::fs::remove_file(&path).map_err(io("removing stale dump", &path))?;
            }
        }
        Ok(DumpDir {
            dir: dir.to_path_buf(),
            pipeline: pipeline.to_string(),
            entries: Vec::new(),
            last: None,
        })
    }

    /// The name of the dump after pass `index` (`00-input.tir` for index 0).
    pub fn file_name(index: usize, name: &str) -> String {
        format!("{index:02}-{name}.tir")
    }

    /// The last IR file written: the input of the pass that runs (or failed) next.
    pub fn last_file(&self) -> Option<&Path> {
        self.last.as_deref()
    }

    /// The entries written to `passes.json` so far.
    pub fn entries(&self) -> &[PassEntry] {
        &self.entries
    }

    fn write_ir(&mut self, file: &str, header: &str, graph: &Graph) -> Result<PathBuf, DumpError> {
        let path = self.dir.join(file);
        let text = format!("// {header}\n{}", tessera_ir::text::print(graph));
        tessera_ir::io::write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    fn write_json(&self) -> Result<(), DumpError> {
        let json = serde_json::to_string_pretty(&self.entries)? + "\n";
        tessera_ir::io::write_atomic(&self.dir.join("passes.json"), json.as_bytes())?;
        Ok(())
    }
}

/// `NN-anything.tir` (two or more digits) or `passes.json`.
fn is_dump_file(name: &str) -> bool {
    if name == "passes.json" {
        return true;
    }
    let digits = name.chars().take_while(char::is_ascii_digit).count();
    digits >= 2
        && name.get(digits..).is_some_and(|rest| rest.starts_with('-'))
        && name.ends_with(".tir")
}

impl Instrumentation for DumpDir {
    fn pipeline_start(&mut self, input: &Graph) -> Result<(), HookError> {
        let header = format!("input of pipeline `{}`", self.pipeline);
        self.last = Some(self.write_ir(&Self::file_name(0, "input"), &header, input)?);
        self.write_json()?;
        Ok(())
    }

    fn after_pass(&mut self, r: &PassRecord, graph: &Graph) -> Result<(), HookError> {
        let header = format!(
            "IR after pass #{} `{}` of pipeline `{}`",
            r.index, r.name, self.pipeline
        );
        self.last = Some(self.write_ir(&Self::file_name(r.index, &r.name), &header, graph)?);
        self.entries.push(PassEntry::Ok(r.clone()));
        self.write_json()?;
        Ok(())
    }

    fn pass_failed(
        &mut self,
        f: &PassFailure,
        _input: &Graph,
        invalid: Option<&Graph>,
    ) -> Result<(), HookError> {
        if let Some(g) = invalid {
            let header = format!(
                "INVALID IR produced by pass #{} `{}` (rejected by the verifier)",
                f.index, f.name
            );
            self.write_ir(
                &format!("{:02}-{}.invalid.tir", f.index, f.name),
                &header,
                g,
            )?;
        }
        self.entries.push(PassEntry::Failed(f.clone()));
        self.write_json()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_file_names() {
        assert!(is_dump_file("00-input.tir"));
        assert!(is_dump_file("12-mixed-precision.tir"));
        assert!(is_dump_file("03-x.invalid.tir"));
        assert!(is_dump_file("passes.json"));
        assert!(!is_dump_file("model.tir"));
        assert!(!is_dump_file("1-x.tir"));
        assert!(!is_dump_file("00-input.txt"));
        assert_eq!(DumpDir::file_name(3, "autodiff"), "03-autodiff.tir");
    }

    #[test]
    fn stale_dumps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("notes.txt");
        std::fs::write(&keep, "mine").unwrap();
        std::fs::write(dir.path().join("05-old.tir"), "x").unwrap();
        std::fs::write(dir.path().join("passes.json"), "[]").unwrap();
        let sub = dir.path().join("dump");
        DumpDir::create(dir.path(), "dce").unwrap();
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["notes.txt"]);
        DumpDir::create(&sub, "dce").unwrap();
        assert!(sub.is_dir());
    }

    fn record(index: usize, name: &str) -> PassRecord {
        PassRecord {
            index,
            name: name.into(),
            seconds: 0.5,
            verify_seconds: 0.25,
            nodes_before: 1,
            nodes_after: 1,
            added: 0,
            removed: 0,
            changed: false,
            counters: [("k".to_string(), 3)].into_iter().collect(),
        }
    }

    #[test]
    fn writes_every_file_and_records_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Graph::new("g");
        let x = g
            .input("x", tessera_ir::TensorType::scalar(tessera_ir::DType::F32))
            .unwrap();
        g.set_output("y", x).unwrap();
        let mut d = DumpDir::create(dir.path(), "a,b").unwrap();
        d.pipeline_start(&g).unwrap();
        assert_eq!(
            d.last_file(),
            Some(dir.path().join("00-input.tir").as_path())
        );
        d.after_pass(&record(1, "a"), &g).unwrap();
        let failure = PassFailure {
            index: 2,
            name: "b".into(),
            seconds: 0.125,
            nodes_before: 1,
            kind: tessera_passes::manager::FailureKind::InvalidGraph,
            error: "%0: bad".into(),
        };
        d.pass_failed(&failure, &g, Some(&g)).unwrap();
        // The IR before the failing pass is the last file written before the failure.
        assert_eq!(d.last_file(), Some(dir.path().join("01-a.tir").as_path()));
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "00-input.tir",
                "01-a.tir",
                "02-b.invalid.tir",
                "passes.json"
            ]
        );
        let text = std::fs::read_to_string(dir.path().join("01-a.tir")).unwrap();
        assert_eq!(
            text,
            "// IR after pass #1 `a` of pipeline `a,b`\ngraph @g(%x: f32[]) {\n  return %y: %x\n}\n"
        );
        tessera_ir::text::parse(&text).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("passes.json")).unwrap())
                .unwrap();
        let expected = serde_json::json!([
            {"status": "ok", "index": 1, "name": "a", "seconds": 0.5, "verify_seconds": 0.25,
             "nodes_before": 1, "nodes_after": 1, "added": 0, "removed": 0, "changed": false,
             "counters": {"k": 3}},
            {"status": "failed", "index": 2, "name": "b", "seconds": 0.125, "nodes_before": 1,
             "kind": "invalid-graph", "error": "%0: bad"}
        ]);
        assert_eq!(json, expected);
        assert_eq!(d.entries().len(), 2);
    }
}
