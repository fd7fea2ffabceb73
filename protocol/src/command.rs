//! The one command table: name, arity, flags, key positions and how the router routes
//! the command. The router's dispatch, arity checks and `COMMAND`, and a shard serving a
//! handed-off connection (DESIGN §1), all read from it; [`shard_of`] is the routing rule.

/// How the router sends a command (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by the router itself.
    Local,
    /// One key (or index name) at argv[1]: sent whole to its shard.
    Key,
    /// Every argument from argv[1] is a key (DEL, EXISTS, MGET): split by shard.
    Keys,
    /// Key/value pairs from argv[1] (MSET): split by shard, all-or-nothing per shard.
    Pairs,
    /// Keyspace-wide: sent to every shard and merged.
    All,
}

/// One command's metadata, as `COMMAND INFO` reports it.
#[derive(Debug)]
pub struct Spec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis convention: N = exactly N args (incl. the name); -N = at least N.
    pub arity: i32,
    /// Redis command flags as `COMMAND INFO` lists them (`write`, `readonly`, `fast`, …).
    pub flags: &'static [&'static str],
    /// argv index of the first key (0 = the command takes no key).
    pub first_key: i32,
    /// argv index of the last key; -1 = the last argument.
    pub last_key: i32,
    /// Distance between keys (2 for key/value pairs).
    pub step: i32,
    /// How the router sends it.
    pub route: Route,
    /// Redis command group (`string`, `generic`, `connection`, `server`, `vector`).
    pub group: &'static str,
    /// One line for `COMMAND DOCS`.
    pub summary: &'static str,
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($f:literal),*], $fk:expr, $lk:expr, $st:expr, $route:ident, $group:literal, $summary:literal) => {
        Spec { name: $name, arity: $arity, flags: &[$($f),*], first_key: $fk, last_key: $lk, step: $st, route: Route::$route, group: $group, summary: $summary }
    };
}

/// Every command keel knows, sorted by name.
pub static COMMANDS: &[Spec] = &[
    spec!("append", 3, ["write", "denyoom", "fast"], 1, 1, 1, Key, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    spec!("client", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0, Local, "connection", "A container for client connection commands (ID, GETNAME, SETNAME, SETINFO, INFO)."),
    spec!("command", -1, ["loading", "stale"], 0, 0, 0, Local, "server", "Returns detailed information about all commands."),
    spec!("config", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0, Local, "server", "A container for server configuration commands (GET)."),
    spec!("dbsize", 1, ["readonly", "fast"], 0, 0, 0, All, "server", "Returns the number of keys in the database."),
    spec!("decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, Key, "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!("decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, Key, "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    spec!("del", -2, ["write"], 1, -1, 1, Keys, "generic", "Deletes one or more keys."),
    spec!("echo", 2, ["fast"], 0, 0, 0, Local, "connection", "Returns the given string."),
    spec!("exists", -2, ["readonly", "fast"], 1, -1, 1, Keys, "generic", "Determines whether one or more keys exist."),
    spec!("flushall", -1, ["write"], 0, 0, 0, All, "server", "Removes all keys and vector indexes from all shards."),
    spec!("flushdb", -1, ["write"], 0, 0, 0, All, "server", "Removes all keys from the current database (keel has one: same as FLUSHALL)."),
    spec!("get", 2, ["readonly", "fast"], 1, 1, 1, Key, "string", "Returns the string value of a key."),
    spec!("getdel", 2, ["write", "fast"], 1, 1, 1, Key, "string", "Returns the string value of a key after deleting the key."),
    spec!("hello", -1, ["noscript", "loading", "stale", "fast"], 0, 0, 0, Local, "connection", "Handshakes with the server: selects RESP2 or RESP3."),
    spec!("incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, Key, "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!("incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, Key, "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec!("info", -1, ["loading", "stale"], 0, 0, 0, Local, "server", "Returns information and statistics about the server."),
    spec!("keys", 2, ["readonly"], 0, 0, 0, All, "generic", "Returns all key names that match a pattern."),
    spec!("mget", -2, ["readonly", "fast"], 1, -1, 1, Keys, "string", "Atomically returns the string values of one or more keys."),
    spec!("mset", -3, ["write", "denyoom"], 1, -1, 2, Pairs, "string", "Sets the string values of one or more keys (all-or-nothing within each shard)."),
    spec!("ping", -1, ["fast", "stale"], 0, 0, 0, Local, "connection", "Returns the server's liveliness response."),
    spec!("quit", -1, ["noscript", "loading", "stale", "fast"], 0, 0, 0, Local, "connection", "Closes the connection."),
    spec!("scan", -2, ["readonly"], 0, 0, 0, All, "generic", "Iterates over the key names in the database (cursor walks every shard)."),
    spec!("select", 2, ["loading", "stale", "fast"], 0, 0, 0, Local, "connection", "Changes the selected database (keel has only database 0)."),
    spec!("set", -3, ["write", "denyoom"], 1, 1, 1, Key, "string", "Sets the string value of a key [NX|XX] [GET]."),
    spec!("skeg.vdel", 3, ["write", "fast"], 1, 1, 1, Key, "vector", "Deletes vector id from an index."),
    spec!("skeg.vindex.create", -5, ["write"], 1, 1, 1, Key, "vector", "Creates a vector index: name dim f32 flat."),
    spec!("skeg.vindex.drop", 2, ["write"], 1, 1, 1, Key, "vector", "Drops a vector index and its vectors."),
    spec!("skeg.vindex.list", 1, ["readonly"], 0, 0, 0, All, "vector", "Lists vector indexes, one line each."),
    spec!("skeg.vsearch", -5, ["readonly"], 1, 1, 1, Key, "vector", "Returns the k nearest vectors: id, score pairs, best first (cosine similarity)."),
    spec!("skeg.vset", 4, ["write", "denyoom"], 1, 1, 1, Key, "vector", "Inserts or replaces vector id (little-endian f32 blob)."),
    spec!("strlen", 2, ["readonly", "fast"], 1, 1, 1, Key, "string", "Returns the length of a string value."),
    spec!("type", 2, ["readonly", "fast"], 1, 1, 1, Key, "generic", "Determines the type of value stored at a key."),
];

/// DESIGN §1: the shard of `key` among `n` shards: tenant = the key's bytes before its
/// first `:` (the whole key when it has none); shard = `xxh3_64(tenant) % n`.
/// `n` must be ≥ 1.
pub fn shard_of(key: &[u8], n: usize) -> usize {
    let tenant = match key.iter().position(|&b| b == b':') {
        Some(i) => &key[..i],
        None => key,
    };
    (xxhash_rust::xxh3::xxh3_64(tenant) % n as u64) as usize
}

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &lower[..name.len()];
    COMMANDS.binary_search_by(|s| s.name.as_bytes().cmp(lower)).ok().map(|i| &COMMANDS[i])
}

/// True if `argc` (incl. the name) satisfies `arity`.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= (-arity) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_lookup_is_case_insensitive() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert_eq!(lookup(b"SKEG.VSEARCH").unwrap().name, "skeg.vsearch");
        assert!(lookup(b"nope").is_none());
    }

    #[test]
    fn arity() {
        assert!(arity_ok(2, 2));
        assert!(!arity_ok(2, 3));
        assert!(arity_ok(-3, 5));
        assert!(!arity_ok(-3, 2));
    }
}
