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

use anyhow::{anyhow, bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use keel_protocol::resp::{encode_request, parse_value, Limits};
use keel_protocol::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
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

    let data = DataSet::open(&args.data)?;
    let metric = match &args.metric {
        Some(m) => m.clone(),
        None => data.metric.clone().unwrap_or_else(|| "cosine".to_string()),
    };
    eprintln!("{}", data.describe());
    let load = if args.skip_load { None } else { Some(load(&args, &metric, &data.base)?) };
    let rss_after_load = server_rss(&args);
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
            "`{}` (flat, {}, {metric}), k = {}, l_search = {}",
            args.index, args.kind, args.k, args.l_search
        ),
        load,
        load_setup: format!(
            "{} connections, SKEG.VMSET of {} vectors, {} in flight each",
            args.load_clients, args.batch, args.pipeline
        ),
        probe: args.kv_probe.then(|| format!("`SET {probe_key} <8 bytes>` / `GET {probe_key}` alternately, one at a time")),
        probe_alone,
        rss_after_load,
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

/// Vectors as the raw bytes of an `.fvecs` file: row `i` is `dim` f32 LE at
/// `bytes[i*(4+4*dim)+4 ..]`, which is exactly the blob keel expects.
#[derive(Debug)]
struct Fvecs {
    dim: usize,
    n: usize,
    bytes: Vec<u8>,
}

impl Fvecs {
    /// Validates that every record has the same positive dimension and the file ends on
    /// a record boundary.
    fn parse(bytes: Vec<u8>) -> Result<Fvecs> {
        if bytes.is_empty() {
            return Ok(Fvecs { dim: 0, n: 0, bytes });
        }
        let dim = read_dim(&bytes, 0)?;
        ensure!(dim > 0, "dimension 0 in the first record");
        let rec = 4 + 4 * dim;
        let len = bytes.len();
        ensure!(len.is_multiple_of(rec), "length {len} is not a multiple of the record size {rec} (dim {dim})");
        let n = bytes.len() / rec;
        for i in 0..n {
            let d = read_dim(&bytes, i * rec)?;
            ensure!(d == dim, "record {i} has dimension {d}, the first has {dim}");
        }
        Ok(Fvecs { dim, n, bytes })
    }

    /// Row `i` as little-endian f32 bytes (`4 * dim` of them).
    fn blob(&self, i: usize) -> &[u8] {
        let rec = 4 + 4 * self.dim;
        &self.bytes[i * rec + 4..(i + 1) * rec]
    }
}

/// Reads an i32 LE dimension/count at `at` as a usize (negative is an error).
fn read_dim(bytes: &[u8], at: usize) -> Result<usize> {
    let b = bytes.get(at..at + 4).ok_or_else(|| anyhow!("truncated at byte {at}"))?;
    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    usize::try_from(v).map_err(|_| anyhow!("negative length {v} at byte {at}"))
}

/// Parses `.ivecs`: per row an i32 count then that many i32 (non-negative ids).
fn parse_ivecs(bytes: &[u8]) -> Result<Vec<Vec<u32>>> {
    let mut rows = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = read_dim(bytes, at)?;
        at += 4;
        let body = bytes.get(at..at + 4 * n).ok_or_else(|| anyhow!("row {} truncated at byte {at}", rows.len()))?;
        let row = body
            .chunks_exact(4)
            .map(|c| {
                let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                u32::try_from(v).map_err(|_| anyhow!("negative id {v} in row {}", rows.len()))
            })
            .collect::<Result<Vec<u32>>>()?;
        rows.push(row);
        at += 4 * n;
    }
    Ok(rows)
}

/// The `"key": "value"` string of a flat JSON object such as `meta.json` (no escapes in
/// the value; enough for the fields `make-data` writes), if there is one.
fn json_string<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let mut rest = json;
    while let Some(at) = rest.find(&quoted) {
        rest = &rest[at + quoted.len()..];
        let Some(after) = rest.trim_start().strip_prefix(':') else { continue };
        let value = after.trim_start().strip_prefix('"')?;
        return value.find('"').map(|end| &value[..end]);
    }
    None
}

