//! Stochastic rounding of f16 results, as the IPU does in mixed-precision training.
//!
//! With round-to-nearest, an f32 value `x` between two neighbouring f16 values `lo < x < hi`
//! always becomes the nearer one, so updates smaller than half a unit in the last place are
//! lost every time (a small learning-rate step on an fp16 weight never lands). Stochastic
//! rounding picks `hi` with probability `(x − lo) / (hi − lo)` and `lo` otherwise: the
//! expected result is `x`, and small updates survive on average.
//!
//! Determinism: the random number of element `i` of node `n` is a counter-based hash of
//! `(seed, n, i)` ([`uniform`], SplitMix64 finalisers), not a draw from a stateful
//! generator, so results do not depend on the order in which nodes or elements are
//! evaluated, and the same seed gives the same bits. Callers vary the seed between steps
//! (the trainer derives one per step and micro-batch), otherwise every step would round
//! each element the same way.
//!
//! Which nodes: f16 results of arithmetic ([`applies`]): elementwise functions, binary
//! ops, reductions, softmax, layer norm, scatter_add, matmul without `half_partials`, and
//! casts from f32. The node is computed as for f32 operands (f16 operands widened exactly,
//! reductions accumulating in f64 rather than f32) and the f32 result is then rounded
//! stochastically. A matmul with `half_partials` rounds each partial sum to nearest, so its
//! result is already an f16 value and is left alone; data movement (reshape, transpose,
//! gather, ...) and constants never round and are left alone too.
//!
//! Overflow: a magnitude at or beyond the f16 overflow threshold (65520) gives ±inf, as
//! round-to-nearest does, so overflow detection (loss scaling) sees the same infinities;
//! between the largest finite value 65504 and 65536 the result is 65504 or inf with
//! probability linear in the distance, as if the exponent range continued.

use super::error::KernelError;
use super::kernels::eval_op;
use super::values::{floats, make};
use crate::dtype::DType;
use crate::op::Op;
use crate::tensor::{Tensor, TensorData};
use crate::types::TensorType;
use half::f16;
use std::borrow::Cow;

/// The SplitMix64 finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Weyl increment of SplitMix64 (the golden ratio in 64 bits).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A uniform number in `[0, 1)` determined by `(seed, node, index)` alone.
pub fn uniform(seed: u64, node: u64, index: u64) -> f64 {
    let key = mix(seed.wrapping_add(GOLDEN)) ^ mix(node.wrapping_mul(GOLDEN).wrapping_add(1));
    let h = mix(mix(key) ^ index.wrapping_mul(GOLDEN).wrapping_add(GOLDEN));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Rounds `x` to one of its two neighbouring f16 values, the upper one with probability
/// proportional to its distance from the lower one; `u` is uniform in `[0, 1)`. Values
/// representable in f16, infinities and NaN are returned unchanged.
pub fn stochastic_round_f16(x: f32, u: f64) -> f16 {
    if x.is_nan() {
        return f16::NAN;
    }
    let a = x.abs();
    let nearest = f16::from_f32(a);
    // The f16 value at or below `a` (bits of non-negative f16 values are monotonic).
    let lo = if nearest.to_f32() > a {
        f16::from_bits(nearest.to_bits().saturating_sub(1))
    } else {
        nearest
    };
    let magnitude = if lo.to_f32() == a {
        lo
    } else {
        let hi = f16::from_bits(lo.to_bits().saturating_add(1));
        let hi_value = if hi.is_infinite() {
            65536.0
        } else {
            f64::from(hi.to_f32())
        };
        let lo_value = f64::from(lo.to_f32());
        let p_up = (f64::from(a) - lo_value) / (hi_value - lo_value);
        if f64::from(a) >= 65520.0 {
            f16::INFINITY
        } else if u < p_up {
            hi
        } else {
            lo
        }
    };
    if x.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    }
}

