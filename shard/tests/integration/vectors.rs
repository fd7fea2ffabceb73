//! The skeg vector dialect through `Shard::exec`, including restart.

use crate::*;
use keel_protocol::Value;

/// The ids of a VSEARCH reply, and checks the scores are doubles sorted best first.
async fn search_ids(s: &Shard, name: &str, k: usize, q: &[f32]) -> Vec<String> {
    let reply = s.exec(argv!["SKEG.VSEARCH", name, k.to_string(), "10", blob(q)]).await;
    let Value::Array(items) = reply else { panic!("VSEARCH reply {reply:?}") };
    assert_eq!(items.len() % 2, 0);
    let mut ids = Vec::new();
    let mut last = f64::INFINITY;
    for pair in items.chunks(2) {
        let (Value::Bulk(id), Value::Double(score)) = (&pair[0], &pair[1]) else { panic!("pair {pair:?}") };
        assert!(*score <= last + 1e-6, "scores not best first");
        last = *score;
        ids.push(String::from_utf8(id.clone()).unwrap());
    }
    ids
}

#[test]
fn create_list_drop() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.LIST"], Value::Array(vec![])).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "t:b", "3", "f32", "flat"], ok()).await;
        check(&s, argv!["skeg.vindex.create", "t:a", "2", "F32", "FLAT"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "t:a", "2", "f32", "flat"], err("ERR index already exists")).await;
        for bad in ["0", "65537", "-1", "x", "1.5", ""] {
            check(&s, argv!["SKEG.VINDEX.CREATE", "t:c", bad, "f32", "flat"], err("ERR invalid dimension")).await;
        }
        check(&s, argv!["SKEG.VINDEX.CREATE", "t:c", "65536", "f32", "flat"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.DROP", "t:c"], ok()).await;
        check(
            &s,
            argv!["SKEG.VINDEX.CREATE", "t:c", "4", "f16", "flat"],
            err("ERR unsupported vector kind 'f16' (supported: f32, int8, binary)"),
        )
        .await;
        check(
            &s,
            argv!["SKEG.VINDEX.CREATE", "t:c", "4", "f32", "hnsw"],
            err("ERR unsupported index backend 'hnsw' (supported: flat)"),
        )
        .await;
        check(&s, argv!["SKEG.VSET", "t:b", "1", blob(&[1.0, 0.0, 0.0])], ok()).await;
        check(
            &s,
            argv!["SKEG.VINDEX.LIST"],
            Value::Array(vec![
                bulk("name=t:a dim=2 kind=f32 metric=cosine backend=flat n_vectors=0"),
                bulk("name=t:b dim=3 kind=f32 metric=cosine backend=flat n_vectors=1"),
            ]),
        )
        .await;
        check(&s, argv!["SKEG.VINDEX.DROP", "t:b"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.DROP", "t:b"], err("ERR no such index 't:b'")).await;
        check(&s, argv!["SKEG.VINDEX.LIST"], Value::Array(vec![bulk("name=t:a dim=2 kind=f32 metric=cosine backend=flat n_vectors=0")]))
            .await;
        // A re-created index of the same name starts empty.
        check(&s, argv!["SKEG.VINDEX.CREATE", "t:b", "3", "f32", "flat"], ok()).await;
        assert_eq!(search_ids(&s, "t:b", 5, &[1.0, 0.0, 0.0]).await, Vec::<String>::new());
    });
}

#[test]
fn set_search_delete() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "v", "3", "f32", "flat"], ok()).await;
        check(&s, argv!["SKEG.VSET", "v", "1", blob(&[1.0, 0.0, 0.0])], ok()).await;
        check(&s, argv!["SKEG.VSET", "v", "2", blob(&[0.0, 1.0, 0.0])], ok()).await;
        check(&s, argv!["SKEG.VSET", "v", "3", blob(&[1.0, 1.0, 0.0])], ok()).await;
        check(&s, argv!["SKEG.VSET", "v", "18446744073709551615", blob(&[0.0, 0.0, 1.0])], ok()).await;
        assert_eq!(search_ids(&s, "v", 2, &[1.0, 0.1, 0.0]).await, ["1", "3"]);
        assert_eq!(search_ids(&s, "v", 10, &[0.0, 0.0, 2.0]).await[0], "18446744073709551615");
        assert_eq!(search_ids(&s, "v", 10, &[1.0, 0.0, 0.0]).await.len(), 4);
        // The exact score of an identical direction is 1.
        let reply = s.exec(argv!["SKEG.VSEARCH", "v", "1", "1", blob(&[2.0, 0.0, 0.0])]).await;
        let Value::Array(items) = reply else { panic!() };
        assert_eq!(items[0], bulk("1"));
        let Value::Double(score) = items[1] else { panic!() };
        assert!((score - 1.0).abs() < 1e-5, "{score}");

        // Replace moves the vector.
        check(&s, argv!["SKEG.VSET", "v", "1", blob(&[0.0, 1.0, 0.0])], ok()).await;
        assert_eq!(search_ids(&s, "v", 1, &[1.0, 0.0, 0.0]).await, ["3"]);

        // Errors, and nothing is written when they happen.
        check(&s, argv!["SKEG.VSET", "v", "-1", blob(&[1.0, 0.0, 0.0])], err("ERR invalid id")).await;
        check(&s, argv!["SKEG.VSET", "v", "01", blob(&[1.0, 0.0, 0.0])], err("ERR invalid id")).await;
        check(&s, argv!["SKEG.VSET", "v", "x", blob(&[1.0, 0.0, 0.0])], err("ERR invalid id")).await;
        check(&s, argv!["SKEG.VSET", "v", "9", blob(&[1.0, 0.0])], err("ERR vector blob is 8 bytes, expected 12 (4 x dim 3)"))
            .await;
        check(&s, argv!["SKEG.VSET", "v", "9", blob(&[1.0, f32::NAN, 0.0])], err("ERR vector component 1 is NaN or infinite"))
            .await;
        check(&s, argv!["SKEG.VSET", "v", "9", blob(&[0.0, 0.0, 0.0])], err("ERR zero vector has no cosine similarity"))
            .await;
        check(&s, argv!["SKEG.VSET", "nope", "9", blob(&[1.0, 0.0, 0.0])], err("ERR no such index 'nope'")).await;
        assert_eq!(search_ids(&s, "v", 10, &[1.0, 0.0, 0.0]).await.len(), 4);

        check(&s, argv!["SKEG.VSEARCH", "v", "0", "10", blob(&[1.0, 0.0, 0.0])], err("ERR k must be between 1 and 10000"))
            .await;
        check(&s, argv!["SKEG.VSEARCH", "v", "10001", "10", blob(&[1.0, 0.0, 0.0])], err("ERR k must be between 1 and 10000"))
            .await;
        check(&s, argv!["SKEG.VSEARCH", "v", "x", "10", blob(&[1.0, 0.0, 0.0])], err("ERR k must be between 1 and 10000"))
            .await;
        check(&s, argv!["SKEG.VSEARCH", "v", "1", "0", blob(&[1.0, 0.0, 0.0])], err("ERR l_search must be between 1 and 100000"))
            .await;
        check(&s, argv!["SKEG.VSEARCH", "v", "1", "10", blob(&[1.0])], err("ERR vector blob is 4 bytes, expected 12 (4 x dim 3)"))
            .await;
        check(&s, argv!["SKEG.VSEARCH", "nope", "1", "10", blob(&[1.0])], err("ERR no such index 'nope'")).await;

        check(&s, argv!["SKEG.VDEL", "v", "3"], int(1)).await;
        check(&s, argv!["SKEG.VDEL", "v", "3"], int(0)).await;
        check(&s, argv!["SKEG.VDEL", "v", "x"], err("ERR invalid id")).await;
        check(&s, argv!["SKEG.VDEL", "nope", "1"], err("ERR no such index 'nope'")).await;
        assert_eq!(search_ids(&s, "v", 10, &[1.0, 0.0, 0.0]).await.len(), 3);

        let Value::Map(fields) = s.exec(argv!["KEEL.INFO"]).await else { panic!() };
        assert_eq!(fields[2], (bulk("indexes"), int(1)));
        assert_eq!(fields[3], (bulk("vectors"), int(3)));
        assert!(matches!(fields[10].1, Value::Integer(n) if n > 0), "index_memory_bytes");

        // Vectors are not KV keys.
        check(&s, argv!["DBSIZE"], int(0)).await;
        check(&s, argv!["FLUSHALL"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.LIST"], Value::Array(vec![])).await;
        check(&s, argv!["SKEG.VSET", "v", "1", blob(&[1.0, 0.0, 0.0])], err("ERR no such index 'v'")).await;
    });
}

