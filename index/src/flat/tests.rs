use super::*;
use crate::distance::Kernel;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn cosine(dim: usize) -> FlatIndex {
    FlatIndex::new(dim, Metric::Cosine, Kind::F32)
}

fn index(dim: usize, vs: &[(u64, &[f32])]) -> FlatIndex {
    let mut ix = cosine(dim);
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

    assert_eq!(ix.remove(1), Some(0));
    assert_eq!(ix.remove(1), None);
    assert!(!ix.contains(1));
    assert!(ix.contains(3));
    assert_eq!(ix.len(), 2);
    check(&ix, &[-1.0, 0.0], 2, &[(3, 1.0), (2, 0.0)]);
    // The freed slot is reused; compaction moves the last vector into a hole.
    assert_eq!(ix.upsert(4, &[1.0, 1.0]), Ok(0));
    assert_eq!(ix.remove(2), Some(1));
    assert_eq!(ix.compact(), vec![(2, 1)]);
    assert_eq!((ix.slot_count(), ix.free_slots(), ix.slot_of(3)), (2, 0, Some(1)));
    check(&ix, &[-1.0, 0.0], 2, &[(3, 1.0), (4, -std::f32::consts::FRAC_1_SQRT_2)]);
    assert!(ix.remove(3).is_some() && ix.remove(4).is_some());
    assert!(ix.is_empty());
    check(&ix, &[1.0, 0.0], 5, &[]);
}

#[test]
fn rejects_bad_vectors_and_queries() {
    let mut ix = cosine(3);
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
    let mut ix = cosine(2);
    ix.upsert(1, &[f32::MAX, f32::MAX]).unwrap();
    ix.upsert(2, &[1e-45, 0.0]).unwrap(); // smallest subnormal
    let h = std::f32::consts::FRAC_1_SQRT_2;
    check(&ix, &[1.0, 1.0], 2, &[(1, 1.0), (2, h)]);
    assert_eq!(cosine(0).upsert(1, &[]), Err(IndexError::ZeroVector));
}

#[test]
fn memory_tracks_capacity() {
    let mut ix = cosine(4);
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
    ix.compact();
    assert!(ix.memory_bytes() < full / 4, "{} vs {full}", ix.memory_bytes());
    assert_eq!(ix.len(), 10);
    assert!((990..1000).all(|id| ix.contains(id)));
}

#[test]
fn spans_several_scan_blocks() {
    let n = SCAN_BLOCK as u64 * 3 + 17;
    let mut ix = cosine(3);
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
    Compact,
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
            1 => Just(Op::Compact),
        ];
        (Just(dim), prop::collection::vec(op, 1..80))
    })
}