/// The three files of a data set, checked for consistency, and its metric.
struct DataSet {
    dir: PathBuf,
    base: Fvecs,
    queries: Fvecs,
    gt: Vec<Vec<u32>>,
    /// From `meta.json`, if it is there and names one keel knows.
    metric: Option<String>,
}

impl DataSet {
    fn open(dir: &Path) -> Result<DataSet> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).with_context(|| format!("read {}", p.display()))
        };
        let base = Fvecs::parse(read("base.fvecs")?).context("parse base.fvecs")?;
        let queries = Fvecs::parse(read("query.fvecs")?).context("parse query.fvecs")?;
        let gt = parse_ivecs(&read("gt.ivecs")?).context("parse gt.ivecs")?;
        ensure!(base.n > 0 && queries.n > 0, "base.fvecs and query.fvecs must not be empty");
        ensure!(base.dim == queries.dim, "query dim {} differs from base dim {}", queries.dim, base.dim);
        ensure!(gt.len() >= queries.n, "gt.ivecs has {} rows for {} queries", gt.len(), queries.n);
        let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap_or_default();
        let metric = json_string(&meta, "metric").filter(|m| METRICS.contains(m)).map(String::from);
        Ok(DataSet { dir: dir.to_path_buf(), base, queries, gt, metric })
    }

    fn describe(&self) -> String {
        let gt_k = self.gt.iter().map(Vec::len).min().unwrap_or(0);
        format!(
            "`{}`: base {} × {} ({:.1} MiB), queries {}, ground truth {} × {}",
            self.dir.display(),
            self.base.n,
            self.base.dim,
            (self.base.n * self.base.dim * 4) as f64 / (1 << 20) as f64,
            self.queries.n,
            self.gt.len(),
            gt_k
        )
    }
}

/// One blocking RESP2 connection with its own read and write buffers.
struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    /// Bytes of `rbuf` already parsed.
    rpos: usize,
    wbuf: Vec<u8>,
    limits: Limits,
}

impl Conn {
    fn connect(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect to keel at {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Conn { stream, rbuf: Vec::with_capacity(64 << 10), rpos: 0, wbuf: Vec::new(), limits: Limits::default() })
    }

    /// Queues one command; sent by the next [`Conn::flush`].
    fn queue(&mut self, argv: &[&[u8]]) {
        encode_request(argv, &mut self.wbuf);
    }

    fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.wbuf).context("send to keel")?;
        self.wbuf.clear();
        Ok(())
    }

    /// A reply already buffered, if a complete one is.
    fn try_reply(&mut self) -> Result<Option<Value>> {
        match parse_value(&self.rbuf[self.rpos..], &self.limits) {
            Ok(Some((v, used))) => {
                self.rpos += used;
                Ok(Some(v))
            }
            Ok(None) => Ok(None),
            Err(e) => bail!("malformed reply from keel: {e}"),
        }
    }

    /// The next reply, reading from the socket as needed.
    fn reply(&mut self) -> Result<Value> {
        loop {
            if let Some(v) = self.try_reply()? {
                return Ok(v);
            }
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            let len = self.rbuf.len();
            self.rbuf.resize(len + (64 << 10), 0);
            let got = self.stream.read(&mut self.rbuf[len..]);
            self.rbuf.truncate(len + got.as_ref().map_or(0, |&n| n));
            match got {
                Ok(0) => bail!("keel closed the connection"),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("read reply from keel"),
            }
        }
    }

    /// Sends one command and returns its reply; `-ERR` becomes an error naming `what`.
    fn call(&mut self, argv: &[&[u8]], what: &str) -> Result<Value> {
        self.queue(argv);
        self.flush()?;
        check(self.reply()?, what)
    }
}

