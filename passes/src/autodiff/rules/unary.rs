//! Rules of the elementwise functions of one operand: `dx = dy * f'(x)`, with `f'` written
//! in terms of the result `y` where that is cheaper (`exp`, `tanh`, `sigmoid`, `sqrt`,
//! `rsqrt`, `recip`).

use super::{Grads, RuleError, Site};
use crate::emit::Emitter;
use std::f64::consts::{FRAC_1_SQRT_2, PI};
use tessera_ir::{CmpOp, UnaryOp};

/// `d/dx` of every [`UnaryOp`].
///
/// - `abs`: the derivative at 0 is taken as 0 (as torch's `sign`).
/// - `gelu` (exact): `Φ(x) + x φ(x)` with `Φ(x) = (1 + erf(x/√2))/2`, `φ(x) = e^{-x²/2}/√(2π)`.
/// - `erf`: `2/√π · e^{-x²}`.
pub(super) fn unary(e: &mut Emitter, s: &Site, u: UnaryOp) -> Result<Grads, RuleError> {
    if !s.wants(0) {
        return Ok(s.none());
    }
    let (x, y, dy) = (s.x(0)?, s.y, s.dy);
    let dx = match u {
        UnaryOp::Neg => e.neg(dy)?,
        UnaryOp::Exp => e.mul(dy, y)?,
        UnaryOp::Log => e.div(dy, x)?,
        UnaryOp::Log1p => {
            let one = e.scalar_like(1.0, x)?;
            let d = e.add(x, one)?;
            e.div(dy, d)?
        }
        UnaryOp::Tanh => {
            let one = e.scalar_like(1.0, y)?;
            let y2 = e.mul(y, y)?;
            let d = e.sub(one, y2)?;
            e.mul(dy, d)?
        }
        UnaryOp::Erf => {
            let x2 = e.mul(x, x)?;
            let n = e.neg(x2)?;
            let ex = e.unary(UnaryOp::Exp, n)?;
            let d = e.scale(ex, 2.0 / PI.sqrt())?;
            e.mul(dy, d)?
        }
        UnaryOp::Gelu => {
            let xs = e.scale(x, FRAC_1_SQRT_2)?;
            let erf = e.unary(UnaryOp::Erf, xs)?;
            let one = e.scalar_like(1.0, x)?;
            let h = e.add(erf, one)?;
            let cdf = e.scale(h, 0.5)?;
            let x2 = e.mul(x, x)?;
            let arg = e.scale(x2, -0.5)?;
            let ex = e.unary(UnaryOp::Exp, arg)?;
            let pdf = e.scale(ex, 1.0 / (2.0 * PI).sqrt())?;
            let xpdf = e.mul(x, pdf)?;
            let d = e.add(cdf, xpdf)?;
            e.mul(dy, d)?
        }
        UnaryOp::Sqrt => {
            let q = e.div(dy, y)?;
            e.scale(q, 0.5)?
        }
        UnaryOp::Rsqrt => {
            // d/dx x^{-1/2} = -x^{-3/2}/2 = -(y / x)/2.
            let q = e.div(y, x)?;
            let d = e.scale(q, -0.5)?;
            e.mul(dy, d)?
        }
        UnaryOp::Abs => {
            let zero = e.scalar_like(0.0, x)?;
            let pos = e.cmp(CmpOp::Gt, x, zero)?;
            let neg = e.cmp(CmpOp::Lt, x, zero)?;
            let ndy = e.neg(dy)?;
            let inner = e.select(neg, ndy, zero)?;
            e.select(pos, dy, inner)?
        }
        UnaryOp::Sigmoid => {
            let one = e.scalar_like(1.0, y)?;
            let c = e.sub(one, y)?;
            let d = e.mul(y, c)?;
            e.mul(dy, d)?
        }
        UnaryOp::Recip => {
            let y2 = e.mul(y, y)?;
            let p = e.mul(dy, y2)?;
            e.neg(p)?
        }
    };
    Ok(vec![Some(dx)])
}
