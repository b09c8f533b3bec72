//! MatMul: hand examples, transposes, broadcast batches, fp16 partials, and a property test
//! against an explicit f64 triple loop.

use super::*;
use proptest::prelude::*;

fn mm(ta: bool, tb: bool, half: bool) -> Op {
    Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
        half_partials: half,
    }
}

const A: [f32; 6] = [1., 2., 3., 4., 5., 6.]; // [[1,2,3],[4,5,6]]
const AT: [f32; 6] = [1., 4., 2., 5., 3., 6.]; // A transposed, [3,2]
const B: [f32; 6] = [7., 8., 9., 10., 11., 12.]; // [[7,8],[9,10],[11,12]]
const BT: [f32; 6] = [7., 9., 11., 8., 10., 12.]; // B transposed, [2,3]
/// A B, worked by hand: [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12].
const AB: [f64; 4] = [58., 64., 139., 154.];

#[test]
fn matmul_2d_with_every_transpose() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta {
            f32s(&[3, 2], &AT)
        } else {
            f32s(&[2, 3], &A)
        };
        let b = if tb {
            f32s(&[2, 3], &BT)
        } else {
            f32s(&[3, 2], &B)
        };
        let y = run(mm(ta, tb, false), &[a, b]);
        assert_close(&y, DType::F32, &[2, 2], &AB, 0.0);
    }
}

#[test]
fn matmul_batches_broadcast() {
    // a: two batches, A and 2A; b: no batch axes (the folded path), then a per-batch b.
    let mut a2 = A.to_vec();
    a2.extend(A.iter().map(|x| 2.0 * x));
    let a = f32s(&[2, 2, 3], &a2);
    let twice: Vec<f64> = AB.iter().map(|x| 2.0 * x).collect();
    let want: Vec<f64> = AB.iter().chain(&twice).copied().collect();
    let y = run(mm(false, false, false), &[a.clone(), f32s(&[3, 2], &B)]);
    assert_close(&y, DType::F32, &[2, 2, 2], &want, 0.0);
    let y = run(mm(false, true, false), &[a.clone(), f32s(&[1, 2, 3], &BT)]);
    assert_close(&y, DType::F32, &[2, 2, 2], &want, 0.0);
    // b batch [2] holding B and the identity-like [[1,0],[0,1],[0,0]]: second result is
    // the first two columns of 2A.
    let mut b2 = B.to_vec();
    b2.extend([1., 0., 0., 1., 0., 0.]);
    let y = run(mm(false, false, false), &[a.clone(), f32s(&[2, 3, 2], &b2)]);
    assert_close(
        &y,
        DType::F32,
        &[2, 2, 2],
        &[58., 64., 139., 154., 2., 4., 8., 10.],
        0.0,
    );
    // a broadcast over b's batch: [1,2,3] x [3,3,2] -> [3,2,2].
    let mut b3 = b2.clone();
    b3.extend(B.iter().map(|x| -x));
    let y = run(
        mm(false, false, false),
        &[f32s(&[1, 2, 3], &A), f32s(&[3, 3, 2], &b3)],
    );
    let want: Vec<f64> = AB
        .iter()
        .copied()
        .chain([1., 2., 4., 5.])
        .chain(AB.iter().map(|x| -x))
        .collect();
    assert_close(&y, DType::F32, &[3, 2, 2], &want, 0.0);
    // transpose_a with batches.
    let y = run(
        mm(true, false, false),
        &[f32s(&[1, 3, 2], &AT), f32s(&[3, 2], &B)],
    );
    assert_close(&y, DType::F32, &[1, 2, 2], &AB, 0.0);
}

#[test]
fn matmul_f16_rounds_once() {
    // (1 + 2^-10) * (1 + 2^-10) = 1 + 2^-9 + 2^-20 (exact in f32) rounds to 1 + 2^-9 in f16.
    let x = 1.0 + 1.0 / 1024.0;
    let y = run(
        mm(false, false, false),
        &[f16s(&[1, 1], &[x]), f16s(&[1, 1], &[x])],
    );
    assert_close(&y, DType::F16, &[1, 1], &[1.0 + 1.0 / 512.0], 0.0);
}

#[test]
fn half_partials_saturate_a_long_sum_of_ones() {
    // sum of 4096 ones: f32 partials give 4096 exactly (an f16 value). With f16 partials
    // the sum sticks at 2048, where 2048 + 1 is a tie rounded to even 2048.
    let k = 4096;
    let ones = f16s(&[1, k], &vec![1.0; k]);
    let col = f16s(&[k, 1], &vec![1.0; k]);
    let y = run(mm(false, false, false), &[ones.clone(), col.clone()]);
    assert_close(&y, DType::F16, &[1, 1], &[4096.0], 0.0);
    let y = run(mm(false, false, true), &[ones, col]);
    assert_close(&y, DType::F16, &[1, 1], &[2048.0], 0.0);
}

#[test]
fn half_partials_lose_accuracy_on_a_random_dot_product() {
    // A long dot product of f16 values in [0, 1): the exact result is their f64 sum of
    // products (each product of two f16 values is exact in f64, as are these sums).
    let k = 2048;
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        f16::from_f32((state >> 40) as f32 / (1u64 << 24) as f32).to_f32()
    };
    let a: Vec<f32> = (0..k).map(|_| next()).collect();
    let b: Vec<f32> = (0..k).map(|_| next()).collect();
    let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let (ta, tb) = (f16s(&[1, k], &a), f16s(&[k, 1], &b));
    let err = |half: bool| {
        let y = run(mm(false, false, half), &[ta.clone(), tb.clone()]);
        (y.to_f64_vec()[0] - exact).abs()
    };
    let (e32, e16) = (err(false), err(true));
    // f32 partials: essentially only the final rounding to f16, at most half an ulp (the
    // f16 ulp is at most 0.5 in [256, 1024)). f16 partials lose far more along the way.
    assert!(exact > 256.0 && exact < 1024.0, "{exact}");
    assert!(e32 <= 0.25 + 1e-3, "f32 partials error {e32}");
    assert!(
        e16 > 4.0 * e32.max(0.05),
        "f16 partials error {e16} vs {e32}"
    );
}

