//! The keel shard process (DESIGN §1–§3): one glommio `LocalExecutor`, pinned to one
//! core, owning one `data-dir/shard-III/` directory — its vLog ([`keel_storage::Store`])
//! and the vector indexes derived from it ([`keel_index::FlatIndex`]).
//!
//! The router talks to a shard over a Unix socket with `keel_protocol::shard` frames.
//! Each request is an argv with tenant-qualified keys that all belong to this shard; the
//! answer is a protocol-neutral [`keel_protocol::Value`]. Requests of one connection run
//! their synchronous part in arrival order; a write's reply leaves
//! when its group commit is durable, so replies can overtake each other and carry the
//! request's `req_id`. Replies produced in one executor tick leave in one socket write.
//!
//! The request path is protocol-neutral ([`Shard::handle`] takes an argv, returns a
//! [`Reply`]), so the shard also serves client connections the router hands over
//! (DESIGN §1 "connection hand-off"; `client`): the router passes the socket of a
//! connection whose commands all go to this shard over `shard-III/handoff.sock`
//! ([`runtime::fdpass`]), the shard speaks RESP with it directly and passes it back at the first
//! request it does not serve itself.
//!
//! Trade-offs: a read-modify-write command (INCR, APPEND, SET … GET, GETDEL) whose old
//! value is on disk holds up its connection until the read is done, which keeps it
//! correct without per-key locks; values up to `inline_value_max` are in RAM, so this
//! is rare. Plain reads (GET, MGET) of values on disk do not hold the connection up:
//! their I/O is issued at once (fixing which value they return) and their replies follow
//! when it completes. Vector indexes are flat and their rows (f32, or int8/binary codes)
//! live wholly in RAM; a search scans its index in slices between the shard's other
//! requests, and the unfiltered searches of one index in progress together share one
//! pass over its rows (`ops::vector`).
//!
//! Architecture Invariant: a shard touches only its own directory, its two sockets and
//! the client connections handed to it; it binds the sockets only after recovery
//! (`handoff.sock` first, then `shard.sock`), so "the socket accepts" means "the shard
//! is ready".
#![deny(unsafe_code)]

mod args;
mod client;
mod conn;
pub mod dbs;
mod glob;
pub mod inflight;
mod ops;
mod process;
mod registry;
pub mod runtime;
mod shard;
mod sys;

use std::path::PathBuf;

pub use process::{handoff_socket_path, run};
pub use shard::{LaterValue, Reply, Shard};

/// What gives the memory the process's allocator holds freed back to the OS (the
/// server's jemalloc purge), set once by the binary; unset, nothing (another allocator,
/// tests).
static RELEASE_FREED: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what the shard calls once a burst of large frees ended (a bulk vector load's
/// last batch committed: `ops::vector`), so that they leave RSS at once rather than
/// over the allocator's decay time. The first call wins.
pub fn set_release_freed(release: fn()) {
    let _ = RELEASE_FREED.set(release);
}

/// Calls what [`set_release_freed`] set, if anything.
pub(crate) fn release_freed() {
    if let Some(release) = RELEASE_FREED.get() {
        release();
    }
}

/// The whole configuration of one shard process. The router builds it from its own
/// config, serializes it with [`ShardConfig::to_toml`] and writes it to the stdin of
/// `keel shard`, which reads it back with [`ShardConfig::from_toml`]: one serialized
/// form, no flags.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// Shard number, 0-based.
    pub id: u32,
    /// Shard count N of the data dir.
    pub n_shards: u32,
    /// `data-dir/shard-III`; created if missing.
    pub dir: PathBuf,
    /// The Unix socket to listen on; a stale file there is removed before binding.
    pub socket: PathBuf,
    /// Pin the executor to this CPU; `None` leaves it unbound.
    pub core: Option<usize>,
    /// Largest bulk string accepted from a handed-off client, bytes (the router's
    /// `max_bulk_len`).
    pub max_bulk_len: usize,
    /// Largest request a handed-off client may send, bytes (the router's
    /// `client_query_buffer_limit`).
    pub client_query_buffer_limit: usize,
    /// Largest router↔shard frame, bytes (the router's `max_frame_len`).
    pub max_frame_len: usize,
    /// Numbered databases (the router's `databases`).
    pub databases: usize,
    /// Budget of value bytes read and not yet sent, bytes (the router's
    /// `inflight_bytes`; see `Shard::set_inflight_bytes`).
    pub inflight_bytes: usize,
    /// Options for the shard's store (durability tier, segment size, inline limit).
    pub store: keel_storage::StoreOptions,
}

impl ShardConfig {
    /// The configuration as TOML, for the shard process's stdin. Errors: a path that is
    /// not UTF-8 (TOML strings are).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("serialize shard {} configuration: {e}", self.id))
    }

    /// Reads a configuration written by [`to_toml`](Self::to_toml). Errors, as one line:
    /// not TOML, a missing or unknown key, a wrong type, a shard id outside
    /// `0..n_shards`, or `databases` outside `1..=keel_config::MAX_DATABASES`.
    pub fn from_toml(text: &str) -> Result<ShardConfig, String> {
        let cfg: ShardConfig = toml::from_str(text).map_err(|e| e.message().trim().replace('\n', " "))?;
        if cfg.id >= cfg.n_shards {
            return Err(format!("shard id {} is not below the shard count {}", cfg.id, cfg.n_shards));
        }
        if !(1..=keel_config::MAX_DATABASES).contains(&cfg.databases) {
            return Err(format!("databases {} is not in 1..={}", cfg.databases, keel_config::MAX_DATABASES));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShardConfig {
        ShardConfig {
            id: 2,
            n_shards: 4,
            dir: PathBuf::from("/tmp/a \"q\" \\ d/shard-002"),
            socket: PathBuf::from("/tmp/a \"q\" \\ d/shard-002/shard.sock"),
            core: Some(1),
            max_bulk_len: 1 << 20,
            client_query_buffer_limit: 1 << 30,
            max_frame_len: (1 << 30) + (1 << 20),
            databases: 16,
            inflight_bytes: crate::inflight::DEFAULT_INFLIGHT_BYTES,
            store: keel_storage::StoreOptions {
                durability: keel_storage::Durability::Relaxed,
                segment_bytes: 1 << 20,
                ..Default::default()
            },
        }
    }

    #[test]
    fn toml_round_trips() {
        for cfg in [sample(), ShardConfig { core: None, ..sample() }] {
            let text = cfg.to_toml().unwrap();
            assert_eq!(ShardConfig::from_toml(&text), Ok(cfg), "{text}");
        }
    }

    #[test]
    fn malformed_input_is_one_line() {
        let good = sample().to_toml().unwrap();
        for bad in [
            String::new(),
            "id = [\n".to_string(),
            good.replace("n_shards = 4", "n_shards = \"four\""),
            format!("bogus = 1\n{good}"),
            good.replace("id = 2", "id = 4"),
        ] {
            let e = ShardConfig::from_toml(&bad).unwrap_err();
            assert!(!e.is_empty() && !e.contains('\n'), "{bad:?}: {e:?}");
        }
        assert!(ShardConfig::from_toml(&format!("bogus = 1\n{good}")).unwrap_err().contains("bogus"));
    }
}
