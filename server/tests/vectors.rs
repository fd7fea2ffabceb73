//! Vector search quality against the real binary on the committed real data sets
//! (`../shared/data`): recall@10 floors for every kind of flat index, the same answers
//! after a restart, and KV requests answered while searches run.

mod common;

use common::check::{check, run, Reply};
use common::{blob, Scratch, Server};
use redis::Value;
use std::path::PathBuf;

/// A committed data set of `../shared/data` (TEXMEX formats, see its README).
struct DataSet {
    dim: usize,
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    /// Per query, the exact nearest base ids, nearest first.
    gt: Vec<Vec<u32>>,
}

fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(name)
}

fn read_vecs(path: &PathBuf) -> Vec<Vec<[u8; 4]>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e} (data sets: ../shared/data)", path.display()));
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let dim = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        out.push(bytes[at..at + 4 * dim].chunks_exact(4).map(|c| c.try_into().unwrap()).collect());
        at += 4 * dim;
    }
    out
}

impl DataSet {
    fn open(name: &str) -> DataSet {
        let dir = data_dir(name);
        let floats = |f: &str| -> Vec<Vec<f32>> {
            read_vecs(&dir.join(f)).into_iter().map(|v| v.into_iter().map(f32::from_le_bytes).collect()).collect()
        };
        let (base, queries) = (floats("base.fvecs"), floats("query.fvecs"));
        let gt = read_vecs(&dir.join("gt.ivecs")).into_iter().map(|v| v.into_iter().map(u32::from_le_bytes).collect()).collect();
        DataSet { dim: base[0].len(), base, queries, gt }
    }

    /// Loads every base vector into `index` with SKEG.VMSET batches.
    fn load(&self, c: &mut redis::Connection, index: &str) {
        for (b, chunk) in self.base.chunks(500).enumerate() {
            let mut argv: Vec<Vec<u8>> = vec![b"SKEG.VMSET".to_vec(), index.into()];
            for (i, v) in chunk.iter().enumerate() {
                argv.push((b * 500 + i).to_string().into_bytes());
                argv.push(blob(v));
            }
            assert_eq!(run(c, &argv).expect("SKEG.VMSET"), Value::Int(chunk.len() as i64));
        }
    }

    /// Every query's top-10 ids from `index`.
    fn search(&self, c: &mut redis::Connection, index: &str, l_search: usize) -> Vec<Vec<u64>> {
        self.queries
            .iter()
            .map(|q| {
                let argv = [b"SKEG.VSEARCH".to_vec(), index.into(), b"10".to_vec(), l_search.to_string().into_bytes(), blob(q)];
                match run(c, &argv).expect("SKEG.VSEARCH") {
                    Value::Array(items) => items.chunks(2).map(|p| common::text(&p[0]).parse().unwrap()).collect(),
                    other => panic!("SKEG.VSEARCH reply {other:?}"),
                }
            })
            .collect()
    }

    /// Mean recall@10 of `results` against the ground truth.
    fn recall_at_10(&self, results: &[Vec<u64>]) -> f64 {
        let hits: usize = results
            .iter()
            .zip(&self.gt)
            .map(|(r, gt)| r.iter().filter(|id| gt[..10].contains(&(**id as u32))).count())
            .sum();
        hits as f64 / (10 * results.len()) as f64
    }
}

/// bigann10k (SIFT, l2): each kind above its floor, and the same results after a
/// restart (the codes are rebuilt from the vLog).
#[test]
fn recall_floors_on_bigann10k_for_each_kind() {
    let data = DataSet::open("bigann10k");
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con();
    // (kind, l_search, recall@10 floor)
    let kinds = [("f32", 10, 0.999), ("int8", 50, 0.99), ("binary", 1000, 0.95)];
    let mut before = Vec::new();
    for (kind, l_search, floor) in kinds {
        let index = format!("sift:{kind}");
        check(&mut c, &["SKEG.VINDEX.CREATE", &index, &data.dim.to_string(), kind, "METRIC", "l2"], Reply::Ok);
        data.load(&mut c, &index);
        let results = data.search(&mut c, &index, l_search);
        let recall = data.recall_at_10(&results);
        eprintln!("bigann10k {kind} l_search {l_search}: recall@10 {recall:.4}");
        assert!(recall >= floor, "{kind}: recall@10 {recall:.4} below {floor}");
        before.push((index, l_search, results));
    }
    drop(c);
    srv.stop();
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con();
    for (index, l_search, results) in before {
        assert_eq!(data.search(&mut c, &index, l_search), results, "{index} after restart");
    }
}

/// Squared l2 distance in f64 (exact for SIFT's integer components).
fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum()
}

