//! `keel bench` end to end against the real binary: a small l2 data set written here
//! (integer vectors, so distances are exact; the ground truth by brute force), loaded
//! with SKEG.VMSET batches into an int8 index, searched with the KV probe on. With
//! l_search ≥ the number of rows every vector is re-ranked exactly, so recall is 1.

mod common;

use common::{keel_bin, Scratch, Server};
use std::path::Path;
use std::process::Command;

const DIM: usize = 8;
const N_BASE: usize = 300;
const N_QUERY: usize = 5;
const GT_K: usize = 10;

/// Deterministic small integers (a 64-bit LCG), row by row.
fn rows(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            (0..DIM)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((x >> 33) % 256) as f32
                })
                .collect()
        })
        .collect()
}

fn write_vecs(path: &Path, rows: &[Vec<f32>]) {
    let mut b = Vec::new();
    for r in rows {
        b.extend((r.len() as i32).to_le_bytes());
        r.iter().for_each(|x| b.extend(x.to_le_bytes()));
    }
    std::fs::write(path, b).unwrap();
}

/// The `GT_K` nearest base rows of each query by squared l2, ties by smaller id.
fn write_gt(path: &Path, base: &[Vec<f32>], queries: &[Vec<f32>]) {
    let mut b = Vec::new();
    for q in queries {
        let mut d: Vec<(f32, i32)> = base
            .iter()
            .enumerate()
            .map(|(i, r)| (r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), i as i32))
            .collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        b.extend((GT_K as i32).to_le_bytes());
        d[..GT_K].iter().for_each(|(_, i)| b.extend(i.to_le_bytes()));
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn int8_l2_with_kv_probe() {
    let scratch = Scratch::new();
    let data = scratch.path().join("set");
    std::fs::create_dir(&data).unwrap();
    let (base, queries) = (rows(N_BASE, 1), rows(N_QUERY, 2));
    write_vecs(&data.join("base.fvecs"), &base);
    write_vecs(&data.join("query.fvecs"), &queries);
    write_gt(&data.join("gt.ivecs"), &base, &queries);
    // The metric comes from meta.json when --metric is not given.
    std::fs::write(data.join("meta.json"), r#"{"name": "tiny", "dim": 8, "metric": "l2"}"#).unwrap();

    let server = Server::start(&scratch, &[]);
    let out = scratch.path().join("report.md");
    let run = Command::new(keel_bin())
        .args(["bench", "--addr", &server.addr.to_string(), "--data", data.to_str().unwrap()])
        .args(["--kind", "int8", "--l-search", "400", "--batch", "64", "--pipeline", "2", "--clients", "1,2"])
        .args(["--min-queries", "200", "--kv-probe", "--server-pid", &server.pid.to_string()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "keel bench failed: {stderr}");
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(report.contains("- Index: `bench:vec` (flat, int8, l2), k = 10, l_search = 400"), "{report}");
    assert!(report.contains("- Load: 300 vectors in"), "{report}");
    assert!(report.contains("SKEG.VMSET of 64 vectors, 2 in flight each"), "{report}");
    assert!(report.contains("- KV probe alone (3 s, no search): GET p50/p99/max"), "{report}");
    let rows: Vec<Vec<&str>> = report
        .lines()
        .filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{report}");
    for r in rows {
        assert_eq!(r.len(), 9, "{r:?}");
        assert_eq!((r[1], r[5], r[6]), ("200", "1.0000", "1.0000"), "{r:?}");
        assert!(r[7] != "-" && r[8] != "-", "the probe ran beside the searches: {r:?}");
    }
    let mut con = server.con();
    let _: () = redis::cmd("PING").query(&mut con).unwrap();
    let n: Vec<String> = redis::cmd("SKEG.VINDEX.LIST").query(&mut con).unwrap();
    assert_eq!(n, ["name=bench:vec dim=8 kind=int8 metric=l2 backend=flat n_vectors=300"]);
    let probe: String = redis::cmd("GET").arg("bench:probe").query(&mut con).unwrap();
    assert_eq!(probe, "probe-v1");
}
