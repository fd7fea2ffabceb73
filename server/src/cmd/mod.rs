//! Coordinator side of every command (STYLE: `Cmd*` parse and route here, `Op*` run on
//! the shard). [`dispatch`] checks the table ([`table`]), then either answers locally
//! ([`connection`], [`server`]), forwards to the key's shard, or splits and merges
//! across shards ([`keyspace`]).

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
use table::Route;

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

/// Routes one request. `argv` is non-empty.
pub fn dispatch(rt: &Rc<Router>, conn: &mut ConnState, argv: Vec<Vec<u8>>) -> Pending {
    let Some(spec) = table::lookup(&argv[0]) else {
        return Pending::Ready(unknown_command(&argv));
    };
    if !table::arity_ok(spec.arity, argv.len()) {
        return Pending::Ready(Value::err(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    match spec.route {
        Route::Local => Pending::Ready(match spec.name {
            "ping" => connection::ping(conn, &argv),
            "echo" => Value::Bulk(argv[1].clone()),
            "hello" => connection::hello(rt, conn, &argv),
            "select" => connection::select(&argv),
            "quit" => {
                conn.closing = true;
                Value::ok()
            }
            "client" => connection::client(rt, conn, &argv),
            "command" => server::command(&argv),
            "config" => server::config(rt, &argv),
            "info" => return server::info(rt, &argv),
            _ => unknown_command(&argv),
        }),
        Route::Key => {
            let s = rt.shard_of(&argv[1]);
            conn.streak.batch.add(s);
            Pending::One(rt.links[s].call(&argv))
        }
        Route::Keys => keyspace::multi_key(rt, spec.name, &argv, &mut conn.streak.batch),
        Route::Pairs => keyspace::mset(rt, &argv, &mut conn.streak.batch),
        Route::All => {
            conn.streak.batch.many();
            keyspace::fan_out(rt, spec.name, &argv)
        }
    }
}

/// Redis's text: `ERR unknown command 'x', with args beginning with: 'a' 'b' `.
pub fn unknown_command(argv: &[Vec<u8>]) -> Value {
    let name = String::from_utf8_lossy(&argv[0]);
    let name: String = name.chars().take(128).collect();
    let mut args = String::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        args.push_str(&format!("'{s}' "));
    }
    Value::err(format!("ERR unknown command '{name}', with args beginning with: {args}"))
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