/// bigann10k with a payload per vector (`bucket=id%100 parity=even|odd`): filtered
/// searches at 1%, 10% and 50% selectivity return exactly the brute-force top-10 of the
/// matching vectors (on f32, where SIFT's integer distances are exact), payloads
/// verbatim; bad payloads and filters are errors that store nothing.
#[test]
fn filtered_search_on_bigann10k_is_the_top_k_of_the_matching_vectors() {
    let data = DataSet::open("bigann10k");
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con3();
    check(&mut c, &["SKEG.VINDEX.CREATE", "sift:p", &data.dim.to_string(), "f32", "METRIC", "l2"], Reply::Ok);
    let payload = |id: usize| format!("bucket={} parity={}", id % 100, if id.is_multiple_of(2) { "even" } else { "odd" });
    let mut pipe = redis::pipe();
    for (id, v) in data.base.iter().enumerate() {
        pipe.cmd("SKEG.VSET").arg("sift:p").arg(id).arg(blob(v)).arg("PAYLOAD").arg(payload(id)).ignore();
    }
    let () = pipe.query(&mut c).expect("load with payloads");
    type Pred = fn(usize) -> bool;
    let cases: [(&str, Pred); 3] =
        [("bucket = 7", |id| id % 100 == 7), ("bucket < 10", |id| id % 100 < 10), ("parity = even", |id| id.is_multiple_of(2))];
    for (expr, pred) in cases {
        for q in data.queries.iter().take(20) {
            let mut all: Vec<(f64, usize)> =
                data.base.iter().enumerate().filter(|(id, _)| pred(*id)).map(|(id, v)| (l2(q, v), id)).collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let argv = [b"SKEG.VSEARCH".to_vec(), b"sift:p".to_vec(), b"10".to_vec(), b"10".to_vec(), blob(q)];
            let argv = [&argv[..], &[b"FILTER".to_vec(), expr.into(), b"WITHPAYLOAD".to_vec()]].concat();
            let Value::Array(items) = run(&mut c, &argv).expect("filtered search") else { panic!("reply") };
            let got: Vec<(usize, f64, String)> = items
                .chunks(3)
                .map(|t| match t {
                    [id, Value::Double(d), p] => (common::text(id).parse().unwrap(), *d, common::text(p)),
                    _ => panic!("triple {t:?}"),
                })
                .collect();
            assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), all.iter().take(10).map(|h| h.1).collect::<Vec<_>>(), "{expr}");
            for (id, d, p) in &got {
                assert_eq!(p, &payload(*id));
                assert!((d - l2(q, &data.base[*id]).sqrt()).abs() < 1e-3, "score of {id}: {d}");
            }
        }
    }
    let v = blob(&data.base[0]);
    for (argv, want) in [
        (vec![b"SKEG.VSET".to_vec(), b"sift:p".to_vec(), b"0".to_vec(), v.clone(), b"PAYLOAD".to_vec(), b"{\"a\":".to_vec()], "payload: "),
        (vec![b"SKEG.VSEARCH".to_vec(), b"sift:p".to_vec(), b"1".to_vec(), b"1".to_vec(), v.clone(), b"FILTER".to_vec(), b"bucket IN ()".to_vec()], "filter error at position 11"),
    ] {
        let e = run(&mut c, &argv).expect_err("an error reply");
        assert!(common::err_line(&e).contains(want), "{}", common::err_line(&e));
    }
    let got = run(&mut c, &[b"SKEG.VGET".to_vec(), b"sift:p".to_vec(), b"0".to_vec()]).unwrap();
    assert_eq!(got, Value::BulkString(v), "vector 0 unchanged");
}

/// KV requests to the shard of an index are answered while searches of that index run:
/// searches work in slices and wait for the shard's next I/O poll between them
/// (`ops::vector`), so 20 GETs and SETs, one at a time, all finish while three clients
/// are still in the middle of their searches (each search of 40,000 × 128 f32 rows takes
/// far longer than a KV round trip in this debug build). If a search ran to its end
/// before anything else (no slices), each KV request would wait for whole searches and
/// the 24 searches would end first.
#[test]
fn kv_requests_are_answered_while_searches_run() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con();
    let dim = 128;
    check(&mut c, &["SKEG.VINDEX.CREATE", "t:vec", &dim.to_string(), "f32", "METRIC", "l2"], Reply::Ok);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f32 / 10.0
    };
    for batch in 0..40u64 {
        let mut argv = vec![b"SKEG.VMSET".to_vec(), b"t:vec".to_vec()];
        for id in batch * 1000..(batch + 1) * 1000 {
            let v: Vec<f32> = (0..dim).map(|_| next()).collect();
            argv.push(id.to_string().into_bytes());
            argv.push(blob(&v));
        }
        assert_eq!(run(&mut c, &argv).unwrap(), Value::Int(1000));
    }
    let query: Vec<f32> = (0..dim).map(|_| next()).collect();
    let started = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (mut s, started, query) = (srv.con(), started.clone(), query.clone());
            std::thread::spawn(move || {
                for i in 0..8 {
                    let argv = [b"SKEG.VSEARCH".to_vec(), b"t:vec".to_vec(), b"10".to_vec(), b"10".to_vec(), blob(&query)];
                    if i == 0 {
                        started.fetch_add(1, Ordering::SeqCst);
                    }
                    assert!(matches!(run(&mut s, &argv).unwrap(), Value::Array(ref items) if items.len() == 20));
                }
            })
        })
        .collect();
    while started.load(Ordering::SeqCst) < 3 {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(20)); // the searches are under way
    for i in 0..10 {
        check(&mut c, &["SET", "t:probe", &i.to_string()], Reply::Ok);
        assert_eq!(common::text(&run(&mut c, &[b"GET".to_vec(), b"t:probe".to_vec()]).unwrap()), i.to_string());
    }
    let kv_done_while_searching = clients.iter().any(|t| !t.is_finished());
    for t in clients {
        t.join().unwrap();
    }
    assert!(kv_done_while_searching, "the 20 KV requests waited for the searches to end");
}
