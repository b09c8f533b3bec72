//! Which operand elements an output element reads: strided access maps.
//!
//! Data-movement ops (transpose, slice, broadcast, reshape) and broadcasting elementwise ops
//! read operand element `base + Σ idx[i]·stride[i]` for output multi-index `idx`. From such a
//! map, [`Access::runs`] lists, for a range of output elements, the operand elements as runs
//! of consecutive flat indices — the unit in which exchange copies move bytes.

/// A strided map from output multi-indices to operand flat indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Access {
    /// The output's shape.
    pub shape: Vec<usize>,
    /// Operand flat stride per output axis (0 for a broadcast axis).
    pub strides: Vec<u64>,
    /// Operand flat index of output element 0.
    pub base: u64,
}

/// Row-major strides of `shape`.
pub(crate) fn row_major(shape: &[usize]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1] as u64;
    }
    s
}

impl Access {
    /// The identity map of a value of `shape` (reshape, same-shape operands).
    #[cfg(test)]
    pub fn identity(shape: &[usize]) -> Self {
        Access {
            shape: shape.to_vec(),
            strides: row_major(shape),
            base: 0,
        }
    }

    /// An operand of shape `operand` broadcast (NumPy rules, right-aligned) to `out`.
    pub fn broadcast(operand: &[usize], out: &[usize]) -> Self {
        let own = row_major(operand);
        let skip = out.len().saturating_sub(operand.len());
        let strides = (0..out.len())
            .map(|i| {
                if i < skip {
                    return 0;
                }
                let j = i - skip;
                if operand.get(j) == Some(&1) && out.get(i) != Some(&1) {
                    0
                } else {
                    own.get(j).copied().unwrap_or(0)
                }
            })
            .collect();
        Access {
            shape: out.to_vec(),
            strides,
            base: 0,
        }
    }

    /// Output axis `i` is operand axis `perm[i]`.
    pub fn transpose(operand: &[usize], perm: &[usize]) -> Self {
        let own = row_major(operand);
        Access {
            shape: perm
                .iter()
                .map(|&p| operand.get(p).copied().unwrap_or(1))
                .collect(),
            strides: perm
                .iter()
                .map(|&p| own.get(p).copied().unwrap_or(0))
                .collect(),
            base: 0,
        }
    }

    /// Elements `start..end` of `axis` of the operand.
    pub fn slice(operand: &[usize], axis: usize, start: usize, end: usize) -> Self {
        let own = row_major(operand);
        let mut shape = operand.to_vec();
        if let Some(d) = shape.get_mut(axis) {
            *d = end.saturating_sub(start);
        }
        Access {
            shape,
            base: own.get(axis).copied().unwrap_or(0) * start as u64,
            strides: own,
        }
    }

    /// Whether the map is the identity (output element i reads operand element i).
    pub fn is_identity(&self) -> bool {
        self.base == 0 && self.strides == row_major(&self.shape)
    }

    /// If the operand is a pure suffix broadcast — the output's leading axes are broadcast and
    /// its trailing axes read the operand row-major — the operand's length `L`: output element
    /// `i` then reads operand element `i mod L`.
    pub fn period(&self) -> Option<u64> {
        if self.base != 0 {
            return None;
        }
        let mut len = 1u64;
        let mut in_suffix = true;
        for i in (0..self.shape.len()).rev() {
            let d = self.shape[i] as u64;
            if d == 1 {
                continue;
            }
            if in_suffix && self.strides[i] == len {
                len *= d;
                continue;
            }
            in_suffix = false;
            if self.strides[i] != 0 {
                return None;
            }
        }
        Some(len.max(1))
    }

    /// If the output's trailing axes are broadcast (stride 0; e.g. a `[rows, 1]` operand of a
    /// `[rows, cols]` result), the map of the remaining leading axes and the number of output
    /// elements `r` that read each of its elements in a row: output element `i` reads compact
    /// element `i / r`.
    pub fn inner_repeat(&self) -> Option<(Access, u64)> {
        let mut k = self.shape.len();
        let mut r = 1u64;
        while k > 0 && (self.strides[k - 1] == 0 || self.shape[k - 1] == 1) {
            r *= self.shape[k - 1] as u64;
            k -= 1;
        }
        (r > 1).then(|| {
            (
                Access {
                    shape: self.shape[..k].to_vec(),
                    strides: self.strides[..k].to_vec(),
                    base: self.base,
                },
                r,
            )
        })
    }

