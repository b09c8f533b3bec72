//! `tessera compile MODEL [--train] [--ipu-config F] [--ipus N] [--placement ...]
//! [--recompute ...] [--precision ...] [--seq-len S --num-objects N --micro-batch B]
//! -o PLAN [--json]`: compile a model to a plan and print its stage table.
//!
//! The IPU configuration gives the parallelism (IPUs per replica, replicas, gradient
//! accumulation, device iterations), `layers_per_ipu` for `--placement manual`,
//! `recompute_checkpoint_every_layer`, the optimizer-state placement and the precision
//! settings; every flag wins over the file. `--precision fp16` runs the mixed-precision
//! pass on the forward graph (configured as `tessera train` configures it).

use super::precision::{describe, PrecisionArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tessera::compile::{compile, precision_transforms, report_text, CompileOptions};
use tessera::model::{self, ModelSpec};
use tessera_lxmert::{BuildOptions, Shapes};
use tessera_passes::recompute::{Budget, RecomputeMode};
use tessera_passes::{LayerRule, Placement};
use tessera_plan::RunSettings;
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

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A preset (lxmert-base, lxmert-tiny), a config.json, a Hugging Face model directory, or a text-IR file.
    model: String,
    /// Compile the whole training step (loss, backward, recomputation); default: the forward graph.
    #[arg(long)]
    train: bool,
    /// IPUs (pipeline stages) per replica.
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
    /// Precision, and the optimum-graphcore ipu_config.json (`--ipu-config`) whose
    /// parallelism, recomputation and precision settings the other flags override.
    #[command(flatten)]
    precision: PrecisionArgs,
    /// A target preset (mk2, mk1) or a target JSON file.
    #[arg(long, default_value = "mk2")]
    target: String,
    /// Question length in tokens.
    #[arg(long, default_value_t = 20)]
    seq_len: usize,
    /// Number of visual objects.
    #[arg(long, default_value_t = 36)]
    num_objects: usize,
    /// Samples per micro-batch.
    #[arg(long, default_value_t = 1)]
    micro_batch: usize,
    /// Where to write the plan (atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
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
fn ipu_config(a: &CompileArgs) -> Result<(IpuConfig, Vec<String>)> {
    let (mut cfg, warnings) = match &a.precision.ipu_config {
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

pub fn compile_cmd(a: CompileArgs) -> Result<()> {
    let spec = model::resolve(&a.model)?;
    let target = Target::resolve(&a.target)?;
    // Resolving the precision flags reads the IPU config too, and prints its warnings.
    let precision = a.precision.resolve(a.train)?;
    let (cfg, mut warnings) = ipu_config(&a)?;
    let micro_batch = u32::try_from(a.micro_batch)
        .ok()
        .filter(|&b| b >= 1)
        .context("--micro-batch must be between 1 and 2^32 - 1")?;
    let recompute = match a.recompute {
        Some(RecomputeArg::None) => RecomputeMode::None,
        Some(RecomputeArg::Layer) => RecomputeMode::Layer,
        Some(RecomputeArg::Pipeline) => RecomputeMode::Pipeline,
        Some(RecomputeArg::Auto) => {
            let Some(b) = &a.recompute_budget else {
                bail!(
                    "--recompute auto needs --recompute-budget BYTES (activation memory per chip)"
                );
            };
            RecomputeMode::Auto(Budget::PerChip(parse_bytes(b)?))
        }
        None if cfg.recompute_checkpoint_every_layer => RecomputeMode::Layer,
        None => RecomputeMode::None,
    };
    if a.recompute_budget.is_some() && a.recompute != Some(RecomputeArg::Auto) {
        warnings.push("--recompute-budget is only used by --recompute auto; ignored".into());
    }
    if !a.train && a.recompute.is_some_and(|r| r != RecomputeArg::None) {
        warnings.push("recomputation applies to training (--train) only; ignored".into());
    }
    let placement = match a.placement {
        PlacementArg::Auto => Placement::Auto,
        PlacementArg::Manual => Placement::Manual {
            layers_per_ipu: cfg.layers_per_ipu.clone(),
        },
        PlacementArg::OptimumGraphcore => Placement::OptimumGraphcore,
    };
    let (rule, shapes) = match &spec {
        ModelSpec::Lxmert { .. } => (
            LayerRule::lxmert(),
            vec![
                ("seq_len".to_string(), a.seq_len),
                ("num_objects".to_string(), a.num_objects),
            ],
        ),
        ModelSpec::Ir { .. } => (LayerRule::numbered(), Vec::new()),
    };
    let opts = CompileOptions {
        settings: RunSettings {
            model: a.model.clone(),
            precision: describe(precision.as_ref()),
            shapes,
            ..RunSettings::default()
        },
        train: a.train,
        ipu_config: cfg,
        warnings,
        target,
        placement,
        recompute,
        rule,
        split_layers: !a.whole_layers,
        micro_batch,
        scaled_loss: precision
            .as_ref()
            .is_some_and(|p| p.loss_scaling.is_enabled()),
    };
    let transforms = precision_transforms(precision.as_ref());
    let lxmert_shapes = Shapes {
        batch: a.micro_batch,
        seq_len: a.seq_len,
        num_objects: a.num_objects,
    };
    let plan = compile(
        || spec.graph(&lxmert_shapes, &BuildOptions::default()),
        &opts,
        &transforms,
    )?;
    plan.save(&a.output)?;
    let text = if a.json {
        serde_json::to_string_pretty(&plan.report)? + "\n"
    } else {
        format!(
            "{}plan written to {}\n",
            report_text(&plan.report),
            a.output.display()
        )
    };
    super::emit(&text, None)
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