#[test]
fn restart_rebuilds_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let dim = 64;
    let vector = |i: u64| -> Vec<f32> { (0..dim).map(|j| ((i * 31 + j as u64 * 7) % 17) as f32 + 1.0).collect() };
    on_executor(|| async {
        let s = open(&path).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "keep", dim.to_string(), "f32", "flat"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "gone", dim.to_string(), "f32", "flat"], ok()).await;
        for i in 0..50u64 {
            check(&s, argv!["SKEG.VSET", "keep", i.to_string(), blob(&vector(i))], ok()).await;
            check(&s, argv!["SKEG.VSET", "gone", i.to_string(), blob(&vector(i))], ok()).await;
        }
        check(&s, argv!["SKEG.VDEL", "keep", "7"], int(1)).await;
        check(&s, argv!["SKEG.VINDEX.DROP", "gone"], ok()).await;
        // Same name again: must not see the dropped index's vectors, now or after restart.
        check(&s, argv!["SKEG.VINDEX.CREATE", "gone", dim.to_string(), "f32", "flat"], ok()).await;
        check(&s, argv!["SKEG.VSET", "gone", "1000", blob(&vector(3))], ok()).await;
        check(&s, argv!["SET", "kv", "1"], ok()).await;
        s.sync().await.unwrap();
    });
    let before = std::cell::RefCell::new(Vec::new());
    on_executor(|| async {
        let s = open(&path).await;
        check(
            &s,
            argv!["SKEG.VINDEX.LIST"],
            Value::Array(vec![
                bulk(format!("name=gone dim={dim} kind=f32 metric=cosine backend=flat n_vectors=1")),
                bulk(format!("name=keep dim={dim} kind=f32 metric=cosine backend=flat n_vectors=49")),
            ]),
        )
        .await;
        assert_eq!(search_ids(&s, "gone", 10, &vector(3)).await, ["1000"]);
        let ids = search_ids(&s, "keep", 5, &vector(7)).await;
        assert!(!ids.contains(&"7".to_string()));
        *before.borrow_mut() = ids;
        check(&s, argv!["GET", "kv"], bulk("1")).await;
        check(&s, argv!["DBSIZE"], int(1)).await;
        // Keep using it after the restart; then restart once more.
        check(&s, argv!["SKEG.VINDEX.DROP", "gone"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "new", "2", "f32", "flat"], ok()).await;
        check(&s, argv!["SKEG.VSET", "new", "1", blob(&[1.0, 2.0])], ok()).await;
        s.sync().await.unwrap();
    });
    on_executor(|| async {
        let s = open(&path).await;
        check(
            &s,
            argv!["SKEG.VINDEX.LIST"],
            Value::Array(vec![
                bulk(format!("name=keep dim={dim} kind=f32 metric=cosine backend=flat n_vectors=49")),
                bulk("name=new dim=2 kind=f32 metric=cosine backend=flat n_vectors=1"),
            ]),
        )
        .await;
        assert_eq!(search_ids(&s, "keep", 5, &vector(7)).await, *before.borrow());
    });
}

