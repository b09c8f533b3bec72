//! `tessera run` on the emulated tiles: a plan file, or a model compiled on the spot
//! (`--engine tiles`, with the compile flags and the compile driver of `tessera compile`).
//!
//! The inputs go through the same feed checks as the reference engine (transformers'
//! defaults for LXMERT, exact types for text IR); the tile session then checks each against
//! the plan's types, so an input of another shape than the plan was compiled for is an error
//! naming it. Weights are the model's defaults (a model directory's weights, or the seeded
//! initialisation — for a plan, with the seed it was compiled with) unless `--weights`, cast
//! to the plan's parameter types. A training plan runs its pipelined step for one
//! micro-batch (loss and gradients); a plan compiled with the optimizer then updates the
//! weights on the tiles ([`super::train_step`]).

use super::super::compile_flags::{build_plan, Subject};
use super::super::precision::Precision;
use super::{finish, repeat, RunArgs};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tessera::execute::run_tiles;
use tessera::feeds;
use tessera::model::{self, ModelSpec};
use tessera::train::precision::params_for_graph;
use tessera_ir::{Graph, Op, Tensor};
use tessera_lxmert::{BuildOptions, Shapes};
use tessera_passes::lower::program::TilePlan;
use tessera_passes::mixed_precision::LOSS_SCALE_INPUT;
use tessera_plan::Plan;

/// Runs the tile plan and writes the outputs.
fn execute(
    a: &RunArgs,
    tiles: &TilePlan,
    graph: &Graph,
    params: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
    precision: &str,
) -> Result<()> {
    let weights = params_for_graph(graph, params);
    let (scale, feeds) = scaled_feeds(graph, inputs, precision);
    let run = run_tiles(tiles, &weights, &feeds, repeat(a)?)?;
    let outputs = unscaled(run.outputs, scale)?;
    finish(a, outputs, "tile emulator", run.runs, run.elapsed)
}

/// A loss-scaled training step takes its scale as an input: the plan's (static, or the
/// dynamic scale's initial value). Returns it (if the graph takes one) and `inputs` with it.
pub(crate) fn scaled_feeds(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
    precision: &str,
) -> (Option<f64>, HashMap<String, Tensor>) {
    let scale = graph
        .input_by_name(LOSS_SCALE_INPUT)
        .is_ok()
        .then(|| loss_scale_of(precision))
        .flatten();
    let mut feeds = inputs.clone();
    if let Some(sc) = scale {
        feeds.insert(LOSS_SCALE_INPUT.into(), Tensor::scalar_f32(sc as f32));
    }
    (scale, feeds)
}

/// `outputs` with the gradients divided by the loss scale `scale`, as the reference engine
/// writes them.
pub(super) fn unscaled(
    outputs: HashMap<String, Tensor>,
    scale: Option<f64>,
) -> Result<BTreeMap<String, Tensor>> {
    Ok(outputs
        .into_iter()
        .map(|(k, t)| match scale {
            Some(sc) if k.starts_with("grad.") => {
                let v: Vec<f32> = t.to_f32_vec().iter().map(|x| x / sc as f32).collect();
                Tensor::from_f32(t.shape().to_vec(), v).map(|u| (k, u.cast(t.dtype())))
            }
            _ => Ok((k, t)),
        })
        .collect::<Result<_, _>>()?)
}

/// The loss scale a plan's precision description names (`loss scale 16384`, `dynamic loss
/// scale from 65536 ...`), if any.
fn loss_scale_of(precision: &str) -> Option<f64> {
    let rest = precision
        .split("loss scale ")
        .nth(1)?
        .trim_start_matches("from ");
    rest.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}

/// Input tensors by name, with the LXMERT shapes and whether a visual attention mask was
/// given (`None` for text IR).
type Feeds = (HashMap<String, Tensor>, Option<(Shapes, bool)>);

/// Whether `name` is an optimizer-state tensor (`adam_m.<p>`, `adam_v.<p>`).
fn is_optimizer_state(name: &str) -> bool {
    name.starts_with("adam_m.") || name.starts_with("adam_v.")
}

