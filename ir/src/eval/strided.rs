//! Index arithmetic shared by the kernels: row-major strides, broadcast strides and a
//! multi-operand odometer.
//!
//! Every layout kernel (transpose, broadcast, reduction, batched matmul, broadcasting
//! elementwise ops) is expressed as "walk the index space of one shape in row-major order and
//! read/write each operand at `sum_d index_d * stride_d`", with stride 0 on broadcast axes.
//! Keeping that in one tested function keeps the kernels short and obviously correct.

use super::error::KernelError;

/// Row-major (C order) strides of a dense tensor of `shape`, in elements.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    let mut acc = 1usize;
    for (s, &d) in out.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.saturating_mul(d);
    }
    out
}

/// Strides for reading a dense tensor of shape `src` as if broadcast to `out` (NumPy rules,
/// axes aligned on the right): one stride per axis of `out`, 0 where `src` is missing or has
/// extent 1. The caller guarantees `src` broadcasts to `out` (checked by type inference).
pub(crate) fn broadcast_strides(src: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(src);
    let lead = out.len().saturating_sub(src.len());
    let mut result = vec![0; out.len()];
    for ((r, &d), &s) in result.iter_mut().skip(lead).zip(src).zip(&own) {
        *r = if d == 1 { 0 } else { s };
    }
    result
}

/// The multi-index of flat row-major position `flat` in `shape`.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &d) in idx.iter_mut().zip(shape).rev() {
        if d > 0 {
            *i = flat % d;
            flat /= d;
        }
    }
    idx
}

/// Calls `f(offsets)` for every multi-index of `shape` in row-major order, where
/// `offsets[k] = sum_d index_d * strides[k][d]`. Each stride list must have one entry per
/// axis of `shape`.
pub(crate) fn for_each_offset<const N: usize>(
    shape: &[usize],
    strides: [&[usize]; N],
    mut f: impl FnMut([usize; N]),
) -> Result<(), KernelError> {
    let rank = shape.len();
    if strides.iter().any(|s| s.len() != rank) {
        return Err(KernelError::Internal(format!(
            "stride lists do not match rank {rank}"
        )));
    }
    if shape.contains(&0) {
        return Ok(());
    }
    // Per axis: extent and the step of every offset.
    let mut axes: Vec<(usize, [usize; N])> = shape
        .iter()
        .enumerate()
        .map(|(d, &extent)| (extent, strides.map(|s| s.get(d).copied().unwrap_or(0))))
        .collect();
    let Some((inner, inner_step)) = axes.pop() else {
        f([0; N]);
        return Ok(());
    };
    let mut idx = vec![0usize; axes.len()];
    let mut base = [0usize; N];
    loop {
        let mut off = base;
        for _ in 0..inner {
            f(off);
            for (o, s) in off.iter_mut().zip(&inner_step) {
                *o += s;
            }
        }
        // Advance the odometer over the outer axes, last axis fastest.
        let mut done = true;
        for (i, (extent, step)) in idx.iter_mut().zip(&axes).rev() {
            *i += 1;
            if *i < *extent {
                for (b, s) in base.iter_mut().zip(step) {
                    *b += s;
                }
                done = false;
                break;
            }
            for (b, s) in base.iter_mut().zip(step) {
                *b -= s * (extent - 1);
            }
            *i = 0;
        }
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_major_strides() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), vec![0, 1, 0]);
        assert_eq!(broadcast_strides(&[2, 3, 4], &[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(unravel(23, &[2, 3, 4]), vec![1, 2, 3]);
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
    }

    #[test]
    fn odometer_visits_every_index_in_order() {
        // Offsets with the identity strides enumerate 0..n; a transposed stride list gives
        // the column-major order, written out by hand for a 2x3 shape.
        let mut seen = Vec::new();
        for_each_offset(&[2, 3], [&[3, 1], &[1, 2]], |[a, b]| seen.push((a, b))).unwrap();
        assert_eq!(seen, vec![(0, 0), (1, 2), (2, 4), (3, 1), (4, 3), (5, 5)]);
        let mut scalar = Vec::new();
        for_each_offset(&[], [&[]], |[a]| scalar.push(a)).unwrap();
        assert_eq!(scalar, vec![0]);
        let mut empty = 0;
        for_each_offset(&[2, 0, 3], [&[0, 3, 1]], |_| empty += 1).unwrap();
        assert_eq!(empty, 0);
        assert!(for_each_offset(&[2, 3], [&[1]], |_| {}).is_err());
    }

    #[test]
    fn odometer_with_broadcast_strides() {
        // Reading [3,1] broadcast to [2,3,2]: the value index is the middle coordinate.
        let s = broadcast_strides(&[3, 1], &[2, 3, 2]);
        let mut seen = Vec::new();
        for_each_offset(&[2, 3, 2], [&s], |[a]| seen.push(a)).unwrap();
        assert_eq!(seen, vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
    }
}