/// A round holding a VSET, a VDEL, an index creation and an index drop fails at its
/// fdatasync: every one of them fails, and the indexes (rebuilt from the store, which
/// took the round back) are as before it — also the dropped index's vectors, which the
/// drop had only forgotten from the keydir.
#[test]
fn vector_indexes_follow_the_store_back_after_a_failed_write() {
    use keel_storage::fault::{FaultFs, Op};
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let faults = FaultFs::new();
        let (store, recovery) = keel_storage::Store::open_with_faults(dir.path(), test_options(), &faults).await.unwrap();
        let s = Shard::with_store(store, recovery).await.unwrap();
        check(&s, argv!["SKEG.VINDEX.CREATE", "t:v", "2"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "t:gone", "2"], ok()).await;
        check(&s, argv!["SKEG.VSET", "t:v", "1", blob(&[1.0, 0.0])], ok()).await;
        check(&s, argv!["SKEG.VSET", "t:gone", "1", blob(&[1.0, 0.0])], ok()).await;
        let before = Value::Array(vec![
            bulk("name=t:gone dim=2 kind=f32 metric=cosine backend=flat n_vectors=1"),
            bulk("name=t:v dim=2 kind=f32 metric=cosine backend=flat n_vectors=1"),
        ]);

        faults.fail_next(Op::Sync, rustix::io::Errno::IO.raw_os_error());
        let mut replies = Vec::new();
        for argv in [
            argv!["SKEG.VSET", "t:v", "2", blob(&[0.0, 1.0])],
            argv!["SKEG.VDEL", "t:v", "1"],
            argv!["SKEG.VINDEX.CREATE", "t:new", "3"],
            argv!["SKEG.VINDEX.DROP", "t:gone"],
        ] {
            replies.push(s.handle(argv).await); // all in one group-commit round
        }
        for reply in replies {
            let v = reply.into_value().await;
            assert!(matches!(&v, Value::Error(e) if e.starts_with("ERR storage: ")), "{v:?}");
        }
        check(&s, argv!["SKEG.VINDEX.LIST"], before.clone()).await;
        assert_eq!(search_ids(&s, "t:v", 10, &[0.0, 1.0]).await, ["1"]);
        assert_eq!(search_ids(&s, "t:gone", 10, &[0.0, 1.0]).await, ["1"]);
        let refused = s.exec(argv!["SKEG.VSET", "t:v", "3", blob(&[0.0, 1.0])]).await;
        assert!(matches!(&refused, Value::Error(e) if e.contains("poisoned")), "{refused:?}");
        check(&s, argv!["SKEG.VINDEX.LIST"], before.clone()).await;
        drop(s);

        // After a restart, and after a power loss: the same.
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.LIST"], before.clone()).await;
        drop(s);
        faults.power_loss().await.unwrap();
        let (store, recovery) = keel_storage::Store::open_with_faults(dir.path(), test_options(), &faults).await.unwrap();
        let s = Shard::with_store(store, recovery).await.unwrap();
        check(&s, argv!["SKEG.VINDEX.LIST"], before).await;
        assert_eq!(search_ids(&s, "t:gone", 10, &[0.0, 1.0]).await, ["1"]);
    });
}

