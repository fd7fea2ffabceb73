//! The one command table: every command keel knows, with its arity, flags, key
//! positions, how the router routes it and how the replies of a split or fanned-out
//! command are merged. The router's dispatch, arity check and `COMMAND`, the shard's
//! dispatch (`keel_shard`'s `ops`, matching on [`Cmd`]) and a shard serving a
//! handed-off connection (DESIGN §1) all read it; [`shard_of`] is the routing rule.
//!
//! Adding a command: a [`Cmd`] variant and a [`COMMANDS`] entry here (kept sorted by
//! name), then its handler — a shard op in `shard/src/ops/<family>.rs` and one arm in
//! `ops::run` for a command that reaches a shard, or a function in
//! `server/src/cmd/<family>.rs` and one arm in `cmd::local` for one the router answers.
//! The arity is checked from the table before any handler runs (router and shard), so
//! handlers index the arguments the arity guarantees without checking again.

use crate::Value;

/// Which command a [`Spec`] describes: the id both processes dispatch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    Append,
    Client,
    Command,
    Config,
    Dbsize,
    Debug,
    Decr,
    Decrby,
    Del,
    Echo,
    Exists,
    Expire,
    Expireat,
    Expiretime,
    Flushall,
    Flushdb,
    Get,
    Getdel,
    Getex,
    Hello,
    Incr,
    Incrby,
    Info,
    /// Internal: make the shard panic (`DEBUG PANIC-SHARD`, tests of the supervisor).
    KeelDebug,
    /// Internal: the shard's counters for INFO.
    KeelInfo,
    Keys,
    Mget,
    Move,
    Mset,
    Persist,
    Pexpire,
    Pexpireat,
    Pexpiretime,
    Ping,
    Psetex,
    Pttl,
    Quit,
    Scan,
    Select,
    Set,
    Setex,
    SkegVdel,
    SkegVget,
    SkegVindexCreate,
    SkegVindexDrop,
    SkegVindexList,
    SkegVmset,
    SkegVsearch,
    SkegVset,
    Strlen,
    Swapdb,
    Ttl,
    Type,
    Unlink,
}

/// How the router sends a command (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by the router from connection or server state (CLIENT, HELLO, INFO…).
    Local,
    /// Needs no state: answered by whichever process holds the connection, the router
    /// or a shard serving a handed-off connection ([`stateless_reply`]: PING, ECHO).
    Anywhere,
    /// One key, at argv[1]: the whole command goes to its shard.
    Key,
    /// Several keys at the [`Spec`]'s key positions, each followed by `step − 1`
    /// arguments of its own (MSET's value): sent whole when every key routes to one
    /// shard, else split by shard and the replies merged. All-or-nothing per shard only.
    Keys(Merge),
    /// Keyspace-wide: sent to every shard, the replies merged.
    All(Merge),
    /// SCAN: one shard at a time; the cursor says which (shard << 48 | local cursor).
    Cursor,
    /// Sent by the router itself, never accepted from a client ("unknown command").
    Internal,
}

/// How the replies of several shards become one (a split [`Route::Keys`] command or a
/// fanned-out [`Route::All`] one). The first error reply wins in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Integer replies added up (DEL, EXISTS, UNLINK, DBSIZE).
    Sum,
    /// Array replies with one element per key, put back at their keys' places (MGET).
    ByKey,
    /// Array replies concatenated (KEYS).
    Concat,
    /// Array replies concatenated and sorted bytewise (SKEG.VINDEX.LIST, one line per
    /// index starting with its name).
    Sorted,
    /// `+OK` from every shard: `+OK` (MSET, FLUSHALL).
    AllOk,
}

/// One command's metadata, as `COMMAND INFO` reports it.
#[derive(Debug)]
pub struct Spec {
    /// The id the router and the shard dispatch on.
    pub cmd: Cmd,
    /// Lowercase name.
    pub name: &'static str,
    /// Redis convention: N = exactly N args (incl. the name); -N = at least N.
    pub arity: i32,
    /// Redis command flags as `COMMAND INFO` lists them (`write`, `readonly`, `fast`, …).
    pub flags: &'static [&'static str],
    /// argv index of the first key (0 = the command takes no key).
    pub first_key: i32,
    /// argv index of the last key; -1 = the last key group runs to the end.
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

