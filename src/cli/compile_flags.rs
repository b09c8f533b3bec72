//! The compile flags shared by `tessera compile` and `tessera run --engine tiles`, and the
//! step both take from them to a plan: [`CompileFlags::options`] turns the flags (with the
//! IPU configuration they override) into the driver's options, and [`build_plan`] runs the
//! compile driver, records the model the plan comes from, and lowers forward plans to tiles.
//!
//! The IPU configuration gives the parallelism (IPUs per replica, replicas, gradient
//! accumulation, device iterations), `layers_per_ipu` for `--placement manual`,
//! `recompute_checkpoint_every_layer`, `matmul_proportion` and the precision settings; every
//! flag wins over the file.

use super::precision::describe;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::Path;
use tessera::compile::{compile, lower_tiles, precision_transforms, CompileOptions, TileOptions};
use tessera::model::ModelSpec;
use tessera_ir::Graph;
use tessera_passes::mixed_precision::PrecisionConfig;
use tessera_passes::recompute::{Budget, RecomputeMode};
use tessera_passes::{LayerRule, Placement};
use tessera_plan::{Plan, RunSettings, Source};
use tessera_target::{IpuConfig, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlacementArg {
    /// The partition with the best predicted throughput that fits in memory.
    Auto,
    /// optimum-graphcore's `layers_per_ipu` (from --layers-per-ipu or the IPU config).
    Manual,
    /// The seed run's hand placement of LXMERT on 4 IPUs.
    OptimumGraphcore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RecomputeArg {
    /// No recomputation.
    None,
    /// A checkpoint on every layer output.
    Layer,
    /// Everything in a stage recomputed from the stage's inputs.
    Pipeline,
    /// The fewest extra FLOPs under --recompute-budget per chip.
    Auto,
}

/// How to compile: parallelism, placement, recomputation, target and tile lowering.
#[derive(Debug, Args)]
pub struct CompileFlags {
    /// IPUs (pipeline stages, chips) per replica.
    #[arg(long)]
    ipus: Option<usize>,
    /// Data-parallel replicas.
    #[arg(long)]
    replicas: Option<usize>,
    /// Micro-batches per weight update.
    #[arg(long)]
    grad_accum: Option<usize>,
    /// Steps per host call.
    #[arg(long)]
    device_iterations: Option<usize>,
    /// How to place layers on IPUs.
    #[arg(long, value_enum, default_value_t = PlacementArg::Auto)]
    placement: PlacementArg,
    /// Layers per IPU for --placement manual, comma-separated (-1: share the rest).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    layers_per_ipu: Option<Vec<i64>>,
    /// Never cut a stage inside a layer.
    #[arg(long)]
    whole_layers: bool,
    /// Recomputation (default: `layer` if the IPU config sets recompute_checkpoint_every_layer, else none).
    #[arg(long, value_enum)]
    recompute: Option<RecomputeArg>,
    /// Activation memory budget per chip for --recompute auto, bytes (suffixes kB, MB, GB, KiB, MiB, GiB).
    #[arg(long)]
    recompute_budget: Option<String>,
    /// A target preset (mk2, mk1) or a target JSON file.
    #[arg(long, default_value = "mk2")]
    target: String,
    /// Fraction of tile memory a matmul may use when lowering to tiles (default: the IPU
    /// config's matmul_proportion, the smallest of a per-IPU list).
    #[arg(long, value_name = "F")]
    matmul_proportion: Option<f64>,
    /// Keep a plan whose tiles are out of memory (it can be inspected but not run).
    #[arg(long)]
    allow_oom: bool,
    /// Lower sibling matmuls (Linear layers reading the same activation, such as attention's
    /// query, key and value) one by one instead of as one fused product, and lay out a weight
    /// read by several matmuls for the first of them only.
    #[arg(long)]
    no_fuse_matmuls: bool,
    /// Stop after placement: a graph-level plan (stages, cost report) without tile programs,
    /// in seconds even for the full-size seed configuration.
    #[arg(long)]
    no_tiles: bool,
}

/// Parses `123`, `200MB`, `1.5GiB`, ... as bytes.
fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => bail!("--recompute-budget `{text}`: unknown unit `{other}` (use B, kB, MB, GB, KiB, MiB or GiB)"),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("--recompute-budget `{text}` is not a number of bytes"))?;
    let bytes = n * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        bail!("--recompute-budget `{text}` is out of range");
    }
    Ok(bytes as u64)
}

/// The IPU configuration: the file's (with its warnings) or the defaults, then the flags.
fn ipu_config(a: &CompileFlags, file: Option<&Path>) -> Result<(IpuConfig, Vec<String>)> {
    let (mut cfg, warnings) = match file {
        Some(path) => {
            let (cfg, w) = IpuConfig::from_file(path)?;
            (cfg, w.iter().map(|w| w.to_string()).collect::<Vec<_>>())
        }
        None => (IpuConfig::default(), Vec::new()),
    };
    let overrides = [
        ("--ipus", a.ipus, &mut cfg.ipus_per_replica),
        ("--replicas", a.replicas, &mut cfg.replication_factor),
        (
            "--grad-accum",
            a.grad_accum,
            &mut cfg.gradient_accumulation_steps,
        ),
        (
            "--device-iterations",
            a.device_iterations,
            &mut cfg.device_iterations,
        ),
    ];
    for (flag, value, field) in overrides {
        if let Some(v) = value {
            if v == 0 {
                bail!("{flag} must be at least 1, got 0");
            }
            *field = v;
        }
    }
    if let Some(lpi) = &a.layers_per_ipu {
        cfg.layers_per_ipu = lpi.clone();
    }
    if a.ipus.is_some() || a.layers_per_ipu.is_some() {
        // The flags may contradict the file's per-IPU lists; say so rather than guess.
        cfg.validate()
            .context("the IPU configuration after applying the command-line flags")?;
    }
    Ok((cfg, warnings))
}