/// Turns an error reply into an error naming the command.
fn check(v: Value, what: &str) -> Result<Value> {
    match v {
        Value::Error(e) => bail!("keel replied to {what}: -{e}"),
        v => Ok(v),
    }
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
            let mut argv: Vec<&[u8]> = vec![b"SKEG.VMSET", args.index.as_bytes()];
            for (id, row) in ids.iter().zip(batch.clone()) {
                argv.extend([id.as_bytes(), base.blob(row)]);
            }
            conn.queue(&argv);
            in_flight.push_back(batch.len());
        }
        let Some(n) = in_flight.pop_front() else { return Ok(()) };
        conn.flush()?;
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

/// The fixed arguments of `SKEG.VSEARCH <index> <k> <l_search> <blob>`, formatted once.
struct VSearch<'a> {
    index: &'a [u8],
    k: String,
    l_search: String,
}

impl<'a> VSearch<'a> {
    fn new(args: &'a BenchArgs) -> Self {
        VSearch { index: args.index.as_bytes(), k: args.k.to_string(), l_search: args.l_search.to_string() }
    }

    fn argv<'b>(&'b self, blob: &'b [u8]) -> [&'b [u8]; 5] {
        [b"SKEG.VSEARCH", self.index, self.k.as_bytes(), self.l_search.as_bytes(), blob]
    }
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

/// How long the KV probe runs alone, before the first search run.
const PROBE_ALONE: Duration = Duration::from_secs(3);
/// Probe requests sent untimed on each probe connection (the router hands a connection
/// to its shard after 8 single-shard batches).
const PROBE_WARMUP: usize = 16;
/// Pause between two probe requests.
const PROBE_PAUSE: Duration = Duration::from_millis(1);
/// The value the probe SETs and expects back from GET.
const PROBE_VALUE: &[u8] = b"probe-v1";

/// `<tenant>:probe`, where the tenant is the index name up to its first `:` (all of it
/// if it has none): keel routes both to the same shard.
fn probe_key(index: &str) -> String {
    let tenant = index.split_once(':').map_or(index, |(t, _)| t);
    format!("{tenant}:probe")
}

/// Latencies of the KV probe's requests, each sorted ascending.
#[derive(Debug, Default)]
struct ProbeLatencies {
    get: Vec<Duration>,
    set: Vec<Duration>,
}

impl ProbeLatencies {
    /// `p50/p99/max` in ms of one request type, or `-` if there were none.
    fn cell(sorted: &[Duration]) -> String {
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        match sorted.last() {
            None => "-".to_string(),
            Some(&max) => format!(
                "{:.2}/{:.2}/{:.2}",
                ms(percentile(sorted, 50.0)),
                ms(percentile(sorted, 99.0)),
                ms(Some(max))
            ),
        }
    }

    fn summary(&self) -> String {
        format!(
            "GET p50/p99/max {} ms ({} requests), SET {} ms ({})",
            Self::cell(&self.get),
            self.get.len(),
            Self::cell(&self.set),
            self.set.len()
        )
    }
}

/// The KV probe's connection: `SET key PROBE_VALUE` and `GET key` alternately, one at
/// a time with [`PROBE_PAUSE`] between them.
struct Probe {
    conn: Conn,
    key: Vec<u8>,
    /// Requests sent so far (even: SET, odd: GET).
    sent: usize,
}

impl Probe {
    /// Connects and sends the first [`PROBE_WARMUP`] requests, untimed.
    fn connect(addr: &str, key: &str) -> Result<Probe> {
        let mut p = Probe { conn: Conn::connect(addr)?, key: key.as_bytes().to_vec(), sent: 0 };
        while p.sent < PROBE_WARMUP {
            p.request()?;
        }
        Ok(p)
    }