/// (route, first key, last key, step) of a [`Spec`], from the short forms in the table.
macro_rules! route {
    (local) => { (Route::Local, 0, 0, 0) };
    (anywhere) => { (Route::Anywhere, 0, 0, 0) };
    (key) => { (Route::Key, 1, 1, 1) };
    (keys($m:ident)) => { (Route::Keys(Merge::$m), 1, -1, 1) };
    (pairs($m:ident)) => { (Route::Keys(Merge::$m), 1, -1, 2) };
    (all($m:ident)) => { (Route::All(Merge::$m), 0, 0, 0) };
    (cursor) => { (Route::Cursor, 0, 0, 0) };
    (internal) => { (Route::Internal, 0, 0, 0) };
}

macro_rules! spec {
    ($cmd:ident, $name:literal, $arity:expr, [$($f:literal),*], $r:ident $(($m:ident))?, $group:literal, $summary:literal) => {{
        let (route, first_key, last_key, step) = route!($r $(($m))?);
        Spec { cmd: Cmd::$cmd, name: $name, arity: $arity, flags: &[$($f),*], first_key, last_key, step, route, group: $group, summary: $summary }
    }};
}

/// Every command keel knows, sorted by name.
pub static COMMANDS: &[Spec] = TABLE;

/// [`COMMANDS`] as a constant, so that [`NAME_INDEX`] can be built from it at compile time.
const TABLE: &[Spec] = &[
    spec!(Append, "append", 3, ["write", "denyoom", "fast"], key, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    spec!(Client, "client", -2, ["admin", "noscript", "loading", "stale"], local, "connection", "A container for client connection commands (ID, GETNAME, SETNAME, SETINFO, INFO, LIST)."),
    spec!(Command, "command", -1, ["loading", "stale"], local, "server", "Returns detailed information about all commands."),
    spec!(Config, "config", -2, ["admin", "noscript", "loading", "stale"], local, "server", "A container for server configuration commands (GET)."),
    spec!(Dbsize, "dbsize", 1, ["readonly", "fast"], all(Sum), "server", "Returns the number of keys in the database."),
    spec!(Debug, "debug", -2, ["admin", "noscript", "loading", "stale"], local, "server", "Debugging commands (PANIC, PANIC-SHARD); refused unless enable_debug_command is set."),
    spec!(Decr, "decr", 2, ["write", "denyoom", "fast"], key, "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!(Decrby, "decrby", 3, ["write", "denyoom", "fast"], key, "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    spec!(Del, "del", -2, ["write"], keys(Sum), "generic", "Deletes one or more keys."),
    spec!(Echo, "echo", 2, ["fast"], anywhere, "connection", "Returns the given string."),
    spec!(Exists, "exists", -2, ["readonly", "fast"], keys(Sum), "generic", "Determines whether one or more keys exist."),
    spec!(Expire, "expire", -3, ["write", "fast"], key, "generic", "Sets the expiration time of a key in seconds [NX|XX|GT|LT]."),
    spec!(Expireat, "expireat", -3, ["write", "fast"], key, "generic", "Sets the expiration time of a key to a Unix timestamp in seconds [NX|XX|GT|LT]."),
    spec!(Expiretime, "expiretime", 2, ["readonly", "fast"], key, "generic", "Returns the expiration time of a key as a Unix timestamp in seconds."),
    spec!(Flushall, "flushall", -1, ["write"], all(AllOk), "server", "Removes all keys of every database and every vector index from all shards."),
    spec!(Flushdb, "flushdb", -1, ["write"], all(AllOk), "server", "Removes all keys from the current database."),
    spec!(Get, "get", 2, ["readonly", "fast"], key, "string", "Returns the string value of a key."),
    spec!(Getdel, "getdel", 2, ["write", "fast"], key, "string", "Returns the string value of a key after deleting the key."),
    spec!(Getex, "getex", -2, ["write", "fast"], key, "string", "Returns the string value of a key after setting its expiration time [EX|PX|EXAT|PXAT|PERSIST]."),
    spec!(Hello, "hello", -1, ["noscript", "loading", "stale", "fast"], local, "connection", "Handshakes with the server: selects RESP2 or RESP3."),
    spec!(Incr, "incr", 2, ["write", "denyoom", "fast"], key, "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!(Incrby, "incrby", 3, ["write", "denyoom", "fast"], key, "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec!(Info, "info", -1, ["loading", "stale"], local, "server", "Returns information and statistics about the server."),
    spec!(KeelDebug, "keel.debug", 2, [], internal, "server", "Internal: DEBUG PANIC-SHARD's request to one shard."),
    spec!(KeelInfo, "keel.info", 1, [], internal, "server", "Internal: one shard's counters for INFO."),
    spec!(Keys, "keys", 2, ["readonly"], all(Concat), "generic", "Returns all key names that match a pattern."),
    spec!(Mget, "mget", -2, ["readonly", "fast"], keys(ByKey), "string", "Atomically returns the string values of one or more keys."),
    spec!(Move, "move", 3, ["write", "fast"], key, "generic", "Moves a key to another database."),
    spec!(Mset, "mset", -3, ["write", "denyoom"], pairs(AllOk), "string", "Sets the string values of one or more keys (all-or-nothing within each shard)."),
    spec!(Persist, "persist", 2, ["write", "fast"], key, "generic", "Removes the expiration time of a key."),
    spec!(Pexpire, "pexpire", -3, ["write", "fast"], key, "generic", "Sets the expiration time of a key in milliseconds [NX|XX|GT|LT]."),
    spec!(Pexpireat, "pexpireat", -3, ["write", "fast"], key, "generic", "Sets the expiration time of a key to a Unix timestamp in milliseconds [NX|XX|GT|LT]."),
    spec!(Pexpiretime, "pexpiretime", 2, ["readonly", "fast"], key, "generic", "Returns the expiration time of a key as a Unix timestamp in milliseconds."),
    spec!(Ping, "ping", -1, ["fast", "stale"], anywhere, "connection", "Returns the server's liveliness response."),
    spec!(Psetex, "psetex", 4, ["write", "denyoom"], key, "string", "Sets the string value and expiration time in milliseconds of a key."),
    spec!(Pttl, "pttl", 2, ["readonly", "fast"], key, "generic", "Returns the expiration time in milliseconds of a key."),
    spec!(Quit, "quit", -1, ["noscript", "loading", "stale", "fast"], local, "connection", "Closes the connection."),
    spec!(Scan, "scan", -2, ["readonly"], cursor, "generic", "Iterates over the key names in the database (cursor walks every shard)."),
    spec!(Select, "select", 2, ["loading", "stale", "fast"], local, "connection", "Changes the selected database."),
    spec!(Set, "set", -3, ["write", "denyoom"], key, "string", "Sets the string value of a key [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]."),
    spec!(Setex, "setex", 4, ["write", "denyoom"], key, "string", "Sets the string value and expiration time in seconds of a key."),
    spec!(SkegVdel, "skeg.vdel", 3, ["write", "fast"], key, "vector", "Deletes vector id from an index."),
    spec!(SkegVget, "skeg.vget", 3, ["readonly", "fast"], key, "vector", "Returns vector id as stored (little-endian f32 blob), or nil."),
    spec!(SkegVindexCreate, "skeg.vindex.create", -3, ["write"], key, "vector", "Creates a vector index: name dim [f32|int8|binary [flat]] [METRIC cosine|l2|ip]."),
    spec!(SkegVindexDrop, "skeg.vindex.drop", 2, ["write"], key, "vector", "Drops a vector index and its vectors."),
    spec!(SkegVindexList, "skeg.vindex.list", 1, ["readonly"], all(Sorted), "vector", "Lists vector indexes, one line each."),
    spec!(SkegVmset, "skeg.vmset", -4, ["write", "denyoom"], key, "vector", "Inserts or replaces many vectors: name (id blob)+; replies with the count."),
    spec!(SkegVsearch, "skeg.vsearch", -5, ["readonly"], key, "vector", "Returns the k nearest vectors: id, score pairs, best first (cosine similarity, inner product or l2 distance)."),
    spec!(SkegVset, "skeg.vset", -4, ["write", "denyoom"], key, "vector", "Inserts or replaces vector id (little-endian f32 blob) [PAYLOAD payload]."),
    spec!(Strlen, "strlen", 2, ["readonly", "fast"], key, "string", "Returns the length of a string value."),
    spec!(Swapdb, "swapdb", 3, ["write", "fast"], all(AllOk), "server", "Swaps two databases (on each shard atomically, not across shards)."),
    spec!(Ttl, "ttl", 2, ["readonly", "fast"], key, "generic", "Returns the expiration time in seconds of a key."),
    spec!(Type, "type", 2, ["readonly", "fast"], key, "generic", "Determines the type of value stored at a key."),
    spec!(Unlink, "unlink", -2, ["write", "fast"], keys(Sum), "generic", "Deletes one or more keys (as DEL: values are freed at once)."),
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

/// Slots of [`NAME_INDEX`]: a power of two above four times the command count, so that
/// a probe sequence is short (the build fails if the table outgrows it).
const INDEX_SLOTS: usize = 256;
/// An empty slot of [`NAME_INDEX`].
const NO_COMMAND: u8 = u8::MAX;

/// FNV-1a over the ASCII-lowercased bytes of `name`, folded to a slot of [`NAME_INDEX`].
const fn name_slot(name: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < name.len() {
        h = (h ^ name[i].to_ascii_lowercase() as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    ((h ^ (h >> 32)) as usize) & (INDEX_SLOTS - 1)
}

/// An open-addressing (linear probing) hash table from a command name to its position in
/// [`COMMANDS`], built at compile time. A lookup hashes the name once and compares it
/// with one or two names, instead of the ~6 comparisons of a binary search (which took
/// ~12% of a shard's time at 1M GET/s).
static NAME_INDEX: [u8; INDEX_SLOTS] = {
    assert!(TABLE.len() * 4 <= INDEX_SLOTS && TABLE.len() < NO_COMMAND as usize);
    let mut index = [NO_COMMAND; INDEX_SLOTS];
    let mut c = 0;
    while c < TABLE.len() {
        let mut slot = name_slot(TABLE[c].name.as_bytes());
        while index[slot] != NO_COMMAND {
            slot = (slot + 1) & (INDEX_SLOTS - 1);
        }
        index[slot] = c as u8;
        c += 1;
    }
    index
};

/// Looks a command up by name, case-insensitively (internal commands included: the
/// caller decides whether it accepts [`Route::Internal`]).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > 32 {
        return None;
    }
    let mut slot = name_slot(name);
    loop {
        let spec = COMMANDS.get(usize::from(NAME_INDEX[slot]))?;
        if spec.name.as_bytes().eq_ignore_ascii_case(name) {
            return Some(spec);
        }
        slot = (slot + 1) & (INDEX_SLOTS - 1);
    }
}

/// The commands clients may call (what `COMMAND` lists): all but internal ones.
pub fn public_commands() -> impl Iterator<Item = &'static Spec> {
    COMMANDS.iter().filter(|s| s.route != Route::Internal)
}

impl Spec {
    /// True if `argc` arguments (incl. the name) satisfy the arity and, for key groups
    /// running to the end (MSET's key/value pairs), come in whole groups.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let count_ok = if self.arity >= 0 { argc == self.arity as usize } else { argc >= self.arity.unsigned_abs() as usize };
        let groups_run_to_end = self.last_key == -1 && self.step > 1;
        count_ok && (!groups_run_to_end || argc.saturating_sub(self.first_key as usize).is_multiple_of(self.step as usize))
    }

    /// Redis's reply to a wrong argument count: `-ERR wrong number of arguments for
    /// 'get' command`.
    pub fn arity_error(&self) -> Value {
        Value::err(format!("ERR wrong number of arguments for '{}' command", self.name))
    }

    /// The argv indexes of the keys of a request with `argc` arguments (which passed
    /// [`arity_ok`](Self::arity_ok)); empty for commands without keys.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (self.first_key.max(0) as usize, self.step.max(1) as usize);
        let last = match self.last_key {
            0 => 0,
            -1 => argc.saturating_sub(step),
            l => (l as usize).min(argc.saturating_sub(1)),
        };
        let end = if first == 0 { 0 } else { last + 1 };
        (first..end).step_by(step)
    }

    /// The one shard every key of `argv` routes to among `n`; `None` when the keys span
    /// several shards or the command takes none.
    pub fn single_shard(&self, argv: &[Vec<u8>], n: usize) -> Option<usize> {
        let mut keys = self.key_positions(argv.len());
        let s = shard_of(&argv[keys.next()?], n);
        keys.all(|p| shard_of(&argv[p], n) == s).then_some(s)
    }
}

/// The reply to a [`Route::Anywhere`] command (PING, ECHO), whoever answers it; `argv`
/// passed the arity check.
pub fn stateless_reply(spec: &Spec, argv: &[Vec<u8>]) -> Value {
    match (spec.cmd, argv.len()) {
        (Cmd::Ping, 1) => Value::Simple("PONG".into()),
        (Cmd::Ping, 2) | (Cmd::Echo, 2) => Value::Bulk(argv[1].clone()),
        _ => spec.arity_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static Spec {
        lookup(name.as_bytes()).unwrap()
    }

    fn argv(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn table_is_sorted_and_lookup_is_case_insensitive() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
        assert_eq!(lookup(b"GeT").unwrap().cmd, Cmd::Get);
        assert_eq!(lookup(b"SKEG.VSEARCH").unwrap().cmd, Cmd::SkegVsearch);
        assert!(lookup(b"nope").is_none());
        assert!(lookup(&[b'a'; 40]).is_none());
        // Every name, in every case, finds its own entry; near misses find none.
        for spec in COMMANDS {
            assert!(std::ptr::eq(lookup(spec.name.as_bytes()).unwrap(), spec));
            assert!(std::ptr::eq(lookup(spec.name.to_ascii_uppercase().as_bytes()).unwrap(), spec));
            assert!(lookup(format!("{}x", spec.name).as_bytes()).is_none());
            let mut other = spec.name.as_bytes().to_vec();
            *other.last_mut().unwrap() = b'#';
            assert!(lookup(&other).is_none());
        }
        assert!(lookup(b"").is_none());
    }

    #[test]
    fn names_and_ids_are_one_to_one() {
        let mut ids: Vec<String> = COMMANDS.iter().map(|s| format!("{:?}", s.cmd)).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), COMMANDS.len());
        assert!(public_commands().all(|s| !s.name.starts_with("keel.")));
        assert_eq!(public_commands().count() + 2, COMMANDS.len());
    }

    #[test]
    fn arity() {
        assert!(spec("get").arity_ok(2));
        assert!(!spec("get").arity_ok(3));
        assert!(spec("set").arity_ok(5));
        assert!(!spec("set").arity_ok(2));
        // MSET: key/value pairs come whole.
        assert!(spec("mset").arity_ok(3));
        assert!(!spec("mset").arity_ok(4));
        assert!(spec("mset").arity_ok(5));
        assert!(spec("del").arity_ok(4));
        assert!(spec("skeg.vindex.create").arity_ok(3));
        assert_eq!(spec("Get").arity_error(), Value::err("ERR wrong number of arguments for 'get' command"));
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let keys = |name: &str, argc: usize| spec(name).key_positions(argc).collect::<Vec<_>>();
        assert_eq!(keys("get", 2), [1]);
        assert_eq!(keys("set", 5), [1]);
        assert_eq!(keys("del", 4), [1, 2, 3]);
        assert_eq!(keys("mset", 5), [1, 3]);
        assert_eq!(keys("ping", 2), Vec::<usize>::new());
        assert_eq!(keys("dbsize", 1), Vec::<usize>::new());
    }

    #[test]
    fn single_shard() {
        let mget = spec("mget");
        assert_eq!(mget.single_shard(&argv(&["mget", "t:a", "t:b", "t"]), 4), Some(shard_of(b"t", 4)));
        let spread = (0..64).map(|i| format!("t{i}:k")).collect::<Vec<_>>();
        let mut a = vec!["mget"];
        a.extend(spread.iter().map(String::as_str));
        assert_eq!(mget.single_shard(&argv(&a), 4), None);
        assert_eq!(spec("ping").single_shard(&argv(&["ping"]), 4), None);
        // MSET's values do not route.
        let v = "x".repeat(10);
        assert_eq!(spec("mset").single_shard(&argv(&["mset", "t:a", &v, "t:b", "zzz"]), 4), Some(shard_of(b"t", 4)));
    }

    #[test]
    fn stateless_replies() {
        assert_eq!(stateless_reply(spec("ping"), &argv(&["PING"])), Value::Simple("PONG".into()));
        assert_eq!(stateless_reply(spec("ping"), &argv(&["PING", "hi"])), Value::Bulk(b"hi".to_vec()));
        assert_eq!(stateless_reply(spec("echo"), &argv(&["ECHO", "x"])), Value::Bulk(b"x".to_vec()));
        assert_eq!(
            stateless_reply(spec("ping"), &argv(&["PING", "a", "b"])),
            Value::err("ERR wrong number of arguments for 'ping' command")
        );
    }
}
