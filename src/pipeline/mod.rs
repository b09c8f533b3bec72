//! Running pass pipelines from the command line: which passes run, and how their output is
//! shown (`--print-before/--print-after/--print-changed`), dumped (`--dump-dir`) and timed
//! (`--timing`).
//!
//! The passes and the manager are `tessera_passes::manager`'s; this module holds the parts
//! that talk to people and files: [`PassSelection`] (`all` or a list of names checked
//! against the pipeline), [`Printer`] (IR under MLIR-style banners), [`DumpDir`] (one
//! numbered text-IR file per pass plus `passes.json`).

mod dump;
mod print;

pub use dump::{DumpDir, DumpError};
pub use print::Printer;

use std::collections::BTreeSet;
use tessera_passes::manager::check_name;

/// A set of passes chosen on the command line: none, all, or some by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PassSelection {
    /// No pass.
    #[default]
    None,
    /// Every pass.
    All,
    /// The passes with these names.
    Names(BTreeSet<String>),
}

/// A selection naming a pass that is unknown or not in the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// The name is not a pass at all.
    #[error("{flag}: {source}")]
    Unknown {
        /// The flag (`--print-after`).
        flag: String,
        /// Why (lists the known passes).
        #[source]
        source: tessera_passes::manager::PipelineParseError,
    },
    /// The pass exists but the pipeline does not run it.
    #[error("{flag}: pass `{name}` is not in the pipeline that runs ({pipeline})")]
    NotInPipeline {
        /// The flag.
        flag: String,
        /// The pass name.
        name: String,
        /// The pipeline, comma-separated (`none` when empty).
        pipeline: String,
    },
    /// An empty item in the list.
    #[error("{flag}: empty pass name in `{spec}`")]
    Empty {
        /// The flag.
        flag: String,
        /// The whole value.
        spec: String,
    },
}

impl PassSelection {
    /// Parses `all` or `NAME[,NAME]` given to `flag`, checking every name against the
    /// passes of `pipeline`.
    pub fn parse(flag: &str, spec: &str, pipeline: &[&str]) -> Result<Self, SelectionError> {
        if spec.trim() == "all" {
            return Ok(PassSelection::All);
        }
        let mut names = BTreeSet::new();
        for item in spec.split(',') {
            let name = item.trim();
            if name.is_empty() {
                return Err(SelectionError::Empty {
                    flag: flag.to_string(),
                    spec: spec.to_string(),
                });
            }
            check_name(name).map_err(|source| SelectionError::Unknown {
                flag: flag.to_string(),
                source,
            })?;
            if !pipeline.contains(&name) {
                return Err(SelectionError::NotInPipeline {
                    flag: flag.to_string(),
                    name: name.to_string(),
                    pipeline: if pipeline.is_empty() {
                        "none".to_string()
                    } else {
                        pipeline.join(",")
                    },
                });
            }
            names.insert(name.to_string());
        }
        Ok(PassSelection::Names(names))
    }

    /// True when the pass called `name` is selected.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            PassSelection::None => false,
            PassSelection::All => true,
            PassSelection::Names(n) => n.contains(name),
        }
    }

    /// True unless this is [`PassSelection::None`].
    pub fn is_some(&self) -> bool {
        !matches!(self, PassSelection::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        let p = ["loss", "autodiff"];
        assert_eq!(
            PassSelection::parse("--print-after", "all", &p),
            Ok(PassSelection::All)
        );
        let s = PassSelection::parse("--print-after", "autodiff, loss", &p).unwrap();
        assert!(s.contains("loss") && s.contains("autodiff") && !s.contains("dce"));
        let e = PassSelection::parse("--print-after", "dce", &p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--print-after: pass `dce` is not in the pipeline that runs (loss,autodiff)"
        );
        let e = PassSelection::parse("--print-before", "autodif", &p).unwrap_err();
        assert!(e.to_string().contains("did you mean `autodiff`"), "{e}");
        let e = PassSelection::parse("--print-before", "loss,", &p).unwrap_err();
        assert_eq!(e.to_string(), "--print-before: empty pass name in `loss,`");
        assert!(!PassSelection::None.contains("loss"));
    }
}
