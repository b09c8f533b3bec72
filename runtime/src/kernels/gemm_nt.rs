//! A register-blocked AVX2/FMA kernel for the products that dominate the emulator's time: small
//! blocks `C = A · Bᵀ` with `A` (`m×k`) and `Bᵀ` (`n×k`) both stored along `k`, the layout
//! of a `Linear` layer's weight block and of attention's `Q·Kᵀ`.
//!
//! Why not the `gemm` crate here: its per-call packing and dispatch dominate on tile-sized
//! blocks (m ≤ 20, n ≤ 26, k ≤ 384 in lxmert-base's forward on 4 chips). Measured on this
//! machine with hot operands, for `(m, k, n)` = (9, 192, 9), (5, 192, 9), (12, 384, 13) and
//! (20, 192, 12): `gemm` 40, 32, 46 and 44 GFLOP/s; this kernel 64, 61, 68 and 76 GFLOP/s.
//! Larger blocks still go to `gemm` (see [`super::gemm`]).
//!
//! Each 3×4 block of `C` keeps twelve 8-lane accumulators; every step over `k` loads 8 values
//! of three `A` rows and four `Bᵀ` rows and does twelve fused multiply-adds. Rows and columns
//! are cut into blocks of nearly equal size (9 columns as 3+3+3, not 4+4+1), because a block
//! one column wide has too few independent accumulators to hide the multiply-add latency
//! (9×192×9 and 12×192×26 gain 5–30 % here over 4+4+1 cuts). A `k` that is not
//! a multiple of 8 ends with a masked load (the lanes past the end read as zero and are never
//! touched in memory). Each output is then the sum of its accumulator's lanes in a fixed
//! order (four accumulators reduced together by horizontal adds), so the result depends only on the shape and the operands (never on threads or
//! addresses).

use std::arch::x86_64::{
    __m256, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_hadd_ps,
    _mm256_loadu_ps, _mm256_maskload_ps, _mm256_setr_epi32, _mm256_setzero_ps, _mm_add_ps,
    _mm_storeu_ps,
};

/// Rows of `A` per register block.
const MR: usize = 3;
/// Rows of `Bᵀ` (columns of `C`) per register block.
const NR: usize = 4;

/// `c[i*n + j] = Σ_p a[i*k + p] · bt[j*k + p]`. Returns `false` (leaving `c` untouched) unless
/// `a.len() == m*k`, `bt.len() == n*k` and `c.len() == m*n`.
pub(crate) fn gemm_nt(m: usize, k: usize, n: usize, a: &[f32], bt: &[f32], c: &mut [f32]) -> bool {
    let fits = |rows: usize, len: usize| rows.checked_mul(k) == Some(len);
    if !(fits(m, a.len()) && fits(n, bt.len()) && m.checked_mul(n) == Some(c.len())) {
        return false;
    }
    // Rows and columns cut into blocks of at most MR and NR whose sizes differ by at most
    // one (9 = 3+3+3, not 4+4+1): narrow blocks have too few accumulators to hide the FMA
    // latency.
    let (bm, bn) = (m.div_ceil(MR), n.div_ceil(NR));
    let mut i = 0;
    for bi in 0..bm {
        let mr = m / bm + usize::from(bi < m % bm);
        let mut j = 0;
        for bj in 0..bn {
            let nr = n / bn + usize::from(bj < n % bn);
            let (ar, br) = (&a[i * k..(i + mr) * k], &bt[j * k..(j + nr) * k]);
            let out = |r: usize, q: usize| (i + r) * n + j + q;
            match (mr, nr) {
                (3, 4) => block::<3, 4>(k, ar, br, c, out),
                (3, 3) => block::<3, 3>(k, ar, br, c, out),
                (3, 2) => block::<3, 2>(k, ar, br, c, out),
                (3, _) => block::<3, 1>(k, ar, br, c, out),
                (2, 4) => block::<2, 4>(k, ar, br, c, out),
                (2, 3) => block::<2, 3>(k, ar, br, c, out),
                (2, 2) => block::<2, 2>(k, ar, br, c, out),
                (2, _) => block::<2, 1>(k, ar, br, c, out),
                (_, 4) => block::<1, 4>(k, ar, br, c, out),
                (_, 3) => block::<1, 3>(k, ar, br, c, out),
                (_, 2) => block::<1, 2>(k, ar, br, c, out),
                _ => block::<1, 1>(k, ar, br, c, out),
            }
            j += nr;
        }
        i += mr;
    }
    true
}

