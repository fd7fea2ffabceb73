//! Every path against the scalar reference, for every kernel: f32 within the rounding
//! bound stated in the module docs, int8 and binary bit for bit, and each `*_rows`
//! form bit for bit against its one-pair form.

use super::*;
use proptest::prelude::*;

/// Unit roundoff of f32, `2⁻²⁴`.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// `γ(k) = k·u / (1 − k·u)`: the relative bound of any order of summing k terms.
fn gamma(k: usize) -> f64 {
    let ku = k as f64 * U;
    ku / (1.0 - ku)
}

/// A small deterministic generator (xorshift64), so the sweep is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `[-r, r)`.
    fn f32(&mut self, r: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * r
    }
    fn f32s(&mut self, n: usize) -> Vec<f32> {
        // Mix scales and exact zeros so no single magnitude is all that is tested.
        let r = [1.0, 100.0, 1e-3, 7.0][(self.next() % 4) as usize];
        (0..n).map(|_| if self.next().is_multiple_of(17) { 0.0 } else { self.f32(r) }).collect()
    }
    fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next() as i8).collect()
    }
    fn u64s(&mut self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn sum_abs(a: &[f32], b: &[f32], f: impl Fn(f64, f64) -> f64) -> (f64, f64) {
    let mut exact = 0.0;
    let mut mag = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        let t = f(f64::from(x), f64::from(y));
        exact += t;
        mag += t.abs();
    }
    (exact, mag)
}

/// Checks the f32 kernels of every path on one pair: the scalar reference within
/// `γ(n+2)·Σ|terms|` of the exact (f64) sum, every path within twice that of the
/// scalar one, cosine within `4·γ(n+1) + 8u`.
fn check_f32(a: &[f32], b: &[f32]) {
    let n = a.len();
    let s = Kernel::scalar();
    let (dot_exact, dot_mag) = sum_abs(a, b, |x, y| x * y);
    let (l2_exact, l2_mag) = sum_abs(a, b, |x, y| (x - y) * (x - y));
    let (sd, sl) = (s.dot(a, b), s.l2(a, b));
    let tol = |mag: f64| gamma(n + 2) * mag;
    assert!((f64::from(sd) - dot_exact).abs() <= tol(dot_mag), "scalar dot n={n}: {sd} vs {dot_exact}");
    assert!((f64::from(sl) - l2_exact).abs() <= tol(l2_mag), "scalar l2 n={n}: {sl} vs {l2_exact}");
    let sc = s.cosine(a, b);
    let cos_tol = 4.0 * gamma(n + 1) + 8.0 * U;
    for k in Kernel::available() {
        let (d, l, c) = (k.dot(a, b), k.l2(a, b), k.cosine(a, b));
        let name = k.name();
        assert!((f64::from(d) - f64::from(sd)).abs() <= 2.0 * tol(dot_mag), "{name} dot n={n}: {d} vs scalar {sd}");
        assert!((f64::from(l) - f64::from(sl)).abs() <= 2.0 * tol(l2_mag), "{name} l2 n={n}: {l} vs scalar {sl}");
        assert!((f64::from(c) - f64::from(sc)).abs() <= cos_tol, "{name} cosine n={n}: {c} vs scalar {sc}");
    }
}

/// Checks the int8 kernels of every path on one pair: bit for bit equal to scalar.
fn check_i8(a: &[i8], b: &[i8], sa: f32, sb: f32) {
    let s = Kernel::scalar();
    let want = (s.dot_i8(a, b), s.ip_i8(a, sa, b, sb).to_bits(), s.l2_i8(a, sa, b, sb).to_bits(), s.cosine_i8(a, b).to_bits());
    let exact: i64 = a.iter().zip(b).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
    assert_eq!(i64::from(want.0), exact, "scalar dot_i8 n={}", a.len());
    for k in Kernel::available() {
        let got = (k.dot_i8(a, b), k.ip_i8(a, sa, b, sb).to_bits(), k.l2_i8(a, sa, b, sb).to_bits(), k.cosine_i8(a, b).to_bits());
        assert_eq!(got, want, "{} int8 n={}", k.name(), a.len());
    }
}

