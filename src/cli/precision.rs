//! The precision flags shared by `run`, `train` and `inspect`: `--precision fp32|fp16`,
//! `--half-partials`, `--loss-scaling N|dynamic[:K]|none`, `--stochastic-rounding`,
//! `--master-weights f32|f16`, and `--ipu-config F` (an optimum-graphcore
//! `ipu_config.json`).
//!
//! [`PrecisionArgs::resolve`] merges them into the `mixed-precision` pass's
//! [`PrecisionConfig`]: it starts from [`PrecisionConfig::plain_fp16`], applies the IPU
//! config's `enable_half_partials`, `enable_half_first_order_momentum`, `loss_scaling`,
//! `auto_loss_scaling`, `stochastic_rounding` (training only, as optimum turns it on for
//! training and off for inference) and `seed`, then the flags, which win. The IPU config's
//! warnings (keys Tessera ignores) go to stderr. fp16-only flags with `--precision fp32`
//! are an error rather than silently ignored.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tessera_passes::mixed_precision::{
    DynamicScaling, LossScaling, MasterWeights, PrecisionConfig,
};
use tessera_target::IpuConfig;

/// Numeric precision of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// Everything in f32.
    Fp32,
    /// The `mixed-precision` pass: fp16 compute where safe, fp32 where not.
    Fp16,
}

/// Where the weights live in fp16 training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsArg {
    /// f32 master weights with f16 working copies (PyTorch AMP).
    F32,
    /// f16 weights (the seed run's `model.half()`).
    F16,
}

/// `--loss-scaling`: a static scale, `dynamic[:K]`, or `none`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossScalingArg {
    /// No scaling.
    None,
    /// A fixed scale.
    Static(f64),
    /// PyTorch GradScaler-style dynamic scaling: initial scale 65536, doubled after this
    /// many clean steps (default 2000).
    Dynamic(u32),
}

fn parse_loss_scaling(s: &str) -> Result<LossScalingArg, String> {
    let default_interval = DynamicScaling::default().growth_interval;
    match s {
        "dynamic" => Ok(LossScalingArg::Dynamic(default_interval)),
        "none" => Ok(LossScalingArg::None),
        n if n.starts_with("dynamic:") => match n.strip_prefix("dynamic:").map(str::parse::<u32>) {
            Some(Ok(k)) if k >= 1 => Ok(LossScalingArg::Dynamic(k)),
            _ => Err(format!(
                "expected `dynamic:K` with K >= 1 clean steps before the scale doubles, \
                     got `{n}`"
            )),
        },
        n => match n.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(LossScalingArg::Static(v)),
            _ => Err(format!(
                "expected a positive number (e.g. 16384), `dynamic[:K]` or `none`, got `{n}`"
            )),
        },
    }
}

/// The precision flags (flattened into `run`, `train` and `inspect`).
#[derive(Debug, Clone, Args)]
pub struct PrecisionArgs {
    /// Numeric precision: fp32, or fp16 (the mixed-precision pass).
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,
    /// fp16 partial sums in fp16 matmuls (optimum's enable_half_partials);
    /// `--half-partials=false` overrides an IPU config.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub half_partials: Option<bool>,
    /// Loss scaling: a static scale N (the seed run used 16384), `dynamic` (from 65536;
    /// halve and skip the step on overflow, double after 2000 clean steps, or after K with
    /// `dynamic:K`), or `none`.
    #[arg(long, value_name = "N|dynamic[:K]|none", value_parser = parse_loss_scaling)]
    pub loss_scaling: Option<LossScalingArg>,
    /// Round fp16 results stochastically (seeded, deterministic), as the IPU does in
    /// training; `--stochastic-rounding=false` overrides an IPU config.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub stochastic_rounding: Option<bool>,
    /// f32 master weights with f16 working copies (default), or f16 weights (the seed run).
    #[arg(long, value_enum)]
    pub master_weights: Option<WeightsArg>,
    /// An optimum-graphcore IPU config (ipu_config.json) to take precision settings from
    /// (enable_half_partials, enable_half_first_order_momentum, loss_scaling,
    /// auto_loss_scaling, stochastic_rounding, seed); flags win.
    #[arg(long, value_name = "FILE")]
    pub ipu_config: Option<PathBuf>,
}

