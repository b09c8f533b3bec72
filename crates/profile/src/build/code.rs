//! The code and vertex state estimate per tile: memory a tile needs besides the data the
//! lowering's allocator places (which is all `TilePlan::memory` counts).
//!
//! On the IPU, every vertex instance keeps its *state* (its fields) in tile memory for the
//! whole program, and every tile holds the machine code of each codelet its vertices use.
//! Neither is allocated by Tessera's lowering, so the profiler estimates both from the
//! vertices placed on each tile in the plan's programs (`load` and `step`):
//!
//! - **vertex state** = per vertex, [`VERTEX_STATE_BYTES_PER_REGION`] per memory-operand field
//!   and [`VERTEX_STATE_BYTES_PER_SCALAR`] per scalar field (a list of operands, such as
//!   `add_partials`' sources, adds one more region-sized descriptor);
//! - **code** = [`CODE_BYTES_PER_CODELET`] per distinct codelet on the tile, a codelet being a
//!   vertex kind with its element types and operator (Poplar compiles each template
//!   instantiation, e.g. `BinaryOp<ADD, float>`, as its own code).
//!
//! Element types and operators are template parameters in Poplar's codelets, not fields, so
//! they cost code, not state.

use std::collections::BTreeSet;
use tessera_runtime::program::TileProgram;
use tessera_runtime::vertex::Vertex;

/// Bytes of vertex state per memory-operand field: Poplar's default `SPAN` vector layout, a
/// 32-bit pointer and a 32-bit element count (Poplar User Guide, "Vertex vector types",
/// table 5.1).
pub const VERTEX_STATE_BYTES_PER_REGION: u64 = 8;

/// Bytes of vertex state per scalar field (sizes, row lengths, fill values, epsilon): one
/// 32-bit word each (the IPU's word; an assumption for `eps`, kept as f32 on the device).
pub const VERTEX_STATE_BYTES_PER_SCALAR: u64 = 4;

/// Bytes of machine code per distinct codelet on a tile. An assumption, not a measurement:
/// IPU instructions are 32 bits wide and a poplibs codelet (supervisor plus worker loop) runs
/// to a few hundred instructions, so 1 KiB (256 instructions) stands for a typical one.
pub const CODE_BYTES_PER_CODELET: u64 = 1024;

/// A tile's estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TileCode {
    /// Vertex state bytes.
    pub vertex_state: u64,
    /// Code bytes.
    pub code: u64,
}

impl TileCode {
    /// Code plus vertex state.
    pub(crate) fn total(self) -> u64 {
        self.vertex_state + self.code
    }
}

/// Memory-operand and scalar fields of a vertex.
fn fields(v: &Vertex) -> (u64, u64) {
    match v {
        Vertex::MatMul(_) => (3, 3),
        Vertex::Unary { .. } | Vertex::Cast { .. } | Vertex::Copy { .. } => (2, 0),
        Vertex::Binary { .. } | Vertex::Compare { .. } => (3, 0),
        // The accumulator, each source, and the list's own descriptor.
        Vertex::AddPartials { srcs, .. } => (2 + srcs.len() as u64, 0),
        Vertex::Fill { .. } => (1, 1),
        Vertex::Softmax { .. } | Vertex::ReduceRows { .. } => (2, 1),
        Vertex::LayerNorm { .. } => (4, 2),
        Vertex::Gather { .. } | Vertex::ScatterAdd { .. } => (3, 2),
        Vertex::Select { .. } => (4, 0),
        Vertex::Expand { .. } => (2, 1),
    }
}

/// Vertex state bytes of one vertex instance.
pub(crate) fn vertex_state_bytes(v: &Vertex) -> u64 {
    let (regions, scalars) = fields(v);
    regions * VERTEX_STATE_BYTES_PER_REGION + scalars * VERTEX_STATE_BYTES_PER_SCALAR
}

/// The codelet a vertex runs: its kind with its template parameters.
pub(crate) fn codelet(v: &Vertex) -> String {
    let kind = v.kind();
    match v {
        Vertex::MatMul(m) => format!("{kind}<{},{}>", m.input.name(), m.partials.name()),
        Vertex::Unary { op, elem, .. } => format!("{kind}<{op:?},{}>", elem.name()),
        Vertex::Binary { op, elem, .. } => format!("{kind}<{op:?},{}>", elem.name()),
        Vertex::Compare { op, elem, .. } => format!("{kind}<{op:?},{}>", elem.name()),
        Vertex::ReduceRows { kind: k, elem, .. } => format!("{kind}<{k:?},{}>", elem.name()),
        Vertex::Cast { from, to, .. } => format!("{kind}<{},{}>", from.name(), to.name()),
        Vertex::AddPartials { elem, .. }
        | Vertex::Fill { elem, .. }
        | Vertex::Softmax { elem, .. }
        | Vertex::LayerNorm { elem, .. }
        | Vertex::Gather { elem, .. }
        | Vertex::Select { elem, .. }
        | Vertex::ScatterAdd { elem, .. }
        | Vertex::Expand { elem, .. } => format!("{kind}<{}>", elem.name()),
        Vertex::Copy { .. } => kind.to_string(),
    }
}

