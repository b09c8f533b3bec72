//! The last step of the compile driver for forward plans: lowering the placed graph to tile
//! programs ([`tessera_passes::lower::program::lower_program`]) and storing them in the plan.
//!
//! Pipeline stages become chips (chips = the replica's IPUs). The fraction of tile memory a
//! matmul may use comes from `--matmul-proportion`, else from the IPU configuration's
//! `matmul_proportion`; a per-IPU list is reduced to its smallest value (the lowering takes
//! one proportion for every chip, and the smallest is the one every chip can afford). A tile
//! out of memory is an error with the lowering's report, unless `allow_oom`, in which case
//! the plan keeps the report ([`TilePlan::oom`]) and cannot be run. Training plans are lowered
//! as pipelines ([`tessera_passes::lower::program::pipeline::lower_pipelined`]): each stage's
//! forward and backward as segments of PopART's schedule, with stashes for the micro-batches
//! in flight and gradient accumulators on the tiles; [`lower_tiles_with`] adds the optimizer
//! graph as the pipeline's last segment (`tessera compile --train` does), so the plan runs a
//! whole training step: the gradients, then the weight update on the tiles.

use anyhow::{bail, Result};
use std::time::Instant;
use tessera_ir::Graph;
use tessera_passes::lower::program::pipeline::lower_pipelined_with;
use tessera_passes::lower::program::{lower_program, LowerOptions, TilePlan};
use tessera_passes::lower::LowerError;
use tessera_plan::{PassTiming, Plan};
use tessera_target::IpuConfig;

/// How `tessera compile` lowers a forward plan to tiles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TileOptions {
    /// Keep a plan whose tiles are out of memory (it can be inspected, not run).
    pub allow_oom: bool,
    /// The matmul memory proportion, overriding the IPU configuration's.
    pub matmul_proportion: Option<f64>,
    /// Kept for callers that lower training plans on request; training plans are always
    /// lowered now.
    pub train: bool,
    /// Do not lower: keep the plan graph-level (`--no-tiles`).
    pub skip: bool,
    /// Lower sibling products separately instead of fusing them (`--no-fuse-matmuls`).
    pub no_fuse_matmuls: bool,
}

/// The matmul proportion to lower with: `flag`, else the smallest of the IPU
/// configuration's values. The note says where a per-IPU list was reduced.
pub fn matmul_proportion(cfg: &IpuConfig, flag: Option<f64>) -> Result<(f64, Option<String>)> {
    if let Some(p) = flag {
        if !(p > 0.0 && p <= 1.0) {
            bail!("--matmul-proportion must be in (0, 1], got {p}");
        }
        return Ok((p, None));
    }
    let values = cfg.matmul_proportion.values();
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    if !(smallest.is_finite() && smallest > 0.0 && smallest <= 1.0) {
        bail!(
            "the IPU configuration's matmul_proportion {values:?} has no value in (0, 1] to lower with"
        );
    }
    let distinct = values.iter().any(|v| *v != smallest);
    let note = distinct.then(|| {
        format!(
            "matmul_proportion is per IPU ({values:?}); the tile lowering uses the smallest, {smallest}, on every chip"
        )
    });
    Ok((smallest, note))
}

/// Lowers `plan` to tiles (a training plan as a pipeline) and stores the tile program in it. Returns the matmul-proportion note of [`matmul_proportion`], if any.
pub fn lower_tiles(plan: &mut Plan, opts: &TileOptions) -> Result<Option<String>> {
    lower_tiles_with(plan, opts, None)
}

/// [`lower_tiles`] with the optimizer graph `optimizer` run on the tiles after the flush of a
/// training plan (ignored for forward plans).
pub fn lower_tiles_with(
    plan: &mut Plan,
    opts: &TileOptions,
    optimizer: Option<&Graph>,
) -> Result<Option<String>> {
    if opts.skip {
        plan.tiles = None;
        return Ok(None);
    }
    let (proportion, note) = matmul_proportion(&plan.ipu_config()?, opts.matmul_proportion)?;
    let start = Instant::now();
    let lower = LowerOptions {
        chips: plan.report.settings.ipus_per_replica,
        allow_oom: opts.allow_oom,
        matmul_proportion: proportion,
        fuse_matmuls: !opts.no_fuse_matmuls,
    };
    let lowered = if plan.report.settings.train {
        lower_pipelined_with(&plan.graph, optimizer, &plan.target, &lower)
    } else {
        lower_program(&plan.graph, &plan.target, &lower)
    };
    let tiles: TilePlan = match lowered {
        Ok(t) => t,
        Err(LowerError::OutOfMemory(oom)) => bail!(
            "{oom}\n(the plan was not written: compile for more IPUs with --ipus N, lower \
             --matmul-proportion, or write it anyway with --allow-oom)"
        ),
        Err(e) => return Err(anyhow::Error::new(e).context("lowering the plan to tiles")),
    };
    let seconds = start.elapsed().as_secs_f64();
    plan.report.passes.push(PassTiming {
        name: "lower-to-tiles".into(),
        seconds,
        nodes: plan.graph.len(),
    });
    plan.report.compile_seconds += seconds;
    plan.tiles = Some(tiles);
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_target::MatmulProportion;

    fn cfg(p: MatmulProportion) -> IpuConfig {
        IpuConfig {
            matmul_proportion: p,
            ..IpuConfig::default()
        }
    }

    #[test]
    fn proportion_flag_wins_and_lists_reduce_to_their_minimum() {
        let per_ipu = cfg(MatmulProportion::PerIpu(vec![0.3, 0.25, 0.4]));
        let (p, note) = matmul_proportion(&per_ipu, None).unwrap();
        assert_eq!(p, 0.25);
        assert!(note.unwrap().contains("smallest, 0.25"));
        assert_eq!(matmul_proportion(&per_ipu, Some(0.5)).unwrap(), (0.5, None));
        let single = cfg(MatmulProportion::All(0.2));
        assert_eq!(matmul_proportion(&single, None).unwrap(), (0.2, None));
        let same = cfg(MatmulProportion::PerIpu(vec![0.3, 0.3]));
        assert_eq!(matmul_proportion(&same, None).unwrap(), (0.3, None));
        assert!(matmul_proportion(&single, Some(0.0)).is_err());
        assert!(matmul_proportion(&single, Some(1.5)).is_err());
        assert!(matmul_proportion(&cfg(MatmulProportion::PerIpu(vec![])), None).is_err());
    }
}
