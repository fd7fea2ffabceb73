//! Kernel micro-benchmark: every `*_rows` kernel of `keel_index::distance` on every
//! path this CPU has, and simsimd's kernels for the same metrics in a loop over the
//! same rows, at dims 128/384/768/1024, over a row set far larger than L2 (64 MiB by
//! default) and over one that fits in L2 (256 KiB). Prints a Markdown report (also
//! written to the path given with `--out`).
//!
//! Run it with `scripts/bench-kernels.sh` (which also says how to change the sizes).
//! Each measurement is a number of full passes over the rows, the runners taking turns
//! (see `measure`); the tables give the fastest and the median pass.

use keel_index::distance::Kernel;
use simsimd::{BinarySimilarity, SpatialSimilarity};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

const DIMS: [usize; 4] = [128, 384, 768, 1024];

/// The line of the output file after which the run's report goes; what is above it is
/// kept.
const MARKER: &str = "<!-- Everything below is written by scripts/bench-kernels.sh. -->";

#[derive(Clone, Copy, PartialEq)]
enum Metric {
    CosF32,
    L2F32,
    IpF32,
    IpI8,
    L2I8,
    Hamming,
}

impl Metric {
    const ALL: [Metric; 6] = [Metric::CosF32, Metric::L2F32, Metric::IpF32, Metric::IpI8, Metric::L2I8, Metric::Hamming];

    fn name(self) -> &'static str {
        match self {
            Metric::CosF32 => "f32 cosine",
            Metric::L2F32 => "f32 l2",
            Metric::IpF32 => "f32 ip",
            Metric::IpI8 => "int8 ip",
            Metric::L2I8 => "int8 l2",
            Metric::Hamming => "binary hamming",
        }
    }

    /// Bytes of one stored row at `dim` (an int8 row counts its f32 scale).
    fn row_bytes(self, dim: usize) -> usize {
        match self {
            Metric::CosF32 | Metric::L2F32 | Metric::IpF32 => 4 * dim,
            Metric::IpI8 | Metric::L2I8 => dim + 4,
            Metric::Hamming => 8 * dim.div_ceil(64),
        }
    }
}

/// A copy of a slice placed at a chosen offset from a 64-byte boundary (safe code: a
/// larger buffer and a sub-slice).
struct AVec<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy + Default> AVec<T> {
    fn new(src: Vec<T>, offset: usize) -> AVec<T> {
        let size = std::mem::size_of::<T>();
        let mut buf = vec![T::default(); src.len() + 128 / size];
        let base = buf.as_ptr() as usize;
        let start = (0..128 / size).find(|i| (base + i * size) % 64 == offset).expect("offset reachable");
        buf[start..start + src.len()].copy_from_slice(&src);
        AVec { buf, start, len: src.len() }
    }
}

impl<T> std::ops::Deref for AVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// One row set of one metric at one dim, in every representation the runners need.
struct Data {
    dim: usize,
    n: usize,
    q: AVec<f32>,
    rows: AVec<f32>,
    qi: AVec<i8>,
    qs: f32,
    rows_i: AVec<i8>,
    scales: Vec<f32>,
    qb: AVec<u64>,
    rows_b: AVec<u64>,
    qb8: AVec<u8>,
    rows_b8: AVec<u8>,
}

impl Data {
    /// Rows and query start `offset` bytes past a 64-byte boundary.
    fn new(metric: Metric, dim: usize, bytes: usize, seed: u64, offset: usize) -> Data {
        let n = (bytes / metric.row_bytes(dim)).max(1);
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut f = || (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        let (mut q, mut rows, mut qi, mut rows_i, mut scales, mut qb, mut rows_b) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        match metric {
            Metric::CosF32 | Metric::L2F32 | Metric::IpF32 => {
                q = (0..dim).map(|_| f()).collect();
                rows = (0..n * dim).map(|_| f()).collect();
            }
            Metric::IpI8 | Metric::L2I8 => {
                qi = (0..dim).map(|_| (f() * 254.0) as i8).collect();
                rows_i = (0..n * dim).map(|_| (f() * 254.0) as i8).collect();
                scales = (0..n).map(|_| 0.01 + f().abs()).collect();
            }
            Metric::Hamming => {
                let w = dim.div_ceil(64);
                qb = (0..w).map(|_| next()).collect();
                rows_b = (0..n * w).map(|_| next()).collect();
            }
        }
        let bytes = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        Data {
            dim,
            n,
            qb8: AVec::new(bytes(&qb), offset),
            rows_b8: AVec::new(bytes(&rows_b), offset),
            q: AVec::new(q, offset),
            rows: AVec::new(rows, offset),
            qi: AVec::new(qi, offset),
            qs: 0.01,
            rows_i: AVec::new(rows_i, offset),
            scales,
            qb: AVec::new(qb, offset),
            rows_b: AVec::new(rows_b, offset),
        }
    }
}

/// A path to measure: one of ours, or simsimd.
#[derive(Clone, Copy)]
enum Runner {
    Keel(Kernel),
    Simsimd,
}

impl Runner {
    fn name(self) -> String {
        match self {
            Runner::Keel(k) => k.name().to_string(),
            Runner::Simsimd => "simsimd".to_string(),
        }
    }

