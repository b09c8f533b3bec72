//! Operand checks of the training vertices, each rule triggered by a minimal vertex.

use super::super::check_vertex;
use crate::error::Problem;
use crate::program::Region;
use crate::vertex::{Elem, Vertex};
use tessera_ir::{CmpOp, ReduceKind};

fn r(offset: u32, len: u32) -> Region {
    Region::new(offset, len)
}

fn cmp(elem: Elem, a: Region, b: Region, dst: Region) -> Vertex {
    Vertex::Compare {
        op: CmpOp::Lt,
        elem,
        a,
        b,
        dst,
    }
}

#[test]
fn compare_counts_elements_not_bytes() {
    // 6 f32 vs 2 f32 (cyclic) into 6 bools.
    assert_eq!(
        check_vertex(&cmp(Elem::F32, r(0, 24), r(24, 8), r(32, 6)), 64),
        Ok(())
    );
    assert_eq!(
        check_vertex(&cmp(Elem::I64, r(0, 16), r(16, 8), r(32, 2)), 64),
        Ok(())
    );
    // 4 f32 do not divide 6 results.
    assert!(matches!(
        check_vertex(&cmp(Elem::F32, r(0, 16), r(24, 8), r(32, 6)), 64),
        Err(Problem::NotMultiple {
            what: "dst",
            unit: 4,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&cmp(Elem::F32, r(0, 0), r(24, 8), r(32, 6)), 64),
        Err(Problem::Length {
            what: "a",
            expected: 24,
            ..
        })
    ));
    // The result may not overwrite an operand, even one of the same byte length.
    assert!(matches!(
        check_vertex(&cmp(Elem::F16, r(0, 8), r(8, 2), r(0, 4)), 64),
        Err(Problem::Overlap { what_b: "a", .. })
    ));
    assert!(matches!(
        check_vertex(&cmp(Elem::Bool, r(0, 4), r(4, 4), r(8, 4)), 64),
        Err(Problem::ElemType {
            elem: Elem::Bool,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&cmp(Elem::F32, r(2, 4), r(8, 4), r(16, 1)), 64),
        Err(Problem::Misaligned {
            what: "a",
            align: 4,
            ..
        })
    ));
}

fn select(elem: Elem, cond: Region, a: Region, b: Region, dst: Region) -> Vertex {
    Vertex::Select {
        elem,
        cond,
        a,
        b,
        dst,
    }
}

#[test]
fn select_may_be_in_place_on_a_full_length_value_only() {
    // 4 f16 results: cond 2 (cyclic), a 4, b 1.
    let ok = select(Elem::F16, r(0, 2), r(8, 8), r(16, 2), r(24, 8));
    assert_eq!(check_vertex(&ok, 64), Ok(()));
    let in_place = select(Elem::F16, r(0, 2), r(8, 8), r(16, 2), r(8, 8));
    assert_eq!(check_vertex(&in_place, 64), Ok(()));
    let over_b = select(Elem::F16, r(0, 2), r(8, 8), r(16, 2), r(16, 8));
    assert!(matches!(
        check_vertex(&over_b, 64),
        Err(Problem::Overlap { what_b: "b", .. })
    ));
    let over_cond = select(Elem::F16, r(0, 4), r(8, 8), r(16, 2), r(0, 8));
    assert!(matches!(
        check_vertex(&over_cond, 64),
        Err(Problem::Overlap { what_b: "cond", .. })
    ));
    // 3 conditions do not divide 4 results.
    let bad = select(Elem::F16, r(0, 3), r(8, 8), r(16, 2), r(24, 8));
    assert!(matches!(
        check_vertex(&bad, 64),
        Err(Problem::NotMultiple {
            what: "dst",
            unit: 6,
            ..
        })
    ));
    let boolean = select(Elem::Bool, r(0, 4), r(8, 4), r(16, 4), r(24, 4));
    assert!(matches!(
        check_vertex(&boolean, 64),
        Err(Problem::ElemType { what: "dst", .. })
    ));
}

fn reduce(elem: Elem, cols: u32, src: Region, dst: Region) -> Vertex {
    Vertex::ReduceRows {
        kind: ReduceKind::Sum,
        elem,
        cols,
        src,
        dst,
    }
}

#[test]
fn reduce_needs_whole_rows_and_one_result_per_row() {
    assert_eq!(
        check_vertex(&reduce(Elem::F32, 3, r(0, 24), r(24, 8)), 64),
        Ok(())
    );
    assert!(matches!(
        check_vertex(&reduce(Elem::F32, 4, r(0, 24), r(24, 8)), 64),
        Err(Problem::NotMultiple {
            what: "src",
            unit: 16,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&reduce(Elem::F32, 3, r(0, 24), r(24, 4)), 64),
        Err(Problem::Length {
            what: "dst",
            expected: 8,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&reduce(Elem::F32, 0, r(0, 24), r(24, 8)), 64),
        Err(Problem::Zero { what: "cols" })
    ));
    assert!(matches!(
        check_vertex(&reduce(Elem::F32, 3, r(0, 24), r(16, 8)), 64),
        Err(Problem::Overlap { .. })
    ));
    assert!(matches!(
        check_vertex(&reduce(Elem::I64, 1, r(0, 8), r(8, 8)), 64),
        Err(Problem::ElemType {
            elem: Elem::I64,
            ..
        })
    ));
}

fn scatter(elem: Elem, indices: Region, updates: Region, dst: Region) -> Vertex {
    Vertex::ScatterAdd {
        elem,
        rows: 3,
        width: 2,
        indices,
        updates,
        dst,
    }
}

#[test]
fn scatter_add_sizes_follow_indices_and_rows() {
    // 2 indices, 2 rows of 2 f32 updates, 3 rows of 2 f32 results.
    let ok = scatter(Elem::F32, r(0, 16), r(16, 16), r(32, 24));
    assert_eq!(check_vertex(&ok, 64), Ok(()));
    assert!(matches!(
        check_vertex(&scatter(Elem::F32, r(0, 16), r(16, 8), r(32, 24)), 64),
        Err(Problem::Length {
            what: "updates",
            expected: 16,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&scatter(Elem::F32, r(0, 16), r(16, 16), r(32, 16)), 64),
        Err(Problem::Length {
            what: "dst",
            expected: 24,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&scatter(Elem::F32, r(4, 16), r(24, 16), r(40, 24)), 64),
        Err(Problem::Misaligned {
            what: "indices",
            align: 8,
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&scatter(Elem::F32, r(0, 16), r(16, 16), r(24, 24)), 64),
        Err(Problem::Overlap {
            what_a: "dst",
            what_b: "updates",
            ..
        })
    ));
    assert!(matches!(
        check_vertex(&scatter(Elem::Bool, r(0, 16), r(16, 4), r(32, 6)), 64),
        Err(Problem::ElemType {
            elem: Elem::Bool,
            ..
        })
    ));
}

#[test]
fn bool_only_where_allowed() {
    let rejected = [
        Vertex::Unary {
            op: tessera_ir::UnaryOp::Exp,
            elem: Elem::Bool,
            src: r(0, 4),
            dst: r(4, 4),
        },
        Vertex::Fill {
            elem: Elem::Bool,
            dst: r(0, 4),
            value: 1.0,
        },
        Vertex::Cast {
            from: Elem::F32,
            to: Elem::Bool,
            src: r(0, 16),
            dst: r(16, 4),
        },
        Vertex::Gather {
            elem: Elem::Bool,
            rows: 1,
            width: 1,
            table: r(0, 1),
            indices: r(8, 8),
            dst: r(16, 1),
        },
    ];
    for v in &rejected {
        assert!(
            matches!(
                check_vertex(v, 64),
                Err(Problem::ElemType {
                    elem: Elem::Bool,
                    ..
                })
            ),
            "{v:?}"
        );
    }
    let accepted = [
        Vertex::Cast {
            from: Elem::Bool,
            to: Elem::F16,
            src: r(0, 4),
            dst: r(4, 8),
        },
        Vertex::Copy {
            src: r(1, 3),
            dst: r(5, 3),
        },
    ];
    for v in &accepted {
        assert_eq!(check_vertex(v, 64), Ok(()), "{v:?}");
    }
}

#[test]
fn reduce_cols_needs_rows_of_the_result_length() {
    let cols = |rows, src, dst| Vertex::ReduceCols {
        kind: ReduceKind::Sum,
        elem: Elem::F32,
        rows,
        src,
        dst,
    };
    // 3 rows of 2 f32 columns.
    assert_eq!(check_vertex(&cols(3, r(0, 24), r(24, 8)), 64), Ok(()));
    assert!(check_vertex(&cols(2, r(0, 24), r(24, 8)), 64).is_err());
    assert!(matches!(
        check_vertex(&cols(0, r(0, 24), r(24, 8)), 64),
        Err(Problem::Zero { what: "rows" })
    ));
    // The result may not overlap its operand.
    assert!(check_vertex(&cols(3, r(0, 24), r(16, 8)), 64).is_err());
    let ints = Vertex::ReduceCols {
        kind: ReduceKind::Sum,
        elem: Elem::I64,
        rows: 1,
        src: r(0, 8),
        dst: r(8, 8),
    };
    assert!(matches!(
        check_vertex(&ints, 64),
        Err(Problem::ElemType { .. })
    ));
}