/// The `[id, score, …]` pairs of a VSEARCH reply.
async fn search(s: &Shard, name: &str, k: usize, l_search: usize, q: &[f32]) -> Vec<(u64, f64)> {
    let reply = s.exec(argv!["SKEG.VSEARCH", name, k.to_string(), l_search.to_string(), blob(q)]).await;
    let Value::Array(items) = reply else { panic!("VSEARCH reply {reply:?}") };
    items
        .chunks(2)
        .map(|pair| match pair {
            [Value::Bulk(id), Value::Double(score)] => (std::str::from_utf8(id).unwrap().parse().unwrap(), *score),
            _ => panic!("pair {pair:?}"),
        })
        .collect()
}

#[test]
fn kinds_and_metrics_are_options_of_create() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "a", "2", "int8", "flat", "METRIC", "l2"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "b", "2", "binary", "metric", "IP"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "c", "2", "METRIC", "ip"], ok()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "d", "2"], ok()).await;
        let unknown = err("ERR unknown metric 'dot' (supported: cosine, l2, ip)");
        check(&s, argv!["SKEG.VINDEX.CREATE", "e", "2", "f32", "METRIC", "dot"], unknown).await;
        for bad in [argv!["SKEG.VINDEX.CREATE", "e", "2", "f32", "METRIC"], argv!["SKEG.VINDEX.CREATE", "e", "2", "f32", "flat", "x"]] {
            check(&s, bad, err("ERR syntax error")).await;
        }
        check(
            &s,
            argv!["SKEG.VINDEX.LIST"],
            Value::Array(vec![
                bulk("name=a dim=2 kind=int8 metric=l2 backend=flat n_vectors=0"),
                bulk("name=b dim=2 kind=binary metric=ip backend=flat n_vectors=0"),
                bulk("name=c dim=2 kind=f32 metric=ip backend=flat n_vectors=0"),
                bulk("name=d dim=2 kind=f32 metric=cosine backend=flat n_vectors=0"),
            ]),
        )
        .await;
    });
}

