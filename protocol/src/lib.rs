//! keel's wire codecs: RESP2/RESP3 (requests, inline commands, replies) and the
//! internal router↔shard frames.
//!
//! Architecture Invariant: `protocol` does no I/O and never calls glommio. Every
//! decoder is pure (bytes in, values out), returns `Ok(None)` when the input is
//! incomplete (not an error), and checks its limits before allocating.

pub mod resp;
pub mod shard;
pub mod value;

pub use value::Value;
