use super::*;
use crate::distance::Kernel;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn index(dim: usize, vs: &[(u64, &[f32])]) -> FlatIndex {
    let mut ix = FlatIndex::new(dim);
    for &(id, v) in vs {
        ix.upsert(id, v).unwrap();
    }
    ix
}

/// Searches and compares ids exactly and scores within 1e-6.
fn check(ix: &FlatIndex, q: &[f32], k: usize, expected: &[(u64, f32)]) {
    let got = ix.search(q, k).unwrap();
    let ids: Vec<u64> = got.iter().map(|r| r.0).collect();
    let want_ids: Vec<u64> = expected.iter().map(|r| r.0).collect();
    assert_eq!(ids, want_ids, "got {got:?}");
    for (g, w) in got.iter().zip(expected) {
        assert!((g.1 - w.1).abs() < 1e-6, "id {}: got {}, want {}", g.0, g.1, w.1);
    }
}

#[test]
fn search_orders_by_cosine() {
    let ix = index(2, &[(1, &[1.0, 0.0]), (2, &[0.0, 3.0]), (3, &[1.0, 1.0]), (4, &[-2.0, 0.0])]);
    let h = std::f32::consts::FRAC_1_SQRT_2;
    check(&ix, &[5.0, 0.0], 10, &[(1, 1.0), (3, h), (2, 0.0), (4, -1.0)]);
    check(&ix, &[1.0, 0.0], 2, &[(1, 1.0), (3, h)]);
    check(&ix, &[1.0, 0.0], 0, &[]);
}

#[test]
fn ties_go_to_smaller_id() {
    let ix = index(2, &[(9, &[1.0, 1.0]), (3, &[2.0, 2.0]), (5, &[0.5, 0.5]), (1, &[0.0, 1.0])]);
    let h = std::f32::consts::FRAC_1_SQRT_2;
    check(&ix, &[1.0, 1.0], 2, &[(3, 1.0), (5, 1.0)]);
    check(&ix, &[1.0, 1.0], 4, &[(3, 1.0), (5, 1.0), (9, 1.0), (1, h)]);
    // Orthogonal: +0.0 and -0.0 scores tie too.
    let ix = index(2, &[(7, &[0.0, 1.0]), (2, &[0.0, -1.0])]);
    check(&ix, &[1.0, 0.0], 2, &[(2, 0.0), (7, 0.0)]);
}

#[test]
fn upsert_replaces_and_remove_compacts() {
    let mut ix = index(2, &[(1, &[1.0, 0.0]), (2, &[0.0, 1.0]), (3, &[-1.0, 0.0])]);
    assert_eq!(ix.len(), 3);
    ix.upsert(1, &[0.0, -1.0]).unwrap();
    assert_eq!(ix.len(), 3);
    check(&ix, &[0.0, -1.0], 1, &[(1, 1.0)]);

    assert!(ix.remove(1));
    assert!(!ix.remove(1));
    assert!(!ix.contains(1));
    assert!(ix.contains(3));
    assert_eq!(ix.len(), 2);
    // Id 3 moved into slot 0; it must still be found with its own vector.
    check(&ix, &[-1.0, 0.0], 2, &[(3, 1.0), (2, 0.0)]);
    assert!(ix.remove(3) && ix.remove(2));
    assert!(ix.is_empty());
    check(&ix, &[1.0, 0.0], 5, &[]);
}

#[test]
fn rejects_bad_vectors_and_queries() {
    let mut ix = FlatIndex::new(3);
    assert_eq!(ix.upsert(1, &[1.0, 2.0]), Err(IndexError::Dim { got: 2, want: 3 }));
    assert_eq!(ix.upsert(1, &[1.0, f32::NAN, f32::INFINITY]), Err(IndexError::NonFinite(1)));
    assert_eq!(ix.upsert(1, &[0.0, 0.0, 0.0]), Err(IndexError::ZeroVector));
    assert_eq!(ix.upsert(1, &[0.0, -0.0, 0.0]), Err(IndexError::ZeroVector));
    assert!(ix.is_empty());
    // Queries are validated even on an empty index.
    assert_eq!(ix.search(&[1.0], 1), Err(IndexError::Dim { got: 1, want: 3 }));
    assert_eq!(ix.search(&[1.0, 1.0, f32::NAN], 1), Err(IndexError::NonFinite(2)));
    assert_eq!(ix.search(&[0.0; 3], 1), Err(IndexError::ZeroVector));
    assert_eq!(ix.search(&[1.0, 0.0, 0.0], 1), Ok(vec![]));
    // A failed replace leaves the old vector.
    ix.upsert(1, &[1.0, 0.0, 0.0]).unwrap();
    assert!(ix.upsert(1, &[0.0; 3]).is_err());
    check(&ix, &[1.0, 0.0, 0.0], 1, &[(1, 1.0)]);
}

