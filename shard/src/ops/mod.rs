//! Shard-side command implementations (`Op*` in dragonfly's terms), grouped by family.
//! Each op takes the owned argv (argv[0] is the command name), checks its own arity
//! (the router already did; this keeps every input panic-free) and returns a [`Reply`].
//!
//! [`Reply`]: crate::Reply

pub mod keyspace;
pub mod kv;
pub mod vector;