/// Brute force over the model with the same normalization and kernel: must match bit
/// for bit, including tie order.
fn naive(model: &BTreeMap<u64, Vec<f32>>, q: &[f32], k: usize) -> Vec<(u64, f32)> {
    let qn = normalized(q).unwrap();
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .map(|(&id, v)| (id, Kernel::best().dot(&qn, &normalized(v).unwrap()).clamp(-1.0, 1.0) + 0.0))
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

/// Upserts into the index and, if it accepted the vector, the model; only cosine may
/// refuse, and only the zero vector.
fn upsert_both(ix: &mut FlatIndex, model: &mut BTreeMap<u64, Vec<f32>>, id: u64, v: Vec<f32>) -> Result<(), TestCaseError> {
    let zero = v.iter().all(|&x| x == 0.0);
    match ix.upsert(id, &v) {
        Ok(_) => {
            prop_assert!(!zero || ix.metric() != Metric::Cosine);
            model.insert(id, v);
        }
        Err(e) => prop_assert!(zero && ix.metric() == Metric::Cosine && e == IndexError::ZeroVector, "{e:?}"),
    }
    Ok(())
}

/// Applies `ops` to `ix` and to a model alike (a remove must agree on whether the id was
/// there), checks after each that the index holds the model's ids and counts its slots
/// right, and hands every search to `search` with the model as it is then.
fn replay(
    ix: &mut FlatIndex,
    ops: Vec<Op>,
    mut search: impl FnMut(&FlatIndex, &BTreeMap<u64, Vec<f32>>, Vec<f32>, usize) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Upsert(id, v) => upsert_both(ix, &mut model, id, v)?,
            Op::Remove(id) => prop_assert_eq!(ix.remove(id).is_some(), model.remove(&id).is_some()),
            Op::Compact => {
                ix.compact();
            }
            Op::Search(q, k) => search(ix, &model, q, k)?,
        }
        prop_assert_eq!(ix.len(), model.len());
        prop_assert_eq!(ix.slot_count(), ix.len() + ix.free_slots());
        for id in model.keys() {
            prop_assert!(ix.contains(*id));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn flat_matches_brute_force((dim, ops) in ops()) {
        let mut ix = cosine(dim);
        replay(&mut ix, ops, |ix, model, q, k| {
            if q.iter().all(|&x| x == 0.0) {
                prop_assert_eq!(ix.search(&q, k), Err(IndexError::ZeroVector));
                return Ok(());
            }
            let got = ix.search(&q, k).unwrap();
            prop_assert_eq!(&got, &naive(model, &q, k));
            // Independent check in f64: returned scores are true cosines, and
            // nothing left out beats the k-th result.
            for &(id, s) in &got {
                prop_assert!((f64::from(s) - cosine_f64(&q, &model[&id])).abs() < 1e-5);
            }
            if let Some(&(_, kth)) = got.last() {
                for (id, v) in model {
                    if !got.iter().any(|r| r.0 == *id) {
                        prop_assert!(cosine_f64(&q, v) <= f64::from(kth) + 1e-5);
                    }
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn check_agrees_with_upsert_and_changes_nothing() {
    let mut idx = cosine(3);
    idx.upsert(1, &[1.0, 0.0, 0.0]).unwrap();
    for bad in [&[0.0f32, 0.0, 0.0][..], &[1.0, 2.0][..], &[f32::NAN, 1.0, 0.0][..]] {
        let want = idx.clone().upsert(9, bad).unwrap_err();
        assert_eq!(idx.check(bad).unwrap_err(), want);
    }
    idx.check(&[0.0, 2.0, 0.0]).unwrap();
    assert_eq!(idx.len(), 1);
    assert!(!idx.contains(9));
}

/// Exact scores of every stored vector for `q` under `metric`, best first (ties by
/// smaller id), computed with the same kernels and preparation as the index.
fn exact_all(metric: Metric, model: &BTreeMap<u64, Vec<f32>>, q: &[f32]) -> Vec<(u64, f32)> {
    let k = Kernel::best();
    let prep = |v: &[f32]| if metric == Metric::Cosine { normalized(v).unwrap() } else { v.to_vec() };
    let q = prep(q);
    let mut all: Vec<(u64, f32, f32)> = model
        .iter()
        .map(|(&id, v)| {
            let v = prep(v);
            let key = match metric {
                Metric::Cosine => k.dot(&q, &v).clamp(-1.0, 1.0),
                Metric::Ip => k.dot(&q, &v),
                Metric::L2 => -k.l2(&q, &v),
            };
            (id, key + 0.0, metric.score(key))
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.into_iter().map(|(id, _, s)| (id, s)).collect()
}

#[test]
fn l2_and_ip_scores() {
    let mut l2 = FlatIndex::new(2, Metric::L2, Kind::F32);
    let mut ip = FlatIndex::new(2, Metric::Ip, Kind::F32);
    for (id, v) in [(1, [0.0, 0.0]), (2, [3.0, 4.0]), (3, [1.0, 0.0]), (4, [-2.0, 0.0])] {
        l2.upsert(id, &v).unwrap(); // the zero vector is fine for l2 and ip
        ip.upsert(id, &v).unwrap();
    }
    check(&l2, &[0.0, 0.0], 4, &[(1, 0.0), (3, 1.0), (4, 2.0), (2, 5.0)]);
    check(&l2, &[3.0, 4.0], 2, &[(2, 0.0), (3, 20f32.sqrt())]);
    check(&ip, &[1.0, 1.0], 4, &[(2, 7.0), (3, 1.0), (1, 0.0), (4, -2.0)]);
    assert_eq!(Metric::parse(b"L2"), Some(Metric::L2));
    assert_eq!(Metric::parse(b"dot"), None);
    assert_eq!(Kind::parse(b"INT8"), Some(Kind::Int8));
    assert_eq!(Kind::parse(b"f16"), None);
}

#[test]
fn binary_bits_are_centered_on_the_vectors_mean() {
    // All components positive: sign bits would all be 1; centered bits are not.
    assert_eq!(centered_bits(&[1.0, 5.0, 2.0, 6.0]), vec![0b1010]);
    assert_eq!(centered_bits(&[-1.0, 1.0]), vec![0b10]);
    assert_eq!(centered_bits(&[]), Vec::<u64>::new());
}

#[test]
fn a_scan_in_slices_sees_every_vector_kept_through_it() {
    let mut ix = FlatIndex::new(2, Metric::L2, Kind::F32);
    for id in 0..1000u64 {
        ix.upsert(id, &[id as f32, 0.0]).unwrap();
    }
    let mut scan = ix.scan(&[0.0, 0.0], 1000).unwrap();
    let mut step = 0;
    while !ix.scan_step(&mut scan, 97, None) {
        // Between slices: remove one early and one late vector, insert a new one
        // (reusing a freed slot), rewrite one in place.
        step += 1;
        ix.remove(step * 2 + 1);
        ix.remove(999 - step * 2);
        ix.upsert(5000 + step, &[0.5, 0.0]).unwrap();
        ix.upsert(2, &[2.0, 0.0]).unwrap();
    }
    let got: std::collections::HashSet<u64> = scan.finish().into_iter().map(|r| r.0).collect();
    // Every id never removed is there exactly once (the set has no duplicates and the
    // result no more entries than the ids it can hold).
    for id in (0..1000u64).filter(|&id| ix.contains(id)) {
        assert!(got.contains(&id), "missed {id}");
    }
}

#[test]
fn scan_slots_scores_only_the_given_slots() {
    let mut ix = FlatIndex::new(1, Metric::Ip, Kind::F32);
    for id in 0..10u64 {
        ix.upsert(id, &[id as f32]).unwrap();
    }
    ix.remove(7);
    let mut scan = ix.scan(&[1.0], 3).unwrap();
    ix.scan_slots(&mut scan, [1, 3, 7, 8, 42]);
    assert!(ix.scan_step(&mut scan, 100, None), "a slot scan is complete");
    assert_eq!(scan.finish(), vec![(8, 8.0), (3, 3.0), (1, 1.0)]);
    let mut scan = ix.scan(&[1.0], 3).unwrap();
    while !ix.scan_step(&mut scan, 4, Some(&|slot| slot % 2 == 0)) {}
    assert_eq!(scan.finish(), vec![(8, 8.0), (6, 6.0), (4, 4.0)]);
}

fn metric_kind() -> impl Strategy<Value = (Metric, Kind)> {
    (prop::sample::select(Metric::ALL.to_vec()), prop::sample::select(Kind::ALL.to_vec()))
}

proptest! {
    /// Every metric and kind: a scan deep enough to keep every vector, re-ranked with
    /// the originals, equals the exact brute force bit for bit (ids, order, scores);
    /// for f32 the scan alone already does.
    #[test]
    fn rerank_of_a_full_scan_is_exact(((metric, kind), (dim, ops)) in (metric_kind(), ops())) {
        let mut ix = FlatIndex::new(dim, metric, kind);
        replay(&mut ix, ops, |ix, model, q, k| {
            let Ok(mut scan) = ix.scan(&q, ix.len()) else {
                prop_assert!(metric == Metric::Cosine && q.iter().all(|&x| x == 0.0));
                return Ok(());
            };
            while !ix.scan_step(&mut scan, 5, None) {}
            let query = scan.query().clone();
            let cands = scan.finish();
            prop_assert_eq!(cands.len(), model.len());
            let mut want = exact_all(metric, model, &q);
            want.truncate(k);
            if kind == Kind::F32 {
                prop_assert_eq!(&cands[..k.min(cands.len())], &want[..]);
            }
            let got = ix.rerank(&query, k, cands.iter().map(|&(id, _)| (id, model[&id].clone())));
            prop_assert_eq!(got, want);
            Ok(())
        })?;
    }
}

/// Filtered searches fed by a `PostingIndex` over slots (as the shard keeps it) give
/// exactly the brute force top-k over the matching vectors, from 1% to 100%
/// selectivity, both by scoring only the matching slots and by a full scan that keeps
/// only them.
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
    let mut ix = cosine(dim);
    let mut postings = PostingIndex::new();
    let mut model = BTreeMap::new();
    let mut payloads = BTreeMap::new();
    for id in 0..1000u64 {
        let v: Vec<f32> = (0..dim).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
        let Ok(slot) = ix.upsert(id, &v) else { continue };
        let fields = parse_payload(format!("n={} tag=t{}", id % 100, id % 3).as_bytes()).unwrap();
        postings.insert(slot as u32, &fields);
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
            let mut among = ix.scan(&q, k).unwrap();
            ix.scan_slots(&mut among, rows.iter().map(|r| r as usize));
            assert_eq!(among.finish(), want, "{expr} k={k}");
            let mut all = ix.scan(&q, k).unwrap();
            while !ix.scan_step(&mut all, 100, Some(&|slot| rows.contains(slot as u32))) {}
            assert_eq!(all.finish(), want, "{expr} k={k}");
        }
    }
}

#[test]
fn rerank_one_at_a_time_skips_bad_candidates() {
    for metric in Metric::ALL {
        let ix = FlatIndex::new(3, metric, Kind::Int8);
        let query = ix.query(&[1.0, 0.5, 0.0]).unwrap();
        let good: Vec<(u64, Vec<f32>)> = vec![(4, vec![1.0, 0.0, 0.0]), (2, vec![0.0, 1.0, 0.0]), (9, vec![0.9, 0.6, 0.1])];
        let mut r = ix.reranker(2);
        for (id, v) in &good {
            assert!(ix.rerank_push(&mut r, &query, *id, v));
        }
        // Wrong dimension, not finite, and (for cosine) no direction: skipped.
        assert!(!ix.rerank_push(&mut r, &query, 7, &[1.0, 0.0]));
        assert!(!ix.rerank_push(&mut r, &query, 8, &[1.0, f32::INFINITY, 0.0]));
        assert_eq!(ix.rerank_push(&mut r, &query, 1, &[0.0, 0.0, 0.0]), metric != Metric::Cosine);
        let mut want = ix.rerank(&query, 2, good.clone());
        if metric != Metric::Cosine {
            // The zero vector is a fine candidate for l2 and ip.
            want = ix.rerank(&query, 2, good.into_iter().chain([(1, vec![0.0, 0.0, 0.0])]));
        }
        assert_eq!(r.finish(), want, "{metric:?}");
    }
}

#[test]
fn a_prepared_query_scans_like_a_raw_one() {
    for kind in Kind::ALL {
        let mut ix = FlatIndex::new(4, Metric::L2, kind);
        for id in 0..50u64 {
            ix.upsert(id, &[id as f32, 1.0, -(id as f32), 0.5]).unwrap();
        }
        let q = [3.0, 1.0, -2.0, 0.0];
        let mut a = ix.scan(&q, 5).unwrap();
        let mut b = ix.scan_prepared(&ix.query(&q).unwrap(), 5);
        while !ix.scan_step(&mut a, 7, None) {}
        while !ix.scan_step(&mut b, 7, None) {}
        assert_eq!(a.finish(), b.finish(), "{kind:?}");
    }
}

#[test]
fn a_checked_vector_stores_what_upsert_stores() {
    for kind in Kind::ALL {
        let (mut a, mut b) = (FlatIndex::new(3, Metric::Cosine, kind), FlatIndex::new(3, Metric::Cosine, kind));
        for id in 0..20u64 {
            let v = [1.0 + id as f32, -2.0, id as f32 * 0.25];
            a.upsert(id, &v).unwrap();
            let checked = b.check(&v).unwrap();
            assert_eq!(b.upsert_checked(id, checked), a.slot_of(id).unwrap());
        }
        assert_eq!(a.search(&[1.0, 1.0, 1.0], 20).unwrap(), b.search(&[1.0, 1.0, 1.0], 20).unwrap(), "{kind:?}");
    }
}

#[test]
#[should_panic(expected = "another dimension or kind")]
fn a_vector_checked_by_another_kind_is_refused() {
    let checked = FlatIndex::new(3, Metric::L2, Kind::Binary).check(&[1.0, 2.0, 3.0]).unwrap();
    FlatIndex::new(3, Metric::L2, Kind::Int8).upsert_checked(1, checked);
}

/// A lone scan of `q` to the end, in one step.
fn lone(ix: &FlatIndex, q: &[f32], depth: usize) -> Vec<(u64, f32)> {
    let mut scan = ix.scan(q, depth).unwrap();
    while !ix.scan_step(&mut scan, usize::MAX, None) {}
    scan.finish()
}

/// `dim`-dimensional vectors with components in [-10, 10] from a xorshift seeded by
/// `seed`.
fn xorshift_vectors(seed: u64, dim: usize) -> impl FnMut() -> Vec<f32> {
    let mut x = seed | 1;
    move || {
        (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % 2001) as f32 - 1000.0) / 100.0
            })
            .collect()
    }
}

proptest! {
    /// Every metric and kind: searches that join a shared scan at different points of
    /// its sweep (after different numbers of steps of varying sizes: at the first slot,
    /// in the middle of a step's range, where it wraps) each get exactly what a lone scan of the same query
    /// and depth gets (ids, order, scores bit for bit), and leave it when done.
    #[test]
    fn a_shared_scan_returns_what_a_lone_scan_returns(
        (metric, kind) in metric_kind(),
        dim in 1usize..=40,
        n in 0usize..700,
        seed in any::<u64>(),
        queries in prop::collection::vec((0usize..12, 1usize..40), 1..8),
        steps in prop::collection::vec(1usize..300, 1..5),
    ) {
        let mut ix = FlatIndex::new(dim, metric, kind);
        let mut vectors = xorshift_vectors(seed, dim);
        for id in 0..n as u64 {
            let _ = ix.upsert(id * 3, &vectors()); // a zero vector under cosine is refused
        }
        let qs: Vec<Vec<f32>> = queries.iter().map(|_| vectors().iter().map(|x| x + 0.5).collect()).collect();
        let mut shared = SharedScan::new();
        let mut running = Vec::new(); // (member id, query)
        let mut results = vec![None; qs.len()];
        for t in 0..100_000 {
            // Query i joins after queries[i].0 steps.
            for (i, &(after, depth)) in queries.iter().enumerate() {
                if after == t {
                    running.push((shared.join(ix.scan(&qs[i], depth).unwrap()), i));
                }
            }
            ix.shared_step(&mut shared, steps[t % steps.len()]);
            running.retain(|&(id, i)| match shared.progress(id) {
                Progress::Done(scan) => {
                    results[i] = Some(scan.finish());
                    false
                }
                Progress::Running => true,
                Progress::Unknown => panic!("member {id} lost"),
            });
            if running.is_empty() && t >= 12 {
                break;
            }
        }
        prop_assert!(shared.is_empty(), "every member was taken out when done");
        for (i, got) in results.into_iter().enumerate() {
            prop_assert_eq!(got, Some(lone(&ix, &qs[i], queries[i].1)), "query {}", i);
        }
    }
}

/// Members that leave are no longer scored or returned; a restart (slots moved) starts
/// every member over and still gives a lone scan's result over the moved slots; an empty
/// index finishes a member in one step.
#[test]
fn a_shared_scan_restarts_and_lets_members_leave() {
    let mut ix = FlatIndex::new(2, Metric::L2, Kind::Int8);
    let mut shared = SharedScan::new();
    let id = shared.join(ix.scan(&[1.0, 0.0], 5).unwrap());
    ix.shared_step(&mut shared, 10);
    let Progress::Done(scan) = shared.progress(id) else { panic!("an empty index is scanned in one step") };
    assert!(scan.finish().is_empty());
    let mut vectors = xorshift_vectors(7, 2);
    for id in 0..1000 {
        ix.upsert(id, &vectors()).unwrap();
    }
    let (a, b) = (shared.join(ix.scan(&[1.0, 0.0], 5).unwrap()), shared.join(ix.scan(&[0.0, 1.0], 7).unwrap()));
    ix.shared_step(&mut shared, 300);
    shared.leave(b);
    assert!(matches!(shared.progress(b), Progress::Unknown));
    for id in (0..1000).step_by(3) {
        ix.remove(id);
    }
    ix.compact(); // the slots moved: what a scored may name other vectors now
    shared.restart();
    let c = shared.join(ix.scan(&[-1.0, -1.0], 3).unwrap());
    let mut done = Vec::new();
    for _ in 0..100 {
        ix.shared_step(&mut shared, 64);
        for m in [a, c] {
            if let Progress::Done(scan) = shared.progress(m) {
                done.push((m, scan.finish()));
            }
        }
    }
    assert_eq!(done, vec![(a, lone(&ix, &[1.0, 0.0], 5)), (c, lone(&ix, &[-1.0, -1.0], 3))]);
    assert!(shared.is_empty());
}

proptest! {
    /// `check_blob` = `parse_f32_blob` then `check`, for every metric and kind: the same
    /// row or the same error, with one scratch buffer reused across blobs of any length.
    #[test]
    fn check_blob_is_parse_then_check(
        (metric, kind) in metric_kind(),
        dim in 1usize..=20,
        blobs in prop::collection::vec((1usize..=20).prop_flat_map(|d| prop::collection::vec(prop_oneof![
            2 => Just(0.0f32), 1 => Just(f32::NAN), 1 => Just(f32::INFINITY), 8 => -5.0f32..5.0, 1 => Just(1e-30f32)], d)), 1..12),
        cut in 0usize..4,
    ) {
        let ix = FlatIndex::new(dim, metric, kind);
        let mut scratch = Vec::new();
        for (i, v) in blobs.iter().enumerate() {
            let mut v = v.clone();
            if i % 2 == 1 {
                v.resize(dim, 0.5); // the right length
            }
            let mut blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            if i % 3 == 0 {
                blob.truncate(blob.len().saturating_sub(cut)); // lengths not a multiple of 4
            }
            let want = crate::parse_f32_blob(&blob, dim).and_then(|v| ix.check(&v));
            let got = ix.check_blob(&blob, &mut scratch);
            match (want, got) {
                (Err(w), Err(g)) => prop_assert_eq!(w, g),
                // The row to store, bit for bit (f32 form, codes, scale, bits).
                (Ok(w), Ok(g)) => prop_assert_eq!(format!("{w:?}"), format!("{g:?}")),
                (w, g) => prop_assert!(false, "parse + check gave {:?}, check_blob {:?}", w.map(|_| ()), g.map(|_| ())),
            }
        }
    }
}

/// The exact ranking key a re-rank gives original `v` (None if it refuses it).
fn rerank_key(ix: &FlatIndex, query: &Query, v: &[f32]) -> Option<f32> {
    let mut r = ix.reranker(1);
    ix.rerank_push(&mut r, query, 0, v).then_some(r.top.floor)
}

/// Re-ranks `bounds` in order as the shard does: every candidate `admits` lets in.
fn pruned_rerank(ix: &FlatIndex, query: &Query, k: usize, bounds: &[Bounded], original: impl Fn(u64) -> Vec<f32>) -> (Vec<(u64, f32)>, usize) {
    let mut r = ix.reranker(k);
    let mut read = 0;
    for b in bounds {
        if r.admits(b.upper) {
            read += 1;
            ix.rerank_push(&mut r, query, b.id, &original(b.id));
        }
    }
    (r.finish(), read)
}

proptest! {
    /// int8, every metric: no original gets a ranking key above its candidate's bound,
    /// and a re-rank that skips every candidate `admits` turns away returns exactly what
    /// a re-rank of them all returns (ids, order, scores).
    #[test]
    fn rerank_bounds_hold_and_pruning_changes_nothing((metric, (dim, ops)) in (prop::sample::select(Metric::ALL.to_vec()), ops())) {
        let mut ix = FlatIndex::new(dim, metric, Kind::Int8);
        replay(&mut ix, ops, |ix, model, q, k| {
            let Ok(mut scan) = ix.scan(&q, (3 * k).max(1)) else { return Ok(()) };
            while !ix.scan_step(&mut scan, 7, None) {}
            let query = scan.query().clone();
            let cands = scan.finish();
            let bounds = ix.rerank_bounds(&query, cands.iter().map(|c| c.0)).unwrap();
            let mut ids: Vec<u64> = bounds.iter().map(|b| b.id).collect();
            ids.sort_unstable();
            let mut want_ids: Vec<u64> = cands.iter().map(|c| c.0).collect();
            want_ids.sort_unstable();
            prop_assert_eq!(ids, want_ids);
            for b in &bounds {
                if let Some(key) = rerank_key(ix, &query, &model[&b.id]) {
                    prop_assert!(f64::from(key) <= b.upper, "id {} key {} upper {}", b.id, key, b.upper);
                }
            }
            let full = ix.rerank(&query, k, cands.iter().map(|&(id, _)| (id, model[&id].clone())));
            let (pruned, _) = pruned_rerank(ix, &query, k, &bounds, |id| model[&id].clone());
            prop_assert_eq!(pruned, full);
            Ok(())
        })?;
    }
}

/// On 384-d data the bounds let a re-rank of 100 candidates for the 10 best read far
/// fewer than 100 originals (the point of them), and the result is unchanged; ids not
/// in the index come last, unbounded; f32 and binary indexes have no bounds.
#[test]
fn rerank_bounds_prune_most_candidates() {
    let dim = 384;
    for metric in Metric::ALL {
        let mut next = xorshift_vectors(7, dim);
        let mut ix = FlatIndex::new(dim, metric, Kind::Int8);
        let mut originals = HashMap::new();
        for id in 0..3000u64 {
            // A shared direction plus noise, so that neighbours are close together.
            let v: Vec<f32> = next().iter().enumerate().map(|(i, x)| x * 0.3 + if i % 3 == 0 { 5.0 } else { 0.0 }).collect();
            ix.upsert(id, &v).unwrap();
            originals.insert(id, v);
        }
        let (mut reads, mut searches) = (0, 0);
        for _ in 0..20 {
            let q = next();
            let mut scan = ix.scan(&q, 100).unwrap();
            while !ix.scan_step(&mut scan, usize::MAX, None) {}
            let query = scan.query().clone();
            let cands = scan.finish();
            let mut bounds = ix.rerank_bounds(&query, cands.iter().map(|c| c.0).chain([99_999])).unwrap();
            assert_eq!(bounds.pop(), Some(Bounded { id: 99_999, upper: f64::INFINITY }), "{metric:?}");
            let full = ix.rerank(&query, 10, cands.iter().map(|&(id, _)| (id, originals[&id].clone())));
            let (pruned, read) = pruned_rerank(&ix, &query, 10, &bounds, |id| originals[&id].clone());
            assert_eq!(pruned, full, "{metric:?}");
            reads += read;
            searches += 1;
        }
        assert!(reads < searches * 50, "{metric:?}: {reads} originals read for {searches} searches of 100 candidates");
        eprintln!("{metric:?}: {} originals read per search of 100 candidates", reads as f64 / searches as f64);
    }
    for kind in [Kind::F32, Kind::Binary] {
        let mut ix = FlatIndex::new(2, Metric::L2, kind);
        ix.upsert(1, &[1.0, 2.0]).unwrap();
        let query = ix.query(&[0.0, 1.0]).unwrap();
        assert_eq!(ix.rerank_bounds(&query, [1]), None);
    }
}
