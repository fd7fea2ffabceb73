//! The KV probe (`--kv-probe`): SET/GET of a key on the index's shard, one at a time.

use super::conn::Conn;
use super::percentile;
use anyhow::{bail, Result};
use keel_protocol::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the KV probe runs alone, before the first search run.
pub(super) const PROBE_ALONE: Duration = Duration::from_secs(3);
/// Probe requests sent untimed on each probe connection (the router hands a connection
/// to its shard after 8 single-shard batches).
pub(super) const PROBE_WARMUP: usize = 16;
/// Pause between two probe requests.
pub(super) const PROBE_PAUSE: Duration = Duration::from_millis(1);
/// The value the probe SETs and expects back from GET.
pub(super) const PROBE_VALUE: &[u8] = b"probe-v1";

/// `<tenant>:probe`, where the tenant is the index name up to its first `:` (all of it
/// if it has none): keel routes both to the same shard.
pub(super) fn probe_key(index: &str) -> String {
    let tenant = index.split_once(':').map_or(index, |(t, _)| t);
    format!("{tenant}:probe")
}

/// Latencies of the KV probe's requests, each sorted ascending.
#[derive(Debug, Default)]
pub(super) struct ProbeLatencies {
    pub(super) get: Vec<Duration>,
    pub(super) set: Vec<Duration>,
}

impl ProbeLatencies {
    /// `p50/p99/max` in ms of one request type, or `-` if there were none.
    pub(super) fn cell(sorted: &[Duration]) -> String {
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

    pub(super) fn summary(&self) -> String {
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
pub(super) struct Probe {
    pub(super) conn: Conn,
    pub(super) key: Vec<u8>,
    /// Requests sent so far (even: SET, odd: GET).
    pub(super) sent: usize,
}

impl Probe {
    /// Connects and sends the first [`PROBE_WARMUP`] requests, untimed.
    pub(super) fn connect(addr: &str, key: &str) -> Result<Probe> {
        let mut p = Probe { conn: Conn::connect(addr)?, key: key.as_bytes().to_vec(), sent: 0 };
        while p.sent < PROBE_WARMUP {
            p.request()?;
        }
        Ok(p)
    }

    /// Sends the next request and waits for its reply; returns whether it was a SET and
    /// how long it took. A GET that does not return the value is an error.
    pub(super) fn request(&mut self) -> Result<(bool, Duration)> {
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
    pub(super) fn run(mut self, stop: &AtomicBool) -> Result<ProbeLatencies> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_routes_like_the_index() {
        assert_eq!(probe_key("bench:vec"), "bench:probe");
        assert_eq!(probe_key("t1:a:b"), "t1:probe");
        assert_eq!(probe_key("vec"), "vec:probe");
    }
}
