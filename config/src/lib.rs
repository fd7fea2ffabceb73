//! keel's configuration: the TOML file given by `--config FILE`, with command-line flags
//! layered on top (flags win). Validation happens here, once, so every process sees the
//! same checked values; a bad file or value is a [`ConfigError`] whose `Display` is the
//! one line the server prints before exiting with code 2.
//!
//! Architecture Invariant: `config` depends on no other keel crate and does no I/O
//! except reading the config file in [`Config::from_file`].

#![deny(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// When a write is acknowledged (DESIGN §3): keel's one durability type, used by the
/// config, by every shard's store (`keel_storage` re-exports it) and by INFO.
///
/// Each tier says what an *acknowledged* write survives; a write that was not yet
/// acknowledged may or may not survive anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Acknowledged once the batch's write to the segment file completed (no sync); a
    /// background fdatasync runs every 100 ms. Survives the keel process (or one shard)
    /// being killed: the data is in the kernel. Not an OS crash or power loss: writes
    /// of up to the last ~100 ms can be lost then.
    Relaxed,
    /// Acknowledged after the batch's write and its fdatasync (and an fsync of the
    /// directory when a segment file is created) completed. Survives an OS crash. The
    /// default.
    Kernel,
    /// As `Kernel`, plus a flush of the device's volatile write cache (`F_FULLFSYNC` on
    /// macOS). Survives power loss on a device that honours cache flushes. On Linux
    /// fdatasync already issues that flush, so `Power` and `Kernel` do the same there.
    Power,
}

impl FromStr for Durability {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "relaxed" => Ok(Durability::Relaxed),
            "kernel" => Ok(Durability::Kernel),
            "power" => Ok(Durability::Power),
            _ => Err(ConfigError::Invalid(format!(
                "invalid durability '{s}': expected relaxed, kernel or power"
            ))),
        }
    }
}

impl Durability {
    /// The lowercase name used in flags, the config file and INFO.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Relaxed => "relaxed",
            Durability::Kernel => "kernel",
            Durability::Power => "power",
        }
    }
}

/// A configuration problem; `Display` is a single line for stderr.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given by `--config` could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// Not TOML, a wrong type, or an unknown key (`msg` is one line from the parser).
    #[error("config file {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    /// A value out of range (the message names the key, the value and the range).
    #[error("{0}")]
    Invalid(String),
}

/// The file form: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// RESP listen address, `HOST:PORT`.
    pub resp_addr: Option<String>,
    /// Shard processes.
    pub shards: Option<u32>,
    /// Acknowledgement tier.
    pub durability: Option<Durability>,
    /// vLog segment size, bytes.
    pub segment_bytes: Option<u64>,
    /// Values up to this many bytes are kept in the keydir, beside their key.
    pub inline_value_max: Option<usize>,
    /// Value cache budget per shard, bytes.
    pub cache_bytes: Option<u64>,
    /// Budget per shard of value bytes read and not yet sent, bytes.
    pub inflight_bytes: Option<u64>,
    /// Router executors (threads); default: online CPUs.
    pub router_threads: Option<usize>,
    /// Largest accepted bulk string, bytes (Redis `proto-max-bulk-len`).
    pub max_bulk_len: Option<usize>,
    /// Hand connections whose commands all go to one shard to that shard (default true).
    pub shard_handoff: Option<bool>,
    /// Largest request a connection may send, bytes (Redis `client-query-buffer-limit`).
    pub client_query_buffer_limit: Option<usize>,
    /// Largest router↔shard frame (so also the largest reply), bytes.
    pub max_frame_len: Option<usize>,
    /// Whether the DEBUG command is served (Redis `enable-debug-command`; default false).
    pub enable_debug_command: Option<bool>,
    /// How long a shard may leave a request (or a health check) unanswered, in
    /// milliseconds (default 5000).
    pub shard_timeout: Option<u64>,
    /// Numbered databases (Redis `databases`; default 16, at most [`MAX_DATABASES`]).
    pub databases: Option<usize>,
}

/// Values given on the command line; `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--resp-addr` (`HOST:PORT`, parsed in [`Config::resolve`]).
    pub resp_addr: Option<String>,
    /// `--shards`.
    pub shards: Option<u32>,
    /// `--durability` (parsed in [`Config::resolve`]).
    pub durability: Option<String>,
    /// `--router-threads`.
    pub router_threads: Option<usize>,
    /// `--shard-handoff`.
    pub shard_handoff: Option<bool>,
    /// `--cache-bytes`.
    pub cache_bytes: Option<u64>,
    /// `--inflight-bytes`.
    pub inflight_bytes: Option<u64>,
}

