//! Code and vertex state per tile: memory a tile needs besides the data the lowering's
//! allocator places (which is all `TileMemory::peak` counts). The out-of-memory check adds it
//! to every tile's peak, and the profiler reports it (one implementation for both).
//!
//! On the IPU, every vertex instance keeps its *state* (its fields) in tile memory for the
//! whole program (Poplar keeps the vertex state of every compute set of a program resident),
//! and every tile holds the machine code of each codelet its vertices use, once. Both are
//! therefore always live. They are estimated from the vertices placed on each tile in the
//! plan's programs (`load` and `step`):
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

use std::fmt;
use tessera_ir::{BinaryOp, CmpOp, ReduceKind, UnaryOp};
use tessera_runtime::program::TileProgram;
use tessera_runtime::vertex::{Elem, Vertex};

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

/// One tile's code and vertex state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeState {
    /// Vertex state bytes (all vertices of all programs on the tile).
    pub vertex_state: u64,
    /// Code bytes ([`CODE_BYTES_PER_CODELET`] per distinct codelet).
    pub code: u64,
    /// Distinct codelets on the tile.
    pub codelets: u64,
}

impl CodeState {
    /// Code plus vertex state.
    pub fn total(self) -> u64 {
        self.vertex_state + self.code
    }
}

/// A codelet's template parameter that is an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Operator {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CmpOp),
    Reduce(ReduceKind),
}

/// A codelet: a vertex kind with its template parameters (operator, element types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Codelet {
    kind: &'static str,
    op: Option<Operator>,
    elems: [Option<Elem>; 2],
}

impl fmt::Display for Codelet {
    /// `kind<Op,elem,...>` (just `kind` without parameters), e.g. `binary<Mul,f32>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params: Vec<String> = Vec::new();
        match self.op {
            Some(Operator::Unary(o)) => params.push(format!("{o:?}")),
            Some(Operator::Binary(o)) => params.push(format!("{o:?}")),
            Some(Operator::Compare(o)) => params.push(format!("{o:?}")),
            Some(Operator::Reduce(o)) => params.push(format!("{o:?}")),
            None => {}
        }
        params.extend(self.elems.iter().flatten().map(|e| e.name().to_string()));
        if params.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}<{}>", self.kind, params.join(","))
        }
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
        Vertex::Softmax { .. } | Vertex::ReduceRows { .. } | Vertex::ReduceCols { .. } => (2, 1),
        Vertex::LayerNorm { .. } => (4, 2),
        Vertex::Gather { .. } | Vertex::ScatterAdd { .. } => (3, 2),
        Vertex::Select { .. } => (4, 0),
        Vertex::Expand { .. } => (2, 1),
    }
}

/// Vertex state bytes of one vertex instance.
pub fn vertex_state_bytes(v: &Vertex) -> u64 {
    let (regions, scalars) = fields(v);
    regions * VERTEX_STATE_BYTES_PER_REGION + scalars * VERTEX_STATE_BYTES_PER_SCALAR
}

/// The codelet a vertex runs: its kind with its template parameters.
pub fn codelet(v: &Vertex) -> Codelet {
    let (op, elems) = match v {
        Vertex::MatMul(m) => (None, [Some(m.input), Some(m.partials)]),
        Vertex::Unary { op, elem, .. } => (Some(Operator::Unary(*op)), [Some(*elem), None]),
        Vertex::Binary { op, elem, .. } => (Some(Operator::Binary(*op)), [Some(*elem), None]),
        Vertex::Compare { op, elem, .. } => (Some(Operator::Compare(*op)), [Some(*elem), None]),
        Vertex::ReduceRows { kind, elem, .. } | Vertex::ReduceCols { kind, elem, .. } => {
            (Some(Operator::Reduce(*kind)), [Some(*elem), None])
        }
        Vertex::Cast { from, to, .. } => (None, [Some(*from), Some(*to)]),
        Vertex::AddPartials { elem, .. }
        | Vertex::Fill { elem, .. }
        | Vertex::Softmax { elem, .. }
        | Vertex::LayerNorm { elem, .. }
        | Vertex::Gather { elem, .. }
        | Vertex::Select { elem, .. }
        | Vertex::ScatterAdd { elem, .. }
        | Vertex::Expand { elem, .. } => (None, [Some(*elem), None]),
        Vertex::Copy { .. } => (None, [None, None]),
    };
    Codelet {
        kind: v.kind(),
        op,
        elems,
    }
}

