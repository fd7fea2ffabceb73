//! `keel bench`: load a vector data set into a running keel and measure search
//! throughput, latency and recall.
//!
//! A plain client program: blocking `std::net::TcpStream`s and OS threads, RESP2
//! through `keel_protocol::resp`. The flow is: drop and re-create the index
//! (`SKEG.VINDEX.DROP` / `SKEG.VINDEX.CREATE <name> <dim> <kind> flat METRIC <metric>`),
//! load every base vector with pipelined `SKEG.VMSET <name> <row> <blob> …` batches,
//! then for each client count run the query set (repeated until at least
//! `--min-queries` queries) with one `SKEG.VSEARCH <name> <k> <l_search> <blob>` in
//! flight per client, and report QPS, p50/p99 latency and recall@1/@10 against the
//! ground truth. The first 100 queries are sent once, untimed, before the first
//! measurement.
//!
//! With `--kv-probe`, one more connection sends `SET`/`GET` of a small key on the
//! index's tenant (so the index's shard serves it), one request at a time, first alone
//! for [`PROBE_ALONE`] and then beside every search run, and the report gives its
//! latency: what a KV client of the same shard sees while searches scan.
//!
//! Data set files (the TEXMEX formats, all little-endian): `base.fvecs` and
//! `query.fvecs` hold, per vector, an i32 dimension then that many f32; `gt.ivecs`
//! holds, per query, an i32 count then that many i32 ids of the true nearest base rows,
//! nearest first, 0-based. Vector ids in keel are the base row numbers. The metric
//! defaults to the `"metric"` of the data set's `meta.json` (`make-data` writes it).

mod conn;
mod data;
mod probe;
mod report;

use anyhow::{anyhow, bail, ensure, Context, Result};
use conn::{check, Conn};
use data::{DataSet, Fvecs};
use indicatif::{ProgressBar, ProgressStyle};
use keel_protocol::Value;
use probe::{probe_key, Probe, ProbeLatencies, PROBE_ALONE};

/// How long after the load the server's RSS is read again: twice the allocator's decay
/// time (`dirty_decay_ms` 1000, server/src/alloc.rs), after which the load's freed
/// buffers are back with the OS.
pub(crate) const RSS_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
use report::{load_average, machine_description, server_rss, shell_join, utc_datetime, Report};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Options of `keel bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Address of the running keel (RESP).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6379")]
    pub addr: String,
    /// Data set directory holding base.fvecs, query.fvecs and gt.ivecs.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Index name (routes like a key).
    #[arg(long, value_name = "NAME", default_value = "bench:vec")]
    pub index: String,
    /// Neighbours requested per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search list size passed to SKEG.VSEARCH (int8/binary: the re-rank depth; f32
    /// flat ignores it).
    #[arg(long, value_name = "L", default_value_t = 100)]
    pub l_search: usize,
    /// Vector kind passed to SKEG.VINDEX.CREATE.
    #[arg(long, value_parser = ["f32", "int8", "binary"], default_value = "f32")]
    pub kind: String,
    /// Metric passed to SKEG.VINDEX.CREATE [default: the data set's meta.json, else cosine].
    #[arg(long, value_parser = METRICS)]
    pub metric: Option<String>,
    /// Concurrent search clients, one measurement per value (comma-separated).
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', default_value = "1,8")]
    pub clients: Vec<usize>,
    /// Vectors per SKEG.VMSET command when loading.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub batch: usize,
    /// SKEG.VMSET commands in flight per loading connection.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub pipeline: usize,
    /// Loading connections (each loads a contiguous share of the base rows).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub load_clients: usize,
    /// Keep the existing index and data: search only.
    #[arg(long)]
    pub skip_load: bool,
    /// Minimum queries per measurement; the query set is repeated to reach it.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub min_queries: usize,
    /// Also write the report as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The server's pid: its RSS and its children's (the shard processes) is reported.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Measure KV latency on the index's shard: SET/GET of `<tenant>:probe`, one at a
    /// time, alone and beside each search run.
    #[arg(long)]
    pub kv_probe: bool,
    /// Filtered search at P% selectivity: load every vector with `PAYLOAD bucket=<id %
    /// 100>` (one SKEG.VSET each, pipelined) and search with `FILTER "bucket < P"`;
    /// recall is measured against a brute-force ground truth over the matching vectors
    /// (computed here in f64 under the index's metric).
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub filter_percent: Option<u32>,
}

/// The `FILTER` expression of `--filter-percent`.
fn filter_expr(percent: u32) -> String {
    format!("bucket < {percent}")
}