/// `c[batch.., i, j] = sum_k a[.., i, k] b[.., k, j]` by explicit indices in f64, with
/// the transposes and the batch broadcast written out directly.
fn reference(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    (ta, tb): (bool, bool),
    batch: &[usize],
) -> Vec<f64> {
    let ra = a_shape.len();
    let rb = b_shape.len();
    let (ar, ac) = (a_shape[ra - 2], a_shape[ra - 1]);
    let (br, bc) = (b_shape[rb - 2], b_shape[rb - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    // Flat offset of a batch index in an operand whose batch axes broadcast to `batch`.
    let batch_offset = |shape: &[usize], idx: &[usize]| {
        let nb = shape.len() - 2;
        let lead = batch.len() - nb;
        let mut off = 0;
        for d in 0..nb {
            let i = if shape[d] == 1 { 0 } else { idx[lead + d] };
            off = off * shape[d] + i;
        }
        off
    };
    let nbatch: usize = batch.iter().product();
    let mut out = Vec::new();
    for flat in 0..nbatch {
        let mut idx = vec![0; batch.len()];
        let mut r = flat;
        for d in (0..batch.len()).rev() {
            idx[d] = r % batch[d];
            r /= batch[d];
        }
        let oa = batch_offset(a_shape, &idx) * ar * ac;
        let ob = batch_offset(b_shape, &idx) * br * bc;
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for kk in 0..k {
                    let av = if ta {
                        a[oa + kk * ac + i]
                    } else {
                        a[oa + i * ac + kk]
                    };
                    let bv = if tb {
                        b[ob + j * bc + kk]
                    } else {
                        b[ob + kk * bc + j]
                    };
                    s += av as f64 * bv as f64;
                }
                out.push(s);
            }
        }
    }
    out
}

/// Shapes for a random batched matmul: (a shape, b shape, transposes, batch shape).
fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, (bool, bool), Vec<usize>)> {
    (
        prop::collection::vec(1usize..4, 0..3),
        (1usize..6, 1usize..300, 1usize..6),
        prop::collection::vec(any::<bool>(), 3),
        prop::collection::vec(any::<bool>(), 3),
        (0usize..3, 0usize..3),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(batch, (m, k, n), a_one, b_one, (a_drop, b_drop), (ta, tb))| {
                let pick = |ones: &[bool], drop: usize| -> Vec<usize> {
                    let dims: Vec<usize> = batch
                        .iter()
                        .zip(ones)
                        .map(|(&d, &one)| if one { 1 } else { d })
                        .collect();
                    dims[drop.min(dims.len())..].to_vec()
                };
                let mut a = pick(&a_one, a_drop);
                let mut b = pick(&b_one, b_drop);
                a.extend(if ta { [k, m] } else { [m, k] });
                b.extend(if tb { [n, k] } else { [k, n] });
                (a, b, (ta, tb), batch)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn matmul_matches_f64_triple_loop(
        (a_shape, b_shape, (ta, tb), _batch) in shapes(),
        seed in any::<u64>(),
    ) {
        let mut state = seed | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        let na: usize = a_shape.iter().product();
        let nb: usize = b_shape.iter().product();
        let a: Vec<f32> = (0..na).map(|_| next()).collect();
        let b: Vec<f32> = (0..nb).map(|_| next()).collect();
        let y = run(mm(ta, tb, false), &[f32s(&a_shape, &a), f32s(&b_shape, &b)]);
        let out_batch = &y.shape()[..y.shape().len() - 2];
        let want = reference((&a, &a_shape), (&b, &b_shape), (ta, tb), out_batch);
        let k = if ta { a_shape[a_shape.len() - 2] } else { a_shape[a_shape.len() - 1] };
        let got = y.to_f64_vec();
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            // f32 accumulation of k terms each |.| <= 1.
            prop_assert!((g - w).abs() <= 1e-6 * k as f64, "{} vs {}", g, w);
        }
    }
}

#[test]
fn blocked_kernel_matches_plain_loops_across_block_edges() {
    // Extents straddling the kernel's blocks (4 rows, 128 of k, 256 columns), checked
    // exactly against plain sequential loops: f32 sums over ascending k, and f16 partials
    // rounded after every multiply-add.
    let (m, k, n) = (7, 257, 300);
    let val = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 64.0; // exact in f16
    let a: Vec<f32> = (0..m * k).map(val).collect();
    let b: Vec<f32> = (0..k * n).map(|i| val(i + 13)).collect();
    let y = run(
        mm(false, false, false),
        &[f32s(&[m, k], &a), f32s(&[k, n], &b)],
    );
    let y16 = run(
        mm(false, false, true),
        &[f16s(&[m, k], &a), f16s(&[k, n], &b)],
    );
    let (got, got16) = (y.to_f64_vec(), y16.to_f64_vec());
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut h) = (0f32, 0f32);
            for kk in 0..k {
                let p = a[i * k + kk] * b[kk * n + j];
                s += p;
                h = f16::from_f32(h + p).to_f32();
            }
            assert_eq!(got[i * n + j], s as f64, "f32 ({i},{j})");
            assert_eq!(got16[i * n + j], h as f64, "f16 partials ({i},{j})");
        }
    }
}