/// Checks hamming on every path: equal to scalar and to a plain count.
fn check_hamming(a: &[u64], b: &[u64]) {
    let want: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
    for k in Kernel::available() {
        assert_eq!(k.hamming(a, b), want, "{} hamming words={}", k.name(), a.len());
    }
}

/// Checks every `*_rows` form of every path against its one-pair form, bit for bit,
/// for `n` rows of `dim` drawn from `rng`.
fn check_rows(rng: &mut Rng, dim: usize, n: usize) {
    let q = rng.f32s(dim);
    let rows = rng.f32s(dim * n);
    let qi = rng.i8s(dim);
    let rows_i = rng.i8s(dim * n);
    let scales: Vec<f32> = (0..n).map(|_| rng.f32(1.0).abs()).collect();
    let qs = 0.37;
    let w = dim.div_ceil(64);
    let qb = rng.u64s(w);
    let rows_b = rng.u64s(w * n);
    let s = Kernel::scalar();
    let mut want_i = [vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]];
    s.ip_i8_rows(&qi, qs, &rows_i, &scales, &mut want_i[0]);
    s.l2_i8_rows(&qi, qs, &rows_i, &scales, &mut want_i[1]);
    s.cosine_i8_rows(&qi, &rows_i, &mut want_i[2]);
    for k in Kernel::available() {
        let name = k.name();
        let mut out = vec![f32::NAN; n];
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let row = |i: usize| &rows[i * dim..(i + 1) * dim];
        let row_i = |i: usize| &rows_i[i * dim..(i + 1) * dim];
        k.dot_rows(&q, &rows, &mut out);
        assert_eq!(bits(&out), bits(&(0..n).map(|i| k.dot(&q, row(i))).collect::<Vec<_>>()), "{name} dot_rows dim={dim}");
        k.l2_rows(&q, &rows, &mut out);
        assert_eq!(bits(&out), bits(&(0..n).map(|i| k.l2(&q, row(i))).collect::<Vec<_>>()), "{name} l2_rows dim={dim}");
        k.cosine_rows(&q, &rows, &mut out);
        assert_eq!(bits(&out), bits(&(0..n).map(|i| k.cosine(&q, row(i))).collect::<Vec<_>>()), "{name} cosine_rows dim={dim}");
        k.ip_i8_rows(&qi, qs, &rows_i, &scales, &mut out);
        assert_eq!(bits(&out), bits(&want_i[0]), "{name} ip_i8_rows dim={dim}");
        let single: Vec<f32> = (0..n).map(|i| k.ip_i8(&qi, qs, row_i(i), scales[i])).collect();
        assert_eq!(bits(&out), bits(&single), "{name} ip_i8_rows vs ip_i8 dim={dim}");
        k.l2_i8_rows(&qi, qs, &rows_i, &scales, &mut out);
        assert_eq!(bits(&out), bits(&want_i[1]), "{name} l2_i8_rows dim={dim}");
        let single: Vec<f32> = (0..n).map(|i| k.l2_i8(&qi, qs, row_i(i), scales[i])).collect();
        assert_eq!(bits(&out), bits(&single), "{name} l2_i8_rows vs l2_i8 dim={dim}");
        k.cosine_i8_rows(&qi, &rows_i, &mut out);
        assert_eq!(bits(&out), bits(&want_i[2]), "{name} cosine_i8_rows dim={dim}");
        let mut hb = vec![u32::MAX; n];
        k.hamming_rows(&qb, &rows_b, &mut hb);
        let single: Vec<u32> = (0..n).map(|i| s.hamming(&qb, &rows_b[i * w..(i + 1) * w])).collect();
        assert_eq!(hb, single, "{name} hamming_rows dim={dim}");
    }
}

/// Names the paths this run tests (shown with `--nocapture`, e.g. by
/// `scripts/test-aarch64.sh`) and fails if a path this CPU supports is missing, so a
/// SIMD path that silently fell back to scalar is caught.
#[test]
fn kernel_paths() {
    let names: Vec<&str> = Kernel::available().iter().map(|k| k.name()).collect();
    println!("kernel paths tested: {} (best: {})", names.join(", "), Kernel::best().name());
    assert_eq!(names[0], "scalar");
    assert_eq!(Kernel::best().name(), *names.last().unwrap());
    #[cfg(target_arch = "aarch64")]
    {
        assert!(names.contains(&"neon"), "NEON not detected on aarch64: {names:?}");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            assert!(names.contains(&"neon+dotprod"), "{names:?}");
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            assert!(names.contains(&"avx2"), "{names:?}");
        }
        if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vpopcntdq") {
            assert!(names.contains(&"avx512"), "{names:?}");
        }
    }
}

