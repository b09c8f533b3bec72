//! The training step's gradient graph on the emulated tiles (`tessera train --engine tiles`).
//!
//! The gradient graph (forward, loss, backward) is lowered once to a tile plan — on one chip,
//! or placed over `--ipus N` chips by the pipeline pass's automatic placement — and each
//! micro-batch runs on the emulated machine. The weights are streamed onto the tiles again after
//! every optimizer update (the optimizer itself runs on the host, as the reference engine's).
//! Not yet the pipelined, replicated schedule of the seed run: the chips run their stages one
//! after another for each micro-batch.
//!
//! Mixed precision: the plan's parameters have the gradient graph's types (f32 master weights
//! feeding f16 working copies, or f16 weights under `master_weights = f16`); weights given in
//! another float type are cast to them before streaming, so the tiles see exactly what the
//! reference evaluator is fed. Stochastic rounding is refused by the trainer (the vertices
//! round to nearest even).

use anyhow::{Context, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use tessera_ir::{Graph, Tensor};
use tessera_passes::lower::program::{
    lower_program, HostTensor, LowerOptions, TilePlan, TileSession,
};
use tessera_passes::{pipeline, LayerRule, PipelineConfig, Placement};
use tessera_runtime::TraceMode;
use tessera_target::{IpuConfig, Target};

/// A gradient graph lowered to tiles, with its machine.
pub struct TileStep {
    session: TileSession,
    plan: TilePlan,
    /// The optimizer step whose weights are on the tiles.
    loaded_at: Option<usize>,
}

impl std::fmt::Debug for TileStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileStep")
            .field("supersteps", &self.plan.step.supersteps.len())
            .field("chips", &self.plan.step.chips)
            .finish()
    }
}

impl TileStep {
    /// Lowers `grad_graph` for `target` on `chips` chips (placed by the pipeline pass when
    /// more than one).
    pub fn new(grad_graph: &Graph, target: &Target, chips: u32) -> Result<Self> {
        let graph = if chips > 1 {
            let ipu = IpuConfig {
                ipus_per_replica: chips as usize,
                ..IpuConfig::default()
            };
            let cost = tessera_cost::CostOptions::from_ipu_config(&ipu, 1)
                .context("IPU configuration for the placement")?;
            let cfg = PipelineConfig {
                rule: LayerRule::lxmert(),
                ..PipelineConfig::new(Placement::Auto, cost)
            };
            pipeline(grad_graph, &cfg, target)
                .context("placing the training step on the chips")?
                .0
        } else {
            grad_graph.clone()
        };
        let plan = lower_program(
            &graph,
            target,
            &LowerOptions {
                chips,
                ..LowerOptions::default()
            },
        )
        .context("lowering the training step to tiles")?;
        let session = TileSession::new(&plan)?;
        Ok(TileStep {
            session,
            plan,
            loaded_at: None,
        })
    }

    /// Supersteps of one micro-batch.
    pub fn supersteps(&self) -> usize {
        self.plan.step.supersteps.len()
    }

    /// Loss and gradient outputs of one micro-batch with the weights of optimizer step
    /// `step` (streamed onto the tiles when they changed).
    pub fn run(
        &mut self,
        step: usize,
        params: &HashMap<String, Tensor>,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<HashMap<String, Tensor>> {
        if self.loaded_at != Some(step) {
            self.session
                .load(&cast_to_plan(&self.plan.params, params))
                .context("streaming the weights onto the tiles")?;
            self.loaded_at = Some(step);
        }
        Ok(self.session.run(inputs, TraceMode::Off)?.0)
    }
}

/// `params` with every floating-point value whose type differs from the plan's parameter of
/// the same name cast to that type (f32 weights for an f16 plan, say); borrowed unchanged when
/// nothing needs a cast. Missing or non-float values are left for the session to report.
fn cast_to_plan<'p>(
    plan_params: &[HostTensor],
    params: &'p HashMap<String, Tensor>,
) -> Cow<'p, HashMap<String, Tensor>> {
    let needs_cast = |h: &HostTensor| {
        params.get(&h.name).is_some_and(|t| {
            t.dtype() != h.ty.dtype && t.dtype().is_float() && h.ty.dtype.is_float()
        })
    };
    if !plan_params.iter().any(needs_cast) {
        return Cow::Borrowed(params);
    }
    let mut out = params.clone();
    for h in plan_params.iter().filter(|h| needs_cast(h)) {
        if let Some(t) = out.get_mut(&h.name) {
            *t = t.cast(h.ty.dtype);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::{BinaryOp, DType, Op, TensorType};

    #[test]
    fn f32_weights_are_cast_to_an_f16_plan() {
        // y = w * x with an f16 weight fed as f32 1/3: the tiles see f16(1/3) = 1365/4096
        // (1/3 = 1.0101…₂ × 2⁻², rounded down to 10 fraction bits), times powers of two.
        let mut g = Graph::new("cast");
        let ty = TensorType::new(DType::F16, vec![4]);
        let w = g.param("w", ty.clone()).unwrap();
        let x = g.input("x", ty).unwrap();
        let y = g.add(Op::Binary(BinaryOp::Mul), &[w, x], "").unwrap();
        g.set_output("y", y).unwrap();
        let target = tessera_target::target::presets::mk2();
        let mut step = TileStep::new(&g, &target, 1).unwrap();
        let params = HashMap::from([(
            "w".to_string(),
            Tensor::from_f32(vec![4], vec![1.0 / 3.0; 4]).unwrap(),
        )]);
        let xs = [1.0f32, 2.0, 4.0, 0.5];
        let inputs = HashMap::from([(
            "x".to_string(),
            Tensor::from_f32(vec![4], xs.to_vec())
                .unwrap()
                .cast(DType::F16),
        )]);
        let out = step.run(0, &params, &inputs).unwrap();
        let want: Vec<f64> = xs.iter().map(|&x| 1365.0 / 4096.0 * f64::from(x)).collect();
        assert_eq!(out["y"].dtype(), DType::F16);
        assert_eq!(out["y"].to_f64_vec(), want);
        // Matching types are streamed as given, without a copy.
        let f16_params = HashMap::from([("w".to_string(), params["w"].cast(DType::F16))]);
        assert!(matches!(
            cast_to_plan(&step.plan.params, &f16_params),
            Cow::Borrowed(_)
        ));
    }
}
