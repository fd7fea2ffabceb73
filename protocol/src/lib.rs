//! keel's wire codecs: RESP2/RESP3 (requests, inline commands, replies) and the
//! internal router↔shard frames.
//!
//! Both codecs sit on the hot path of every request, so they favour a single pass over
//! the input with no intermediate buffers: request parsing copies each argument once,
//! reply encoding appends straight into the caller's output buffer. The price is that
//! decoders are stateless by default: when a read ends mid-request the next call starts
//! over from the request's first byte. For requests with very many arguments arriving
//! in small reads, [`resp::RequestParser`] keeps its place between calls instead.
//!
//! - [`resp`]: RESP2/RESP3 as Redis speaks it (request parser with Redis's inline
//!   quoting rules and error texts, reply parser for every RESP3 type, encoder with
//!   the RESP2 downgrades).
//! - [`shard`]: the router↔shard frames and the compact binary encoding of [`Value`].
//! - [`command`]: the command table (arity, key positions, route) and the routing rule.
//! - [`handoff`]: the messages that pass a client connection between router and shard.
//! - [`value`]: [`Value`], the protocol-neutral reply (the RESP3 data model).
//!
//! Architecture Invariant: `protocol` does no I/O and never calls glommio. Every
//! decoder is pure (bytes in, values out), returns `Ok(None)` when the input is
//! incomplete (not an error), and checks its limits before allocating.

#![deny(unsafe_code)]

pub mod command;
pub mod handoff;
pub mod resp;
pub mod shard;
pub mod value;

pub mod num;

pub use value::Value;