/// Every dim from 0 to 1100: covers the 4/8/16/32/64-lane boundaries, the 256-code
/// int8 step, and 128/384/768/1024.
#[test]
fn every_dim_0_to_1100() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for dim in 0..=1100 {
        check_f32(&rng.f32s(dim), &rng.f32s(dim));
        check_i8(&rng.i8s(dim), &rng.i8s(dim), rng.f32(2.0).abs(), rng.f32(2.0).abs());
        check_hamming(&rng.u64s(dim.div_ceil(64)), &rng.u64s(dim.div_ceil(64)));
        check_rows(&mut rng, dim, 1 + dim % 9);
    }
}

/// Hamming over 0..=140 words (up to 8960 bits): past the 8- and 32-word steps.
#[test]
fn hamming_every_word_count() {
    let mut rng = Rng(7);
    for w in 0..=140 {
        check_hamming(&rng.u64s(w), &rng.u64s(w));
        let a = rng.u64s(w);
        check_hamming(&a, &a.iter().map(|x| !x).collect::<Vec<_>>());
    }
}

#[test]
fn known_values() {
    for k in Kernel::available() {
        let name = k.name();
        assert_eq!(k.dot(&[], &[]), 0.0, "{name}");
        assert_eq!(k.dot(&[2.0], &[3.0]), 6.0, "{name}");
        assert_eq!(k.l2(&[1.0, 2.0], &[4.0, -2.0]), 25.0, "{name}");
        assert_eq!(k.cosine(&[0.0; 40], &[1.0; 40]), 0.0, "{name}: zero vector");
        assert_eq!(k.cosine(&[3.0; 40], &[0.0; 40]), 0.0, "{name}: zero vector");
        for n in [1, 7, 8, 9, 16, 17, 33, 64, 65, 384, 1023] {
            // Small integers: every partial sum is exact, so all paths agree exactly.
            let a: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| (i % 3) as f32 - 1.0).collect();
            assert_eq!(k.dot(&a, &b), Kernel::scalar().dot(&a, &b), "{name} n={n}");
            assert_eq!(k.l2(&a, &b), Kernel::scalar().l2(&a, &b), "{name} n={n}");
            assert_eq!(k.l2(&a, &a), 0.0, "{name} n={n}");
            let c = k.cosine(&b, &b);
            assert!((c - 1.0).abs() <= 1e-6, "{name} n={n}: cos(b, b) = {c}");
            let neg: Vec<f32> = b.iter().map(|x| -2.0 * x).collect();
            let c = k.cosine(&b, &neg);
            assert!((c + 1.0).abs() <= 1e-6 || b.iter().all(|&x| x == 0.0), "{name} n={n}: cos(b, -2b) = {c}");
        }
        assert_eq!(k.hamming(&[0b1011, u64::MAX], &[0b0110, 0]), 3 + 64, "{name}");
        assert_eq!(k.ip_i8(&[1, -2, 3], 0.5, &[4, 5, -6], 2.0), -24.0, "{name}");
        // (0.5·[1,-2,3] − 2·[4,5,-6])² = (-7.5)² + (-11)² + 13.5²
        assert_eq!(k.l2_i8(&[1, -2, 3], 0.5, &[4, 5, -6], 2.0), 56.25 + 121.0 + 182.25, "{name}");
        assert_eq!(k.cosine_i8(&[0; 70], &[1; 70]), 0.0, "{name}");
        assert_eq!(k.cosine_i8(&[-3; 70], &[5; 70]), -1.0, "{name}");
    }
}