    /// Sends the next request and waits for its reply; returns whether it was a SET and
    /// how long it took. A GET that does not return the value is an error.
    fn request(&mut self) -> Result<(bool, Duration)> {
        let set = self.sent.is_multiple_of(2);
        self.sent += 1;
        let t0 = Instant::now();
        if set {
            self.conn.call(&[b"SET", &self.key, PROBE_VALUE], "SET")?;
        } else {
            match self.conn.call(&[b"GET", &self.key], "GET")? {
                Value::Bulk(v) if v == PROBE_VALUE => {}
                other => bail!("probe GET replied {other:?}"),
            }
        }
        Ok((set, t0.elapsed()))
    }

    /// Times requests until `stop` (at least one SET and one GET).
    fn run(mut self, stop: &AtomicBool) -> Result<ProbeLatencies> {
        let mut lat = ProbeLatencies::default();
        loop {
            let (set, took) = self.request()?;
            if set { &mut lat.set } else { &mut lat.get }.push(took);
            if stop.load(Ordering::Relaxed) && !lat.get.is_empty() {
                break;
            }
            std::thread::sleep(PROBE_PAUSE);
        }
        lat.get.sort_unstable();
        lat.set.sort_unstable();
        Ok(lat)
    }
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

/// Server memory: RSS and PSS of `--server-pid` and its descendants (`/proc`), and the
/// `used_memory_rss` of `INFO memory` when keel reports it. Failures become text.
fn server_rss(args: &BenchArgs) -> String {
    let mut parts = Vec::new();
    if let Some(pid) = args.server_pid {
        match tree_memory(pid) {
            Ok(m) => parts.push(format!(
                "{} (pid {pid} and {} children; PSS {}, shared pages such as the binary's counted once)",
                mib(m.rss),
                m.procs - 1,
                mib(m.pss)
            )),
            Err(e) => parts.push(format!("unknown for pid {pid} ({e})")),
        }
    }
    let info = Conn::connect(&args.addr).and_then(|mut c| c.call(&[b"INFO", b"memory"], "INFO memory"));
    if let Ok(Value::Bulk(text) | Value::Verbatim(_, text)) = info {
        let text = String::from_utf8_lossy(&text);
        if let Some(rss) = info_field(&text, "used_memory_rss").and_then(|v| v.parse::<u64>().ok()) {
            parts.push(format!("{} (INFO used_memory_rss)", mib(rss)));
        }
    }
    if parts.is_empty() {
        "n/a (pass --server-pid)".to_string()
    } else {
        parts.join("; ")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The value of `field:` in an `INFO` text.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

/// Memory of a process tree, summed over its processes.
#[derive(Debug, Default)]
struct TreeMemory {
    /// VmRSS: a page shared between the processes (the one binary's code) counts in each.
    rss: u64,
    /// Pss of `smaps_rollup` (0 where unreadable): a shared page is split between its users.
    pss: u64,
    procs: usize,
}

/// [`TreeMemory`] of `pid` and all its descendants.
fn tree_memory(pid: u32) -> Result<TreeMemory> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            // Fields after the parenthesised command name: state, ppid, ...
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let kb = |text: &str, field: &str| -> u64 {
        info_field(text, field).and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok()).unwrap_or(0) * 1024
    };
    let (mut m, mut stack) = (TreeMemory::default(), vec![pid]);
    while let Some(p) = stack.pop() {
        let path = format!("/proc/{p}/status");
        let status = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(_) if p != pid => continue, // a child that just exited
            Err(e) => return Err(e).with_context(|| format!("read {path}")),
        };
        m.rss += kb(&status, "VmRSS");
        m.pss += kb(&std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default(), "Pss");
        m.procs += 1;
        stack.extend(children.get(&p).into_iter().flatten());
    }
    Ok(m)
}

/// Everything the report shows.
struct Report {
    command: String,
    date: String,
    machine: String,
    /// The machine's load average around the search runs.
    load_average: String,
    data: String,
    index: String,
    load: Option<(usize, Duration)>,
    load_setup: String,
    /// What the KV probe sends (`--kv-probe`).
    probe: Option<String>,
    /// The probe's latencies with no search running.
    probe_alone: Option<ProbeLatencies>,
    rss_after_load: String,
    rss_end: String,
    runs: Vec<SearchRun>,
}