#[test]
fn extreme_magnitudes_normalize() {
    let mut ix = FlatIndex::new(2);
    ix.upsert(1, &[f32::MAX, f32::MAX]).unwrap();
    ix.upsert(2, &[1e-45, 0.0]).unwrap(); // smallest subnormal
    let h = std::f32::consts::FRAC_1_SQRT_2;
    check(&ix, &[1.0, 1.0], 2, &[(1, 1.0), (2, h)]);
    assert_eq!(FlatIndex::new(0).upsert(1, &[]), Err(IndexError::ZeroVector));
}

#[test]
fn memory_tracks_capacity() {
    let mut ix = FlatIndex::new(4);
    assert_eq!(ix.memory_bytes(), 0);
    ix.reserve(1000);
    assert!(ix.memory_bytes() >= 1000 * (16 + 8 + 16));
    for id in 0..1000 {
        ix.upsert(id, &[1.0, id as f32, 0.0, 0.0]).unwrap();
    }
    let full = ix.memory_bytes();
    for id in 0..990 {
        ix.remove(id);
    }
    assert!(ix.memory_bytes() < full / 4, "{} vs {full}", ix.memory_bytes());
    assert_eq!(ix.len(), 10);
    assert!((990..1000).all(|id| ix.contains(id)));
}

#[test]
fn spans_several_scan_blocks() {
    let n = SCAN_BLOCK as u64 * 3 + 17;
    let mut ix = FlatIndex::new(3);
    for id in 0..n {
        ix.upsert(id, &[1.0, id as f32 / n as f32, 0.5]).unwrap();
    }
    // The best match for direction (1, x, 0.5) is the row with that x.
    let target = n - 5;
    let got = ix.search(&[1.0, target as f32 / n as f32, 0.5], 1).unwrap();
    assert_eq!(got[0].0, target);
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(u64, Vec<f32>),
    Remove(u64),
    Search(Vec<f32>, usize),
}

fn vector(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        // Small integers: many duplicate directions, zero vectors and exact ties.
        prop::collection::vec((-2i8..=2).prop_map(f32::from), dim),
        prop::collection::vec(-10.0f32..10.0, dim),
    ]
}

fn ops() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (1usize..=12).prop_flat_map(|dim| {
        let op = prop_oneof![
            4 => (0u64..24, vector(dim)).prop_map(|(id, v)| Op::Upsert(id, v)),
            1 => (0u64..24).prop_map(Op::Remove),
            2 => (vector(dim), 0usize..30).prop_map(|(q, k)| Op::Search(q, k)),
        ];
        (Just(dim), prop::collection::vec(op, 1..80))
    })
}