    /// One pass over every row; the scores go to `out` / `out_u`.
    fn pass(self, m: Metric, d: &Data, out: &mut [f32], out_u: &mut [u32]) {
        let dim = d.dim;
        match self {
            Runner::Keel(k) => match m {
                Metric::CosF32 => k.cosine_rows(&d.q, &d.rows, out),
                Metric::L2F32 => k.l2_rows(&d.q, &d.rows, out),
                Metric::IpF32 => k.dot_rows(&d.q, &d.rows, out),
                Metric::IpI8 => k.ip_i8_rows(&d.qi, d.qs, &d.rows_i, &d.scales, out),
                Metric::L2I8 => k.l2_i8_rows(&d.qi, d.qs, &d.rows_i, &d.scales, out),
                Metric::Hamming => k.hamming_rows(&d.qb, &d.rows_b, out_u),
            },
            // simsimd returns f64 per pair; the loop stores it as our kernels do. Its int8
            // kernels take no scales (ours apply them), so they do slightly less work.
            Runner::Simsimd => match m {
                Metric::CosF32 => {
                    for (o, r) in out.iter_mut().zip(d.rows.chunks_exact(dim)) {
                        *o = <f32 as SpatialSimilarity>::cos(&d.q, r).unwrap() as f32;
                    }
                }
                Metric::L2F32 => {
                    for (o, r) in out.iter_mut().zip(d.rows.chunks_exact(dim)) {
                        *o = <f32 as SpatialSimilarity>::l2sq(&d.q, r).unwrap() as f32;
                    }
                }
                Metric::IpF32 => {
                    for (o, r) in out.iter_mut().zip(d.rows.chunks_exact(dim)) {
                        *o = <f32 as SpatialSimilarity>::dot(&d.q, r).unwrap() as f32;
                    }
                }
                Metric::IpI8 => {
                    for (o, r) in out.iter_mut().zip(d.rows_i.chunks_exact(dim)) {
                        *o = <i8 as SpatialSimilarity>::dot(&d.qi, r).unwrap() as f32;
                    }
                }
                Metric::L2I8 => {
                    for (o, r) in out.iter_mut().zip(d.rows_i.chunks_exact(dim)) {
                        *o = <i8 as SpatialSimilarity>::l2sq(&d.qi, r).unwrap() as f32;
                    }
                }
                Metric::Hamming => {
                    let w = 8 * dim.div_ceil(64);
                    for (o, r) in out_u.iter_mut().zip(d.rows_b8.chunks_exact(w)) {
                        *o = u8::hamming(&d.qb8, r).unwrap() as u32;
                    }
                }
            },
        }
    }
}

/// Seconds per pass of each runner: (fastest, median). Runners take turns, one pass
/// each per round (after one warm-up round), so a change in the machine's load hits
/// them all alike; rounds go on until there are at least 5 and every runner has had
/// `min_time` in all.
fn measure(runners: &[Runner], m: Metric, d: &Data, min_time: Duration) -> Vec<(f64, f64)> {
    let mut out = vec![0.0f32; d.n];
    let mut out_u = vec![0u32; d.n];
    for r in runners {
        r.pass(m, d, &mut out, &mut out_u);
    }
    let mut times = vec![Vec::new(); runners.len()];
    let start = Instant::now();
    while times[0].len() < 5 || start.elapsed() < min_time * runners.len() as u32 {
        for (r, t) in runners.iter().zip(&mut times) {
            let t0 = Instant::now();
            r.pass(m, black_box(d), &mut out, &mut out_u);
            black_box((&out, &out_u));
            t.push(t0.elapsed().as_secs_f64());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            (t[0], t[t.len() / 2])
        })
        .collect()
}

struct Cell {
    gbs: f64,
    mvs: f64,
    median_gbs: f64,
}

fn run_set(report: &mut String, title: &str, bytes: usize, offset: usize, runners: &[Runner], min_time: Duration) {
    writeln!(report, "\n### {title}\n").unwrap();
    write!(
        report,
        "GB/s of row data read in the fastest pass (Mvectors/s in parentheses; after the slash, GB/s of the median pass).\n\n| kernel | dim |"
    )
    .unwrap();
    for r in runners {
        write!(report, " {} |", r.name()).unwrap();
    }
    writeln!(report, " best keel ÷ simsimd |").unwrap();
    write!(report, "|---|---|").unwrap();
    for _ in runners {
        write!(report, "---|").unwrap();
    }
    writeln!(report, "---|").unwrap();
    for m in Metric::ALL {
        for dim in DIMS {
            let d = Data::new(m, dim, bytes, 0x5EED ^ dim as u64, offset);
            let row_bytes = m.row_bytes(dim);
            let bytes = (d.n * row_bytes) as f64;
            let cells: Vec<Cell> = measure(runners, m, &d, min_time)
                .into_iter()
                .map(|(best, median)| Cell { gbs: bytes / best / 1e9, mvs: d.n as f64 / best / 1e6, median_gbs: bytes / median / 1e9 })
                .collect();
            write!(report, "| {} | {dim} |", m.name()).unwrap();
            for c in &cells {
                write!(report, " {:.1} ({:.1}) / {:.1} |", c.gbs, c.mvs, c.median_gbs).unwrap();
            }
            let (keel, simsimd) = cells.split_at(cells.len() - 1);
            let best = keel.iter().map(|c| c.mvs).fold(0.0, f64::max);
            writeln!(report, " {:.2} |", best / simsimd[0].mvs).unwrap();
            eprintln!("done: {title}: {} dim {dim}", m.name());
        }
    }
}

fn cpu_report() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let flags = field("flags");
    let wanted = ["avx2", "fma", "popcnt", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_vpopcntdq", "avx_vnni", "asimd", "asimddp"];
    let have: Vec<&str> = wanted.iter().copied().filter(|w| flags.split(' ').any(|f| f == *w)).collect();
    let missing: Vec<&str> = wanted.iter().copied().filter(|w| !have.contains(w)).collect();
    let mut caches = Vec::new();
    for i in 0..8 {
        let base = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let (Ok(level), Ok(kind), Ok(size)) = (
            std::fs::read_to_string(format!("{base}/level")),
            std::fs::read_to_string(format!("{base}/type")),
            std::fs::read_to_string(format!("{base}/size")),
        ) else {
            continue;
        };
        if kind.trim() != "Instruction" {
            caches.push(format!("L{} {}", level.trim(), size.trim()));
        }
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!(
        "- CPU: {} ({cpus} CPUs visible; caches per core as the OS reports them: {})\n- CPU flags present: {}; absent: {}\n",
        field("model name"),
        caches.join(", "),
        have.join(" "),
        if missing.is_empty() { "none".into() } else { missing.join(" ") }
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out_path = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).cloned();
    let mib = |var: &str, default: usize| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let big = mib("KERNELS_BENCH_BIG_KIB", 64 * 1024) * 1024;
    let small = mib("KERNELS_BENCH_SMALL_KIB", 256) * 1024;
    let min_time = Duration::from_millis(mib("KERNELS_BENCH_MIN_MS", 250) as u64);
    let command = std::env::var("KERNELS_BENCH_COMMAND").unwrap_or_else(|_| args.join(" "));

    let mut runners: Vec<Runner> = Kernel::available().into_iter().map(Runner::Keel).collect();
    runners.push(Runner::Simsimd);
    let simsimd_isa = [
        ("sapphire", simsimd::capabilities::uses_sapphire()),
        ("genoa", simsimd::capabilities::uses_genoa()),
        ("ice", simsimd::capabilities::uses_ice()),
        ("skylake", simsimd::capabilities::uses_skylake()),
        ("haswell", simsimd::capabilities::uses_haswell()),
        ("neon", simsimd::capabilities::uses_neon()),
        ("neon_i8", simsimd::capabilities::uses_neon_i8()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect::<Vec<_>>()
    .join(", ");

    let load_before = loadavg();
    let started = Instant::now();
    let mut report = String::new();
    writeln!(report, "## Run\n").unwrap();
    writeln!(report, "- Command: `{command}`").unwrap();
    report.push_str(&cpu_report());
    writeln!(report, "- keel paths measured: {} (best: {})", Kernel::available().iter().map(|k| k.name()).collect::<Vec<_>>().join(", "), Kernel::best().name()).unwrap();
    writeln!(report, "- simsimd 6.5.16, its dynamic dispatch reports these backends usable: {simsimd_isa}").unwrap();
    let mut body = String::new();
    let (mib, kib) = (big / (1024 * 1024), small / 1024);
    run_set(&mut body, &format!("Rows larger than L2: {mib} MiB per row set, 64-byte aligned"), big, 0, &runners, min_time);
    run_set(&mut body, &format!("Rows in L2: {kib} KiB per row set, 64-byte aligned"), small, 0, &runners, min_time);
    run_set(&mut body, &format!("Rows in L2: {kib} KiB per row set, starting 16 bytes past a 64-byte boundary"), small, 16, &runners, min_time);
    writeln!(report, "- Load average (1/5/15 min) before: {load_before}; after: {}; run took {:.0} s", loadavg(), started.elapsed().as_secs_f64()).unwrap();
    report.push_str(&body);
    print!("{report}");
    if let Some(p) = out_path {
        // Keep the hand-written part of the file (everything up to the marker line).
        let old = std::fs::read_to_string(&p).unwrap_or_default();
        let head = match old.find(MARKER) {
            Some(i) => &old[..i + MARKER.len()],
            None => MARKER,
        };
        std::fs::write(&p, format!("{head}\n\n{report}")).unwrap_or_else(|e| panic!("write {p}: {e}"));
        eprintln!("wrote {p}");
    }
}