impl Report {
    fn load_line(&self) -> String {
        match self.load {
            Some((n, took)) => format!(
                "{n} vectors in {:.2} s = {:.0} vectors/s ({})",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64(),
                self.load_setup
            ),
            None => "skipped (--skip-load)".to_string(),
        }
    }

    /// The table's column titles and widths (for stdout): the probe's columns only
    /// with `--kv-probe`.
    fn columns(&self) -> Vec<(&'static str, usize)> {
        let n = if self.probe.is_some() { COLUMNS.len() } else { COLUMNS.len() - 2 };
        COLUMNS[..n].to_vec()
    }

    /// The table's cells, one row per search run: the one place rows are made.
    fn rows(&self) -> Vec<Vec<String>> {
        let r = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
        self.runs
            .iter()
            .map(|s| {
                let mut row = vec![
                    s.clients.to_string(),
                    s.queries.to_string(),
                    format!("{:.0}", s.qps),
                    format!("{:.3}", s.p50_ms),
                    format!("{:.3}", s.p99_ms),
                    r(s.recall1),
                    r(s.recall10),
                ];
                if self.probe.is_some() {
                    let p = s.probe.as_ref();
                    row.push(p.map_or("-".to_string(), |p| ProbeLatencies::cell(&p.get)));
                    row.push(p.map_or("-".to_string(), |p| ProbeLatencies::cell(&p.set)));
                }
                row
            })
            .collect()
    }

    /// The probe's lines (what it sends, and its latency alone), if it ran.
    fn probe_lines(&self) -> Vec<String> {
        let Some(what) = &self.probe else { return Vec::new() };
        let mut lines = vec![format!("KV probe: {what}, {} ms apart", PROBE_PAUSE.as_millis())];
        if let Some(alone) = &self.probe_alone {
            lines.push(format!("KV probe alone ({} s, no search): {}", PROBE_ALONE.as_secs(), alone.summary()));
        }
        lines
    }

    /// The plain-text report for stdout.
    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "data:   {}\nindex:  {}\nload:   {}", self.data, self.index, self.load_line());
        let _ = writeln!(out, "RSS:    after load {}; at end {}", self.rss_after_load, self.rss_end);
        let _ = writeln!(out, "uptime: load average {}", self.load_average);
        for l in self.probe_lines() {
            let _ = writeln!(out, "{l}");
        }
        let columns = self.columns();
        let line = |cells: &[String]| -> String {
            cells.iter().zip(&columns).map(|(c, (_, w))| format!("{c:>w$}")).collect::<Vec<_>>().join(" ")
        };
        let _ = writeln!(out, "\n{}", line(&columns.iter().map(|(t, _)| t.to_string()).collect::<Vec<_>>()));
        for c in self.rows() {
            let _ = writeln!(out, "{}", line(&c));
        }
        out
    }

    /// The Markdown report for `--out`.
    fn markdown(&self) -> String {
        let mut out = String::from("# keel vector benchmark\n\n");
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Machine: {}", self.machine);
        let _ = writeln!(out, "- Load average (1/5/15 min): {}", self.load_average);
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let _ = writeln!(out, "- Data set: {}", self.data);
        let _ = writeln!(out, "- Index: {}", self.index);
        let _ = writeln!(out, "- Load: {}", self.load_line());
        let _ = writeln!(out, "- Server RSS after load: {}", self.rss_after_load);
        let _ = writeln!(out, "- Server RSS at end: {}", self.rss_end);
        for l in self.probe_lines() {
            let _ = writeln!(out, "- {l}");
        }
        let titles: Vec<&str> = self.columns().iter().map(|(t, _)| *t).collect();
        let _ = writeln!(out, "\n| {} |", titles.join(" | "));
        let _ = writeln!(out, "|{}", "---:|".repeat(titles.len()));
        for c in self.rows() {
            let _ = writeln!(out, "| {} |", c.join(" | "));
        }
        out
    }
}