/// Brute force over the model with the same normalization and kernel: must match bit
/// for bit, including tie order.
fn naive(model: &BTreeMap<u64, Vec<f32>>, q: &[f32], k: usize) -> Vec<(u64, f32)> {
    let qn = normalized(q, q.len()).unwrap();
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .map(|(&id, v)| (id, Kernel::best().dot(&qn, &normalized(v, v.len()).unwrap()).clamp(-1.0, 1.0) + 0.0))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn cosine_f64(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

proptest! {
    #[test]
    fn flat_matches_brute_force((dim, ops) in ops()) {
        let mut ix = FlatIndex::new(dim);
        let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Upsert(id, v) => {
                    let zero = v.iter().all(|&x| x == 0.0);
                    match ix.upsert(id, &v) {
                        Ok(()) => { prop_assert!(!zero); model.insert(id, v); }
                        Err(e) => prop_assert!(zero && e == IndexError::ZeroVector, "{e:?}"),
                    }
                }
                Op::Remove(id) => prop_assert_eq!(ix.remove(id), model.remove(&id).is_some()),
                Op::Search(q, k) => {
                    if q.iter().all(|&x| x == 0.0) {
                        prop_assert_eq!(ix.search(&q, k), Err(IndexError::ZeroVector));
                        continue;
                    }
                    let got = ix.search(&q, k).unwrap();
                    prop_assert_eq!(&got, &naive(&model, &q, k));
                    // Independent check in f64: returned scores are true cosines, and
                    // nothing left out beats the k-th result.
                    for &(id, s) in &got {
                        prop_assert!((f64::from(s) - cosine_f64(&q, &model[&id])).abs() < 1e-5);
                    }
                    if let Some(&(_, kth)) = got.last() {
                        for (id, v) in &model {
                            if !got.iter().any(|r| r.0 == *id) {
                                prop_assert!(cosine_f64(&q, v) <= f64::from(kth) + 1e-5);
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(ix.len(), model.len());
            prop_assert_eq!(ix.data.len(), ix.len() * dim);
            for id in model.keys() {
                prop_assert!(ix.contains(*id));
            }
        }
    }
}

#[test]
fn check_agrees_with_upsert_and_changes_nothing() {
    let mut idx = FlatIndex::new(3);
    idx.upsert(1, &[1.0, 0.0, 0.0]).unwrap();
    for bad in [&[0.0f32, 0.0, 0.0][..], &[1.0, 2.0][..], &[f32::NAN, 1.0, 0.0][..]] {
        let want = idx.clone().upsert(9, bad).unwrap_err();
        assert_eq!(idx.check(bad).unwrap_err(), want);
    }
    idx.check(&[0.0, 2.0, 0.0]).unwrap();
    assert_eq!(idx.len(), 1);
    assert!(!idx.contains(9));
}

/// Vectors with payloads `n=<0..100>`: a filter `n < t` keeps about t% of them. Both
/// filtered searches, fed by a `PostingIndex` (rows = ids), give exactly the brute
/// force top-k over the matching vectors, from 1% to 100% selectivity.
#[test]
fn filtered_search_is_top_k_of_matching_set() {
    use crate::filter::{parse_payload, Filter, PostingIndex};
    let dim = 8;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ix = FlatIndex::new(dim);
    let mut postings = PostingIndex::new();
    let mut model = BTreeMap::new();
    let mut payloads = BTreeMap::new();
    for id in 0..1000u64 {
        let v: Vec<f32> = (0..dim).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
        if ix.upsert(id, &v).is_err() {
            continue;
        }
        let fields = parse_payload(format!("n={} tag=t{}", id % 100, id % 3).as_bytes()).unwrap();
        postings.insert(id as u32, &fields);
        payloads.insert(id, fields);
        model.insert(id, v);
    }
    let q: Vec<f32> = (0..dim).map(|i| i as f32 - 3.5).collect();
    for expr in ["n < 1", "n < 10", "n < 50 AND tag != t1", "n < 100", "NOT n EXISTS"] {
        let filter = Filter::parse(expr).unwrap();
        let rows = postings.evaluate(&filter);
        let matching: BTreeMap<u64, Vec<f32>> =
            model.iter().filter(|(id, _)| filter.matches(&payloads[*id])).map(|(&id, v)| (id, v.clone())).collect();
        assert_eq!(rows.len(), matching.len() as u64, "{expr}");
        for k in [1, 10, 2000] {
            let want = naive(&matching, &q, k);
            assert_eq!(ix.search_among(&q, k, rows.iter().map(u64::from)).unwrap(), want, "{expr} k={k}");
            assert_eq!(ix.search_where(&q, k, |id| rows.contains(id as u32)).unwrap(), want, "{expr} k={k}");
        }
    }
    // Unknown ids are skipped; a bad query is refused as by `search`.
    assert_eq!(ix.search_among(&q, 3, [5000, 6000]).unwrap(), []);
    assert_eq!(ix.search_among(&[0.0; 8], 3, [1]), Err(IndexError::ZeroVector));
    assert_eq!(ix.search_where(&[1.0], 3, |_| true), Err(IndexError::Dim { got: 1, want: 8 }));
}