/// The effective, validated configuration. It serializes to the TOML of a config file
/// ([`Config::to_toml`]) that reads back as the same configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Data directory (as given; may be relative to the working directory).
    pub data_dir: PathBuf,
    /// RESP listen address (port 0 = pick a free port at start).
    pub resp_addr: SocketAddr,
    /// Shard processes, 1..=1024.
    pub shards: u32,
    /// Acknowledgement tier.
    pub durability: Durability,
    /// vLog segment size, bytes (1 MiB ..= 2 GiB; default 64 MiB).
    pub segment_bytes: u64,
    /// Values of at most this many bytes are kept in the keydir beside their key instead
    /// of the value cache, bytes (0 ..= [`MAX_INLINE_VALUE`]; default 16). Router and
    /// every shard (the shard's store keeps them).
    pub inline_value_max: usize,
    /// Budget of each shard's value cache (an S3-FIFO cache of values above
    /// `inline_value_max`, written or read from the vLog), bytes: [`MIN_CACHE_BYTES`] ..=
    /// [`MAX_CACHE_BYTES`], default [`DEFAULT_CACHE_BYTES`] (32 MiB). Each cached value
    /// costs its bytes plus about 200 B of bookkeeping; a value costing more than an
    /// eighth of the budget is never cached (always read from the vLog).
    pub cache_bytes: u64,
    /// Budget of each shard for value bytes read and not yet sent (replies its
    /// connections hold, and its reads from the vLog in flight), bytes:
    /// [`MIN_INFLIGHT_BYTES`] ..= [`MAX_INFLIGHT_BYTES`], default
    /// [`DEFAULT_INFLIGHT_BYTES`] (8 MiB). A connection holding replies when the shard is
    /// at the budget writes them before it starts another request; one holding none
    /// always starts one (so a value larger than the budget is served). Shards only.
    pub inflight_bytes: u64,
    /// Router executors, 1..=256 (default: online CPUs).
    pub router_threads: usize,
    /// Largest bulk string accepted from clients, bytes (default 512 MiB).
    pub max_bulk_len: usize,
    /// Connection hand-off (DESIGN §1): a connection whose recent commands all went to
    /// one shard is served by that shard process directly (default true).
    pub shard_handoff: bool,
    /// Largest request a connection may send, bytes (1 MiB ..= 1 GiB; default 1 GiB,
    /// Redis's `client-query-buffer-limit`). Router and shards (for handed-off
    /// connections) both need it.
    pub client_query_buffer_limit: usize,
    /// Largest router↔shard frame, bytes, so also the largest reply (64 KiB ..= 2 GiB;
    /// default 1 GiB + 1 MiB: a largest request plus room for its framing). Router and
    /// every shard need it.
    pub max_frame_len: usize,
    /// Whether the DEBUG command is served (default false, Redis's
    /// `enable-debug-command no`). Router only.
    pub enable_debug_command: bool,
    /// How long a shard may go without answering, in milliseconds (100 ..= 3,600,000;
    /// default 5000). A request unanswered for this long fails with
    /// `-ERR shard N is not responding`; the supervisor kills (SIGKILL) and restarts a
    /// shard that answers none of its health checks for this long, or that makes no
    /// progress (CPU time, I/O) for this long while starting. Router only; see
    /// [`Config::shard_timeout`].
    pub shard_timeout: u64,
    /// Numbered databases, SELECT 0 ..= databases − 1 (1 ..= [`MAX_DATABASES`]; default
    /// 16, as Redis). Router and every shard need it.
    pub databases: usize,
}

/// The most databases a configuration may set: 253. Each database is a one-byte
/// storage namespace of its own on every shard, and of the 256 namespaces three hold
/// vector data and one the shard's database map (`shard/FORMAT.md`).
pub const MAX_DATABASES: usize = 253;
/// Default of [`Config::cache_bytes`]: 32 MiB per shard.
pub const DEFAULT_CACHE_BYTES: u64 = 32 << 20;
/// Largest [`Config::inline_value_max`]: 32 bytes (what a keydir record can hold).
pub const MAX_INLINE_VALUE: usize = 32;
/// Smallest [`Config::cache_bytes`]: 1 MiB (an eighth of it, the largest value cached,
/// is then 128 KiB).
pub const MIN_CACHE_BYTES: u64 = 1 << 20;
/// Largest [`Config::cache_bytes`]: 1 TiB per shard (more is a typo, not a machine).
pub const MAX_CACHE_BYTES: u64 = 1 << 40;

