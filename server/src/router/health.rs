//! How a supervisor thread tells a live shard from a hung one (a stopped process, one
//! stuck in a system call): [`Pinger`] health checks over the shard's own socket once it
//! is ready, and [`Progress`] (CPU time and I/O counters from `/proc`) while it starts.
//! Both are plain blocking code on the supervisor's thread; [`super::supervisor`] decides
//! what to do with their answers.

use keel_protocol::shard::{decode_frame, encode_request_args, Kind};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The largest reply frame a health check expects (a PING's reply is 20 bytes); a
/// larger frame means the stream is not what we think and the connection is dropped.
const MAX_REPLY_FRAME: usize = 64 << 10;

/// How often a ready shard is pinged: every second, or a quarter of `shard_timeout` when
/// that is shorter (so several checks fit into one timeout).
pub fn ping_interval(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(1))
}

/// Health checks of one shard process over its own connection to `shard.sock`: a
/// `PING` request frame (the shard answers it in its reader, without touching the disk)
/// at most every [`ping_interval`], one at a time; [`Pinger::overdue`] is how long the
/// one in flight has waited.
pub struct Pinger {
    stream: UnixStream,
    next_req: u64,
    /// The ping in flight: its `req_id` and when it was sent.
    in_flight: Option<(u64, Instant)>,
    last_sent: Option<Instant>,
    buf: Vec<u8>,
}

impl Pinger {
    /// Connects to the shard's socket; reads wait at most `poll` (the supervisor's loop
    /// period). Errors: the socket does not accept (the shard is not ready).
    pub fn connect(socket: &Path, poll: Duration) -> std::io::Result<Pinger> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(poll))?;
        stream.set_write_timeout(Some(poll))?;
        Ok(Pinger { stream, next_req: 1, in_flight: None, last_sent: None, buf: Vec::new() })
    }

    /// One step: sends a ping if none is in flight and the last was sent `interval` ago
    /// or more, then reads what the shard sent for up to the read timeout. Returns the
    /// round-trip time when the ping's reply arrived in this step. Errors: the
    /// connection broke or carried something other than reply frames (the caller
    /// reconnects; a shard that exits is seen by its `wait`).
    pub fn step(&mut self, interval: Duration) -> std::io::Result<Option<Duration>> {
        if self.in_flight.is_none() && self.last_sent.is_none_or(|t| t.elapsed() >= interval) {
            let id = self.next_req;
            self.next_req += 1;
            let mut frame = Vec::with_capacity(32);
            encode_request_args(id, &[b"PING"], MAX_REPLY_FRAME, &mut frame).expect("PING fits");
            // 26 bytes with at most one in flight: the socket buffer always has room.
            self.stream.write_all(&frame)?;
            let now = Instant::now();
            self.in_flight = Some((id, now));
            self.last_sent = Some(now);
        }
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk) {
            Ok(0) => return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "the shard closed the connection")),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        let mut answered = None;
        let mut used = 0;
        while let Some((frame, n)) = decode_frame(&self.buf[used..], MAX_REPLY_FRAME)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e.to_string()))?
        {
            used += n;
            if frame.kind != Kind::Reply {
                return Err(std::io::Error::new(ErrorKind::InvalidData, "a request frame from the shard"));
            }
            if let Some((id, sent)) = self.in_flight {
                if frame.req_id == id {
                    self.in_flight = None;
                    answered = Some(sent.elapsed());
                }
            }
        }
        self.buf.drain(..used);
        Ok(answered)
    }

    /// How long the ping in flight has waited for its reply (zero if none is).
    pub fn overdue(&self) -> Duration {
        self.in_flight.map_or(Duration::ZERO, |(_, sent)| sent.elapsed())
    }
}

/// A snapshot of what a process has done so far: its state letter and CPU time from
/// `/proc/PID/stat` and, where readable, its I/O counters from `/proc/PID/io`. A
/// starting shard that changes none of them for `shard_timeout` is stuck (stopped,
/// blocked in a system call that does not return, deadlocked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `utime + stime`, clock ticks (summed over the process's threads).
    pub cpu_ticks: u64,
    /// `rchar`, `wchar`, `syscr`, `syscw` (0 when `/proc/PID/io` is not readable).
    pub io: [u64; 4],
}

impl Progress {
    /// Reads the counters of `pid`; `None` if the process is gone.
    pub fn of(pid: u32) -> Option<Progress> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut p = Progress::parse_stat(&stat)?;
        if let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) {
            p.io = Progress::parse_io(&io);
        }
        Some(p)
    }

    /// `utime` and `stime` (fields 14 and 15 of proc(5)'s `/proc/PID/stat`; the command
    /// name in field 2 may hold spaces and parentheses, so fields are counted after the
    /// last `)`).
    fn parse_stat(stat: &str) -> Option<Progress> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] is field 3 (state), so field k is fields[k - 3].
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Progress { cpu_ticks: utime + stime, io: [0; 4] })
    }

    /// `rchar`, `wchar`, `syscr`, `syscw` from `/proc/PID/io` (missing lines are 0).
    fn parse_io(io: &str) -> [u64; 4] {
        let mut out = [0u64; 4];
        for line in io.lines() {
            let Some((name, value)) = line.split_once(':') else { continue };
            let i = match name {
                "rchar" => 0,
                "wchar" => 1,
                "syscr" => 2,
                "syscw" => 3,
                _ => continue,
            };
            out[i] = value.trim().parse().unwrap_or(0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_time_after_the_command_name() {
        // The command name may hold spaces and ')'.
        let stat = "4242 (keel shard) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 1 2 3";
        assert_eq!(Progress::parse_stat(stat), Some(Progress { cpu_ticks: 22, io: [0; 4] }));
        assert_eq!(Progress::parse_stat("4242 (keel) S 1 2"), None);
        assert_eq!(Progress::parse_stat("garbage"), None);
    }

    #[test]
    fn parses_io_counters() {
        let io =
            "rchar: 10\nwchar: 20\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 0\ncancelled_write_bytes: 0\n";
        assert_eq!(Progress::parse_io(io), [10, 20, 3, 4]);
        assert_eq!(Progress::parse_io("wchar: 7\n"), [0, 7, 0, 0]);
    }

    #[test]
    fn a_read_is_progress() {
        let before = Progress::of(std::process::id()).expect("our own /proc entry");
        std::fs::read("/proc/self/stat").expect("read");
        let after = Progress::of(std::process::id()).expect("our own /proc entry");
        assert!(after.io[2] > before.io[2], "syscr {before:?} → {after:?}");
        assert_ne!(after, before);
    }

    #[test]
    fn ping_intervals() {
        assert_eq!(ping_interval(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(ping_interval(Duration::from_millis(1000)), Duration::from_millis(250));
        assert_eq!(ping_interval(Duration::from_millis(100)), Duration::from_millis(25));
    }
}