    /// Operand runs `(first, len)` read by output elements `[start, end)`, in output order;
    /// consecutive runs that continue each other are merged.
    pub fn runs(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        if start >= end {
            return out;
        }
        let rank = self.shape.len();
        if rank == 0 {
            return vec![(self.base, 1)];
        }
        let last = rank - 1;
        let row = self.shape[last].max(1) as u64;
        let unit = self.strides[last] == 1;
        // Multi-index of `start`.
        let rm = row_major(&self.shape);
        let mut idx: Vec<u64> = rm
            .iter()
            .zip(&self.shape)
            .map(|(&s, &d)| (start / s) % (d.max(1) as u64))
            .collect();
        let mut at = start;
        while at < end {
            let off: u64 = self.base
                + idx
                    .iter()
                    .zip(&self.strides)
                    .map(|(&i, &s)| i * s)
                    .sum::<u64>();
            let in_row = row.saturating_sub(idx[last]);
            let take = if unit { in_row.min(end - at) } else { 1 };
            // Past the last element (`end` beyond the access's shape): nothing left to read.
            debug_assert!(
                take > 0 && idx[0] < self.shape[0].max(1) as u64,
                "{self:?} {start}..{end}"
            );
            if take == 0 || idx[0] >= self.shape[0].max(1) as u64 {
                break;
            }
            match out.last_mut() {
                Some((f, l)) if *f + *l == off => *l += take,
                _ => out.push((off, take)),
            }
            at += take;
            // Advance the multi-index by `take`.
            idx[last] += take;
            let mut ax = last;
            while idx[ax] >= self.shape[ax] as u64 && ax > 0 {
                idx[ax] = 0;
                ax -= 1;
                idx[ax] += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: walk every output element by brute force.
    fn naive(a: &Access, start: u64, end: u64) -> Vec<u64> {
        let rm = row_major(&a.shape);
        (start..end)
            .map(|p| {
                a.base
                    + rm.iter()
                        .zip(&a.shape)
                        .zip(&a.strides)
                        .map(|((&s, &d), &st)| ((p / s) % d as u64) * st)
                        .sum::<u64>()
            })
            .collect()
    }

    fn expand(runs: &[(u64, u64)]) -> Vec<u64> {
        runs.iter().flat_map(|&(f, l)| f..f + l).collect()
    }

    #[test]
    fn runs_match_brute_force() {
        let cases = [
            Access::transpose(&[2, 3, 4, 5], &[0, 2, 1, 3]),
            Access::transpose(&[3, 4], &[1, 0]),
            Access::broadcast(&[5], &[2, 3, 5]),
            Access::broadcast(&[2, 1, 1, 5], &[2, 3, 5, 5]),
            Access::broadcast(&[], &[4, 3]),
            Access::slice(&[2, 6, 3], 1, 0, 1),
            Access::slice(&[4, 6], 1, 2, 5),
            Access::identity(&[3, 7]),
        ];
        for a in &cases {
            let n: u64 = a.shape.iter().map(|&d| d as u64).product();
            for (s, e) in [(0, n), (1, n.saturating_sub(1)), (n / 3, n / 2 + 1)] {
                if s < e {
                    assert_eq!(expand(&a.runs(s, e)), naive(a, s, e), "{a:?} {s}..{e}");
                }
            }
        }
    }

    #[test]
    fn inner_repeats_expand_to_the_full_map() {
        let cases = [
            (Access::broadcast(&[4, 1], &[4, 6]), 6),
            (Access::broadcast(&[2, 3, 1, 1], &[2, 3, 5, 2]), 10),
            (Access::broadcast(&[3, 1], &[2, 3, 4]), 4),
            (Access::broadcast(&[], &[3, 2]), 6),
        ];
        for (a, r) in &cases {
            let (compact, got) = a.inner_repeat().expect("an inner broadcast");
            assert_eq!(got, *r, "{a:?}");
            let n: u64 = a.shape.iter().map(|&d| d as u64).product();
            let full = naive(a, 0, n);
            let c = expand(&compact.runs(0, n / r));
            let repeated: Vec<u64> = c
                .iter()
                .flat_map(|&x| std::iter::repeat_n(x, *r as usize))
                .collect();
            assert_eq!(repeated, full, "{a:?}");
        }
        assert_eq!(Access::broadcast(&[6], &[4, 6]).inner_repeat(), None);
        assert_eq!(Access::identity(&[3, 7]).inner_repeat(), None);
    }

    #[test]
    fn periods_of_suffix_broadcasts() {
        assert_eq!(Access::broadcast(&[5], &[2, 3, 5]).period(), Some(5));
        assert_eq!(Access::broadcast(&[], &[4, 3]).period(), Some(1));
        assert_eq!(
            Access::broadcast(&[1, 1, 1, 5], &[1, 3, 5, 5]).period(),
            Some(5)
        );
        assert_eq!(
            Access::broadcast(&[2, 1, 1, 5], &[2, 3, 5, 5]).period(),
            None
        );
        assert_eq!(Access::identity(&[3, 7]).period(), Some(21));
        assert_eq!(Access::transpose(&[3, 4], &[1, 0]).period(), None);
    }
}