impl PrecisionArgs {
    /// The mixed-precision configuration these flags select for a training (`training`)
    /// or inference command: `None` for fp32. See the module documentation.
    pub fn resolve(&self, training: bool) -> Result<Option<PrecisionConfig>> {
        let ipu = match &self.ipu_config {
            Some(path) => {
                let (config, warnings) = IpuConfig::from_file(path)
                    .with_context(|| format!("reading IPU config {}", path.display()))?;
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                Some(config)
            }
            None => None,
        };
        if self.precision == Precision::Fp32 {
            let fp16_only = [
                ("--half-partials", self.half_partials.is_some()),
                ("--loss-scaling", self.loss_scaling.is_some()),
                ("--stochastic-rounding", self.stochastic_rounding.is_some()),
                ("--master-weights", self.master_weights.is_some()),
            ];
            let given: Vec<&str> = fp16_only.iter().filter(|f| f.1).map(|f| f.0).collect();
            if !given.is_empty() {
                bail!("{} only apply with --precision fp16", given.join(", "));
            }
            return Ok(None);
        }
        let mut cfg = PrecisionConfig::plain_fp16();
        if let Some(c) = &ipu {
            cfg.half_partials = c.enable_half_partials;
            cfg.half_first_order_momentum = c.enable_half_first_order_momentum;
            cfg.loss_scaling = match (c.auto_loss_scaling, c.loss_scaling) {
                (true, init) => LossScaling::Dynamic(DynamicScaling {
                    init_scale: init.unwrap_or(DynamicScaling::default().init_scale),
                    ..DynamicScaling::default()
                }),
                (false, Some(s)) => LossScaling::Static(s),
                (false, None) => LossScaling::None,
            };
            cfg.stochastic_rounding = training && c.stochastic_rounding;
            if let Some(seed) = c.seed {
                cfg.seed = seed;
            }
        }
        if let Some(h) = self.half_partials {
            cfg.half_partials = h;
        }
        if let Some(l) = self.loss_scaling {
            cfg.loss_scaling = match l {
                LossScalingArg::None => LossScaling::None,
                LossScalingArg::Static(s) => LossScaling::Static(s),
                LossScalingArg::Dynamic(growth_interval) => LossScaling::Dynamic(DynamicScaling {
                    growth_interval,
                    ..DynamicScaling::default()
                }),
            };
        }
        if let Some(sr) = self.stochastic_rounding {
            cfg.stochastic_rounding = sr;
        }
        if let Some(w) = self.master_weights {
            cfg.master_weights = match w {
                WeightsArg::F32 => MasterWeights::F32,
                WeightsArg::F16 => MasterWeights::F16,
            };
        }
        cfg.validate()?;
        Ok(Some(cfg))
    }
}

