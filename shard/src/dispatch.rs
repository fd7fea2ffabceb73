//! Matches argv[0] (case-insensitively) and hands the request to its op.

use crate::args::{show, upper};
use crate::ops::{keyspace, kv, vector};
use crate::shard::{Reply, Shard};
use keel_protocol::Value;

pub(crate) async fn dispatch(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let Some(name) = argv.first() else {
        return Reply::err("ERR empty command");
    };
    let mut buf = [0u8; 24];
    let Some(cmd) = upper(name, &mut buf) else {
        return unknown(name);
    };
    match cmd {
        b"GET" => kv::get(shard, argv).await,
        b"SET" => kv::set(shard, argv).await,
        b"GETDEL" => kv::getdel(shard, argv).await,
        b"DEL" | b"UNLINK" => kv::del(shard, argv),
        b"EXISTS" => kv::exists(shard, argv),
        b"MGET" => kv::mget(shard, argv).await,
        b"MSET" => kv::mset(shard, argv),
        b"INCR" => kv::incr_by(shard, argv, kv::Step::One(1)).await,
        b"DECR" => kv::incr_by(shard, argv, kv::Step::One(-1)).await,
        b"INCRBY" => kv::incr_by(shard, argv, kv::Step::Arg { negate: false }).await,
        b"DECRBY" => kv::incr_by(shard, argv, kv::Step::Arg { negate: true }).await,
        b"APPEND" => kv::append(shard, argv).await,
        b"STRLEN" => kv::strlen(shard, argv),
        b"TYPE" => kv::type_of(shard, argv),
        b"DBSIZE" => keyspace::dbsize(shard, argv),
        b"KEYS" => keyspace::keys(shard, argv),
        b"SCAN" => keyspace::scan(shard, argv),
        b"FLUSHALL" | b"FLUSHDB" => keyspace::flushall(shard, argv),
        b"KEEL.INFO" => keyspace::info(shard, argv),
        b"PING" => Reply::Ready(Value::Simple("PONG".into())),
        b"SKEG.VINDEX.CREATE" => vector::create(shard, argv),
        b"SKEG.VINDEX.DROP" => vector::drop_index(shard, argv),
        b"SKEG.VINDEX.LIST" => vector::list(shard, argv),
        b"SKEG.VSET" => vector::vset(shard, argv),
        b"SKEG.VDEL" => vector::vdel(shard, argv),
        b"SKEG.VSEARCH" => vector::vsearch(shard, argv),
        _ => unknown(name),
    }
}

fn unknown(name: &[u8]) -> Reply {
    Reply::err(format!("ERR unknown command '{}'", show(name)))
}
