//! Property tests for the codecs, built as one test binary.

mod requests;
mod replies;
mod shard;
mod strategies;