/// A one-line description of a precision configuration, for progress messages.
pub fn describe(cfg: Option<&PrecisionConfig>) -> String {
    let Some(c) = cfg else {
        return "fp32".to_string();
    };
    let weights = match c.master_weights {
        MasterWeights::F32 => "f32 master weights",
        MasterWeights::F16 => "f16 weights",
    };
    let partials = if c.half_partials { "fp16" } else { "fp32" };
    let scaling = match c.loss_scaling {
        LossScaling::None => "no loss scaling".to_string(),
        LossScaling::Static(s) => format!("loss scale {s}"),
        LossScaling::Dynamic(d) => format!(
            "dynamic loss scale from {} (x2 after {} clean steps)",
            d.init_scale, d.growth_interval
        ),
    };
    let mut parts = vec![
        "fp16".to_string(),
        weights.to_string(),
        format!("{partials} partials"),
        scaling,
    ];
    if c.half_first_order_momentum {
        parts.push("fp16 first moment".into());
    }
    if c.stochastic_rounding {
        parts.push(format!("stochastic rounding (seed {})", c.seed));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        model: String,
        #[command(flatten)]
        p: PrecisionArgs,
    }

    fn parse(args: &[&str]) -> PrecisionArgs {
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().p
    }

    fn seed_file(dir: &std::path::Path, extra: &str) -> String {
        let path = dir.join("ipu_config.json");
        let text = format!(
            "{{\"enable_half_partials\": true, \"enable_half_first_order_momentum\": true, \
             \"seed\": 42{extra}}}"
        );
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn fp32_is_none_and_rejects_fp16_flags() {
        assert_eq!(parse(&["m"]).resolve(true).unwrap(), None);
        let e = parse(&["m", "--half-partials", "--loss-scaling", "8"])
            .resolve(false)
            .unwrap_err();
        assert!(
            e.to_string().contains("--half-partials, --loss-scaling"),
            "{e}"
        );
    }

    #[test]
    fn flags_over_plain_fp16() {
        let cfg = parse(&["--precision", "fp16", "m"])
            .resolve(true)
            .unwrap()
            .unwrap();
        assert_eq!(cfg, PrecisionConfig::plain_fp16());
        let cfg = parse(&[
            "m",
            "--precision",
            "fp16",
            "--half-partials",
            "--loss-scaling",
            "16384",
            "--stochastic-rounding",
            "--master-weights",
            "f16",
        ])
        .resolve(true)
        .unwrap()
        .unwrap();
        assert!(cfg.half_partials && cfg.stochastic_rounding);
        assert_eq!(cfg.loss_scaling, LossScaling::Static(16384.0));
        assert_eq!(cfg.master_weights, MasterWeights::F16);
        let dynamic = parse(&["m", "--precision=fp16", "--loss-scaling=dynamic"])
            .resolve(true)
            .unwrap()
            .unwrap();
        assert_eq!(
            dynamic.loss_scaling,
            LossScaling::Dynamic(DynamicScaling::default())
        );
        let every_100 = parse(&["m", "--precision=fp16", "--loss-scaling=dynamic:100"])
            .resolve(true)
            .unwrap()
            .unwrap();
        assert_eq!(
            every_100.loss_scaling,
            LossScaling::Dynamic(DynamicScaling {
                init_scale: 65536.0,
                growth_interval: 100
            })
        );
        let mut all = vec!["t", "m", "--precision", "fp16", "--loss-scaling", "-3"];
        assert!(Cli::try_parse_from(&all).is_err());
        all[5] = "lots";
        assert!(Cli::try_parse_from(&all).is_err());
        all[5] = "dynamic:0";
        assert!(Cli::try_parse_from(&all).is_err());
    }

    #[test]
    fn ipu_config_under_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = seed_file(dir.path(), ", \"loss_scaling\": 16384");
        let train = parse(&["m", "--precision", "fp16", "--ipu-config", &f])
            .resolve(true)
            .unwrap()
            .unwrap();
        assert!(train.half_partials && train.half_first_order_momentum);
        assert_eq!(train.loss_scaling, LossScaling::Static(16384.0));
        assert!(train.stochastic_rounding, "optimum: on in training");
        assert_eq!(train.seed, 42);
        let infer = parse(&["m", "--precision", "fp16", "--ipu-config", &f])
            .resolve(false)
            .unwrap()
            .unwrap();
        assert!(!infer.stochastic_rounding, "optimum: off in inference");
        let flags = parse(&[
            "m",
            "--precision",
            "fp16",
            "--ipu-config",
            &f,
            "--half-partials=false",
            "--loss-scaling",
            "none",
            "--stochastic-rounding=false",
        ])
        .resolve(true)
        .unwrap()
        .unwrap();
        assert!(!flags.half_partials && !flags.stochastic_rounding);
        assert_eq!(flags.loss_scaling, LossScaling::None);
        assert!(flags.half_first_order_momentum, "not overridden");

        let auto = seed_file(
            dir.path(),
            ", \"auto_loss_scaling\": true, \"loss_scaling\": 512",
        );
        let cfg = parse(&["m", "--precision", "fp16", "--ipu-config", &auto])
            .resolve(true)
            .unwrap()
            .unwrap();
        assert_eq!(
            cfg.loss_scaling,
            LossScaling::Dynamic(DynamicScaling {
                init_scale: 512.0,
                growth_interval: 2000
            })
        );
        let missing = parse(&[
            "m",
            "--precision",
            "fp16",
            "--ipu-config",
            "/nonexistent.json",
        ])
        .resolve(true)
        .unwrap_err();
        assert!(
            format!("{missing:#}").contains("/nonexistent.json"),
            "{missing:#}"
        );
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(None), "fp32");
        let d = describe(Some(&PrecisionConfig::seed_run()));
        assert!(
            d.contains("f16 weights") && d.contains("loss scale 16384"),
            "{d}"
        );
        assert!(d.contains("stochastic rounding (seed 42)"), "{d}");
    }
}
