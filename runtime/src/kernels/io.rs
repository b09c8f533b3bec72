//! Byte-level access to one tile's memory for kernels: decoding/encoding little-endian f32 and
//! f16 operands (i64 and bool operands are refused: only the index, compare, select and cast
//! kernels read them, as integers or bytes, see [`decode_i64`]), and splitting the memory
//! into a written range plus read-only rest (a split borrow, so a kernel can read its inputs
//! while writing its output without copying the tile).
//!
//! Rounding f32 results to f16 after an f32 `+ - * /` of two f16 values gives the correctly
//! rounded f16 result: f32 carries 24 ≥ 2·11 + 2 significand bits, so the double rounding is
//! innocuous (Figueroa's theorem).

use crate::program::Region;
use crate::vertex::Elem;
use half::f16;

/// `x` rounded to `elem` and widened back to f32 (identity for f32; i64 and bool never reach
/// here, since [`decode`] refuses them, and are left unchanged).
#[inline]
pub(crate) fn round_to(elem: Elem, x: f32) -> f32 {
    match elem {
        Elem::F32 | Elem::I64 | Elem::Bool => x,
        Elem::F16 => f16::from_f32(x).to_f32(),
    }
}

/// The error for an i64 operand of a floating-point kernel.
fn not_float(elem: Elem) -> String {
    format!("{} operand given to a floating-point kernel", elem.name())
}

/// Decodes little-endian `elem` values from `bytes` into `out` (replacing its contents).
/// Fails for i64 and bool.
pub(crate) fn decode(bytes: &[u8], elem: Elem, out: &mut Vec<f32>) -> Result<(), String> {
    out.clear();
    match elem {
        Elem::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        Elem::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        Elem::I64 | Elem::Bool => return Err(not_float(elem)),
    }
    Ok(())
}

/// Decodes little-endian i64 values from `bytes` into `out` (replacing its contents).
pub(crate) fn decode_i64(bytes: &[u8], out: &mut Vec<i64>) {
    out.clear();
    out.extend(bytes.chunks_exact(8).map(|c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        i64::from_le_bytes(b)
    }));
}

/// Encodes `vals` as little-endian `elem` into `bytes` (f32 → f16 rounds to nearest even).
/// Fails for i64 and bool.
pub(crate) fn encode(vals: &[f32], elem: Elem, bytes: &mut [u8]) -> Result<(), String> {
    match elem {
        Elem::F32 => bytes
            .chunks_exact_mut(4)
            .zip(vals)
            .for_each(|(c, v)| c.copy_from_slice(&v.to_le_bytes())),
        Elem::F16 => bytes
            .chunks_exact_mut(2)
            .zip(vals)
            .for_each(|(c, v)| c.copy_from_slice(&f16::from_f32(*v).to_le_bytes())),
        Elem::I64 | Elem::Bool => return Err(not_float(elem)),
    }
    Ok(())
}

/// Read access to a tile's memory outside one written range.
pub(crate) struct Reader<'m> {
    left: &'m [u8],
    right: &'m [u8],
    right_start: usize,
}

impl<'m> Reader<'m> {
    /// The bytes of `r`, which must lie entirely before or after the written range.
    pub(crate) fn get(&self, r: Region) -> Result<&'m [u8], String> {
        let (start, end) = (r.offset as usize, r.offset as usize + r.len as usize);
        let found = if end <= self.left.len() {
            self.left.get(start..end)
        } else if start >= self.right_start {
            self.right
                .get(start - self.right_start..end - self.right_start)
        } else {
            None
        };
        found.ok_or_else(|| format!("operand {r} overlaps the output or leaves the tile"))
    }
}

/// Splits `mem` into the mutable bytes of `w` and a [`Reader`] of everything else.
pub(crate) fn split(mem: &mut [u8], w: Region) -> Result<(Reader<'_>, &mut [u8]), String> {
    let (start, len) = (w.offset as usize, w.len as usize);
    if start.checked_add(len).is_none_or(|end| end > mem.len()) {
        return Err(format!("output {w} leaves the tile's {} bytes", mem.len()));
    }
    let (left, rest) = mem.split_at_mut(start);
    let (out, right) = rest.split_at_mut(len);
    Ok((
        Reader {
            left,
            right,
            right_start: start + len,
        },
        out,
    ))
}
