//! Running a plan's tile program on the emulator, and telling plan files from models.
//!
//! [`run_tiles`] loads the weights once and runs the step program `repeat` times in rayon's
//! global pool (entered once per program run, so a step's supersteps do not each pay for
//! entering it); the outputs are those of the last run, with the wall time of the runs. The
//! emulator's results do not depend on the number of threads (`RAYON_NUM_THREADS`).

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};
use tessera_ir::Tensor;
use tessera_passes::lower::program::{TilePlan, TileSession};
use tessera_plan::MAGIC;
use tessera_runtime::TraceMode;

/// Whether `path` is a file starting with the plan magic (a plan, whatever its extension).
pub fn is_plan_file(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 7];
    path.is_file() && f.read_exact(&mut head).is_ok() && &head == MAGIC
}

/// Outputs of the last of `runs` step runs, and their total wall time.
#[derive(Debug)]
pub struct TileRun {
    /// Outputs by name.
    pub outputs: HashMap<String, Tensor>,
    /// Step runs.
    pub runs: usize,
    /// Their total wall time (the weight load excluded).
    pub elapsed: Duration,
}

/// Runs `plan`'s step `repeat` (≥ 1) times on `inputs` after loading `weights` once.
pub fn run_tiles(
    plan: &TilePlan,
    weights: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
    repeat: usize,
) -> Result<TileRun> {
    if repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let mut session = TileSession::new(plan)?;
    session
        .load(weights)
        .context("loading the weights onto the tiles")?;
    let start = Instant::now();
    let mut outputs = HashMap::new();
    for _ in 0..repeat {
        let (out, _) = session.run(inputs, TraceMode::Off)?;
        outputs = out;
    }
    Ok(TileRun {
        outputs,
        runs: repeat,
        elapsed: start.elapsed(),
    })
}

/// `ran N run(s) in X s (Y ms per run)`, for stderr.
pub fn timing_line(what: &str, runs: usize, elapsed: Duration) -> String {
    let total = elapsed.as_secs_f64();
    format!(
        "{what}: {runs} run(s) in {total:.3} s ({:.3} ms per run)",
        total * 1e3 / runs.max(1) as f64
    )
}
