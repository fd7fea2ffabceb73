//! keel-shard
