//! The report (text and Markdown) and what it says about the machine and the server.

use super::conn::Conn;
use super::probe::{ProbeLatencies, PROBE_ALONE, PROBE_PAUSE};
use super::{BenchArgs, SearchRun};
use anyhow::{Context, Result};
use keel_protocol::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Server memory: RSS and PSS of `--server-pid` and its descendants (`/proc`), and the
/// `used_memory_rss` of `INFO memory` when keel reports it. Failures become text.
pub(super) fn server_rss(args: &BenchArgs) -> String {
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

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The value of `field:` in an `INFO` text.
pub(super) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

/// Memory of a process tree, summed over its processes.
#[derive(Debug, Default)]
pub(super) struct TreeMemory {
    /// VmRSS: a page shared between the processes (the one binary's code) counts in each.
    pub(super) rss: u64,
    /// Pss of `smaps_rollup` (0 where unreadable): a shared page is split between its users.
    pub(super) pss: u64,
    pub(super) procs: usize,
}

/// [`TreeMemory`] of `pid` and all its descendants.
pub(super) fn tree_memory(pid: u32) -> Result<TreeMemory> {
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
pub(super) struct Report {
    pub(super) command: String,
    pub(super) date: String,
    pub(super) machine: String,
    /// The machine's load average around the search runs.
    pub(super) load_average: String,
    pub(super) data: String,
    pub(super) index: String,
    pub(super) load: Option<(usize, Duration)>,
    pub(super) load_setup: String,
    /// What the KV probe sends (`--kv-probe`).
    pub(super) probe: Option<String>,
    /// The probe's latencies with no search running.
    pub(super) probe_alone: Option<ProbeLatencies>,
    pub(super) rss_after_load: String,
    /// Server RSS [`super::RSS_SETTLE`] after the load (none without a load or a pid).
    pub(super) rss_settled: Option<String>,
    pub(super) rss_end: String,
    pub(super) runs: Vec<SearchRun>,
}

impl Report {
    pub(super) fn load_line(&self) -> String {
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
    pub(super) fn columns(&self) -> Vec<(&'static str, usize)> {
        let n = if self.probe.is_some() { COLUMNS.len() } else { COLUMNS.len() - 2 };
        COLUMNS[..n].to_vec()
    }

    /// The table's cells, one row per search run: the one place rows are made.
    pub(super) fn rows(&self) -> Vec<Vec<String>> {
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
    pub(super) fn probe_lines(&self) -> Vec<String> {
        let Some(what) = &self.probe else { return Vec::new() };
        let mut lines = vec![format!("KV probe: {what}, {} ms apart", PROBE_PAUSE.as_millis())];
        if let Some(alone) = &self.probe_alone {
            lines.push(format!("KV probe alone ({} s, no search): {}", PROBE_ALONE.as_secs(), alone.summary()));
        }
        lines
    }

    /// The plain-text report for stdout.
    pub(super) fn text(&self) -> String {
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
    pub(super) fn markdown(&self) -> String {
        let mut out = String::from("# keel vector benchmark\n\n");
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Machine: {}", self.machine);
        let _ = writeln!(out, "- Load average (1/5/15 min): {}", self.load_average);
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let _ = writeln!(out, "- Data set: {}", self.data);
        let _ = writeln!(out, "- Index: {}", self.index);
        let _ = writeln!(out, "- Load: {}", self.load_line());
        let _ = writeln!(out, "- Server RSS after load: {}", self.rss_after_load);
        if let Some(settled) = &self.rss_settled {
            let _ = writeln!(out, "- Server RSS {} s after load (freed load buffers returned): {}", super::RSS_SETTLE.as_secs(), settled);
        }
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
pub(super) const COLUMNS: [(&str, usize); 9] = [
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
pub(super) fn machine_description() -> String {
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
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Joins arguments into a command line, single-quoting those a shell would split.
pub(super) fn shell_join(args: impl IntoIterator<Item = String>) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c);
    args.into_iter()
        .map(|a| if !a.is_empty() && a.chars().all(safe) { a } else { format!("'{}'", a.replace('\'', r"'\''")) })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the Unix epoch (proleptic Gregorian).
pub(super) fn utc_datetime(secs: u64) -> String {
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
            rss_settled: Some("1 MiB".into()),
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
