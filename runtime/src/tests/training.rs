//! Expected results of the training vertices in the all-kinds program of [`super::vertices`],
//! recomputed from the tile's inputs with scalar code (f64 sums, plain comparisons).

use super::{from_f16_bytes, from_f32_bytes};

/// The training vertices' results on one tile (memory `mem`, inputs `x`, indices `[3, 0, t]`)
/// against scalar recomputation: `x[i] > w[0]`, the select, f64 row means and the scatter-add.
pub(super) fn check_training_vertices(mem: &[u8], x: &[f32], t: usize) -> Vec<u8> {
    let w0 = x[32];
    let cond: Vec<u8> = x[..16].iter().map(|&v| u8::from(v > w0)).collect();
    assert_eq!(mem[832..848], cond[..]);
    assert_eq!(mem[848..864], cond[..]);
    let selected: Vec<f32> = (0..16)
        .map(|i| if cond[i] == 1 { x[i] } else { x[32 + i % 4] })
        .collect();
    assert_eq!(from_f32_bytes(&mem[1472..1536]), selected);
    let means: Vec<f32> = x[..32]
        .chunks(8)
        .map(|row| (row.iter().map(|&v| f64::from(v)).sum::<f64>() / 8.0) as f32)
        .collect();
    assert_eq!(from_f32_bytes(&mem[1536..1552]), means);
    // Scatter rows 0..3 of w (x[32..56]) into rows 3, 0, t % 4 of a 4 x 8 zero table.
    let mut table = [[0f64; 8]; 4];
    for (i, &row) in [3, 0, t % 4].iter().enumerate() {
        for c in 0..8 {
            table[row][c] += f64::from(x[32 + 8 * i + c]);
        }
    }
    let want: Vec<f32> = table.iter().flatten().map(|&v| v as f32).collect();
    assert_eq!(from_f32_bytes(&mem[1568..1696]), want);
    let flags: Vec<f32> = cond.iter().map(|&c| f32::from(c)).collect();
    assert_eq!(from_f16_bytes(&mem[1696..1728]), flags);
    cond
}
