//! Vertex operand checks: each rule of [`super`] triggered by a minimal vertex.

use super::*;
use crate::vertex::MatMul;

fn mm(a: Region, b: Region, c: Region) -> Vertex {
    Vertex::MatMul(MatMul {
        m: 2,
        k: 3,
        n: 4,
        input: Elem::F32,
        partials: Elem::F32,
        accumulate: false,
        transpose_a: false,
        transpose_b: false,
        a,
        b,
        c,
    })
}

#[test]
fn matmul_operands_are_checked() {
    let ok = mm(Region::new(0, 24), Region::new(24, 48), Region::new(72, 32));
    assert_eq!(check_vertex(&ok, 104), Ok(()));
    assert!(matches!(
        check_vertex(&ok, 103),
        Err(Problem::OutOfTile { what: "c", .. })
    ));
    let short = mm(Region::new(0, 20), Region::new(24, 48), Region::new(72, 32));
    assert!(matches!(
        check_vertex(&short, 1000),
        Err(Problem::Length {
            what: "a",
            expected: 24,
            ..
        })
    ));
    let alias = mm(Region::new(0, 24), Region::new(24, 48), Region::new(60, 32));
    assert!(matches!(
        check_vertex(&alias, 1000),
        Err(Problem::Overlap {
            what_a: "c",
            what_b: "b",
            ..
        })
    ));
    let odd = mm(Region::new(2, 24), Region::new(28, 48), Region::new(76, 32));
    assert!(matches!(
        check_vertex(&odd, 1000),
        Err(Problem::Misaligned { align: 4, .. })
    ));
}

#[test]
fn elementwise_may_be_in_place_but_not_shifted() {
    let r = Region::new(0, 16);
    let unary = |dst| Vertex::Unary {
        op: tessera_ir::UnaryOp::Exp,
        elem: Elem::F16,
        src: r,
        dst,
    };
    assert_eq!(check_vertex(&unary(r), 64), Ok(()));
    assert!(check_vertex(&unary(Region::new(2, 16)), 64).is_err());
    assert_eq!(check_vertex(&unary(Region::new(16, 16)), 64), Ok(()));
}

fn r(offset: u32, len: u32) -> Region {
    Region::new(offset, len)
}

#[test]
fn i64_only_as_cast_source_copy_and_gather_indices() {
    let rejected = [
        Vertex::Unary {
            op: tessera_ir::UnaryOp::Exp,
            elem: Elem::I64,
            src: r(0, 16),
            dst: r(16, 16),
        },
        Vertex::Binary {
            op: tessera_ir::BinaryOp::Add,
            elem: Elem::I64,
            a: r(0, 16),
            b: r(16, 16),
            dst: r(32, 16),
        },
        Vertex::Fill {
            elem: Elem::I64,
            dst: r(0, 16),
            value: 1.0,
        },
        Vertex::AddPartials {
            elem: Elem::I64,
            dst: r(0, 16),
            srcs: vec![r(16, 16)],
        },
        Vertex::Cast {
            from: Elem::F32,
            to: Elem::I64,
            src: r(0, 16),
            dst: r(16, 32),
        },
        Vertex::Softmax {
            elem: Elem::I64,
            cols: 2,
            src: r(0, 16),
            dst: r(16, 16),
        },
        Vertex::Gather {
            elem: Elem::I64,
            rows: 1,
            width: 1,
            table: r(0, 8),
            indices: r(8, 8),
            dst: r(16, 8),
        },
    ];
    for v in &rejected {
        assert!(
            matches!(
                check_vertex(v, 256),
                Err(Problem::ElemType {
                    elem: Elem::I64,
                    ..
                })
            ),
            "{v:?}"
        );
    }
    let mut m = mm(r(0, 24), r(24, 48), r(72, 32));
    if let Vertex::MatMul(x) = &mut m {
        x.input = Elem::I64;
    }
    assert!(matches!(
        check_vertex(&m, 1000),
        Err(Problem::ElemType { what: "a", .. })
    ));
    let accepted = [
        Vertex::Cast {
            from: Elem::I64,
            to: Elem::F16,
            src: r(0, 16),
            dst: r(16, 4),
        },
        Vertex::Copy {
            src: r(0, 16),
            dst: r(16, 16),
        },
    ];
    for v in &accepted {
        assert_eq!(check_vertex(v, 256), Ok(()), "{v:?}");
    }
    // An i64 source must be 8-byte aligned.
    let odd = Vertex::Cast {
        from: Elem::I64,
        to: Elem::F32,
        src: r(4, 16),
        dst: r(32, 8),
    };
    assert!(matches!(
        check_vertex(&odd, 256),
        Err(Problem::Misaligned { align: 8, .. })
    ));
}

