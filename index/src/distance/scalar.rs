//! The portable reference kernel. Plain safe Rust; every SIMD kernel is tested
//! against it.
//!
//! It keeps eight partial sums (lane `i % 8`), which lets the compiler vectorize it
//! with the baseline instruction set (SSE2 on x86_64) and makes it a usable fallback.

/// `Σ aᵢ·bᵢ`. Callers guarantee `a.len() == b.len()`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (xa, xb) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += xa[l] * xb[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// `out[i] = dot(q, rows[i*d .. (i+1)*d])`, `d = q.len()`. Callers check the shape.
pub fn dot_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    if q.is_empty() {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        *o = dot(q, row);
    }
}
