//! The `mixed-precision` pass: fp16 compute where it is safe, fp32 where it is not, as the
//! seed run trained LXMERT on IPUs (fp16 weights and activations, fp16 or fp32 partials,
//! static loss scaling 16384, stochastic rounding).
//!
//! What it does ([`mixed_precision`]): every node gets a precision from one policy table
//! ([`policy`], printed by [`explain_precision`]), in the spirit of PyTorch autocast's op
//! lists: matmuls, embedding gathers and elementwise arithmetic in fp16; softmax, layer
//! norm (input cast to f32, result cast back), sums and means (statistics), `exp`/`log`/
//! `pow`/`sqrt`/`recip` in fp32; data movement, comparisons and selection follow their
//! operands. Nodes in the fp32 scopes (`loss`, `optimizer` by default) stay f32. `cast`
//! nodes are inserted at every change of precision, cached so that each value is cast at
//! most once per type (a parameter has one f16 working copy, shared by all its users), and
//! redundant casts are folded ([`fold`]). Graph inputs and outputs keep their types, so the
//! rewritten graph is fed and read exactly like the original.
//!
//! Options ([`PrecisionConfig`]): fp16 partials (`half_partials` on fp16 matmuls, which the
//! reference evaluator honours by rounding every partial sum); f32 master weights with f16
//! working copies, or f16 weights (the parameter types change and the driver casts the
//! loaded values); the fp16 first moment and loss scaling, which act in the optimizer and
//! the trainer; stochastic rounding, an option of the evaluator
//! (`tessera_ir::eval::EvalOptions`).
//!
//! Where it runs: preferably on the forward graph, before the loss and autodiff. The
//! backward then follows the forward's types through the cast's gradient rule (the
//! gradient of an f16 working copy is cast back to its f32 parameter, after being summed
//! over its users in f16), and loss scaling ([`autodiff_scaled`]) keeps small gradients
//! out of the f16 underflow range. The pass also accepts an already-differentiated graph:
//! backward nodes (scope `….backward`) get the same table as forward ones, as TensorFlow's
//! graph-level auto-mixed-precision pass treats gradients, and `loss.backward` stays f32
//! with `loss`; `grad.<p>` outputs take their parameter's type.
//!
//! Numerics: `tests/mixed_precision.rs` (driver) measures fp16 against fp32 logits on
//! LXMERT-tiny and LXMERT-base and states the tolerances; the unit tests here check the
//! rewrite on small graphs against the same graph evaluated in f32 and in f64.

mod config;
mod error;
pub mod fold;
pub mod loss_scale;
pub mod policy;
mod rewrite;
mod stats;
#[cfg(test)]
mod tests;

pub use config::{DynamicScaling, LossScaling, MasterWeights, PrecisionConfig};
pub use error::MixedPrecisionError;
pub use fold::fold_casts;
pub use loss_scale::{all_finite, autodiff_scaled, LossScaler, ScaleUpdate, LOSS_SCALE_INPUT};
pub use policy::{explain_precision, op_precision, OpPrecision};
pub use stats::MixedPrecisionStats;

use tessera_ir::Graph;

/// The pass's name in pipelines (`--passes autodiff,mixed-precision`).
pub const NAME: &str = "mixed-precision";

/// Rewrites `graph` for mixed precision under `cfg`; see the module documentation. The
/// result passes [`tessera_ir::verify`] (checked here in debug builds).
pub fn mixed_precision(
    graph: &Graph,
    cfg: &PrecisionConfig,
) -> Result<(Graph, MixedPrecisionStats), MixedPrecisionError> {
    cfg.validate()?;
    let (g, stats) = rewrite::rewrite(graph, cfg)?;
    #[cfg(debug_assertions)]
    tessera_ir::verify(&g)?;
    Ok((g, stats))
}
