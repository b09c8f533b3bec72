//! Pass names, pipeline strings (`loss,autodiff`) and the default pipelines.
//!
//! A pipeline string is a comma-separated list of pass names; white space around names is
//! ignored and an empty string is the empty pipeline. An empty item (`loss,,autodiff`) or an
//! unknown name is an error that lists the known passes (and the closest name, for typos).
//! Passes get their configuration from [`PassOptions`], shared by every pass of a pipeline.

use super::builtin::{
    AutodiffPass, DcePass, FoldCastsPass, LabelsKind, LossPass, MixedPrecisionPass,
};
use super::pass::Pass;
use super::placement::{PipelinePass, RecomputePass};
use super::runner::PassManager;
use crate::autodiff::AutodiffOptions;
use crate::mixed_precision::{PrecisionConfig, NAME as MIXED_PRECISION};
use crate::pipeline::{PipelineConfig, Placement};
use crate::recompute::{RecomputeConfig, RecomputeMode};
use tessera_cost::CostOptions;
use tessera_target::Target;

/// A pass the pipeline strings can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassInfo {
    /// Its name.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
}

/// Every known pass, in the order a training pipeline uses them.
pub const PASSES: &[PassInfo] = &[
    PassInfo {
        name: MIXED_PRECISION,
        summary: "fp16 compute where safe, fp32 where not (the policy of --explain-precision)",
    },
    PassInfo {
        name: "loss",
        summary: "attach the VQA loss to the answer logits (input `labels`, output `loss`)",
    },
    PassInfo {
        name: "autodiff",
        summary: "reverse-mode gradients of `loss` w.r.t. every parameter (outputs `grad.<param>`)",
    },
    PassInfo {
        name: "fold-casts",
        summary: "fold redundant casts (to the same type, cast(cast(x)) through an exact widening)",
    },
    PassInfo {
        name: "dce",
        summary: "remove nodes no output depends on (graph inputs are kept)",
    },
    PassInfo {
        name: "recompute",
        summary: "recompute forward values in the backward pass (checkpoints per layer by default)",
    },
    PassInfo {
        name: "pipeline",
        summary: "place the graph on pipeline stages, with inter-chip copies and stash restores",
    },
];

/// The default pipeline: none for the forward graph, `loss,autodiff` for training; with
/// `mixed` (`--precision fp16`) `mixed-precision` runs first, on the forward graph, so that
/// the loss (f32 by policy) reads its fp16 logits through a cast and the backward follows
/// the forward's types (the order the mixed-precision pass documents).
pub fn default_pipeline(train: bool, mixed: bool) -> Vec<&'static str> {
    let mut names = Vec::new();
    if mixed {
        names.push(MIXED_PRECISION);
    }
    if train {
        names.extend(["loss", "autodiff"]);
    }
    names
}

/// The configuration every pass of a pipeline is built from.
#[derive(Debug, Clone)]
pub struct PassOptions {
    /// Labels form of the `loss` pass.
    pub labels: LabelsKind,
    /// Options of the `autodiff` pass.
    pub autodiff: AutodiffOptions,
    /// `autodiff` differentiates the loss scaled by the `loss_scale` input (loss scaling).
    pub scaled_loss: bool,
    /// Configuration of the `mixed-precision` pass.
    pub precision: PrecisionConfig,
    /// Configuration of the `recompute` pass.
    pub recompute: RecomputeConfig,
    /// Configuration of the `pipeline` pass.
    pub pipeline: PipelineConfig,
    /// The chip the `pipeline` pass places and costs for.
    pub target: Target,
}

impl Default for PassOptions {
    /// Soft labels, default autodiff without loss scaling,
    /// [`PrecisionConfig::plain_fp16`] for a `mixed-precision` pass named explicitly, a
    /// checkpoint per layer for `recompute`, and automatic placement on one Mk2 IPU for
    /// `pipeline`.
    fn default() -> Self {
        PassOptions {
            labels: LabelsKind::default(),
            autodiff: AutodiffOptions::default(),
            scaled_loss: false,
            precision: PrecisionConfig::plain_fp16(),
            recompute: RecomputeConfig::new(RecomputeMode::Layer),
            pipeline: PipelineConfig::new(
                Placement::Auto,
                CostOptions::new(tessera_cost::PipelineConfig::default()),
            ),
            target: tessera_target::target::presets::mk2(),
        }
    }
}