/// The lane sums of up to four accumulators at once (missing ones count as zero): for each
/// `v`, `((v0+v1) + (v2+v3)) + ((v4+v5) + (v6+v7))`, by three horizontal adds and one add.
#[inline(always)]
fn lane_sums(v: [__m256; 4]) -> [f32; 4] {
    let mut out = [0.0f32; 4];
    // SAFETY: register-only AVX operations (the build enables AVX2 and FMA: this module is
    // compiled only with those target features, see `super::gemm`), and an unaligned store of
    // four f32 into the four-element array `out`.
    unsafe {
        let ab = _mm256_hadd_ps(v[0], v[1]);
        let cd = _mm256_hadd_ps(v[2], v[3]);
        let abcd = _mm256_hadd_ps(ab, cd);
        let s = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
        _mm_storeu_ps(out.as_mut_ptr(), s);
    }
    out
}

/// One `R×Q` block: `a` holds `R` rows of `k`, `bt` holds `Q` rows of `k`; output `(r, q)`
/// goes to `c[out(r, q)]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (r, q) index the loads and the accumulators alike
fn block<const R: usize, const Q: usize>(
    k: usize,
    a: &[f32],
    bt: &[f32],
    c: &mut [f32],
    out: impl Fn(usize, usize) -> usize,
) {
    assert!(a.len() == R * k && bt.len() == Q * k);
    let full = k / 8 * 8;
    let rest = k - full;
    // SAFETY: AVX2/FMA are enabled for the whole build (see the module's cfg in
    // `super::gemm`). Every full load reads 8 values at `row*k + p` with `p + 8 <= full <= k`,
    // inside row `row < R` (resp. `Q`) of `a` (resp. `bt`), whose lengths were asserted to be
    // `R*k` and `Q*k`. The masked loads start at `row*k + full` and read only the `rest < 8`
    // enabled lanes, which end at `(row+1)*k`; masked-off lanes are not accessed (Intel SDM,
    // VMASKMOV: no faults or reads for masked elements).
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); Q]; R];
        let (ap, bp) = (a.as_ptr(), bt.as_ptr());
        let mut p = 0;
        while p < full {
            let av: [__m256; R] = std::array::from_fn(|r| _mm256_loadu_ps(ap.add(r * k + p)));
            for q in 0..Q {
                let b = _mm256_loadu_ps(bp.add(q * k + p));
                for r in 0..R {
                    acc[r][q] = _mm256_fmadd_ps(av[r], b, acc[r][q]);
                }
            }
            p += 8;
        }
        if rest > 0 {
            let on = |lane: usize| if lane < rest { -1 } else { 0 };
            let mask = _mm256_setr_epi32(on(0), on(1), on(2), on(3), on(4), on(5), on(6), on(7));
            let av: [__m256; R] =
                std::array::from_fn(|r| _mm256_maskload_ps(ap.add(r * k + full), mask));
            for q in 0..Q {
                let b = _mm256_maskload_ps(bp.add(q * k + full), mask);
                for r in 0..R {
                    acc[r][q] = _mm256_fmadd_ps(av[r], b, acc[r][q]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let four: [__m256; 4] =
                std::array::from_fn(|q| row.get(q).copied().unwrap_or(_mm256_setzero_ps()));
            for (q, sum) in lane_sums(four).into_iter().take(Q).enumerate() {
                if let Some(slot) = c.get_mut(out(r, q)) {
                    *slot = sum;
                }
            }
        }
    }
}