/// Codes at the ends of the i8 range, up to `MAX_I8_DIM`: the sums are exact, and the
/// biased VNNI form wraps in i32 on the way and still lands on the exact value.
#[test]
fn int8_extremes_exact() {
    for n in [1, 63, 64, 65, 255, 256, 257, 4096, MAX_I8_DIM] {
        let min = vec![i8::MIN; n];
        let max = vec![i8::MAX; n];
        let alt: Vec<i8> = (0..n).map(|i| if i % 2 == 0 { i8::MIN } else { i8::MAX }).collect();
        for k in Kernel::available() {
            let name = k.name();
            assert_eq!(k.dot_i8(&min, &min), 16384 * n as i32, "{name} n={n}");
            assert_eq!(k.dot_i8(&min, &max), -16256 * n as i32, "{name} n={n}");
            assert_eq!(k.dot_sq_i8_for_test(&max, &min), (-16256 * n as i32, 16384 * n as i32), "{name} n={n}");
        }
        check_i8(&min, &max, 1.0, 1.0);
        check_i8(&alt, &min, 0.5, 3.0);
        check_i8(&alt, &alt, 1e-3, 1e3);
    }
}

impl Kernel {
    fn dot_sq_i8_for_test(self, a: &[i8], b: &[i8]) -> (i32, i32) {
        on_path!(self, |t| t.dot_sq_i8(a, b))
    }
}

#[test]
#[should_panic(expected = "dot: length mismatch")]
fn dot_length_mismatch_panics() {
    dot(&[1.0, 2.0], &[1.0]);
}

#[test]
#[should_panic(expected = "l2_rows: shape mismatch")]
fn rows_shape_mismatch_panics() {
    l2_rows(&[1.0, 2.0], &[1.0, 2.0, 3.0], &mut [0.0; 2]);
}

#[test]
#[should_panic(expected = "1 scales for 2 rows")]
fn int8_scales_mismatch_panics() {
    ip_i8_rows(&[1], 1.0, &[1, 2], &[1.0], &mut [0.0; 2]);
}

#[test]
#[should_panic(expected = "> MAX_I8_DIM")]
fn int8_dim_limit_panics() {
    let a = vec![0i8; MAX_I8_DIM + 1];
    dot_i8(&a, &a);
}

#[test]
#[should_panic(expected = "hamming_rows: shape mismatch")]
fn hamming_rows_shape_mismatch_panics() {
    hamming_rows(&[1], &[1, 2, 3], &mut [0; 2]);
}

#[test]
fn zero_dim_rows() {
    for k in Kernel::available() {
        let mut out = [f32::NAN; 3];
        k.cosine_rows(&[], &[], &mut out);
        assert_eq!(out, [0.0; 3], "{}", k.name());
        let mut out = [f32::NAN; 3];
        k.l2_i8_rows(&[], 1.0, &[], &[1.0; 3], &mut out);
        assert_eq!(out, [0.0; 3], "{}", k.name());
        let mut h = [u32::MAX; 2];
        k.hamming_rows(&[], &[], &mut h);
        assert_eq!(h, [0; 2], "{}", k.name());
    }
}

fn f32_pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (0usize..=1100, prop_oneof![Just(1.0f32), Just(100.0), Just(1e-3)]).prop_flat_map(|(n, r)| {
        let v = prop::collection::vec(prop_oneof![4 => -r..r, 1 => Just(0.0f32)], n);
        (v.clone(), v)
    })
}

fn i8_pair() -> impl Strategy<Value = (Vec<i8>, Vec<i8>)> {
    (0usize..=1100).prop_flat_map(|n| {
        let v = prop::collection::vec(prop_oneof![4 => any::<i8>(), 1 => Just(i8::MIN), 1 => Just(i8::MAX)], n);
        (v.clone(), v)
    })
}

fn words_pair() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    (0usize..=160).prop_flat_map(|n| (prop::collection::vec(any::<u64>(), n), prop::collection::vec(any::<u64>(), n)))
}

proptest! {
    #[test]
    fn f32_paths_agree_with_scalar((a, b) in f32_pair()) {
        check_f32(&a, &b);
    }

    #[test]
    fn int8_paths_equal_scalar((a, b) in i8_pair(), sa in 0.0f32..10.0, sb in 0.0f32..10.0) {
        check_i8(&a, &b, sa, sb);
    }

    #[test]
    fn hamming_paths_equal_scalar((a, b) in words_pair()) {
        check_hamming(&a, &b);
    }

    #[test]
    fn rows_equal_single(dim in 0usize..=1100, n in 0usize..10, seed in any::<u64>()) {
        check_rows(&mut Rng(seed | 1), dim, n);
    }
}