#[test]
fn vmset_stores_all_or_nothing_and_vget_returns_the_blob() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "v", "3", "int8", "METRIC", "l2"], ok()).await;
        let (a, b) = (blob(&[1.0, 2.0, 3.0]), blob(&[0.0, 0.0, 0.5]));
        check(&s, argv!["SKEG.VMSET", "v", "1", a.clone(), "2", blob(&[9.0, 9.0, 9.0]), "2", b.clone()], Value::Integer(3)).await;
        check(&s, argv!["SKEG.VGET", "v", "1"], Value::Bulk(a.clone())).await;
        check(&s, argv!["SKEG.VGET", "v", "2"], Value::Bulk(b)).await; // the last of a repeated id
        check(&s, argv!["SKEG.VGET", "v", "3"], Value::Null).await;
        check(&s, argv!["SKEG.VGET", "nope", "3"], err("ERR no such index 'nope'")).await;
        check(&s, argv!["SKEG.VGET", "v", "x"], err("ERR invalid id")).await;
        // One bad pair: an error and nothing stored.
        let bad_cases = [
            (argv!["SKEG.VMSET", "v", "5", a.clone(), "6", blob(&[1.0, f32::NAN, 0.0])], "ERR vector component 1 is NaN or infinite"),
            (argv!["SKEG.VMSET", "v", "5", a.clone(), "6", vec![0u8; 5]], "ERR vector blob is 5 bytes, expected 12 (4 x dim 3)"),
            (argv!["SKEG.VMSET", "v", "5", a.clone(), "-6", a.clone()], "ERR invalid id"),
            (argv!["SKEG.VMSET", "v", "5", a.clone(), "6"], "ERR wrong number of arguments for 'skeg.vmset' command"),
        ];
        for (argv, e) in bad_cases {
            check(&s, argv, err(e)).await;
            check(&s, argv!["SKEG.VGET", "v", "5"], Value::Null).await;
        }
        assert_eq!(search(&s, "v", 5, 10, &[0.0, 0.0, 0.0]).await.iter().map(|h| h.0).collect::<Vec<_>>(), [2, 1]);
    });
}

/// Vectors on a 2-D grid, so that every metric has a known order.
fn grid() -> Vec<(u64, [f32; 2])> {
    (0..400u64).map(|i| (i, [(i % 20) as f32 - 9.5, (i / 20) as f32 * 0.5 - 4.0])).collect()
}

/// The exact ranking of `grid()` for `q` under `metric`, as (id, score), best first.
fn exact(metric: &str, q: [f32; 2], k: usize) -> Vec<(u64, f64)> {
    let score = |v: [f32; 2]| -> f64 {
        let (x, y) = (f64::from(v[0]), f64::from(v[1]));
        let (qx, qy) = (f64::from(q[0]), f64::from(q[1]));
        match metric {
            "cosine" => (x * qx + y * qy) / ((x * x + y * y).sqrt() * (qx * qx + qy * qy).sqrt()),
            "ip" => x * qx + y * qy,
            _ => ((x - qx).powi(2) + (y - qy).powi(2)).sqrt(),
        }
    };
    let mut all: Vec<(u64, f64)> = grid().into_iter().map(|(id, v)| (id, score(v))).collect();
    let better = |a: f64, b: f64| if metric == "l2" { a.total_cmp(&b) } else { b.total_cmp(&a) };
    all.sort_by(|a, b| better(a.1, b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

#[test]
fn every_kind_and_metric_returns_the_exact_top_k_after_rerank() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path()).await;
        let mut names = Vec::new();
        for kind in ["f32", "int8", "binary"] {
            for metric in ["cosine", "l2", "ip"] {
                let name = format!("{kind}-{metric}");
                check(&s, argv!["SKEG.VINDEX.CREATE", name.clone(), "2", kind, "METRIC", metric], ok()).await;
                let mut cmd = argv!["SKEG.VMSET", name.clone()];
                for (id, v) in grid() {
                    cmd.push(id.to_string().into_bytes());
                    cmd.push(blob(&v));
                }
                check(&s, cmd, Value::Integer(400)).await;
                names.push((name, metric));
            }
        }
        for round in 0..2 {
            for (name, metric) in &names {
                for q in [[1.0, 0.25], [-3.0, 2.0], [0.1, -7.0]] {
                    // A re-rank depth of every vector makes int8 and binary exact too.
                    let got = search(&s, name, 7, 400, &q).await;
                    let want = exact(metric, q, 7);
                    let ids = |v: &[(u64, f64)]| v.iter().map(|h| h.0).collect::<Vec<_>>();
                    // Exact up to f32 rounding: compare scores, and ids where scores differ.
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g.1 - w.1).abs() < 1e-4, "{name} round {round} q {q:?}: {got:?} vs {want:?}");
                    }
                    assert_eq!(got.len(), 7, "{name}");
                    if want.windows(2).all(|p| (p[0].1 - p[1].1).abs() > 1e-4) {
                        assert_eq!(ids(&got), ids(&want), "{name} q {q:?}");
                    }
                }
            }
            // The kinds, metrics and codes survive a restart.
            drop(s);
            s = open(dir.path()).await;
        }
    });
}