/// True when the f16 result of `op` on `args` is rounded from a wider value (and so is
/// rounded stochastically when that is on).
pub(crate) fn applies(op: &Op, args: &[&Tensor]) -> bool {
    match op {
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Softmax
        | Op::LayerNorm { .. }
        | Op::Reduce { .. }
        | Op::ScatterAdd { .. } => true,
        Op::MatMul { half_partials, .. } => !half_partials,
        Op::Cast { .. } => args.first().is_some_and(|a| a.dtype() == DType::F32),
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Full { .. }
        | Op::Iota { .. }
        | Op::Compare(_)
        | Op::Select
        | Op::Gather { .. }
        | Op::OneHot { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::BroadcastTo { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. } => false,
    }
}

/// The f16 value of `op` on `args` (result type `ty`), computed in f32 and rounded
/// stochastically with the random numbers of `(seed, node, element)`.
pub(crate) fn eval_stochastic(
    op: &Op,
    args: &[&Tensor],
    ty: &TensorType,
    seed: u64,
    node: u64,
) -> Result<Tensor, KernelError> {
    let wide: Vec<Cow<'_, Tensor>> = args
        .iter()
        .map(|&a| match a.dtype() {
            DType::F16 => Cow::Owned(a.cast(DType::F32)),
            _ => Cow::Borrowed(a),
        })
        .collect();
    let refs: Vec<&Tensor> = wide.iter().map(AsRef::as_ref).collect();
    let exact = match op {
        Op::Cast { .. } => match refs.as_slice() {
            [x] => (*x).clone(),
            _ => {
                return Err(KernelError::Internal(format!(
                    "`cast` got {} operands",
                    refs.len()
                )))
            }
        },
        _ => eval_op(op, &refs, &ty.with_dtype(DType::F32))?,
    };
    let values = floats(&exact)?;
    let rounded: Vec<f16> = values
        .iter()
        .enumerate()
        .map(|(i, &x)| stochastic_round_f16(x, uniform(seed, node, i as u64)))
        .collect();
    make(&ty.shape, TensorData::F16(rounded))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two f16 neighbours of `x`, computed in f64 from the f16 grid independently of the
    /// bit tricks above: the grid spacing in the binade of `x` is `2^(e - 10)` (subnormals:
    /// `2^-24`).
    fn neighbours(x: f64) -> (f64, f64) {
        let e = x.abs().log2().floor().max(-14.0);
        let step = 2f64.powf(e - 10.0);
        let lo = (x / step).floor() * step;
        (lo, lo + step)
    }

    #[test]
    fn rounds_to_a_neighbour_and_is_unbiased() {
        for &x in &[0.1f32, 1.0 / 3.0, -2.7193, 1e-6, -3.0e-7, 1000.123, 65000.7] {
            let (lo, hi) = neighbours(f64::from(x));
            let n = 20_000u64;
            let mut sum = 0.0;
            let mut ups = 0u64;
            for i in 0..n {
                let r = f64::from(stochastic_round_f16(x, uniform(7, 3, i)).to_f32());
                assert!(r == lo || r == hi, "{x}: {r} is not {lo} or {hi}");
                if r == hi {
                    ups += 1;
                }
                sum += r;
            }
            let p = (f64::from(x) - lo) / (hi - lo);
            // Binomial standard deviation of the fraction of ups; 5 sigma.
            let sigma = (p * (1.0 - p) / n as f64).sqrt();
            let frac = ups as f64 / n as f64;
            assert!((frac - p).abs() < 5.0 * sigma + 1e-9, "{x}: {frac} vs {p}");
            let mean = sum / n as f64;
            assert!(
                (mean - f64::from(x)).abs() < 5.0 * sigma * (hi - lo) + 1e-12,
                "{x}: mean {mean}"
            );
        }
    }

    #[test]
    fn exact_values_specials_and_overflow() {
        for x in [
            0.0f32,
            -0.0,
            1.0,
            0.5,
            -65504.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            for i in 0..50 {
                assert_eq!(stochastic_round_f16(x, uniform(1, 2, i)).to_f32(), x);
            }
        }
        assert!(stochastic_round_f16(f32::NAN, 0.5).is_nan());
        assert!(stochastic_round_f16(70000.0, 0.0).is_infinite());
        assert!(stochastic_round_f16(-65520.0, 0.99).is_infinite());
        // Between 65504 and the overflow threshold: 65504 or inf, never anything else.
        let r = stochastic_round_f16(65510.0, 0.9);
        assert_eq!(r.to_f32(), 65504.0);
        let r = stochastic_round_f16(65510.0, 0.01);
        assert!(r.is_infinite());
        // Smallest subnormal: 2^-24. Half of it rounds up half of the time.
        let tiny = 2f32.powi(-25);
        assert_eq!(stochastic_round_f16(tiny, 0.49).to_f32(), 2f32.powi(-24));
        assert_eq!(stochastic_round_f16(tiny, 0.51).to_f32(), 0.0);
    }

    #[test]
    fn uniform_is_a_function_of_its_key() {
        assert_eq!(uniform(5, 9, 100), uniform(5, 9, 100));
        assert_ne!(uniform(5, 9, 100), uniform(6, 9, 100));
        assert_ne!(uniform(5, 9, 100), uniform(5, 10, 100));
        assert_ne!(uniform(5, 9, 100), uniform(5, 9, 101));
        let mean = (0..10_000).map(|i| uniform(3, 4, i)).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
