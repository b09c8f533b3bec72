//! The dense f32 product `C = A · B` (row-major) behind every matmul vertex, delegated to the
//! [`gemm`](https://docs.rs/gemm) crate's single-threaded kernels.
//!
//! Small `A · Bᵀ` blocks (the common case: `Linear` weights and `Q·Kᵀ`) go to the AVX2/FMA
//! kernel of [`super::gemm_nt`] instead, where the build enables those features.
//!
//! `gemm::gemm` takes raw pointers and strides, so [`gemm`] first checks that every slice has
//! exactly the length its shape implies (with overflow-checked products) and only then makes
//! the call (one of the runtime's two `unsafe` sites; the other is `gemm_nt`'s intrinsics).
//!
//! Determinism: either kernel's result depends only on the shape and operands. The call uses
//! `Parallelism::None` (tiles already run in parallel on rayon), so
//! each output element's f32 sum over `k` is computed in an order fixed by the shape and by
//! the CPU features and cache sizes detected at start-up. On a given machine the result
//! therefore depends only on the operands, never on threads, scheduling or buffer addresses;
//! it may differ in the last bits from another summation order (e.g. the old
//! increasing-`k` loop) and between machines with different SIMD widths.

use gemm::Parallelism;

/// Largest `m` and `n` of an `A · Bᵀ` product given to the small-block kernel (`gemm_nt`):
/// measured here with hot operands, it beats the crate up to 64×768×64 (81 against 71 GFLOP/s)
/// and loses at 128×768×128 (66 against 75).
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
const NT_MAX: usize = 64;

/// A shape whose operand slices do not have the lengths `m×k`, `k×n`, `m×n`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gemm {m}x{k}x{n}: operand lengths a={a}, b={b}, c={c} do not match the shape")]
pub(crate) struct GemmShapeError {
    /// Rows of `A` and `C`.
    pub m: usize,
    /// Columns of `A`, rows of `B`.
    pub k: usize,
    /// Columns of `B` and `C`.
    pub n: usize,
    /// Length of the `A` slice.
    pub a: usize,
    /// Length of the `B` slice.
    pub b: usize,
    /// Length of the `C` slice.
    pub c: usize,
}