/// A VSEARCH reply with WITHPAYLOAD: (id, score, payload).
async fn search_with_payload(s: &Shard, argv: Vec<Vec<u8>>) -> Vec<(u64, f64, Option<Vec<u8>>)> {
    let reply = s.exec(argv).await;
    let Value::Array(items) = reply else { panic!("VSEARCH reply {reply:?}") };
    items
        .chunks(3)
        .map(|t| match t {
            [Value::Bulk(id), Value::Double(score), p] => (
                std::str::from_utf8(id).unwrap().parse().unwrap(),
                *score,
                match p {
                    Value::Bulk(b) => Some(b.clone()),
                    Value::Null => None,
                    other => panic!("payload {other:?}"),
                },
            ),
            _ => panic!("triple {t:?}"),
        })
        .collect()
}

#[test]
fn filtered_search_is_the_top_k_of_the_matching_vectors() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path()).await;
        let payload = |id: u64| match id % 3 {
            0 => format!("n={} lang=en", id % 100).into_bytes(),
            1 => format!(r#"{{"n": {}, "lang": "de", "tags": ["a", "b"]}}"#, id % 100).into_bytes(),
            _ => Vec::new(), // no payload
        };
        for kind in ["f32", "int8"] {
            let name = format!("p-{kind}");
            check(&s, argv!["SKEG.VINDEX.CREATE", name.clone(), "2", kind, "METRIC", "l2"], ok()).await;
            for (id, v) in grid() {
                let mut cmd = argv!["SKEG.VSET", name.clone(), id.to_string(), blob(&v)];
                if !payload(id).is_empty() {
                    cmd.extend(argv!["PAYLOAD", payload(id)]);
                }
                check(&s, cmd, ok()).await;
            }
        }
        // The matching set by brute force: (filter, predicate on id).
        type Pred = fn(u64) -> bool;
        let cases: [(&str, Pred); 6] = [
            ("n = 7 AND lang = en", |id| id % 3 == 0 && id % 100 == 7), // ~1%: scores only those slots
            ("n < 50", |id| id % 3 != 2 && id % 100 < 50),               // broad: scans and keeps
            ("lang != de", |id| id % 3 != 1),
            ("NOT tags EXISTS", |id| id % 3 != 1),
            ("tags IN (b, c) AND n BETWEEN 10 AND 20", |id| id % 3 == 1 && (10..=20).contains(&(id % 100))),
            ("n > 1000", |_| false),
        ];
        for round in 0..2 {
            for kind in ["f32", "int8"] {
                let name = format!("p-{kind}");
                for (expr, pred) in cases {
                    let q = [0.3f32, -1.2];
                    let want: Vec<u64> = exact("l2", q, 400).into_iter().map(|h| h.0).filter(|&id| pred(id)).take(5).collect();
                    let argv = argv!["SKEG.VSEARCH", name.clone(), "5", "400", blob(&q), "WITHPAYLOAD", "FILTER", expr];
                    let got = search_with_payload(&s, argv).await;
                    assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), want, "{name} {expr} round {round}");
                    for (id, _, p) in got {
                        let stored = payload(id);
                        assert_eq!(p, (!stored.is_empty()).then_some(stored), "payload of {id}");
                    }
                }
            }
            drop(s);
            s = open(dir.path()).await; // payloads and posting lists come back
        }
        // Replacing a vector without PAYLOAD drops its payload; a deleted one is gone.
        check(&s, argv!["SKEG.VSET", "p-f32", "7", blob(&[0.3, -1.2])], ok()).await;
        check(&s, argv!["SKEG.VDEL", "p-f32", "207"], Value::Integer(1)).await;
        let got = search(&s, "p-f32", 5, 10, &[0.3, -1.2]).await;
        assert_eq!(got[0].0, 7);
        let argv = argv!["SKEG.VSEARCH", "p-f32", "5", "10", blob(&[0.3, -1.2]), "FILTER", "n = 7"];
        let ids: Vec<u64> = search_with_payload(&s, [argv, argv!["WITHPAYLOAD"]].concat()).await.iter().map(|h| h.0).collect();
        assert!(!ids.contains(&7) && !ids.contains(&207), "{ids:?}");
        // VGET returns the vector alone.
        check(&s, argv!["SKEG.VGET", "p-f32", "3"], Value::Bulk(blob(&grid()[3].1))).await;
    });
}

