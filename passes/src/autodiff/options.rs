//! Options of the autodiff pass and their checking against the graph.

use super::AutodiffError;

/// Options of the [`autodiff`](super::autodiff()) pass.
#[derive(Debug, Clone, PartialEq)]
pub struct AutodiffOptions {
    /// Name of the scalar loss output to differentiate (default `loss`).
    pub loss: String,
    /// The gradient seed `d loss` (default 1.0); static loss scaling sets it to the scale.
    pub seed_scale: f64,
}

impl Default for AutodiffOptions {
    fn default() -> Self {
        AutodiffOptions {
            loss: "loss".to_string(),
            seed_scale: 1.0,
        }
    }
}

impl AutodiffOptions {
    /// Checks the options.
    pub(super) fn check(&self) -> Result<(), AutodiffError> {
        if !self.seed_scale.is_finite() {
            return Err(AutodiffError::InvalidSeed(self.seed_scale));
        }
        Ok(())
    }
}