/// The code and vertex state of every global tile (`chip * tiles_per_chip + tile`) of
/// `tiles` tiles, over the vertices of `programs`. Vertices on tiles outside the range are
/// ignored (the runtime's load rejects them).
pub fn code_state(programs: &[&TileProgram], tiles: usize) -> Vec<CodeState> {
    let mut out = vec![CodeState::default(); tiles];
    // Distinct codelets per tile: a handful each, so a linear search beats hashing.
    let mut codelets: Vec<Vec<Codelet>> = vec![Vec::new(); tiles];
    for p in programs {
        let per_chip = p.tiles_per_chip as usize;
        for step in &p.supersteps {
            for tc in &step.compute {
                let g = tc.tile.chip as usize * per_chip + tc.tile.tile as usize;
                let (Some(t), Some(seen)) = (out.get_mut(g), codelets.get_mut(g)) else {
                    continue;
                };
                for v in &tc.vertices {
                    t.vertex_state += vertex_state_bytes(v);
                    let c = codelet(v);
                    if !seen.contains(&c) {
                        seen.push(c);
                    }
                }
            }
        }
    }
    for (t, seen) in out.iter_mut().zip(&codelets) {
        t.codelets = seen.len() as u64;
        t.code = t.codelets * CODE_BYTES_PER_CODELET;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_runtime::program::{Region, Superstep, TileCompute, TileRef};

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
        assert_eq!(codelet(&fill).to_string(), "fill<f32>");
        assert_eq!(
            codelet(&binary(BinaryOp::Mul)).to_string(),
            "binary<Mul,f32>"
        );
        let copy = Vertex::Copy {
            src: Region::new(0, 4),
            dst: Region::new(4, 4),
        };
        assert_eq!(codelet(&copy).to_string(), "copy");
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
        let est = code_state(&[&p], 4);
        // Global tile 1 (chip 0 tile 1): 4 binary vertices, 2 codelets (add, sub).
        assert_eq!(
            est[1],
            CodeState {
                vertex_state: 4 * 24,
                code: 2 * 1024,
                codelets: 2,
            }
        );
        // Global tile 2 (chip 1 tile 0): one vertex, one codelet.
        assert_eq!(est[2].total(), 24 + 1024);
        assert_eq!(est[0], CodeState::default());
        assert_eq!(est[3], CodeState::default());
        // A second program on the same tiles adds state but no code for known codelets.
        let est = code_state(&[&p, &p], 4);
        assert_eq!((est[1].vertex_state, est[1].code), (8 * 24, 2 * 1024));
    }

    /// `z = exp(x) * x` for `x: [rows, 64]` f32: only `unary<Exp,f32>` and
    /// `binary<Mul,f32>` vertices.
    fn exp_mul(rows: usize) -> tessera_ir::Graph {
        use tessera_ir::{DType, Op, TensorType};
        let mut g = tessera_ir::Graph::new("exp_mul");
        let x = g
            .input("x", TensorType::new(DType::F32, vec![rows, 64]))
            .unwrap();
        let e = g.add(Op::Unary(UnaryOp::Exp), &[x], "e").unwrap();
        let z = g.add(Op::Binary(BinaryOp::Mul), &[e, x], "z").unwrap();
        g.set_output("z", z).unwrap();
        g
    }

    #[test]
    fn the_memory_check_counts_code_and_vertex_state() {
        use crate::lower::program::tests::small_target;
        use crate::lower::program::{lower_program, LowerError, LowerOptions};
        let g = exp_mul(24);
        let roomy = lower_program(&g, &small_target(4, 1 << 20), &LowerOptions::default()).unwrap();
        assert!(roomy.oom.is_none());
        // By hand, per tile: a unary vertex has 2 spans (16 bytes of state), a binary one 3
        // (24 bytes); 1 KiB of code for each of the two codelets present on the tile.
        let mut by_hand = vec![(0u64, 0u64); roomy.memory.len()];
        for p in [&roomy.load, &roomy.step] {
            for step in &p.supersteps {
                for tc in &step.compute {
                    let t = &mut by_hand[(tc.tile.chip * p.tiles_per_chip + tc.tile.tile) as usize];
                    for v in &tc.vertices {
                        match v {
                            Vertex::Unary {
                                op: UnaryOp::Exp,
                                elem: Elem::F32,
                                ..
                            } => t.0 += 1,
                            Vertex::Binary {
                                op: BinaryOp::Mul,
                                elem: Elem::F32,
                                ..
                            } => t.1 += 1,
                            other => panic!("unexpected vertex {}", other.kind()),
                        }
                    }
                }
            }
        }
        let state = |(u, b): (u64, u64)| 16 * u + 24 * b;
        let code = |(u, b): (u64, u64)| 1024 * (u64::from(u > 0) + u64::from(b > 0));
        let est = code_state(&[&roomy.load, &roomy.step], roomy.memory.len());
        for (i, (e, h)) in est.iter().zip(&by_hand).enumerate() {
            assert_eq!((e.vertex_state, e.code), (state(*h), code(*h)), "tile {i}");
        }
        let (fullest, total) = roomy
            .memory
            .iter()
            .zip(&by_hand)
            .map(|(m, h)| m.peak + state(*h) + code(*h))
            .enumerate()
            .max_by_key(|&(i, t)| (t, std::cmp::Reverse(i)))
            .unwrap();
        let max_peak = roomy.memory.iter().map(|m| m.peak).max().unwrap();
        assert!(
            max_peak < total - 1,
            "the data alone fits one byte below the total"
        );
        // One byte short: out of memory, with code and vertex state on their own line.
        let short = small_target(4, total - 1);
        let err = lower_program(&g, &short, &LowerOptions::default()).unwrap_err();
        let LowerError::OutOfMemory(oom) = &err else {
            panic!("{err}");
        };
        let h = by_hand[fullest];
        assert_eq!((oom.chip, oom.tile as usize), (0, fullest));
        assert_eq!(oom.used, total);
        assert_eq!(
            (oom.code_bytes, oom.vertex_state_bytes),
            (code(h), state(h))
        );
        assert!(
            err.to_string().contains(&format!(
                "code and vertex state (always live): {} bytes",
                crate::lower::thousands(code(h) + state(h))
            )),
            "{err}"
        );
        // The lowering's other figures do not change; exactly enough memory fits.
        let opts = LowerOptions {
            allow_oom: true,
            ..LowerOptions::default()
        };
        let over = lower_program(&g, &short, &opts).unwrap();
        assert_eq!(over.memory, roomy.memory);
        assert_eq!(over.oom.as_ref(), Some(&**oom));
        assert!(lower_program(&g, &small_target(4, total), &LowerOptions::default()).is_ok());
    }
}