#[test]
fn bad_payloads_and_filters_are_errors_that_change_nothing() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "v", "2"], ok()).await;
        check(&s, argv!["SKEG.VSET", "v", "1", blob(&[1.0, 0.0]), "PAYLOAD", "a=1"], ok()).await;
        let v = blob(&[0.0, 1.0]);
        let cases = [
            (argv!["SKEG.VSET", "v", "1", v.clone(), "PAYLOAD", r#"{"a": 1"#], "ERR payload: "),
            (argv!["SKEG.VSET", "v", "1", v.clone(), "PAYLOAD", "a=1 b"], "ERR payload: "),
            (argv!["SKEG.VSET", "v", "1", v.clone(), "PAYLOAD", vec![b'x'; 65537]], "ERR payload is 65537 bytes, the limit is 65536"),
            (argv!["SKEG.VSET", "v", "1", v.clone(), "PAYLOAD"], "ERR syntax error"),
            (argv!["SKEG.VSET", "v", "1", v.clone(), "WITH", "a=1"], "ERR syntax error"),
            (argv!["SKEG.VSEARCH", "v", "1", "1", v.clone(), "FILTER", "a = "], "ERR filter error at position "),
            (argv!["SKEG.VSEARCH", "v", "1", "1", v.clone(), "FILTER"], "ERR syntax error"),
            (argv!["SKEG.VSEARCH", "v", "1", "1", v.clone(), "WITHSCORES"], "ERR syntax error"),
        ];
        for (argv, prefix) in cases {
            let shown = String::from_utf8_lossy(&argv[argv.len() - 1][..argv[argv.len() - 1].len().min(20)]).into_owned();
            match s.exec(argv).await {
                Value::Error(e) => assert!(e.starts_with(prefix), "{shown}: {e}"),
                other => panic!("{shown}: {other:?}"),
            }
        }
        // Vector 1 is unchanged, payload included.
        let got = search_with_payload(&s, argv!["SKEG.VSEARCH", "v", "1", "1", blob(&[1.0, 0.0]), "FILTER", "a = 1", "WITHPAYLOAD"]).await;
        assert_eq!(got, vec![(1, 1.0, Some(b"a=1".to_vec()))]);
    });
}

/// A vector whose payload stops matching while a filtered search runs (the search
/// yields between slices, and its matching slots were taken at its start) is not
/// returned.
#[test]
fn a_vector_that_stops_matching_during_a_search_is_not_returned() {
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        let dim = 256; // 1 KiB rows: a search scans 1024 slots per slice
        check(&s, argv!["SKEG.VINDEX.CREATE", "v", dim.to_string(), "f32", "METRIC", "l2"], ok()).await;
        let row = |x: f32| {
            let mut v = vec![0.0f32; dim];
            v[0] = x;
            blob(&v)
        };
        for id in 0..3000u64 {
            let tag = if id % 2 == 0 { "even" } else { "odd" };
            check(&s, argv!["SKEG.VSET", "v", id.to_string(), row(id as f32), "PAYLOAD", format!("tag={tag}")], ok()).await;
        }
        // The best match for the query, id 2500, lies past the first slice.
        let mut search = Box::pin(s.exec(argv!["SKEG.VSEARCH", "v", "2", "10", row(2500.0), "FILTER", "tag = even"]));
        assert!(futures_lite::future::poll_once(&mut search).await.is_none(), "the search yields after its first slice");
        check(&s, argv!["SKEG.VSET", "v", "2500", row(2500.0), "PAYLOAD", "tag=odd"], ok()).await;
        let Value::Array(items) = search.await else { panic!("VSEARCH reply") };
        let ids: Vec<&Value> = items.iter().step_by(2).collect();
        assert_eq!(ids, [&bulk("2498"), &bulk("2502")], "2500 no longer matches");
    });
}

