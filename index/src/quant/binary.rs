//! Binary (sign) quantization: one bit per component, `bit = x > 0`.
//!
//! Layout: `⌈dim/64⌉` u64 words ([`binary_words`]); component `j` is bit `j % 64`
//! (value `1 << (j % 64)`) of word `j / 64`; the bits past `dim` in the last word are 0.
//! Zero, negative zero and NaN give 0.
//!
//! The Hamming distance between two codes counts the components whose signs differ.
//! For vectors whose components are spread evenly around 0 (after a random rotation,
//! as RaBitQ and TurboQuant apply; DESIGN §4.4) it estimates the angle, `θ ≈ π·h/dim`
//! (Charikar's sign random projections); without one it is only a coarse filter. It
//! navigates; f32 vectors re-rank.

/// Number of u64 words of a binary code of `dim` components: `⌈dim/64⌉`.
pub fn binary_words(dim: usize) -> usize {
    dim.div_ceil(64)
}

/// Writes the sign bits of `x` into `words` (layout in the module docs).
///
/// # Panics
/// If `words.len() != binary_words(x.len())`.
pub fn quantize_binary(x: &[f32], words: &mut [u64]) {
    assert_eq!(words.len(), binary_words(x.len()), "quantize_binary: {} words for dim {}", words.len(), x.len());
    for (w, chunk) in words.iter_mut().zip(x.chunks(64)) {
        *w = chunk.iter().enumerate().fold(0u64, |acc, (j, &v)| acc | (u64::from(v > 0.0) << j));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::Kernel;

    fn check(x: &[f32], expected: &[u64]) {
        let mut w = vec![u64::MAX; binary_words(x.len())];
        quantize_binary(x, &mut w);
        assert_eq!(w, expected);
    }

    #[test]
    fn bit_order_and_padding() {
        check(&[], &[]);
        check(&[1.0], &[1]);
        check(&[-1.0, 2.0, 0.0, -0.0, f32::NAN, 3.0], &[0b10_0010]);
        let mut x = vec![-1.0f32; 130];
        x[0] = 1.0;
        x[63] = 1.0;
        x[64] = 0.5;
        x[129] = 1e-30;
        check(&x, &[1 | 1 << 63, 1, 0b10]);
        check(&[1.0; 64], &[u64::MAX]);
        check(&[1.0; 65], &[u64::MAX, 1]);
    }

    #[test]
    fn hamming_counts_sign_flips() {
        let x: Vec<f32> = (0..200).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }).collect();
        let y: Vec<f32> = x.iter().enumerate().map(|(i, &v)| if i % 10 == 0 { -v } else { v }).collect();
        let (mut a, mut b) = (vec![0; binary_words(200)], vec![0; binary_words(200)]);
        quantize_binary(&x, &mut a);
        quantize_binary(&y, &mut b);
        for k in Kernel::available() {
            assert_eq!(k.hamming(&a, &b), 20, "{}", k.name());
        }
    }
}
