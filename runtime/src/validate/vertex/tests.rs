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