/// Unfiltered searches of one index in progress together scan it together (one shared
/// scan): each returns exactly what the same search returns alone, for every kind,
/// whether it joined the scan at its start or in the middle of the others' (the second
/// and third start after the first ran a slice), with its own k and l_search; one
/// dropped midway (its client went away) leaves it, and no search is left in a shared
/// scan at the end.
#[test]
fn searches_in_progress_together_return_what_each_returns_alone() {
    on_executor(|| async {
        for kind in ["f32", "int8", "binary"] {
            let dir = tempfile::tempdir().unwrap();
            let s = open(dir.path()).await;
            let dim = 64;
            check(&s, argv!["SKEG.VINDEX.CREATE", "v", dim.to_string(), kind, "METRIC", "l2"], ok()).await;
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let mut vector = move || -> Vec<f32> {
                (0..dim)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 2001) as f32 / 100.0 - 10.0
                    })
                    .collect()
            };
            for batch in 0..8u64 {
                let mut argv = argv!["SKEG.VMSET", "v"];
                for id in batch * 1000..(batch + 1) * 1000 {
                    argv.push(id.to_string().into_bytes());
                    argv.push(blob(&vector()));
                }
                check(&s, argv, int(1000)).await;
            }
            let searches: Vec<Vec<Vec<u8>>> = [(10, 10), (3, 50), (25, 25), (7, 100)]
                .into_iter()
                .map(|(k, l): (usize, usize)| argv!["SKEG.VSEARCH", "v", k.to_string(), l.to_string(), blob(&vector())])
                .collect();
            let mut alone = Vec::new();
            for argv in &searches {
                alone.push(s.exec(argv.clone()).await);
            }
            let mut first = Box::pin(s.exec(searches[0].clone()));
            let mut dropped = Box::pin(s.exec(searches[3].clone()));
            let first_done = futures_lite::future::poll_once(&mut first).await;
            let _ = futures_lite::future::poll_once(&mut dropped).await;
            let (second, third) = (s.exec(searches[1].clone()), s.exec(searches[2].clone()));
            drop(dropped);
            let ((a, b), c) = futures_lite::future::zip(
                futures_lite::future::zip(async { if let Some(v) = first_done { v } else { first.await } }, second),
                third,
            )
            .await;
            assert_eq!([a, b, c], [alone[0].clone(), alone[1].clone(), alone[2].clone()], "{kind}");
            assert_eq!(s.shared_scan_members(), 0, "{kind}: every search left its shared scan");
        }
    });
}

/// Purges the binary asked for, counted (only the test below writes bulk vectors).
static RELEASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_release() {
    RELEASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// A bulk vector write (≥ 256 KiB of values) asks for the freed memory to be given back
/// once it committed, and only when no other bulk write is in flight: two together ask
/// once, at the end; small writes never ask.
#[test]
fn the_end_of_a_bulk_vector_load_gives_freed_memory_back() {
    use std::sync::atomic::Ordering::SeqCst;
    keel_shard::set_release_freed(count_release);
    on_executor(|| async {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path()).await;
        check(&s, argv!["SKEG.VINDEX.CREATE", "v", "256", "int8"], ok()).await;
        let vmset = |from: u64, n: u64| {
            let mut argv = argv!["SKEG.VMSET", "v"];
            for id in from..from + n {
                argv.push(id.to_string().into_bytes());
                argv.push(blob(&[id as f32 + 1.0; 256]));
            }
            argv
        };
        let before = RELEASES.load(SeqCst);
        check(&s, vmset(0, 10), int(10)).await; // 10 KiB
        check(&s, argv!["SKEG.VSET", "v", "7", blob(&[1.0; 256])], ok()).await;
        assert_eq!(RELEASES.load(SeqCst), before, "small writes do not purge");
        let (a, b) = futures_lite::future::zip(s.exec(vmset(0, 300)), s.exec(vmset(300, 300))).await; // 300 KiB each
        assert_eq!((a, b), (int(300), int(300)));
        assert_eq!(RELEASES.load(SeqCst), before + 1, "two bulk writes in flight together purge once, after both");
        check(&s, vmset(600, 300), int(300)).await;
        assert_eq!(RELEASES.load(SeqCst), before + 2);
    });
}
