//! The modelling assumptions of the cost model, in one place.
//!
//! Hardware figures come from the [`tessera_target::Target`] (which cites its sources).
//! What a target description cannot say — how Poplar's libraries block a matmul, how much
//! code a tile carries, how many IPU-Links a stage-to-stage copy uses — is a modelling
//! assumption, and every one of them is a field here with its reasoning in its doc. None is
//! fitted to a measured throughput; a user can change any of them (the struct is serde
//! data) and see how much a prediction depends on it.

use serde::{Deserialize, Serialize};

use crate::CostError;

/// Modelling assumptions; [`Assumptions::default`] gives the documented values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Assumptions {
    /// Matmul grain along M (rows of the result): the smallest number of rows a tile works
    /// on. Default 1: poplin treats M as the convolution's field dimension, which it splits
    /// with a grain of one element (its default `xAxisGrainSize`).
    pub matmul_grain_m: u32,
    /// Matmul grain along N (result columns, the convolution's output channels): results
    /// are produced in groups of this many columns, and a partial group is padded.
    /// Default 16: poplin's AMP plans for fp16 use groups of 16 output channels.
    pub matmul_grain_n: u32,
    /// Matmul grain along K (the contraction, the convolution's input channels): the
    /// contraction is consumed in groups of this many, padded. Default 16: poplin's AMP
    /// plans for fp16 use groups of 16 input channels.
    pub matmul_grain_k: u32,
    /// Bytes of the smallest piece of an elementwise or data-movement op given to a tile.
    /// Default 8: one 64-bit vector load (4 halves, 2 floats), so that no tile works on
    /// a fraction of a vector.
    pub vector_bytes: u32,
    /// Code of the codelets (vertex kernels) and the control program, bytes per tile, always
    /// live. Default 24 KiB: an order-of-magnitude assumption for the few dozen popops,
    /// poplin and popnn codelets a transformer uses; not a measured figure.
    pub code_bytes_per_tile: u64,
    /// Control code of one superstep on one tile (sync, exchange and compute-set call
    /// instructions), bytes. Default 16: four 32-bit instructions.
    pub control_bytes_per_superstep: u64,
    /// Vertex state of one vertex (its descriptor: codelet address and the pointers and
    /// sizes of its edges), bytes. One vertex per worker thread per tile of each compute
    /// superstep. Default 16: four 32-bit words.
    pub vertex_state_bytes: u64,
    /// FLOPs of one AdamW update of one parameter element, used when the graph holds no
    /// optimizer nodes. Default 16: first moment 3, second moment 4, two bias corrections
    /// 2, square root 1, epsilon 1, division 1, weight decay 2, learning-rate scale and
    /// subtraction 2.
    pub adamw_flops_per_element: u64,
    /// IPU-Links that carry one copy between two chips (pipeline stages, or neighbours of a
    /// replica ring). Default 1: the conservative case of one link between a pair.
    pub links_per_copy: u32,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            matmul_grain_m: 1,
            matmul_grain_n: 16,
            matmul_grain_k: 16,
            vector_bytes: 8,
            code_bytes_per_tile: 24 * 1024,
            control_bytes_per_superstep: 16,
            vertex_state_bytes: 16,
            adamw_flops_per_element: 16,
            links_per_copy: 1,
        }
    }
}

impl Assumptions {
    /// Checks that grains, vector size and link count are at least 1.
    pub fn validate(&self) -> Result<(), CostError> {
        let checks: [(&'static str, u32); 5] = [
            ("matmul_grain_m", self.matmul_grain_m),
            ("matmul_grain_n", self.matmul_grain_n),
            ("matmul_grain_k", self.matmul_grain_k),
            ("vector_bytes", self.vector_bytes),
            ("links_per_copy", self.links_per_copy),
        ];
        for (field, value) in checks {
            if value == 0 {
                return Err(CostError::InvalidAssumption {
                    field,
                    value: value.to_string(),
                    expected: "at least 1",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_grains_are_not() {
        Assumptions::default().validate().unwrap();
        let bad = Assumptions {
            matmul_grain_k: 0,
            ..Assumptions::default()
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("matmul_grain_k"), "{msg}");
    }

    #[test]
    fn json_round_trip_and_partial_files() {
        let a = Assumptions::default();
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Assumptions>(&text).unwrap(), a);
        let partial: Assumptions = serde_json::from_str(r#"{"links_per_copy": 2}"#).unwrap();
        assert_eq!(partial.links_per_copy, 2);
        assert_eq!(partial.matmul_grain_n, 16);
        assert!(serde_json::from_str::<Assumptions>(r#"{"grain": 2}"#).is_err());
    }
}