/// `c = op(a) · op(b)` with `op(a): m×k`, `op(b): k×n`, `c: m×n` row-major and dense. Each
/// operand is `(data, transposed)`: `a` is stored row-major `m×k`, or `k×m` when transposed;
/// `b` is stored `k×n`, or `n×k` when transposed (read through strides, not copied). Products
/// are summed in f32 (see the module docs for the order); `c`'s old contents are ignored.
///
/// Fails, without touching `c`, unless `a.len() == m*k`, `b.len() == k*n`, `c.len() == m*n`
/// (and every stride fits in `isize`).
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    (a, a_t): (&[f32], bool),
    (b, b_t): (&[f32], bool),
    c: &mut [f32],
) -> Result<(), GemmShapeError> {
    let err = GemmShapeError {
        m,
        k,
        n,
        a: a.len(),
        b: b.len(),
        c: c.len(),
    };
    let fits = |rows: usize, cols: usize, len: usize| rows.checked_mul(cols) == Some(len);
    if !(fits(m, k, a.len()) && fits(k, n, b.len()) && fits(m, n, c.len())) {
        return Err(err);
    }
    let (Ok(m_i), Ok(k_i), Ok(n_i)) = (isize::try_from(m), isize::try_from(k), isize::try_from(n))
    else {
        return Err(err);
    };
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        c.fill(0.0);
        return Ok(());
    }
    // Small blocks of `A · Bᵀ` (both stored along k): the register-blocked kernel, which is
    // faster than the crate's packing GEMM up to these sizes (see `gemm_nt`).
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    if !a_t && b_t && m <= NT_MAX && n <= NT_MAX && super::gemm_nt::gemm_nt(m, k, n, a, b, c) {
        return Ok(());
    }
    // (column stride, row stride) of op(a) (m×k) and op(b) (k×n) in their stored layouts.
    let (a_cs, a_rs) = if a_t { (m_i, 1) } else { (1, k_i) };
    let (b_cs, b_rs) = if b_t { (k_i, 1) } else { (1, n_i) };
    // SAFETY: `gemm::gemm` reads `lhs[i*lhs_rs + p*lhs_cs]` for i < m, p < k, reads
    // `rhs[p*rhs_rs + j*rhs_cs]` for p < k, j < n, and writes `dst[i*dst_rs + j*dst_cs]` for
    // i < m, j < n. The largest offsets are: for `a`, (m-1)*k + (k-1) when stored m×k
    // (strides k, 1) and (m-1) + (k-1)*m when stored k×m (strides 1, m), both m*k - 1; for
    // `b`, (k-1)*n + (n-1) stored k×n (strides n, 1) and (k-1) + (n-1)*k stored n×k
    // (strides 1, k), both k*n - 1; for `c` (strides n, 1), m*n - 1. These are in bounds
    // because the lengths were checked above to equal m*k, k*n and m*n exactly (all non-zero
    // here, so the slices are non-empty); m, k and n fit in isize, and so do the offsets,
    // being below slice lengths. `c` is a unique `&mut` borrow, so `dst` aliases neither
    // `lhs` nor `rhs` and nothing else accesses these slices during the call.
    // `read_dst = false` means `dst` is only written (alpha is unused), and
    // `Parallelism::None` keeps the call on this thread.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n_i,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Direct triple loop in f64.
    fn reference(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|kk| f64::from(a[i * k + kk]) * f64::from(b[kk * n + j]))
                    .sum();
            }
        }
        c
    }

    /// `c` equals `a · b` (stored m×k and k×n) to f32 summation error.
    fn assert_matches_f64(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &[f32]) {
        for (got, want) in c.iter().zip(reference(m, k, n, a, b)) {
            assert!(
                (f64::from(*got) - want).abs() <= 1e-5 * (k as f64 + 1.0),
                "{m}x{k}x{n}: {got} vs {want}"
            );
        }
    }

    fn random(rng: &mut impl Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    #[test]
    fn matches_f64_on_ragged_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let shapes = [
            (1, 1, 1),
            (7, 5, 17),
            (6, 16, 16),
            (13, 33, 40),
            (2, 0, 3),
            (1, 9, 1),
            (3, 600, 5),
            (70, 300, 90),
        ];
        for &(m, k, n) in &shapes {
            let (a, b) = (random(&mut rng, m * k), random(&mut rng, k * n));
            // NaN garbage in C must not leak into the result (it is not read).
            let mut c = vec![f32::NAN; m * n];
            gemm(m, k, n, (&a, false), (&b, false), &mut c).unwrap();
            assert_matches_f64(m, k, n, &a, &b, &c);
        }
    }

    #[test]
    fn transposed_b_matches_f64_on_ragged_shapes() {
        // Every remainder of the small-block kernel's 3×4 blocks and 8-wide k steps, and sizes
        // past its limit (the crate's path).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut shapes = Vec::new();
        for m in 1..=7 {
            for n in 1..=9 {
                for k in [1, 5, 8, 13, 36, 192] {
                    shapes.push((m, k, n));
                }
            }
        }
        shapes.extend([
            (20, 384, 13),
            (64, 64, 64),
            (65, 40, 9),
            (9, 40, 65),
            (70, 300, 90),
        ]);
        for (m, k, n) in shapes {
            let (a, b) = (random(&mut rng, m * k), random(&mut rng, k * n));
            // Bᵀ stored n×k.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let mut c = vec![f32::NAN; m * n];
            gemm(m, k, n, (&a, false), (&bt, true), &mut c).unwrap();
            assert_matches_f64(m, k, n, &a, &b, &c);
        }
    }

    #[test]
    fn exact_on_small_integers() {
        // Integer operands: every partial sum is an integer below 2^24, so any summation
        // order gives the exact result, which is computed independently here in i64.
        let (m, k, n) = (9, 37, 21);
        let a: Vec<i64> = (0..m * k).map(|i| (i as i64 * 7) % 11 - 5).collect();
        let b: Vec<i64> = (0..k * n).map(|i| (i as i64 * 5) % 13 - 6).collect();
        let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let mut c = vec![0.0f32; m * n];
        gemm(m, k, n, (&af, false), (&bf, false), &mut c).unwrap();
        for i in 0..m {
            for j in 0..n {
                let want: i64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert_eq!(c[i * n + j], want as f32, "({i}, {j})");
            }
        }
    }

    #[test]
    fn deterministic_regardless_of_buffer_placement() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (m, k, n) = (37, 129, 45);
        let (a, b) = (random(&mut rng, m * k), random(&mut rng, k * n));
        let mut first = vec![0.0f32; m * n];
        gemm(m, k, n, (&a, false), (&b, false), &mut first).unwrap();
        // Same operands at different (mis)alignments, and from another thread.
        for shift in 1..4 {
            let mut a2 = vec![0.0f32; shift];
            a2.extend_from_slice(&a);
            let mut b2 = vec![0.0f32; shift + 1];
            b2.extend_from_slice(&b);
            let mut c2 = vec![f32::NAN; m * n + shift];
            gemm(
                m,
                k,
                n,
                (&a2[shift..], false),
                (&b2[shift + 1..], false),
                &mut c2[shift..],
            )
            .unwrap();
            assert_eq!(first.as_slice(), &c2[shift..], "shift {shift}");
        }
        let (a3, b3) = (a.clone(), b.clone());
        let other = std::thread::spawn(move || {
            let mut c = vec![0.0f32; m * n];
            gemm(m, k, n, (&a3, false), (&b3, false), &mut c).unwrap();
            c
        })
        .join()
        .unwrap();
        assert_eq!(first, other);
    }

    #[test]
    fn rejects_mis_sized_operands_without_writing() {
        let (a, b) = (vec![1.0f32; 6], vec![1.0f32; 12]);
        let cases: [(usize, usize, usize, usize, usize, usize); 4] = [
            (2, 3, 4, 5, 12, 8),         // a short
            (2, 3, 4, 6, 13, 8),         // b long
            (2, 3, 4, 6, 12, 7),         // c short
            (usize::MAX, 2, 1, 6, 2, 6), // m*k overflows
        ];
        for (m, k, n, la, lb, lc) in cases {
            let a = vec![1.0f32; la];
            let b = vec![1.0f32; lb];
            let mut c = vec![-3.0f32; lc];
            let e = gemm(m, k, n, (&a, false), (&b, false), &mut c).unwrap_err();
            assert_eq!((e.a, e.b, e.c), (la, lb, lc));
            assert!(c.iter().all(|&v| v == -3.0));
        }
        let mut c = vec![0.0f32; 8];
        assert!(gemm(2, 3, 4, (&a, false), (&b, false), &mut c).is_ok());
        assert!(c.iter().all(|&v| v == 3.0));
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let mut c = vec![f32::NAN; 6];
        gemm(2, 0, 3, (&[], false), (&[], false), &mut c).unwrap();
        assert_eq!(c, vec![0.0; 6]);
        gemm(0, 4, 3, (&[], false), (&[0.0; 12], false), &mut []).unwrap();
    }
}