/// What a compile is of: the model, the step, the shapes and the precision.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The MODEL argument.
    pub model: &'a str,
    /// Its resolution.
    pub spec: &'a ModelSpec,
    /// The training step (else the forward graph).
    pub train: bool,
    /// Question length and object count (LXMERT).
    pub seq_len: usize,
    /// Visual objects (LXMERT).
    pub num_objects: usize,
    /// Samples per micro-batch.
    pub micro_batch: usize,
    /// The resolved precision (`None`: fp32).
    pub precision: Option<&'a PrecisionConfig>,
}

impl CompileFlags {
    /// The compile driver's options and the tile lowering's, for `subject` with the IPU
    /// configuration `ipu_config_file` (if any) under these flags.
    pub fn options(
        &self,
        subject: &Subject<'_>,
        ipu_config_file: Option<&Path>,
    ) -> Result<(CompileOptions, TileOptions)> {
        let target = Target::resolve(&self.target)?;
        let (cfg, mut warnings) = ipu_config(self, ipu_config_file)?;
        let micro_batch = u32::try_from(subject.micro_batch)
            .ok()
            .filter(|&b| b >= 1)
            .context("--micro-batch must be between 1 and 2^32 - 1")?;
        let recompute = match self.recompute {
            Some(RecomputeArg::None) => RecomputeMode::None,
            Some(RecomputeArg::Layer) => RecomputeMode::Layer,
            Some(RecomputeArg::Pipeline) => RecomputeMode::Pipeline,
            Some(RecomputeArg::Auto) => {
                let Some(b) = &self.recompute_budget else {
                    bail!(
                        "--recompute auto needs --recompute-budget BYTES (activation memory per chip)"
                    );
                };
                RecomputeMode::Auto(Budget::PerChip(parse_bytes(b)?))
            }
            None if cfg.recompute_checkpoint_every_layer => RecomputeMode::Layer,
            None => RecomputeMode::None,
        };
        if self.recompute_budget.is_some() && self.recompute != Some(RecomputeArg::Auto) {
            warnings.push("--recompute-budget is only used by --recompute auto; ignored".into());
        }
        if !subject.train && self.recompute.is_some_and(|r| r != RecomputeArg::None) {
            warnings.push("recomputation applies to training (--train) only; ignored".into());
        }
        let placement = match self.placement {
            PlacementArg::Auto => Placement::Auto,
            PlacementArg::Manual => Placement::Manual {
                layers_per_ipu: cfg.layers_per_ipu.clone(),
            },
            PlacementArg::OptimumGraphcore => Placement::OptimumGraphcore,
        };
        let (rule, shapes) = match subject.spec {
            ModelSpec::Lxmert { .. } => (
                LayerRule::lxmert(),
                vec![
                    ("seq_len".to_string(), subject.seq_len),
                    ("num_objects".to_string(), subject.num_objects),
                ],
            ),
            ModelSpec::Ir { .. } => (LayerRule::numbered(), Vec::new()),
        };
        let opts = CompileOptions {
            settings: RunSettings {
                model: subject.model.to_string(),
                precision: describe(subject.precision),
                shapes,
                ..RunSettings::default()
            },
            train: subject.train,
            ipu_config: cfg,
            warnings,
            target,
            placement,
            recompute,
            rule,
            split_layers: !self.whole_layers,
            micro_batch,
            scaled_loss: subject
                .precision
                .is_some_and(|p| p.loss_scaling.is_enabled()),
        };
        let tiles = TileOptions {
            allow_oom: self.allow_oom,
            matmul_proportion: self.matmul_proportion,
            train: false,
            skip: self.no_tiles,
            no_fuse_matmuls: self.no_fuse_matmuls,
        };
        Ok((opts, tiles))
    }
}

/// The MODEL argument as a plan records it: an existing path made absolute (so the plan
/// runs from any directory), anything else (a preset name) as given.
fn source_model(model: &str) -> String {
    let path = Path::new(model);
    if path.exists() {
        if let Ok(abs) = std::fs::canonicalize(path) {
            return abs.display().to_string();
        }
    }
    model.to_string()
}

/// Compiles the graph `build` makes, records `subject.model` and `seed` as its source, and
/// lowers a forward plan to tiles. Returns the plan and notes for the user (how the matmul
/// proportion was chosen).
pub fn build_plan(
    subject: &Subject<'_>,
    seed: u64,
    opts: &CompileOptions,
    tiles: &TileOptions,
    build: impl FnOnce() -> Result<Graph>,
) -> Result<(Plan, Vec<String>)> {
    let transforms = precision_transforms(subject.precision);
    let mut plan = compile(build, opts, &transforms)?;
    plan.source = Source {
        model: source_model(subject.model),
        seed,
    };
    let note = lower_tiles(&mut plan, tiles)?;
    Ok((plan, note.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("123").unwrap(), 123);
        assert_eq!(parse_bytes("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_bytes("1.5 GiB").unwrap(), 1_610_612_736);
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MB").is_err());
    }
}
