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
//! ([`fdpass`]), the shard speaks RESP with it directly and passes it back at the first
//! request it does not serve itself.
//!
//! Trade-offs: a read-modify-write command (INCR, APPEND, SET … GET, GETDEL) whose old
//! value is on disk holds up its connection until the read is done, which keeps it
//! correct without per-key locks; values up to `inline_value_max` are in RAM, so this
//! is rare. Plain reads (GET, MGET) of values on disk do not hold the connection up:
//! their I/O is issued at once (fixing which value they return) and their replies follow
//! when it completes. Vector indexes are exact (flat) and live wholly in RAM; a search
//! scans its index in one go on the executor.
//!
//! Architecture Invariant: a shard touches only its own directory, its two sockets and
//! the client connections handed to it; it binds the sockets only after recovery
//! (`handoff.sock` first, then `shard.sock`), so "the socket accepts" means "the shard
//! is ready".
#![deny(unsafe_code)]

mod args;
mod client;
mod conn;
pub mod fdpass;
mod glob;
pub mod net;
mod ops;
mod process;
mod registry;
mod shard;
pub mod sync;
mod sys;

use std::path::PathBuf;

pub use process::{handoff_socket_path, run};
pub use shard::{LaterValue, Reply, Shard};

/// How the router starts one shard (`keel shard --id I …`).
#[derive(Debug, Clone)]
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
    /// Options for the shard's store (durability tier, segment size, inline limit).
    pub store: keel_storage::StoreOptions,
    /// Largest bulk string accepted from a handed-off client, bytes (the router's
    /// `max_bulk_len`).
    pub max_bulk_len: usize,
    /// Largest request a handed-off client may send, bytes (`client_query_buffer_limit`).
    pub max_request_len: usize,
    /// Largest router↔shard frame, bytes (`max_frame_len`): requests longer are refused,
    /// replies longer become `-ERR reply too large` (also on handed-off connections).
    pub max_frame_len: usize,
}