/// Feeds for `graph` from the `--inputs` file: LXMERT's (with transformers' defaults), or
/// exactly the graph's inputs for text IR. Also returns the LXMERT shapes and whether a
/// visual attention mask was given. With `state`, the optimizer-state tensors of the file
/// go to `state` instead.
fn read_feeds(
    a: &RunArgs,
    train: bool,
    spec: &ModelSpec,
    ir_graph: impl FnOnce() -> Result<Graph>,
    state: Option<&mut HashMap<String, Tensor>>,
) -> Result<Feeds> {
    let mut tensors = tessera_ir::io::load_safetensors(&a.inputs)?;
    if let Some(state) = state {
        let names: Vec<String> = tensors
            .keys()
            .filter(|n| is_optimizer_state(n))
            .cloned()
            .collect();
        for n in names {
            if let Some(t) = tensors.remove(&n) {
                state.insert(n, t);
            }
        }
    }
    match spec.lxmert_config() {
        Some(config) => {
            let f = feeds::lxmert_feeds(tensors, config, &a.inputs, train)?;
            let mut inputs = f.inputs;
            if let (true, Some(labels)) = (train, f.labels) {
                inputs.insert("labels".into(), labels);
            }
            Ok((inputs, Some((f.shapes, f.visual_attention_mask))))
        }
        None => Ok((feeds::ir_feeds(&ir_graph()?, tensors, &a.inputs)?, None)),
    }
}

/// A compiled (or loaded) plan with the weights and inputs to run it on.
pub(crate) struct Prepared {
    /// The plan (with its tile program).
    pub plan: Plan,
    /// Parameter values by name (before the cast to the plan's types).
    pub params: HashMap<String, Tensor>,
    /// Input tensors by name.
    pub inputs: HashMap<String, Tensor>,
    /// Optimizer state from the inputs file (`adam_m.*`, `adam_v.*`) for a plan with the
    /// optimizer.
    pub state: HashMap<String, Tensor>,
}

impl Prepared {
    /// The tile program.
    pub fn tiles(&self) -> Result<&TilePlan> {
        self.plan
            .tiles
            .as_ref()
            .ok_or_else(|| anyhow!("the plan has no tile program"))
    }

    /// The weights cast to the plan's parameter types.
    pub fn weights(&self) -> HashMap<String, Tensor> {
        params_for_graph(&self.plan.graph, &self.params)
    }
}

/// `tessera run MODEL --engine tiles`.
pub(super) fn run_model(a: &RunArgs) -> Result<()> {
    let p = prepare_model(a)?;
    execute(
        a,
        p.tiles()?,
        &p.plan.graph,
        &p.params,
        &p.inputs,
        &p.plan.report.settings.precision,
    )
}

/// Compiles MODEL with the compile flags for the tiles and reads its inputs.
pub(crate) fn prepare_model(a: &RunArgs) -> Result<Prepared> {
    let precision = a.precision.resolve(a.train)?;
    if precision.as_ref().is_some_and(|p| p.stochastic_rounding) {
        bail!("stochastic rounding on tiles: not yet (use --stochastic-rounding=false or --engine reference)");
    }
    let spec = model::resolve(&a.model)?;
    let params = spec.weights(a.weights.as_deref(), a.seed.unwrap_or(0))?;
    let no_shapes = Shapes {
        batch: 1,
        seq_len: 1,
        num_objects: 1,
    };
    let (inputs, lxmert) = read_feeds(
        a,
        a.train,
        &spec,
        || spec.graph(&no_shapes, &BuildOptions::default()),
        None,
    )?;
    let (shapes, visual_attention_mask) = lxmert.unwrap_or((no_shapes, false));
    let subject = Subject {
        model: &a.model,
        spec: &spec,
        train: a.train,
        seq_len: shapes.seq_len,
        num_objects: shapes.num_objects,
        micro_batch: shapes.batch,
        precision: precision.as_ref(),
    };
    let (opts, mut tile_opts) = a
        .compile
        .options(&subject, a.precision.ipu_config.as_deref())?;
    // `run --train` executes the training step (loss and gradients) on the tiles.
    tile_opts.train = a.train;
    let build = BuildOptions {
        visual_attention_mask,
        ..BuildOptions::default()
    };
    let (plan, notes) = build_plan(&subject, a.seed.unwrap_or(0), &opts, &tile_opts, || {
        spec.graph(&shapes, &build)
    })?;
    for n in notes {
        eprintln!("note: {n}");
    }
    Ok(Prepared {
        plan,
        params,
        inputs,
        state: HashMap::new(),
    })
}