/// The estimate for every global tile (`chip * tiles_per_chip + tile`) of `tiles` tiles, over
/// the vertices of `programs`. Vertices on tiles outside the range are ignored (the scan
/// reports them as errors).
pub(crate) fn estimate(programs: &[&TileProgram], tiles: usize) -> Vec<TileCode> {
    let mut out = vec![TileCode::default(); tiles];
    let mut codelets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); tiles];
    for p in programs {
        let per_chip = p.tiles_per_chip as usize;
        for step in &p.supersteps {
            for tc in &step.compute {
                let g = tc.tile.chip as usize * per_chip + tc.tile.tile as usize;
                let (Some(t), Some(names)) = (out.get_mut(g), codelets.get_mut(g)) else {
                    continue;
                };
                for v in &tc.vertices {
                    t.vertex_state += vertex_state_bytes(v);
                    names.insert(codelet(v));
                }
            }
        }
    }
    for (t, names) in out.iter_mut().zip(&codelets) {
        t.code = names.len() as u64 * CODE_BYTES_PER_CODELET;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::BinaryOp;
    use tessera_runtime::program::{Region, Superstep, TileCompute, TileRef};
    use tessera_runtime::vertex::Elem;

    fn binary(op: BinaryOp) -> Vertex {
        Vertex::Binary {
            op,
            elem: Elem::F32,
            a: Region::new(0, 16),
            b: Region::new(16, 16),
            dst: Region::new(32, 16),
        }
    }

    #[test]
    fn codelets_and_fields_by_hand() {
        let fill = Vertex::Fill {
            elem: Elem::F32,
            dst: Region::new(0, 8),
            value: 0.0,
        };
        let partials = Vertex::AddPartials {
            elem: Elem::F16,
            dst: Region::new(0, 8),
            srcs: vec![Region::new(8, 8); 3],
        };
        // Fill: one span (8 bytes) and the value (4 bytes).
        assert_eq!(vertex_state_bytes(&fill), 12);
        // Binary: three spans.
        assert_eq!(vertex_state_bytes(&binary(BinaryOp::Add)), 24);
        // Add partials: accumulator, 3 sources and the list descriptor, 5 spans.
        assert_eq!(vertex_state_bytes(&partials), 40);
        assert_eq!(codelet(&fill), "fill<f32>");
        assert_eq!(codelet(&binary(BinaryOp::Mul)), "binary<Mul,f32>");
        assert_ne!(
            codelet(&binary(BinaryOp::Add)),
            codelet(&binary(BinaryOp::Mul))
        );
    }

    #[test]
    fn a_tile_pays_code_once_per_codelet_and_state_per_vertex() {
        let mut p = TileProgram::new(2, 2, 1024);
        let tile = |chip, tile| TileRef { chip, tile };
        p.supersteps = vec![
            Superstep {
                compute: vec![TileCompute {
                    tile: tile(0, 1),
                    vertices: vec![binary(BinaryOp::Add), binary(BinaryOp::Add)],
                }],
                ..Superstep::default()
            },
            Superstep {
                compute: vec![
                    TileCompute {
                        tile: tile(0, 1),
                        vertices: vec![binary(BinaryOp::Add), binary(BinaryOp::Sub)],
                    },
                    TileCompute {
                        tile: tile(1, 0),
                        vertices: vec![binary(BinaryOp::Sub)],
                    },
                ],
                ..Superstep::default()
            },
        ];
        let est = estimate(&[&p], 4);
        // Global tile 1 (chip 0 tile 1): 4 binary vertices, 2 codelets (add, sub).
        assert_eq!(
            est[1],
            TileCode {
                vertex_state: 4 * 24,
                code: 2 * 1024
            }
        );
        // Global tile 2 (chip 1 tile 0): one vertex, one codelet.
        assert_eq!(est[2].total(), 24 + 1024);
        assert_eq!(est[0], TileCode::default());
        assert_eq!(est[3], TileCode::default());
    }
}
