//! Shard-side command implementations (`Op*` in dragonfly's terms), grouped by family,
//! and [`run`], the shard's dispatch by the command table's [`Cmd`].
//!
//! Every request is looked up in the one table (`keel_protocol::command`) and its arity
//! checked there before an op runs ([`crate::Shard::handle`]); an op may therefore index
//! the arguments its arity guarantees (`argv[0]` is the command name) and checks only
//! what the table cannot say (optional arguments, values). Each op returns a [`Reply`].
//! Key-value ops take the namespace of the request's database (`crate::dbs`); vector
//! ops are not per database (their namespaces are fixed).
//!
//! [`Reply`]: crate::Reply

pub mod expire;
pub mod keyspace;
pub mod kv;
pub mod vector;

use crate::shard::{Reply, Shard};
use keel_protocol::command::{stateless_reply, Cmd, Spec};

/// Runs the op of `spec` (whose arity `argv` satisfies) on this shard.
pub(crate) async fn run(shard: &Shard, db: u8, spec: &'static Spec, argv: Vec<Vec<u8>>) -> Reply {
    let ns = shard.dbs.ns(db);
    match spec.cmd {
        Cmd::Get => kv::get(shard, ns, argv).await,
        Cmd::Set => kv::set(shard, ns, argv).await,
        Cmd::Getdel => kv::getdel(shard, ns, argv).await,
        Cmd::Getex => kv::getex(shard, ns, argv).await,
        Cmd::Setex => kv::setex(shard, ns, argv, expire::Unit::Ex),
        Cmd::Psetex => kv::setex(shard, ns, argv, expire::Unit::Px),
        Cmd::Expire => expire::expire(shard, ns, argv, expire::Unit::Ex).await,
        Cmd::Pexpire => expire::expire(shard, ns, argv, expire::Unit::Px).await,
        Cmd::Expireat => expire::expire(shard, ns, argv, expire::Unit::Exat).await,
        Cmd::Pexpireat => expire::expire(shard, ns, argv, expire::Unit::Pxat).await,
        Cmd::Ttl => expire::ttl(shard, ns, argv, expire::TtlKind::Ttl),
        Cmd::Pttl => expire::ttl(shard, ns, argv, expire::TtlKind::Pttl),
        Cmd::Expiretime => expire::ttl(shard, ns, argv, expire::TtlKind::Expiretime),
        Cmd::Pexpiretime => expire::ttl(shard, ns, argv, expire::TtlKind::Pexpiretime),
        Cmd::Persist => expire::persist(shard, ns, argv).await,
        Cmd::Del | Cmd::Unlink => kv::del(shard, ns, argv),
        Cmd::Exists => kv::exists(shard, ns, argv),
        Cmd::Mget => kv::mget(shard, ns, argv).await,
        Cmd::Mset => kv::mset(shard, ns, argv),
        Cmd::Incr => kv::incr_by(shard, ns, argv, kv::Step::One(1)).await,
        Cmd::Decr => kv::incr_by(shard, ns, argv, kv::Step::One(-1)).await,
        Cmd::Incrby => kv::incr_by(shard, ns, argv, kv::Step::Arg { negate: false }).await,
        Cmd::Decrby => kv::incr_by(shard, ns, argv, kv::Step::Arg { negate: true }).await,
        Cmd::Append => kv::append(shard, ns, argv).await,
        Cmd::Strlen => kv::strlen(shard, ns, argv),
        Cmd::Type => kv::type_of(shard, ns, argv),
        Cmd::Dbsize => keyspace::dbsize(shard, ns),
        Cmd::Keys => keyspace::keys(shard, ns, argv),
        Cmd::Scan => keyspace::scan(shard, ns, argv),
        Cmd::Flushall => keyspace::flushall(shard, argv),
        Cmd::Flushdb => keyspace::flushdb(shard, ns, argv),
        Cmd::Swapdb => keyspace::swapdb(shard, argv),
        Cmd::Move => Box::pin(keyspace::move_key(shard, db, argv)).await,
        Cmd::KeelInfo => keyspace::info(shard),
        Cmd::KeelDebug => keyspace::debug(argv),
        Cmd::SkegVindexCreate => vector::create(shard, argv),
        Cmd::SkegVindexDrop => vector::drop_index(shard, argv),
        Cmd::SkegVindexList => vector::list(shard),
        Cmd::SkegVset => vector::vset(shard, argv),
        Cmd::SkegVdel => vector::vdel(shard, argv),
        // Boxed: a search's future is large, and every request's future is as large as
        // the largest arm's (it is moved and kept in the connection task's state).
        Cmd::SkegVsearch => Box::pin(vector::vsearch(shard, argv)).await,
        Cmd::SkegVmset => vector::vmset(shard, argv),
        Cmd::SkegVget => Box::pin(vector::vget(shard, argv)).await,
        Cmd::Ping | Cmd::Echo => stateless_reply(spec, &argv).into(),
        // Connection and server state lives in the router, which answers these itself.
        Cmd::Client | Cmd::Command | Cmd::Config | Cmd::Debug | Cmd::Hello | Cmd::Info | Cmd::Quit | Cmd::Select => {
            Reply::err(format!("ERR '{}' is answered by the router, not by a shard", spec.name))
        }
    }
}