/// Default of [`Config::inflight_bytes`]: 8 MiB per shard.
pub const DEFAULT_INFLIGHT_BYTES: u64 = 8 << 20;
/// Smallest [`Config::inflight_bytes`]: 64 KiB.
pub const MIN_INFLIGHT_BYTES: u64 = 64 << 10;
/// Largest [`Config::inflight_bytes`]: 1 TiB per shard.
pub const MAX_INFLIGHT_BYTES: u64 = 1 << 40;

/// Default of [`Config::client_query_buffer_limit`]: 1 GiB, as Redis.
pub const DEFAULT_CLIENT_QUERY_BUFFER_LIMIT: usize = 1 << 30;
/// Default of [`Config::max_frame_len`]: 1 GiB + 1 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = (1 << 30) + (1 << 20);
/// Default of [`Config::shard_timeout`], milliseconds: 5 s.
pub const DEFAULT_SHARD_TIMEOUT_MS: u64 = 5000;
/// The range [`Config::shard_timeout`] accepts, milliseconds: 100 ms ..= 1 hour. Below
/// 100 ms an ordinary fdatasync on a slow disk could pass for a hang.
pub const SHARD_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=3_600_000;

impl FileConfig {
    /// Reads and parses a TOML file. Errors: `Read`, `Parse` (unknown keys, wrong types).
    pub fn from_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text).map_err(|msg| ConfigError::Parse { path: path.to_owned(), msg })
    }

    /// Parses TOML text; the error is a one-line message that names the line (and shows
    /// it, cut to 80 characters) when the parser knows where the problem is.
    pub fn from_toml(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().replace('\n', " ");
            let Some(span) = e.span().filter(|s| s.start < text.len()) else { return msg };
            let line_no = text[..span.start].matches('\n').count() + 1;
            let line: String = text.lines().nth(line_no - 1).unwrap_or("").trim().chars().take(80).collect();
            format!("line {line_no} ({line}): {msg}")
        })
    }
}