/// `tessera run PLAN`.
pub(super) fn run_plan(a: &RunArgs) -> Result<()> {
    let p = prepare_plan(a)?;
    if super::train_step::has_optimizer(p.tiles()?) {
        return super::train_step::execute(a, &p);
    }
    execute(
        a,
        p.tiles()?,
        &p.plan.graph,
        &p.params,
        &p.inputs,
        &p.plan.report.settings.precision,
    )
}

/// Loads a plan file, its default (or given) weights and the inputs.
pub(crate) fn prepare_plan(a: &RunArgs) -> Result<Prepared> {
    prepare_loaded_plan(a, Plan::load(Path::new(&a.model))?)
}

/// [`prepare_plan`] of a plan already loaded from `a.model` (a caller that read it for its
/// settings does not read a large plan twice).
pub(crate) fn prepare_loaded_plan(a: &RunArgs, plan: Plan) -> Result<Prepared> {
    let path = Path::new(&a.model);
    if a.engine == Some(super::Engine::Reference) {
        bail!(
            "{} is a plan: it runs on the tiles (--engine reference takes a model)",
            path.display()
        );
    }
    if a.precision.precision != Precision::Fp32 || a.precision.ipu_config.is_some() {
        bail!("{}: a plan's precision and IPU configuration were fixed by `tessera compile`; drop --precision/--ipu-config", path.display());
    }
    if plan.tiles.is_none() {
        bail!(
            "{}: the plan has no tile program (compiled with --no-tiles); it can be inspected, not run",
            path.display()
        );
    }
    let train = plan.report.settings.train;
    if a.train && !train {
        bail!(
            "{}: a forward plan (compile with --train for the training step)",
            path.display()
        );
    }
    let spec = model::resolve(&plan.source.model).with_context(|| {
        format!(
            "{}: the plan was compiled from `{}`, which is needed for its input checks and default weights",
            path.display(),
            plan.source.model
        )
    })?;
    let params = spec.weights(a.weights.as_deref(), a.seed.unwrap_or(plan.source.seed))?;
    let with_optimizer = plan
        .tiles
        .as_ref()
        .and_then(|t| t.pipeline.as_ref())
        .is_some_and(|p| p.optimizer.is_some());
    let mut state = HashMap::new();
    let (inputs, _) = read_feeds(
        a,
        train,
        &spec,
        || Ok(plan.graph.clone()),
        with_optimizer.then_some(&mut state),
    )?;
    let takes = |name: &str| {
        plan.graph
            .inputs()
            .into_iter()
            .any(|id| matches!(&plan.graph.node(id).op, Op::Input { name: n, .. } if n == name))
    };
    if let Some(extra) = inputs.keys().find(|n| !takes(n)) {
        bail!(
            "{}: input `{extra}` is not an input of the plan {} (it was compiled without it)",
            a.inputs.display(),
            path.display()
        );
    }
    Ok(Prepared {
        plan,
        params,
        inputs,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::loss_scale_of;

    #[test]
    fn loss_scales_are_read_from_the_precision_description() {
        assert_eq!(
            loss_scale_of("fp16, f16 master weights, fp16 partials, loss scale 16384"),
            Some(16384.0)
        );
        assert_eq!(
            loss_scale_of("fp16, dynamic loss scale from 65536 (x2 after 2000 clean steps)"),
            Some(65536.0)
        );
        assert_eq!(loss_scale_of("fp32"), None);
    }
}
