//! Scalar element functions with the evaluator's exact semantics.
//!
//! Unary functions and `pow` are evaluated in f64 on the (exactly widened) f32 operand and
//! rounded once to f32, so the oracle's elementwise results are the correctly rounded values
//! except in rare near-tie cases. `+ - * /` are done directly in f32, which IEEE 754 already
//! rounds correctly. `max`/`min` propagate NaN (as `torch.maximum` does). f16 ops use these
//! f32 functions and round the result to f16.
//!
//! `erf` and `erfc` are the `libm` crate's (musl's rational approximations, under one ulp in
//! f64; Rust's std has neither). GELU is computed as `x/2 * erfc(-x/sqrt 2)`, which equals
//! `x/2 * (1 + erf(x/sqrt 2))` but keeps its relative accuracy in the far negative tail. The
//! tile runtime reuses these functions to match the oracle bit for bit.

use crate::op::{BinaryOp, UnaryOp};
use std::f64::consts::FRAC_1_SQRT_2;

/// The error function `erf(x) = 2/sqrt(pi) * integral_0^x e^{-t^2} dt` (libm's).
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// The complementary error function `1 - erf(x)`, accurate also where it is tiny (x >> 0).
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Exact (erf) GELU `x/2 * (1 + erf(x/sqrt 2))`, computed as `x/2 * erfc(-x/sqrt 2)`.
pub fn gelu(x: f64) -> f64 {
    0.5 * x * erfc(-x * FRAC_1_SQRT_2)
}

/// Logistic sigmoid `1 / (1 + e^-x)`, without overflow for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// One unary op on an f32 value, as the evaluator computes it (f64, rounded once).
pub fn unary_f32(op: UnaryOp, x: f32) -> f32 {
    let w = f64::from(x);
    let r = match op {
        UnaryOp::Neg => return -x,
        UnaryOp::Abs => return x.abs(),
        UnaryOp::Recip => return 1.0 / x,
        UnaryOp::Sqrt => return x.sqrt(),
        UnaryOp::Exp => w.exp(),
        UnaryOp::Log => w.ln(),
        UnaryOp::Log1p => w.ln_1p(),
        UnaryOp::Tanh => w.tanh(),
        UnaryOp::Erf => erf(w),
        UnaryOp::Gelu => gelu(w),
        UnaryOp::Rsqrt => 1.0 / w.sqrt(),
        UnaryOp::Sigmoid => sigmoid(w),
    };
    r as f32
}

/// One binary op on f32 values, as the evaluator computes it.
pub fn binary_f32(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max | BinaryOp::Min if a.is_nan() || b.is_nan() => f32::NAN,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Pow => f64::from(a).powf(f64::from(b)) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// The alternating Maclaurin series `2/sqrt(pi) sum (-1)^n x^{2n+1} / (n! (2n+1))`: a
    /// different formula than the implementation's, accurate to ~1e-13 for |x| <= 3.
    fn erf_maclaurin(x: f64) -> f64 {
        let mut sum = 0.0;
        let mut pow_over_fact = x; // x^{2n+1} / n!
        for n in 0..150 {
            sum += pow_over_fact / (2 * n + 1) as f64;
            pow_over_fact *= -x * x / (n + 1) as f64;
        }
        sum * 2.0 / PI.sqrt()
    }

    #[test]
    fn erf_matches_tabulated_values() {
        // Abramowitz & Stegun table 7.1 / Python's math.erf, to the digits given.
        let table = [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (1.5, 0.9661051464753108),
            (2.0, 0.9953222650189527),
            (2.5, 0.999593047982555),
            (3.0, 0.9999779095030014),
        ];
        for (x, want) in table {
            assert!((erf(x) - want).abs() <= 4e-16, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() <= 4e-16);
        }
        assert_eq!(erf(40.0), 1.0);
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
        assert!(erf(f64::NAN).is_nan());
    }

    #[test]
    fn erf_matches_maclaurin_series_on_a_grid() {
        for i in -300..=300 {
            let x = i as f64 / 100.0;
            let (got, want) = (erf(x), erf_maclaurin(x));
            assert!((got - want).abs() <= 1e-13, "x={x}: {got} vs {want}");
        }
    }

    #[test]
    fn erfc_tail_is_relatively_accurate() {
        // math.erfc values (tiny, where 1 - erf would have no correct digits).
        let table = [
            (3.0, 2.209049699858544e-05),
            (5.0, 1.5374597944280351e-12),
            (10.0, 2.088487583762545e-45),
            (-1.0, 1.842700792949715),
        ];
        for (x, want) in table {
            let got = erfc(x);
            assert!(((got - want) / want).abs() < 1e-13, "erfc({x}) = {got}");
        }
    }

    #[test]
    fn gelu_and_sigmoid() {
        // gelu(1) = 0.5 * (1 + erf(1/sqrt 2)); erf(0.7071067811865476) = 0.6826894921370859.
        assert!((gelu(1.0) - 0.8413447460685429).abs() < 1e-15);
        assert!((gelu(-1.0) + 0.15865525393145707).abs() < 1e-15);
        assert_eq!(gelu(0.0), 0.0);
        // Far tail: gelu(-10) = -5 * erfc(10/sqrt 2) = -5 * 1.5239706048321186e-23.
        assert!((gelu(-10.0) / -7.619853024160593e-23 - 1.0).abs() < 1e-12);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-16);
        assert!((sigmoid(2.0) - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-16);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn f32_wrappers_round_once() {
        assert_eq!(unary_f32(UnaryOp::Erf, 1.0), 0.842_700_8_f32);
        assert_eq!(unary_f32(UnaryOp::Rsqrt, 4.0), 0.5);
        assert_eq!(unary_f32(UnaryOp::Neg, 2.5), -2.5);
        assert!(binary_f32(BinaryOp::Max, f32::NAN, 1.0).is_nan());
        assert!(binary_f32(BinaryOp::Min, 1.0, f32::NAN).is_nan());
        assert_eq!(binary_f32(BinaryOp::Pow, 2.0, 10.0), 1024.0);
    }
}