impl Config {
    /// Layers `flags` over `file` over the defaults and validates the result.
    /// `online_cpus` is the default for `shards` and `router_threads`.
    pub fn resolve(file: FileConfig, flags: Overrides, online_cpus: usize) -> Result<Config, ConfigError> {
        let durability = match flags.durability {
            Some(s) => s.parse()?,
            None => file.durability.unwrap_or(Durability::Kernel),
        };
        let addr_text = flags.resp_addr.or(file.resp_addr).unwrap_or_else(|| "127.0.0.1:6379".into());
        let resp_addr = parse_addr(&addr_text)?;
        let shards = flags.shards.or(file.shards).unwrap_or(online_cpus.max(1) as u32);
        if !(1..=1024).contains(&shards) {
            return Err(ConfigError::Invalid(format!("invalid shard count {shards}: expected 1..=1024")));
        }
        let router_threads = flags.router_threads.or(file.router_threads).unwrap_or(online_cpus.max(1));
        if !(1..=256).contains(&router_threads) {
            return Err(ConfigError::Invalid(format!(
                "invalid router_threads {router_threads}: expected 1..=256"
            )));
        }
        let segment_bytes = file.segment_bytes.unwrap_or(64 << 20);
        if !((1 << 20)..=(2 << 30)).contains(&segment_bytes) {
            return Err(ConfigError::Invalid(format!(
                "invalid segment_bytes {segment_bytes}: expected 1 MiB ..= 2 GiB"
            )));
        }
        let inline_value_max = file.inline_value_max.unwrap_or(16);
        if inline_value_max > MAX_INLINE_VALUE {
            return Err(ConfigError::Invalid(format!(
                "invalid inline_value_max {inline_value_max}: expected 0..={MAX_INLINE_VALUE} bytes"
            )));
        }
        let cache_bytes = flags.cache_bytes.or(file.cache_bytes).unwrap_or(DEFAULT_CACHE_BYTES);
        if !(MIN_CACHE_BYTES..=MAX_CACHE_BYTES).contains(&cache_bytes) {
            return Err(ConfigError::Invalid(format!(
                "invalid cache_bytes {cache_bytes}: expected 1 MiB ..= 1 TiB (1048576 ..= 1099511627776 bytes per shard)"
            )));
        }
        let inflight_bytes = flags.inflight_bytes.or(file.inflight_bytes).unwrap_or(DEFAULT_INFLIGHT_BYTES);
        if !(MIN_INFLIGHT_BYTES..=MAX_INFLIGHT_BYTES).contains(&inflight_bytes) {
            return Err(ConfigError::Invalid(format!(
                "invalid inflight_bytes {inflight_bytes}: expected 64 KiB ..= 1 TiB (65536 ..= 1099511627776 bytes per shard)"
            )));
        }
        let max_bulk_len = file.max_bulk_len.unwrap_or(512 << 20);
        if !(1024..=(512 << 20)).contains(&max_bulk_len) {
            return Err(ConfigError::Invalid(format!(
                "invalid max_bulk_len {max_bulk_len}: expected 1 KiB ..= 512 MiB"
            )));
        }
        let client_query_buffer_limit = file.client_query_buffer_limit.unwrap_or(DEFAULT_CLIENT_QUERY_BUFFER_LIMIT);
        if !((1 << 20)..=(1 << 30)).contains(&client_query_buffer_limit) {
            return Err(ConfigError::Invalid(format!(
                "invalid client_query_buffer_limit {client_query_buffer_limit}: expected 1 MiB ..= 1 GiB"
            )));
        }
        let max_frame_len = file.max_frame_len.unwrap_or(DEFAULT_MAX_FRAME_LEN);
        if !((64 << 10)..=(2 << 30)).contains(&max_frame_len) {
            return Err(ConfigError::Invalid(format!(
                "invalid max_frame_len {max_frame_len}: expected 64 KiB ..= 2 GiB"
            )));
        }
        let shard_timeout = file.shard_timeout.unwrap_or(DEFAULT_SHARD_TIMEOUT_MS);
        if !SHARD_TIMEOUT_MS_RANGE.contains(&shard_timeout) {
            return Err(ConfigError::Invalid(format!(
                "invalid shard_timeout {shard_timeout}: expected 100 ..= 3600000 (milliseconds)"
            )));
        }
        let data_dir = flags.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("invalid data dir: empty path".into()));
        }
        // Written into keel.effective.toml and the shards' configuration, both TOML.
        if data_dir.to_str().is_none() {
            return Err(ConfigError::Invalid(format!("invalid data dir {}: not valid UTF-8", data_dir.display())));
        }
        let databases = file.databases.unwrap_or(16);
        if !(1..=MAX_DATABASES).contains(&databases) {
            return Err(ConfigError::Invalid(format!("invalid databases {databases}: expected 1..={MAX_DATABASES}")));
        }
        let shard_handoff = flags.shard_handoff.or(file.shard_handoff).unwrap_or(true);
        Ok(Config {
            databases,
            shard_handoff,
            client_query_buffer_limit,
            max_frame_len,
            enable_debug_command: file.enable_debug_command.unwrap_or(false),
            shard_timeout,
            data_dir,
            resp_addr,
            shards,
            durability,
            segment_bytes,
            inline_value_max,
            cache_bytes,
            inflight_bytes,
            router_threads,
            max_bulk_len,
        })
    }

    /// [`Config::shard_timeout`] as a `Duration`.
    pub fn shard_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shard_timeout)
    }

    /// The effective configuration as TOML (written to the data dir as
    /// `keel.effective.toml`): a config file that [`FileConfig::from_toml`] reads back as
    /// this configuration. Errors: a value TOML cannot hold (not for a `Config` from
    /// [`Config::resolve`], which refuses a data dir that is not UTF-8).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let bad = || ConfigError::Invalid(format!("invalid resp address '{s}': expected HOST:PORT"));
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    // Host names such as localhost:6379.
    s.to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml: &str, flags: Overrides) -> Result<Config, String> {
        let file = FileConfig::from_toml(toml)?;
        Config::resolve(file, flags, 4).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = resolve("", Overrides::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.resp_addr.to_string(), "127.0.0.1:6379");
        assert_eq!(c.shards, 4);
        assert_eq!(c.durability, Durability::Kernel);
        assert!(c.shard_handoff);
        assert_eq!(c.databases, 16);
        assert_eq!(resolve("databases = 253", Overrides::default()).unwrap().databases, 253);
        let off = Overrides { shard_handoff: Some(false), ..Default::default() };
        assert!(!resolve("shard_handoff = true", off).unwrap().shard_handoff);
        assert!(!resolve("shard_handoff = false", Overrides::default()).unwrap().shard_handoff);
    }

    #[test]
    fn flags_override_file() {
        let flags = Overrides { shards: Some(2), durability: Some("relaxed".into()), ..Default::default() };
        let c = resolve("shards = 8\ndurability = \"power\"\nresp_addr = \"127.0.0.1:7000\"", flags).unwrap();
        assert_eq!(c.shards, 2);
        assert_eq!(c.durability, Durability::Relaxed);
        assert_eq!(c.resp_addr.port(), 7000);
    }

    #[test]
    fn unknown_key_rejected() {
        let e = resolve("shardz = 2", Overrides::default()).unwrap_err();
        assert!(e.contains("unknown field `shardz`"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = resolve("shards = 2\nenable_debug_command = \"maybe\"\n", Overrides::default()).unwrap_err();
        assert!(e.starts_with("line 2 (enable_debug_command = \"maybe\"): invalid type"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn inline_value_max_defaults_to_16_and_is_range_checked() {
        assert_eq!(resolve("", Overrides::default()).unwrap().inline_value_max, 16);
        assert_eq!(resolve("inline_value_max = 32", Overrides::default()).unwrap().inline_value_max, 32);
        let e = resolve("inline_value_max = 33", Overrides::default()).unwrap_err();
        assert!(e.contains("invalid inline_value_max 33: expected 0..=32 bytes"), "{e}");
    }

    #[test]
    fn limits_default_to_redis_values_and_are_range_checked() {
        let c = resolve("", Overrides::default()).unwrap();
        assert_eq!(c.client_query_buffer_limit, 1073741824);
        assert_eq!(c.max_frame_len, 1074790400);
        assert!(!c.enable_debug_command);
        let c = resolve(
            "client_query_buffer_limit = 1048576\nmax_frame_len = 65536\nenable_debug_command = true",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!((c.client_query_buffer_limit, c.max_frame_len, c.enable_debug_command), (1 << 20, 64 << 10, true));
        let c = resolve("max_frame_len = 2147483648", Overrides::default()).unwrap();
        assert_eq!(c.max_frame_len, 2 << 30);
        for (toml, key, range) in [
            ("client_query_buffer_limit = 1048575", "client_query_buffer_limit 1048575", "1 MiB ..= 1 GiB"),
            ("client_query_buffer_limit = 1073741825", "client_query_buffer_limit 1073741825", "1 MiB ..= 1 GiB"),
            ("max_frame_len = 65535", "max_frame_len 65535", "64 KiB ..= 2 GiB"),
            ("max_frame_len = 2147483649", "max_frame_len 2147483649", "64 KiB ..= 2 GiB"),
            ("databases = 0", "databases 0", "1..=253"),
            ("databases = 254", "databases 254", "1..=253"),
        ] {
            let e = resolve(toml, Overrides::default()).unwrap_err();
            assert_eq!(e, format!("invalid {key}: expected {range}"));
        }
        assert!(resolve("enable_debug_command = \"yes\"", Overrides::default()).is_err());
        assert!(resolve("client_query_buffer_limit = -1", Overrides::default()).is_err());
    }

    /// The effective config is TOML that reads back as the same config, whatever the
    /// data dir's name holds (quotes, backslashes: `{:?}` is not TOML escaping).
    #[test]
    fn effective_toml_reads_back_as_the_same_config() {
        for dir in ["./data", "/tmp/a \"quoted\" \\ dir\\", "/tmp/tab\there/ünï", "C:\\x\\y"] {
            let flags = Overrides { data_dir: Some(PathBuf::from(dir)), ..Default::default() };
            let toml = "durability = \"relaxed\"\nshard_handoff = false\nmax_frame_len = 100000\nenable_debug_command = true\nshard_timeout = 1500";
            let c = resolve(toml, flags).unwrap();
            let text = c.to_toml().unwrap();
            let back = Config::resolve(FileConfig::from_toml(&text).unwrap(), Overrides::default(), 1).unwrap();
            assert_eq!(back, c, "{text}");
        }
    }

    #[test]
    fn data_dir_must_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let bad = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\xff"));
        let e = resolve("", Overrides { data_dir: Some(bad), ..Default::default() }).unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn shard_timeout_is_in_milliseconds_and_range_checked() {
        let c = resolve("", Overrides::default()).unwrap();
        assert_eq!((c.shard_timeout, c.shard_timeout()), (5000, std::time::Duration::from_secs(5)));
        assert_eq!(resolve("shard_timeout = 100", Overrides::default()).unwrap().shard_timeout, 100);
        assert_eq!(resolve("shard_timeout = 3600000", Overrides::default()).unwrap().shard_timeout, 3_600_000);
        for bad in ["0", "99", "3600001"] {
            let e = resolve(&format!("shard_timeout = {bad}"), Overrides::default()).unwrap_err();
            assert_eq!(e, format!("invalid shard_timeout {bad}: expected 100 ..= 3600000 (milliseconds)"));
        }
        // Not a number of milliseconds: the parser's one line, naming the line.
        for bad in ["-1", "\"5s\"", "1.5", "true"] {
            let e = resolve(&format!("shard_timeout = {bad}"), Overrides::default()).unwrap_err();
            assert!(e.starts_with("line 1 (shard_timeout = "), "{e}");
        }
    }

    #[test]
    fn inflight_bytes_default_flag_and_range() {
        assert_eq!(resolve("", Overrides::default()).unwrap().inflight_bytes, 8 << 20);
        assert_eq!(resolve("inflight_bytes = 65536", Overrides::default()).unwrap().inflight_bytes, 64 << 10);
        let flags = Overrides { inflight_bytes: Some(1 << 20), ..Default::default() };
        assert_eq!(resolve("inflight_bytes = 65536", flags).unwrap().inflight_bytes, 1 << 20);
        assert_eq!(resolve("inflight_bytes = 1099511627776", Overrides::default()).unwrap().inflight_bytes, 1 << 40);
        for bad in ["0", "65535", "1099511627777"] {
            let e = resolve(&format!("inflight_bytes = {bad}"), Overrides::default()).unwrap_err();
            assert_eq!(e, format!("invalid inflight_bytes {bad}: expected 64 KiB ..= 1 TiB (65536 ..= 1099511627776 bytes per shard)"));
        }
        assert!(resolve("inflight_bytes = -1", Overrides::default()).is_err());
        assert!(resolve("inflight_bytes = \"8MiB\"", Overrides::default()).is_err());
    }

    #[test]
    fn cache_bytes_default_flag_and_range() {
        assert_eq!(resolve("", Overrides::default()).unwrap().cache_bytes, 32 << 20);
        assert_eq!(resolve("cache_bytes = 1048576", Overrides::default()).unwrap().cache_bytes, 1 << 20);
        let flags = Overrides { cache_bytes: Some(64 << 20), ..Default::default() };
        assert_eq!(resolve("cache_bytes = 1048576", flags).unwrap().cache_bytes, 64 << 20);
        assert_eq!(resolve("cache_bytes = 1099511627776", Overrides::default()).unwrap().cache_bytes, 1 << 40);
        for bad in ["0", "1", "1048575", "1099511627777"] {
            let e = resolve(&format!("cache_bytes = {bad}"), Overrides::default()).unwrap_err();
            assert_eq!(e, format!("invalid cache_bytes {bad}: expected 1 MiB ..= 1 TiB (1048576 ..= 1099511627776 bytes per shard)"));
        }
        assert!(resolve("cache_bytes = -1", Overrides::default()).is_err());
        assert!(resolve("cache_bytes = \"32MiB\"", Overrides::default()).is_err());
    }

    #[test]
    fn bad_values_rejected() {
        assert!(resolve("durability = \"fast\"", Overrides::default()).is_err());
        assert!(resolve("shards = 0", Overrides::default()).unwrap_err().contains("invalid shard count"));
        let flags = Overrides { durability: Some("sometimes".into()), ..Default::default() };
        assert!(resolve("", flags).unwrap_err().contains("invalid durability"));
        let flags = Overrides { resp_addr: Some("nonsense".into()), ..Default::default() };
        assert!(resolve("", flags).unwrap_err().contains("invalid resp address"));
    }
}
