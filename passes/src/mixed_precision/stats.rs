//! Statistics of one run of the mixed-precision pass, for `--print-changed`, `passes.json`
//! and the pass-timing table.

use serde::Serialize;
use std::collections::BTreeMap;

/// What the mixed-precision pass did to a graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MixedPrecisionStats {
    /// `cast` nodes added (working copies of parameters, conversions between fp16 and fp32
    /// regions, outputs cast back to their type).
    pub casts_inserted: u64,
    /// Casts removed or not inserted because they were redundant: a cast to the type the
    /// value already has, or `cast(cast(x))` through an exact widening (f16 → f32 → f16
    /// gives `x` back).
    pub casts_folded: u64,
    /// Non-leaf nodes whose result is f16 in the output graph.
    pub nodes_in_fp16: u64,
    /// Non-leaf nodes whose result is f32 in the output graph.
    pub nodes_in_fp32: u64,
    /// Parameters whose type became f16 (`master_weights = f16`).
    pub params_in_fp16: u64,
    /// Floating-point constants re-typed to a use's precision instead of being cast.
    pub constants_retyped: u64,
    /// Of those, constants outside the f16 range saturated to ±65504.
    pub constants_saturated: u64,
    /// fp16 matmuls given `half_partials`.
    pub half_partials_matmuls: u64,
    /// Size in f32 of the values the pass moved to f16 (parameters plus activations): the
    /// memory they take is halved.
    pub bytes_moved_to_fp16: u64,
    /// The parameter part of `bytes_moved_to_fp16`.
    pub param_bytes_moved_to_fp16: u64,
    /// The activation part of `bytes_moved_to_fp16`.
    pub activation_bytes_moved_to_fp16: u64,
}

impl MixedPrecisionStats {
    /// Every counter by its field name (the pass manager's statistics format).
    pub fn counters(&self) -> BTreeMap<String, i64> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("casts_inserted", self.casts_inserted),
            ("casts_folded", self.casts_folded),
            ("nodes_in_fp16", self.nodes_in_fp16),
            ("nodes_in_fp32", self.nodes_in_fp32),
            ("params_in_fp16", self.params_in_fp16),
            ("constants_retyped", self.constants_retyped),
            ("constants_saturated", self.constants_saturated),
            ("half_partials_matmuls", self.half_partials_matmuls),
            ("bytes_moved_to_fp16", self.bytes_moved_to_fp16),
            ("param_bytes_moved_to_fp16", self.param_bytes_moved_to_fp16),
            (
                "activation_bytes_moved_to_fp16",
                self.activation_bytes_moved_to_fp16,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), as_i64(v)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_match_the_serialized_fields() {
        let s = MixedPrecisionStats {
            casts_inserted: 3,
            bytes_moved_to_fp16: 7,
            ..Default::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        let fields = json.as_object().unwrap();
        let counters = s.counters();
        assert_eq!(fields.len(), counters.len());
        for (k, v) in &counters {
            assert_eq!(fields[k].as_i64(), Some(*v), "{k}");
        }
        assert_eq!(counters["casts_inserted"], 3);
    }
}