/// The payload of base row `id` under `--filter-percent`.
fn bucket_payload(id: usize) -> String {
    format!("bucket={}", id % 100)
}

/// The metrics SKEG.VINDEX.CREATE knows.
const METRICS: [&str; 3] = ["cosine", "l2", "ip"];

/// Runs the benchmark. Errors: unreadable or inconsistent data files, connection
/// failures, and any `-ERR` reply (except to the initial `SKEG.VINDEX.DROP`).
pub fn run(args: BenchArgs) -> Result<()> {
    ensure!(args.k > 0, "--k must be at least 1");
    ensure!(
        args.batch > 0 && args.pipeline > 0 && args.load_clients > 0,
        "--batch, --pipeline and --load-clients must be at least 1"
    );
    ensure!(!args.clients.is_empty() && args.clients.iter().all(|&c| c > 0), "--clients must list counts >= 1");

    let mut data = DataSet::open(&args.data)?;
    let metric = match &args.metric {
        Some(m) => m.clone(),
        None => data.metric.clone().unwrap_or_else(|| "cosine".to_string()),
    };
    eprintln!("{}", data.describe());
    if let Some(p) = args.filter_percent {
        eprintln!("computing the filtered ground truth ({p}% of the base vectors, {metric})");
        data.gt = filtered_gt(&data, &metric, |id| id % 100 < p as usize, args.k.max(10));
    }
    let load = if args.skip_load { None } else { Some(load(&args, &metric, &data.base)?) };
    let rss_after_load = server_rss(&args);
    // The allocator returns the load's freed buffers within about a second
    // (server/src/alloc.rs: dirty_decay_ms 1000); RSS once that is done is what the loaded
    // index costs.
    let rss_settled = if load.is_some() && args.server_pid.is_some() {
        std::thread::sleep(RSS_SETTLE);
        Some(server_rss(&args))
    } else {
        None
    };
    let load_before = load_average();

    warm_up(&args, &data.queries)?;
    let probe_key = probe_key(&args.index);
    let probe_alone = if args.kv_probe {
        let stop = AtomicBool::new(false);
        let p = std::thread::scope(|s| {
            let p = s.spawn(|| Probe::connect(&args.addr, &probe_key)?.run(&stop));
            std::thread::sleep(PROBE_ALONE);
            stop.store(true, Ordering::Relaxed);
            p.join().map_err(|_| anyhow!("probe thread panicked"))?
        })?;
        eprintln!("KV probe alone: {}", p.summary());
        Some(p)
    } else {
        None
    };
    let mut runs = Vec::new();
    for &clients in &args.clients {
        let r = search(&args, &data, clients, args.kv_probe.then_some(probe_key.as_str()))?;
        eprintln!("{} clients: {:.0} QPS", clients, r.qps);
        runs.push(r);
    }
    let report = Report {
        command: shell_join(std::env::args()),
        date: utc_datetime(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()),
        machine: machine_description(),
        load_average: format!("{load_before} before the searches, {} after", load_average()),
        data: data.describe(),
        index: format!(
            "`{}` (flat, {}, {metric}), k = {}, l_search = {}{}",
            args.index,
            args.kind,
            args.k,
            args.l_search,
            args.filter_percent.map_or(String::new(), |p| format!(
                ", FILTER `{}` ({p}% of the vectors; payload `bucket=<id % 100>`; recall against brute force over them)",
                filter_expr(p)
            ))
        ),
        load,
        load_setup: match args.filter_percent {
            None => format!(
                "{} connections, SKEG.VMSET of {} vectors, {} in flight each",
                args.load_clients, args.batch, args.pipeline
            ),
            Some(_) => format!(
                "{} connections, one SKEG.VSET … PAYLOAD per vector, {} x {} in flight each",
                args.load_clients, args.pipeline, args.batch
            ),
        },
        probe: args.kv_probe.then(|| format!("`SET {probe_key} <8 bytes>` / `GET {probe_key}` alternately, one at a time")),
        probe_alone,
        rss_after_load,
        rss_settled,
        rss_end: server_rss(&args),
        runs,
    };
    print!("{}", report.text());
    if let Some(path) = &args.out {
        std::fs::write(path, report.markdown()).with_context(|| format!("write report {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Drops and re-creates the index, then loads every base row; returns (vectors, time).
fn load(args: &BenchArgs, metric: &str, base: &Fvecs) -> Result<(usize, Duration)> {
    let mut conn = Conn::connect(&args.addr)?;
    let name = args.index.as_bytes();
    conn.queue(&[b"SKEG.VINDEX.DROP", name]);
    conn.flush()?;
    let _ = conn.reply()?; // "no such index" is fine
    let dim = base.dim.to_string();
    let create: [&[u8]; 7] =
        [b"SKEG.VINDEX.CREATE", name, dim.as_bytes(), args.kind.as_bytes(), b"flat", b"METRIC", metric.as_bytes()];
    conn.call(&create, "SKEG.VINDEX.CREATE")?;

    let bar = ProgressBar::new(base.n as u64);
    bar.set_style(
        ProgressStyle::with_template("loading {bar:40} {pos}/{len} vectors, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let per = base.n.div_ceil(args.load_clients);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.load_clients)
            .map(|c| {
                let rows = (c * per).min(base.n)..((c + 1) * per).min(base.n);
                let (bar, failed) = (&bar, &failed);
                s.spawn(move || {
                    let r = load_rows(args, base, rows, bar, failed);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow!("loader thread panicked"))?)
    })?;
    let took = start.elapsed();
    bar.finish_and_clear();
    let secs = took.as_secs_f64();
    eprintln!("loaded {} vectors in {secs:.2} s ({:.0} vectors/s)", base.n, base.n as f64 / secs);
    Ok((base.n, took))
}

/// Loads `rows` on one connection in SKEG.VMSET batches of `--batch` vectors, keeping
/// up to `--pipeline` of them in flight.
fn load_rows(
    args: &BenchArgs,
    base: &Fvecs,
    rows: std::ops::Range<usize>,
    bar: &ProgressBar,
    failed: &AtomicBool,
) -> Result<()> {
    let mut conn = Conn::connect(&args.addr)?;
    let mut batches = batches(rows, args.batch);
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        if failed.load(Ordering::Relaxed) {
            bail!("another loader failed");
        }
        while in_flight.len() < args.pipeline {
            let Some(batch) = batches.next() else { break };
            let ids: Vec<String> = batch.clone().map(|i| i.to_string()).collect();
            if args.filter_percent.is_some() {
                // One SKEG.VSET with its payload per vector (VMSET takes no payloads).
                for (id, row) in ids.iter().zip(batch.clone()) {
                    let payload = bucket_payload(row);
                    conn.queue(&[b"SKEG.VSET", args.index.as_bytes(), id.as_bytes(), base.blob(row), b"PAYLOAD", payload.as_bytes()]);
                }
            } else {
                let mut argv: Vec<&[u8]> = vec![b"SKEG.VMSET", args.index.as_bytes()];
                for (id, row) in ids.iter().zip(batch.clone()) {
                    argv.extend([id.as_bytes(), base.blob(row)]);
                }
                conn.queue(&argv);
            }
            in_flight.push_back(batch.len());
        }
        let Some(n) = in_flight.pop_front() else { return Ok(()) };
        conn.flush()?;
        if args.filter_percent.is_some() {
            for _ in 0..n {
                check(conn.reply()?, "SKEG.VSET")?;
            }
            bar.inc(n as u64);
            continue;
        }
        match check(conn.reply()?, "SKEG.VMSET")? {
            Value::Integer(got) if got == n as i64 => bar.inc(n as u64),
            other => bail!("SKEG.VMSET of {n} vectors replied {other:?}"),
        }
    }
}

/// `rows` cut into consecutive ranges of at most `size` rows.
fn batches(rows: std::ops::Range<usize>, size: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let end = rows.end;
    rows.step_by(size).map(move |start| start..(start + size).min(end))
}

/// Untimed queries sent before the first measurement (caches, lazy allocations).
const WARMUP_QUERIES: usize = 100;

/// Sends up to [`WARMUP_QUERIES`] queries on one connection, checking only for errors.
fn warm_up(args: &BenchArgs, queries: &Fvecs) -> Result<()> {
    let mut conn = Conn::connect(&args.addr)?;
    let cmd = VSearch::new(args);
    for q in 0..queries.n.min(WARMUP_QUERIES) {
        result_ids(&conn.call(&cmd.argv(queries.blob(q)), "SKEG.VSEARCH")?)?;
    }
    Ok(())
}

/// The fixed arguments of `SKEG.VSEARCH <index> <k> <l_search> <blob> [FILTER expr]`,
/// formatted once.
struct VSearch<'a> {
    index: &'a [u8],
    k: String,
    l_search: String,
    filter: Option<String>,
}

impl<'a> VSearch<'a> {
    fn new(args: &'a BenchArgs) -> Self {
        VSearch {
            index: args.index.as_bytes(),
            k: args.k.to_string(),
            l_search: args.l_search.to_string(),
            filter: args.filter_percent.map(filter_expr),
        }
    }

    fn argv<'b>(&'b self, blob: &'b [u8]) -> Vec<&'b [u8]> {
        let mut argv: Vec<&[u8]> = vec![b"SKEG.VSEARCH", self.index, self.k.as_bytes(), self.l_search.as_bytes(), blob];
        if let Some(f) = &self.filter {
            argv.extend([b"FILTER".as_slice(), f.as_bytes()]);
        }
        argv
    }
}

/// Per query, the ids of the `k` best base vectors among those `keep` accepts under
/// `metric`, best first (ties: smaller id), by brute force in f64 on every core.
fn filtered_gt(data: &DataSet, metric: &str, keep: impl Fn(usize) -> bool + Sync, k: usize) -> Vec<Vec<u32>> {
    let row = |f: &Fvecs, i: usize| -> Vec<f64> {
        f.blob(i).chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
    };
    let kept: Vec<(usize, Vec<f64>)> = (0..data.base.n).filter(|&i| keep(i)).map(|i| (i, row(&data.base, i))).collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    // Higher is closer.
    let score = |q: &[f64], qn: f64, v: &[f64]| -> f64 {
        match metric {
            "l2" => -q.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f64>(),
            "ip" => q.iter().zip(v).map(|(a, b)| a * b).sum(),
            _ => q.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / (qn * norm(v)).max(f64::MIN_POSITIVE),
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let nq = data.queries.n;
    let per = nq.div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let (kept, row, score) = (&kept, &row, &score);
                s.spawn(move || {
                    (t * per..((t + 1) * per).min(nq))
                        .map(|qi| {
                            let q = row(&data.queries, qi);
                            let qn = norm(&q);
                            let mut all: Vec<(f64, usize)> = kept.iter().map(|(i, v)| (score(&q, qn, v), *i)).collect();
                            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                            all.into_iter().take(k).map(|(_, i)| i as u32).collect::<Vec<u32>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().expect("ground-truth thread")).collect()
    })
}

/// One search measurement.
#[derive(Debug)]
struct SearchRun {
    clients: usize,
    queries: usize,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    recall1: Option<f64>,
    recall10: Option<f64>,
    /// The KV probe's latencies during this run (`--kv-probe`).
    probe: Option<ProbeLatencies>,
}

/// Per-thread tallies of a search run.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    recall1: (f64, usize),
    recall10: (f64, usize),
}

/// Runs the query set (repeated to at least `--min-queries`) on `clients` connections,
/// one query in flight each; queries are handed out from a shared counter. With
/// `probe_key`, the KV probe (connected and warmed up first) runs beside them until the
/// last one finishes.
fn search(args: &BenchArgs, data: &DataSet, clients: usize, probe_key: Option<&str>) -> Result<SearchRun> {
    let nq = data.queries.n;
    let total = nq * args.min_queries.div_ceil(nq).max(1);
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(clients + 1);
    let failed = AtomicBool::new(false);
    let probe_stop = AtomicBool::new(false);
    let probe = probe_key.map(|key| Probe::connect(&args.addr, key)).transpose()?;
    let (tallies, took, probed) = std::thread::scope(|s| -> Result<(Vec<Tally>, Duration, Option<ProbeLatencies>)> {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let (next, barrier, failed) = (&next, &barrier, &failed);
                s.spawn(move || -> Result<Tally> {
                    let conn = Conn::connect(&args.addr);
                    barrier.wait();
                    let mut conn = conn?;
                    let mut t = Tally::default();
                    let cmd = VSearch::new(args);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total || failed.load(Ordering::Relaxed) {
                            return Ok(t);
                        }
                        let q = i % nq;
                        let t0 = Instant::now();
                        let reply = conn.call(&cmd.argv(data.queries.blob(q)), "SKEG.VSEARCH");
                        t.latencies.push(t0.elapsed());
                        let ids = match reply.and_then(|v| result_ids(&v)) {
                            Ok(ids) => ids,
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        };
                        for (at_k, acc) in [(1, &mut t.recall1), (10, &mut t.recall10)] {
                            if args.k >= at_k {
                                if let Some(r) = recall_at(&ids, &data.gt[q], at_k) {
                                    acc.0 += r;
                                    acc.1 += 1;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let prober = probe.map(|p| s.spawn(|| p.run(&probe_stop)));
        let tallies = workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("search thread panicked"))?)
            .collect::<Result<Vec<_>>>();
        let took = start.elapsed();
        probe_stop.store(true, Ordering::Relaxed);
        let probed = prober.map(|p| p.join().map_err(|_| anyhow!("probe thread panicked"))?).transpose()?;
        Ok((tallies?, took, probed))
    })?;

    let mut lat: Vec<Duration> = tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect();
    lat.sort_unstable();
    let mean = |f: fn(&Tally) -> (f64, usize)| {
        let (sum, n) = tallies.iter().map(f).fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        (n > 0).then(|| sum / n as f64)
    };
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    Ok(SearchRun {
        clients,
        queries: lat.len(),
        qps: lat.len() as f64 / took.as_secs_f64(),
        p50_ms: ms(percentile(&lat, 50.0)),
        p99_ms: ms(percentile(&lat, 99.0)),
        recall1: mean(|t| t.recall1),
        recall10: mean(|t| t.recall10),
        probe: probed,
    })
}

/// Ids from a SKEG.VSEARCH reply: a flat array `id, score, id, score, …` (ids as
/// integers or decimal bulk strings); `[id, score]` pairs and RESP3 maps are accepted.
fn result_ids(v: &Value) -> Result<Vec<u64>> {
    fn id(v: &Value) -> Result<u64> {
        match v {
            Value::Integer(i) => u64::try_from(*i).map_err(|_| anyhow!("negative id {i} in SKEG.VSEARCH reply")),
            Value::Bulk(b) | Value::Verbatim(_, b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("non-numeric id {:?} in SKEG.VSEARCH reply", String::from_utf8_lossy(b))),
            Value::Simple(s) => s.parse().map_err(|_| anyhow!("non-numeric id {s:?} in SKEG.VSEARCH reply")),
            other => bail!("unexpected id {other:?} in SKEG.VSEARCH reply"),
        }
    }
    match v {
        Value::Array(items) if !items.is_empty() && matches!(&items[0], Value::Array(_)) => items
            .iter()
            .map(|p| match p {
                Value::Array(p) if p.len() == 2 => id(&p[0]),
                other => bail!("expected an [id, score] pair in SKEG.VSEARCH reply, got {other:?}"),
            })
            .collect(),
        Value::Array(items) => {
            ensure!(items.len() % 2 == 0, "SKEG.VSEARCH reply has an odd number ({}) of elements", items.len());
            items.iter().step_by(2).map(id).collect()
        }
        Value::Map(pairs) => pairs.iter().map(|(k, _)| id(k)).collect(),
        other => bail!("SKEG.VSEARCH replied {other:?}, expected an array"),
    }
}

/// `|R[:k] ∩ G[:k]| / k`; `None` if the ground truth has fewer than `k` ids.
fn recall_at(result: &[u64], gt: &[u32], k: usize) -> Option<f64> {
    let g = gt.get(..k)?;
    let hits = result.iter().take(k).filter(|&&id| g.iter().any(|&t| u64::from(t) == id)).count();
    Some(hits as f64 / k as f64)
}

/// Nearest-rank percentile (`p` in 0..=100) of ascending `sorted`; `None` if empty.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall() {
        let gt = [5, 1, 9, 3];
        assert_eq!(recall_at(&[5, 2], &gt, 1), Some(1.0));
        assert_eq!(recall_at(&[1, 5], &gt, 1), Some(0.0));
        assert_eq!(recall_at(&[1, 5], &gt, 2), Some(1.0));
        assert_eq!(recall_at(&[9, 7, 3, 5], &gt, 4), Some(0.75));
        // Fewer results than k count as misses; the denominator stays k.
        assert_eq!(recall_at(&[5], &gt, 4), Some(0.25));
        assert_eq!(recall_at(&[5], &gt, 10), None);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn reply_ids() {
        let b = |s: &str| Value::bulk(s);
        let flat = Value::Array(vec![b("7"), b("0.99"), Value::Integer(3), Value::Double(0.5)]);
        assert_eq!(result_ids(&flat).unwrap(), vec![7, 3]);
        let pairs = Value::Array(vec![Value::Array(vec![b("4"), b("1")]), Value::Array(vec![b("2"), b("0.1")])]);
        assert_eq!(result_ids(&pairs).unwrap(), vec![4, 2]);
        assert_eq!(result_ids(&Value::Array(vec![])).unwrap(), Vec::<u64>::new());
        assert!(result_ids(&Value::Array(vec![b("1")])).is_err());
        assert!(result_ids(&Value::Array(vec![b("x"), b("1")])).is_err());
    }

    #[test]
    fn load_batches() {
        let check = |rows: std::ops::Range<usize>, size: usize, expected: &[(usize, usize)]| {
            assert_eq!(batches(rows, size).map(|b| (b.start, b.end)).collect::<Vec<_>>(), expected);
        };
        check(0..10, 4, &[(0, 4), (4, 8), (8, 10)]);
        check(5..9, 4, &[(5, 9)]);
        check(3..4, 256, &[(3, 4)]);
        check(7..7, 4, &[]);
    }
}
