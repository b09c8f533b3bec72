//! Data movement ops: transpose, gather, slice, pad and concat move their result's bytes.
//!
//! The result is cut into vectors of `vector_bytes` spread over `U = min(T, vectors)`
//! tiles, and every byte of the busiest tile's part arrives over the exchange (the source
//! elements generally live on other tiles): exchange = `ceil(e_t·s / xb)`, one superstep,
//! no compute. Reshape and broadcast are views in Poplar (no data moves) and are not
//! costed here.

use tessera_ir::TensorType;

use super::memory::spread_vectors;
use super::{bytes, elem_size, elems, Cycles, OpCost, Rates};
use crate::Assumptions;

/// The cost of materialising `out` by moving its bytes between tiles.
pub(crate) fn move_result(out: &TensorType, tiles: u32, rates: &Rates, a: &Assumptions) -> OpCost {
    let n = elems(out);
    if n == 0 {
        return OpCost::default();
    }
    let s = elem_size(out);
    let (used, e_t) = spread_vectors(n, s, tiles, a);
    OpCost {
        cycles: Cycles {
            compute: 0,
            exchange: Rates::cycles(e_t.saturating_mul(s), rates.xb),
            sync: rates.step,
        },
        bytes_out: bytes(out),
        tiles_used: u32::try_from(used).unwrap_or(u32::MAX),
        supersteps: 1,
        ..OpCost::default()
    }
}