/// A malformed pipeline string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineParseError {
    /// An item of the list is empty.
    #[error("empty pass name at position {position} of pipeline `{spec}`")]
    EmptyItem {
        /// 1-based position of the empty item.
        position: usize,
        /// The whole pipeline string.
        spec: String,
    },
    /// An item names no known pass.
    #[error("unknown pass `{name}`{hint} (known passes: {known})")]
    UnknownPass {
        /// The unknown name.
        name: String,
        /// `; did you mean `x`?` or empty.
        hint: String,
        /// The known pass names, comma-separated.
        known: String,
    },
}

/// The known pass names, comma-separated.
pub fn known_passes() -> String {
    PASSES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// Splits and checks a pipeline string; returns the pass names in order.
pub fn parse_pipeline(spec: &str) -> Result<Vec<String>, PipelineParseError> {
    if spec.trim().is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .enumerate()
        .map(|(i, item)| {
            let name = item.trim();
            if name.is_empty() {
                return Err(PipelineParseError::EmptyItem {
                    position: i + 1,
                    spec: spec.to_string(),
                });
            }
            check_name(name)?;
            Ok(name.to_string())
        })
        .collect()
}

/// Checks that `name` is a known pass.
pub fn check_name(name: &str) -> Result<(), PipelineParseError> {
    if PASSES.iter().any(|p| p.name == name) {
        return Ok(());
    }
    let closest = PASSES
        .iter()
        .map(|p| (edit_distance(name, p.name), p.name))
        .min()
        .filter(|&(d, _)| d <= 2);
    Err(PipelineParseError::UnknownPass {
        name: name.to_string(),
        hint: closest
            .map(|(_, n)| format!("; did you mean `{n}`?"))
            .unwrap_or_default(),
        known: known_passes(),
    })
}

/// The pass called `name`, configured from `opts`.
pub fn create_pass(name: &str, opts: &PassOptions) -> Result<Box<dyn Pass>, PipelineParseError> {
    Ok(match name {
        "loss" => Box::new(LossPass {
            labels: opts.labels,
        }),
        "autodiff" => Box::new(AutodiffPass {
            options: opts.autodiff.clone(),
            scaled: opts.scaled_loss,
        }),
        MIXED_PRECISION => Box::new(MixedPrecisionPass {
            config: opts.precision.clone(),
        }),
        "fold-casts" => Box::new(FoldCastsPass),
        "dce" => Box::new(DcePass),
        "recompute" => Box::new(RecomputePass {
            config: opts.recompute.clone(),
        }),
        "pipeline" => Box::new(PipelinePass {
            config: opts.pipeline.clone(),
            target: opts.target.clone(),
        }),
        other => {
            check_name(other)?;
            // Listed in PASSES but not built here: report it as unknown rather than panic.
            return Err(PipelineParseError::UnknownPass {
                name: other.to_string(),
                hint: String::new(),
                known: known_passes(),
            });
        }
    })
}

/// A pass manager running the passes named in `names`, in order.
pub fn build_pipeline<S: AsRef<str>>(
    names: &[S],
    opts: &PassOptions,
) -> Result<PassManager, PipelineParseError> {
    let mut pm = PassManager::new();
    for n in names {
        pm.add(create_pass(n.as_ref(), opts)?);
    }
    Ok(pm)
}

/// Levenshtein distance (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (&cb, w) in b.iter().zip(prev.windows(2)) {
            let &[diag, up] = w else { continue };
            let left = cur.last().copied().unwrap_or(i + 1);
            cur.push((diag + usize::from(ca != cb)).min(up + 1).min(left + 1));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn levenshtein() {
        assert_eq!(edit_distance("autodif", "autodiff"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "dce"), 3);
        assert_eq!(edit_distance("loss", ""), 4);
        assert_eq!(edit_distance("dce", "dce"), 0);
    }
}
