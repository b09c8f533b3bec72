//! Byte-level access to one tile's memory for kernels: decoding/encoding little-endian f32 and
//! f16 operands (i64 and bool operands are refused: only the index, compare, select and cast
//! kernels read them, as integers or bytes, see [`decode_i64`]), and splitting the memory
//! into a written range plus read-only rest (a split borrow, so a kernel can read its inputs
//! while writing its output without copying the tile).
//!
//! Rounding f32 results to f16 after an f32 `+ - * /` of two f16 values gives the correctly
//! rounded f16 result: f32 carries 24 ≥ 2·11 + 2 significand bits, so the double rounding is
//! innocuous (Figueroa's theorem).
//!
//! Aligned f16 operands are converted a slice at a time with `half`'s conversions (F16C
//! instructions, enabled in the build): element by element they took most of an fp16 step's
//! compute time. Both ways give the same bits (tested on every f16 value).

use crate::program::Region;
use crate::vertex::Elem;
use half::f16;
use half::slice::HalfFloatSliceExt;

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
        Elem::F32 => match le_view::<f32>(bytes) {
            // An aligned f32 region on a little-endian host is its own decoding.
            Some(v) => out.extend_from_slice(v),
            None => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
        },
        Elem::F16 => match le_view::<f16>(bytes) {
            // `half`'s slice conversion (F16C instructions when the build enables them).
            Some(h) => {
                out.resize(h.len(), 0.0);
                h.convert_to_f32_slice(out);
            }
            None => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
        },
        Elem::I64 | Elem::Bool => return Err(not_float(elem)),
    }
    Ok(())
}

/// `bytes` viewed as little-endian `T` values (f16 or f32), on a little-endian host when they
/// are aligned for `T` and whole (else the callers convert element by element, with the same
/// results).
pub(crate) fn le_view<T: bytemuck::Pod>(bytes: &[u8]) -> Option<&[T]> {
    if cfg!(target_endian = "little") {
        bytemuck::try_cast_slice(bytes).ok()
    } else {
        None
    }
}

/// As [`le_view`], mutable.
pub(crate) fn le_view_mut<T: bytemuck::Pod>(bytes: &mut [u8]) -> Option<&mut [T]> {
    if cfg!(target_endian = "little") {
        bytemuck::try_cast_slice_mut(bytes).ok()
    } else {
        None
    }
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
        Elem::F32 => match le_view_mut::<f32>(bytes) {
            Some(out) if out.len() == vals.len() => out.copy_from_slice(vals),
            _ => bytes
                .chunks_exact_mut(4)
                .zip(vals)
                .for_each(|(c, v)| c.copy_from_slice(&v.to_le_bytes())),
        },
        Elem::F16 => match le_view_mut::<f16>(bytes) {
            Some(h) if h.len() == vals.len() => h.convert_from_f32_slice(vals),
            _ => bytes
                .chunks_exact_mut(2)
                .zip(vals)
                .for_each(|(c, v)| c.copy_from_slice(&f16::from_f32(*v).to_le_bytes())),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The same `bytes` at an address where they can be viewed as f16 and at one where they
    /// cannot (so both conversion paths run).
    fn both_ways(bytes: &[u8]) -> (Vec<u8>, usize, usize) {
        let mut buf = vec![0u8; bytes.len() + 2];
        let aligned = if le_view::<f16>(&buf[..2]).is_some() {
            0
        } else {
            1
        };
        let unaligned = 1 - aligned;
        buf[aligned..aligned + bytes.len()].copy_from_slice(bytes);
        (buf, aligned, unaligned)
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn f16_slice_conversions_equal_the_element_by_element_ones() {
        // Every f16 value, decoded both ways.
        let all: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        let (mut buf, aligned, unaligned) = both_ways(&all);
        let n = all.len();
        assert!(le_view::<f16>(&buf[aligned..aligned + n]).is_some());
        assert!(le_view::<f16>(&buf[unaligned..unaligned + n]).is_none());
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        decode(&buf[aligned..aligned + n], Elem::F16, &mut fast).unwrap();
        buf.copy_within(aligned..aligned + n, unaligned);
        decode(&buf[unaligned..unaligned + n], Elem::F16, &mut slow).unwrap();
        assert_eq!(fast.len(), 65536);
        for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
            assert!(same(*a, *b), "f16 {i:#06x}: {a} vs {b}");
        }
        // f32 → f16 rounding: ties, subnormals, overflow, specials and a sweep of values.
        let mut vals = vec![
            0.0,
            -0.0,
            1.0 + f32::EPSILON,
            65504.0,
            65519.0,
            65520.0,
            1e9,
            -1e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            5.960_464_5e-8,
            2.980_232_2e-8,
            1.0 / 3.0,
            2049.0,
            2051.0,
        ];
        vals.extend((0..20_000).map(|i| f32::from_bits(0x3000_0000 + i * 40_009)));
        let (mut buf, aligned, unaligned) = both_ways(&vec![0u8; 2 * vals.len()]);
        let m = 2 * vals.len();
        encode(&vals, Elem::F16, &mut buf[aligned..aligned + m]).unwrap();
        let fast = buf[aligned..aligned + m].to_vec();
        encode(&vals, Elem::F16, &mut buf[unaligned..unaligned + m]).unwrap();
        let slow = buf[unaligned..unaligned + m].to_vec();
        for (i, (a, b)) in fast.chunks(2).zip(slow.chunks(2)).enumerate() {
            let (a, b) = (
                f16::from_le_bytes([a[0], a[1]]),
                f16::from_le_bytes([b[0], b[1]]),
            );
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{}: {a} vs {b}",
                vals[i]
            );
        }
    }
}
