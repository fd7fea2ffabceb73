//! Coordinator side of every command (STYLE: `Cmd*` parse and route here, `Op*` run on
//! the shard). [`dispatch`] looks the command up in the one table ([`table`], which
//! holds its arity, key positions, route and merge kind) and checks its arity, then
//! either answers it here ([`connection`], [`server`]), forwards it to its keys' shard,
//! or splits and merges it across shards ([`keyspace`]).

pub mod connection;
pub mod keyspace;
pub mod server;
pub use keel_protocol::command as table;

use crate::streak::Streak;
use crate::link::ShardLink;
use keel_shard::runtime::sync::SlotRx;
use keel_protocol::resp::RespVersion;
use keel_protocol::Value;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Instant;
use table::{Cmd, Route};

/// State shared by every router executor (atomics and immutable data only).
pub struct Shared {
    pub cfg: keel_config::Config,
    pub next_client_id: AtomicU64,
    pub connected_clients: AtomicUsize,
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
    /// Every open connection, for CLIENT LIST.
    pub clients: crate::clients::Registry,
    /// Connections handed to a shard process (`crate::handoff`), INFO stats.
    pub shard_handoffs: AtomicU64,
    pub started: Instant,
    pub run_id: String,
    /// The port actually listened on (resolves port 0).
    pub port: u16,
    pub shutdown: AtomicBool,
    /// Restarts per shard since start, maintained by the supervisor.
    pub shard_restarts: Vec<AtomicU64>,
}

/// One router executor's context: its links to every shard.
pub struct Router {
    pub links: Vec<Rc<ShardLink>>,
    pub shared: Arc<Shared>,
    /// This executor's index (0-based, as in its thread name `keel-router-I`).
    pub me: usize,
    /// Its hand-off channels to the shards and the connections it handed over.
    pub handoffs: crate::handoff::Handoffs,
}

impl Router {
    /// DESIGN §1: tenant = key bytes before the first `:`; shard = xxh3_64(tenant) % N.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        table::shard_of(key, self.links.len())
    }
}

/// Per-connection state that the request path reads; the client's id, name and library
/// live in its registry entry (`info`, CLIENT LIST).
pub struct ConnState {
    pub resp: RespVersion,
    /// The selected database (SELECT), sent with every request to a shard and with the
    /// connection when it is handed to one.
    pub db: u8,
    /// Set by QUIT: close after this batch's replies are written.
    pub closing: bool,
    /// Which shards recent batches used (when to hand the connection to a shard).
    pub streak: Streak,
    /// This connection's entry in the client registry.
    pub info: std::sync::Arc<crate::clients::ClientInfo>,
}

/// A reply that may still be on its way from shards.
pub enum Pending {
    Ready(Value),
    One(SlotRx<Value>),
    Many(Pin<Box<dyn Future<Output = Value>>>),
}

impl Pending {
    pub async fn resolve(self) -> Value {
        match self {
            Pending::Ready(v) => v,
            Pending::One(rx) => rx.await,
            Pending::Many(f) => f.await,
        }
    }
}

/// Routes one request (`argv` is non-empty) as the command table says: unknown and
/// internal commands and wrong argument counts are answered here; then the router
/// answers it itself, or sends it to the shard of its keys (split and merged when they
/// span shards), to every shard, or, for SCAN, to the shard the cursor names.
pub fn dispatch(rt: &Rc<Router>, conn: &mut ConnState, argv: Vec<Vec<u8>>) -> Pending {
    let spec = match table::lookup(&argv[0]) {
        Some(spec) if spec.route != Route::Internal => spec,
        _ => return Pending::Ready(unknown_command(&argv)),
    };
    if !spec.arity_ok(argv.len()) {
        return Pending::Ready(spec.arity_error());
    }
    match spec.route {
        Route::Local => local(rt, conn, spec, &argv),
        Route::Anywhere => Pending::Ready(table::stateless_reply(spec, &argv)),
        Route::Key | Route::Keys(_) => keyspace::keyed(rt, conn.db, spec, &argv, &mut conn.streak.batch),
        Route::All(merge) => {
            conn.streak.batch.many();
            keyspace::fan_out(rt, conn.db, merge, &argv)
        }
        Route::Cursor => {
            conn.streak.batch.many();
            keyspace::scan(rt, conn.db, &argv)
        }
        Route::Internal => Pending::Ready(unknown_command(&argv)),
    }
}

/// A [`Route::Local`] command: answered from the connection's or the router's state.
fn local(rt: &Rc<Router>, conn: &mut ConnState, spec: &'static table::Spec, argv: &[Vec<u8>]) -> Pending {
    Pending::Ready(match spec.cmd {
        Cmd::Hello => connection::hello(rt, conn, argv),
        Cmd::Select => connection::select(rt, conn, argv),
        Cmd::Quit => {
            conn.closing = true;
            Value::ok()
        }
        Cmd::Client => connection::client(rt, conn, argv),
        Cmd::Command => server::command(argv),
        Cmd::Config => server::config(rt, argv),
        Cmd::Debug => return server::debug(rt, conn, argv),
        Cmd::Info => return server::info(rt, argv),
        _ => Value::err(format!("ERR internal: '{}' is not answered by the router", spec.name)),
    })
}

/// Redis's text: `ERR unknown command 'x', with args beginning with: 'a' 'b' `.
///
/// Built from bytes as Redis's `processCommand` does with `%.*s`: the name and each
/// argument end at their first NUL byte; the name is cut to 128 bytes; arguments are
/// added while the list is under 128 bytes, each cut to what is left of the 128. The
/// reply is then text: bytes that are not UTF-8 become U+FFFD (Redis sends them raw;
/// README "Differences from Redis").
pub fn unknown_command(argv: &[Vec<u8>]) -> Value {
    /// `%.*s`: up to `max` bytes, ending at the first NUL.
    fn c_str(b: &[u8], max: usize) -> &[u8] {
        let b = &b[..b.len().min(max)];
        b.iter().position(|&c| c == 0).map_or(b, |nul| &b[..nul])
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(c_str(&argv[0], 128));
    text.extend_from_slice(b"', with args beginning with: ");
    let mut args = Vec::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(c_str(a, room));
        args.extend_from_slice(b"' ");
    }
    text.extend_from_slice(&args);
    Value::err(String::from_utf8_lossy(&text).into_owned())
}

pub use keel_protocol::num::parse_i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text_matches_redis() {
        let v = unknown_command(&[b"foo".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(v, Value::err("ERR unknown command 'foo', with args beginning with: 'a' 'b' "));
        let v = unknown_command(&[b"foo".to_vec()]);
        assert_eq!(v, Value::err("ERR unknown command 'foo', with args beginning with: "));
        // C strings: an argument ends at its NUL; the list stops once it reaches 128
        // bytes, the last argument cut to fit (as redis-server 7.0 replies).
        let v = unknown_command(&[b"f\0oo".to_vec(), b"a\0b".to_vec(), vec![b'x'; 120], b"yyyyyyyy".to_vec(), b"z".to_vec()]);
        let want = format!("ERR unknown command 'f', with args beginning with: 'a' '{}' 'y' ", "x".repeat(120));
        assert_eq!(v, Value::err(want));
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"12"), Some(12));
        assert_eq!(parse_i64(b"-3"), Some(-3));
        assert_eq!(parse_i64(b"0"), Some(0));
        for bad in [&b"+1"[..], b" 1", b"01", b"", b"1x", b"-0"] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }
}