#[test]
fn binary_operands_must_divide_dst_and_not_alias_it_unless_equal() {
    let bin = |a, b, dst| Vertex::Binary {
        op: tessera_ir::BinaryOp::Mul,
        elem: Elem::F32,
        a,
        b,
        dst,
    };
    assert_eq!(
        check_vertex(&bin(r(0, 24), r(24, 8), r(32, 24)), 64),
        Ok(())
    );
    // In place on the full-length operand, broadcasting the short one.
    assert_eq!(check_vertex(&bin(r(0, 24), r(24, 8), r(0, 24)), 64), Ok(()));
    assert!(matches!(
        check_vertex(&bin(r(0, 8), r(8, 12), r(24, 16)), 64),
        Err(Problem::NotMultiple {
            what: "dst",
            unit: 12,
            ..
        })
    ));
    // A short operand may not be written over, even at the same offset.
    assert!(matches!(
        check_vertex(&bin(r(0, 8), r(8, 24), r(0, 24)), 64),
        Err(Problem::Overlap { what_b: "a", .. })
    ));
    assert!(matches!(
        check_vertex(&bin(r(0, 0), r(8, 8), r(16, 8)), 64),
        Err(Problem::Length { what: "a", .. })
    ));
}

#[test]
fn row_vertices_need_whole_rows_and_matching_params() {
    let softmax = |cols, src, dst| Vertex::Softmax {
        elem: Elem::F16,
        cols,
        src,
        dst,
    };
    assert_eq!(check_vertex(&softmax(3, r(0, 12), r(0, 12)), 64), Ok(()));
    assert!(matches!(
        check_vertex(&softmax(0, r(0, 12), r(0, 12)), 64),
        Err(Problem::Zero { what: "cols" })
    ));
    assert!(matches!(
        check_vertex(&softmax(4, r(0, 12), r(16, 12)), 64),
        Err(Problem::NotMultiple { unit: 8, .. })
    ));
    assert!(matches!(
        check_vertex(&softmax(3, r(0, 12), r(6, 12)), 64),
        Err(Problem::Overlap { .. })
    ));
    let ln = |gamma, dst| Vertex::LayerNorm {
        elem: Elem::F32,
        cols: 2,
        eps: 1e-5,
        x: r(0, 16),
        gamma,
        beta: r(24, 8),
        dst,
    };
    assert_eq!(check_vertex(&ln(r(16, 8), r(0, 16)), 64), Ok(()));
    assert!(matches!(
        check_vertex(&ln(r(16, 12), r(32, 16)), 64),
        Err(Problem::Length {
            what: "gamma",
            expected: 8,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&ln(r(16, 8), r(20, 16)), 64),
        Err(Problem::Overlap { .. })
    ));
}

#[test]
fn gather_operands_are_sized_and_disjoint() {
    let gather = |table, indices, dst| Vertex::Gather {
        elem: Elem::F32,
        rows: 4,
        width: 2,
        table,
        indices,
        dst,
    };
    // Table 4×2 f32 = 32 bytes, 3 indices = 24 bytes, dst 3×2 f32 = 24 bytes.
    assert_eq!(
        check_vertex(&gather(r(0, 32), r(32, 24), r(56, 24)), 80),
        Ok(())
    );
    assert!(matches!(
        check_vertex(&gather(r(0, 28), r(32, 24), r(56, 24)), 80),
        Err(Problem::Length {
            what: "table",
            expected: 32,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&gather(r(0, 32), r(32, 24), r(56, 16)), 80),
        Err(Problem::Length {
            what: "dst",
            expected: 24,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&gather(r(0, 32), r(36, 24), r(60, 24)), 96),
        Err(Problem::Misaligned { align: 8, .. })
    ));
    assert!(matches!(
        check_vertex(&gather(r(0, 32), r(32, 24), r(24, 24)), 80),
        Err(Problem::Overlap {
            what_b: "table",
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&gather(r(0, 32), r(24, 24), r(56, 24)), 80),
        Err(Problem::Overlap {
            what_a: "indices",
            ..
        })
    ));
}