/// Column titles and stdout widths; the last two (the KV probe's) only with `--kv-probe`.
const COLUMNS: [(&str, usize); 9] = [
    ("clients", 7),
    ("queries", 8),
    ("QPS", 9),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("recall@1", 9),
    ("recall@10", 9),
    ("KV GET p50/p99/max ms", 21),
    ("KV SET p50/p99/max ms", 21),
];

/// "N CPUs, <model>, Linux <release>" from the standard library and `/proc`.
fn machine_description() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| Some(l.strip_prefix("model name")?.split_once(':')?.1.trim().to_string())))
        .unwrap_or_else(|| "unknown CPU".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease");
    let kernel = kernel.map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string());
    format!("{cpus} CPUs, {model}, {} {kernel}", std::env::consts::OS)
}

/// The first three fields of `/proc/loadavg` ("1.52 0.99 0.94"), or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Joins arguments into a command line, single-quoting those a shell would split.
fn shell_join(args: impl IntoIterator<Item = String>) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c);
    args.into_iter()
        .map(|a| if !a.is_empty() && a.chars().all(safe) { a } else { format!("'{}'", a.replace('\'', r"'\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the Unix epoch (proleptic Gregorian).
fn utc_datetime(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date: Howard Hinnant's algorithm (eras of 400 years from 0000-03-01).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fvecs_bytes(rows: &[&[f32]]) -> Vec<u8> {
        let mut b = Vec::new();
        for r in rows {
            b.extend((r.len() as i32).to_le_bytes());
            for x in *r {
                b.extend(x.to_le_bytes());
            }
        }
        b
    }

    fn ivecs_bytes(rows: &[&[i32]]) -> Vec<u8> {
        let mut b = Vec::new();
        for r in rows {
            b.extend((r.len() as i32).to_le_bytes());
            for x in *r {
                b.extend(x.to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn fvecs_rows_are_blobs() {
        let f = Fvecs::parse(fvecs_bytes(&[&[1.0, 2.0], &[3.0, -4.5]])).unwrap();
        assert_eq!((f.n, f.dim), (2, 2));
        assert_eq!(f.blob(1), [3.0f32.to_le_bytes(), (-4.5f32).to_le_bytes()].concat());
        let empty = Fvecs::parse(Vec::new()).unwrap();
        assert_eq!(empty.n, 0);
    }

    #[test]
    fn fvecs_rejects_bad_files() {
        let err = |b: Vec<u8>| Fvecs::parse(b).unwrap_err().to_string();
        assert!(err(fvecs_bytes(&[&[1.0, 2.0], &[3.0]])).contains("not a multiple"));
        assert!(err(fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0, 5.0], &[1.0]])).contains("record 1 has dimension 3"));
        let mut truncated = fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0]]);
        truncated.pop();
        assert!(err(truncated).contains("not a multiple"));
        assert!(err((-1i32).to_le_bytes().to_vec()).contains("negative length -1"));
        assert!(err(vec![1, 0]).contains("truncated"));
    }

    #[test]
    fn ivecs_parses_and_rejects() {
        assert_eq!(parse_ivecs(&ivecs_bytes(&[&[3, 1, 2], &[], &[7]])).unwrap(), vec![vec![3, 1, 2], vec![], vec![7]]);
        assert!(parse_ivecs(&ivecs_bytes(&[&[1, -2]])).unwrap_err().to_string().contains("negative id -2"));
        let mut short = ivecs_bytes(&[&[1, 2]]);
        short.truncate(8);
        assert!(parse_ivecs(&short).unwrap_err().to_string().contains("row 0 truncated"));
    }

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
    fn info_and_status_fields() {
        let info = "# Memory\r\nused_memory:100\r\nused_memory_rss:2048\r\n";
        assert_eq!(info_field(info, "used_memory_rss"), Some("2048"));
        assert_eq!(info_field(info, "used_memory"), Some("100"));
        assert_eq!(info_field("VmRSS:\t  1234 kB\n", "VmRSS"), Some("1234 kB"));
    }

    #[test]
    fn dates_and_command_lines() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_datetime(1_767_225_599), "2025-12-31 23:59:59 UTC");
        let args = ["keel", "bench", "--data", "/d/my set", "--clients", "1,8", "it's"].map(String::from);
        assert_eq!(shell_join(args), r"keel bench --data '/d/my set' --clients 1,8 'it'\''s'");
    }

    #[test]
    fn meta_json_metric() {
        let check = |json: &str, expected: Option<&str>| assert_eq!(json_string(json, "metric"), expected, "{json}");
        check(r#"{"name": "x", "dim": 128, "metric": "l2", "gt": "squared"}"#, Some("l2"));
        check("{\n  \"metric\" :\"cosine\",\n}", Some("cosine"));
        // A value that mentions the key is not the key.
        check(r#"{"gt": "by \"metric\"", "metric": "ip"}"#, Some("ip"));
        check(r#"{"metric": 3}"#, None);
        check(r#"{"dim": 3}"#, None);
        check("", None);
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

    #[test]
    fn probe_routes_like_the_index() {
        assert_eq!(probe_key("bench:vec"), "bench:probe");
        assert_eq!(probe_key("t1:a:b"), "t1:probe");
        assert_eq!(probe_key("vec"), "vec:probe");
    }

    fn report(probe: bool) -> Report {
        let ms = Duration::from_millis;
        let run = |clients, p: Option<ProbeLatencies>| SearchRun {
            clients,
            queries: 1000,
            qps: 150.4,
            p50_ms: 6.5,
            p99_ms: 9.25,
            recall1: Some(1.0),
            recall10: Some(0.995),
            probe: p,
        };
        let lat = || ProbeLatencies { get: vec![ms(1), ms(2), ms(30)], set: vec![] };
        Report {
            command: "keel bench".into(),
            date: "today".into(),
            machine: "here".into(),
            load_average: "0.5 0.4 0.3 before the searches, 0.9 0.5 0.3 after".into(),
            data: "set".into(),
            index: "idx".into(),
            load: None,
            load_setup: String::new(),
            probe: probe.then(|| "SET/GET".to_string()),
            probe_alone: probe.then(lat),
            rss_after_load: "1 MiB".into(),
            rss_end: "1 MiB".into(),
            runs: vec![run(1, probe.then(lat)), run(8, None)],
        }
    }

    #[test]
    fn report_rows() {
        let plain = report(false);
        assert_eq!(plain.columns().len(), 7);
        assert_eq!(plain.rows()[0], ["1", "1000", "150", "6.500", "9.250", "1.0000", "0.9950"]);
        assert!(!plain.markdown().contains("KV"));
        let probed = report(true);
        let rows = probed.rows();
        assert_eq!(rows[0][7..], ["2.00/30.00/30.00", "-"]);
        assert_eq!(rows[1][7..], ["-", "-"]);
        let md = probed.markdown();
        assert!(md.contains("| clients | queries | QPS | p50 ms | p99 ms | recall@1 | recall@10 | KV GET p50/p99/max ms | KV SET p50/p99/max ms |"));
        assert!(md.contains("- KV probe alone (3 s, no search): GET p50/p99/max 2.00/30.00/30.00 ms (3 requests), SET - ms (0)"));
        assert!(md.contains("| 8 | 1000 | 150 | 6.500 | 9.250 | 1.0000 | 0.9950 | - | - |"));
        assert_eq!(probed.text().lines().filter(|l| l.contains("2.00/30.00/30.00")).count(), 2);
    }

    #[test]
    fn own_process_rss_is_positive() {
        let m = tree_memory(std::process::id()).unwrap();
        assert!(m.rss > 0 && m.pss > 0 && m.pss <= m.rss && m.procs >= 1, "{m:?}");
    }
}
