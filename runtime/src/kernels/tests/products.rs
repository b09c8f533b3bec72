//! Matmul with every combination of stored-transposed operands against naive f64 loops.

use super::*;
use rand::{Rng, SeedableRng};

/// `C[i][j] = sum_p A[i][p] B[p][j]` in f64, reading `A` (`m×k`) and `B` (`k×n`) from their
/// stored layouts (`k×m` / `n×k` when transposed).
fn naive(m: usize, k: usize, n: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f64> {
    let at = |i: usize, p: usize| f64::from(if ta { a[p * m + i] } else { a[i * k + p] });
    let bt = |p: usize, j: usize| f64::from(if tb { b[j * k + p] } else { b[p * n + j] });
    (0..m * n)
        .map(|ij| (0..k).map(|p| at(ij / n, p) * bt(p, ij % n)).sum())
        .collect()
}

#[test]
fn transposed_operands_match_naive_loops() {
    let (m, k, n) = (5usize, 7usize, 3usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    for input in [Elem::F32, Elem::F16] {
        let enc = |v: &[f32]| {
            if input == Elem::F32 {
                f32_bytes(v)
            } else {
                f16_bytes(v)
            }
        };
        // Values exactly representable in f16, so both input types see the same operands.
        let mut draw = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| f16::from_f32(rng.gen_range(-2.0f32..2.0)).to_f32())
                .collect()
        };
        let (a, b) = (draw(m * k), draw(k * n));
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (al, bl) = ((m * k) as u32 * input.size(), (k * n) as u32 * input.size());
            let mut mem = mem_with(0, &[enc(&a), enc(&b)].concat(), 512);
            let v = Vertex::MatMul(MatMul {
                m: m as u32,
                k: k as u32,
                n: n as u32,
                input,
                partials: Elem::F32,
                accumulate: false,
                transpose_a: ta,
                transpose_b: tb,
                a: Region::new(0, al),
                b: Region::new(al, bl),
                c: Region::new(al + bl, (m * n) as u32 * 4),
            });
            run_vertex(&mut mem, &v).unwrap();
            let c0 = (al + bl) as usize;
            let got = from_f32_bytes(&mem[c0..c0 + m * n * 4]);
            for (g, w) in got.iter().zip(naive(m, k, n, &a, ta, &b, tb)) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{input:?} ta {ta} tb {tb}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn transposed_layouts_are_read_in_place() {
    // A = [[1, 2], [3, 4]] stored transposed as [1, 3, 2, 4]; B = I stored as is: C = A.
    let bytes = f32_bytes(&[1.0, 3.0, 2.0, 4.0, 1.0, 0.0, 0.0, 1.0]);
    let mut mem = mem_with(0, &bytes, 48);
    let v = Vertex::MatMul(MatMul {
        m: 2,
        k: 2,
        n: 2,
        input: Elem::F32,
        partials: Elem::F32,
        accumulate: false,
        transpose_a: true,
        transpose_b: true,
        a: Region::new(0, 16),
        b: Region::new(16, 16),
        c: Region::new(32, 16),
    });
    run_vertex(&mut mem, &v).unwrap();
    assert_eq!(from_f32_bytes(&mem[32..48]), [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn tile_memory_alignment_does_not_change_the_bits() {
    // f32 operands are read in place when the tile buffer is 4-byte aligned and decoded into
    // scratch otherwise: both must give the same bits, overwriting or accumulating.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let (m, k, n) = (5usize, 37usize, 6usize);
    let vals: Vec<f32> = (0..m * k + k * n + m * n)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let bytes = f32_bytes(&vals);
    let (a_len, b_len, c_len) = (m * k * 4, k * n * 4, m * n * 4);
    for accumulate in [false, true] {
        let v = Vertex::MatMul(MatMul {
            m: m as u32,
            k: k as u32,
            n: n as u32,
            input: Elem::F32,
            partials: Elem::F32,
            accumulate,
            transpose_a: false,
            transpose_b: true,
            a: Region::new(0, a_len as u32),
            b: Region::new(a_len as u32, b_len as u32),
            c: Region::new((a_len + b_len) as u32, c_len as u32),
        });
        let mut results = Vec::new();
        for shift in 0..4 {
            // A u32 buffer is 4-byte aligned, so `shift` decides the tile memory's alignment.
            let mut words = vec![0u32; bytes.len() / 4 + 2];
            let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
            let mem = &mut buf[shift..shift + bytes.len()];
            mem.copy_from_slice(&bytes);
            run_vertex(mem, &v).unwrap();
            results.push(mem[a_len + b_len..].to_vec());
        }
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "accumulate {accumulate}"
        );
        // And the product is the product (f64 reference, f32 summation tolerance).
        let got = from_f32_bytes(&results[0]);
        let want = naive(
            m,
            k,
            n,
            &vals[..m * k],
            false,
            &vals[m * k..m * k + k * n],
            true,
        );
        let old = &vals[m * k + k * n..];
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let w = if accumulate {
                w + f64::from(old[i])
            } else {
                *w
            };
            assert!((f64::from(*g) - w).abs() < 1e-5, "{i}: {g} vs {w}");
        }
    }
}
