//! String commands (all KV values are strings, in the namespace `ns` of the request's
//! database): GET, SET, GETDEL, DEL,
//! EXISTS, MGET, MSET, INCR/DECR/INCRBY/DECRBY, APPEND, STRLEN, TYPE.
//!
//! Reads that may need the disk (`Shard::read`) are awaited before the connection takes
//! its next request, so a read-modify-write cannot be overtaken by a later write.

use crate::args::{parse_i64, upper, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::shard::{LaterValue, Reply, Shard};
use keel_protocol::Value;
use keel_storage::{Mutation, Ns};

/// Redis's `proto-max-bulk-len`: the largest string APPEND may build.
const MAX_STRING_LEN: usize = 512 << 20;

pub const ERR_NO_EXPIRY: &str = "ERR keel does not support key expiry yet";

fn bulk_or_null(v: Option<Vec<u8>>) -> Value {
    v.map_or(Value::Null, Value::Bulk)
}

/// `GET key`. A value on disk does not hold up the connection (see `Shard::start_read`).
pub async fn get(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let key = std::mem::take(&mut argv[1]);
    match shard.start_read(ns, key, bulk_or_null).await {
        Ok(v) => v.into(),
        Err(later) => Reply::Later(later),
    }
}

/// Options of SET after the value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
}

/// Parses `[NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]` in any order,
/// as Redis does; a well-formed expiry option is refused with [`ERR_NO_EXPIRY`]. KEEPTTL
/// is accepted: no key has a TTL, so keeping it changes nothing.
pub fn parse_set_options(args: &[Vec<u8>]) -> Result<SetOptions, &'static str> {
    let mut o = SetOptions::default();
    let (mut keepttl, mut expiry) = (false, false);
    let mut i = 0;
    while i < args.len() {
        let mut buf = [0u8; 8];
        let opt = upper(&args[i], &mut buf).unwrap_or(b"");
        match opt {
            b"NX" if !o.xx => o.nx = true,
            b"XX" if !o.nx => o.xx = true,
            b"GET" => o.get = true,
            b"KEEPTTL" if !expiry => keepttl = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !keepttl && !expiry && i + 1 < args.len() => {
                expiry = true;
                i += 1;
            }
            _ => return Err(ERR_SYNTAX),
        }
        i += 1;
    }
    if expiry {
        return Err(ERR_NO_EXPIRY);
    }
    Ok(o)
}

/// `SET key value [NX | XX] [GET] [KEEPTTL]`: `+OK`; with GET the old value (or null);
/// null when the NX/XX condition is not met (the old value with GET, as Redis 7).
pub async fn set(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let opts = match parse_set_options(&argv[3..]) {
        Ok(o) => o,
        Err(e) => return Reply::err(e),
    };
    let value = std::mem::take(&mut argv[2]);
    let key = std::mem::take(&mut argv[1]);
    let (exists, old) = if opts.get {
        match shard.read(ns, &key).await {
            Ok(old) => (old.is_some(), old),
            Err(e) => return e.into(),
        }
    } else if opts.nx || opts.xx {
        (shard.store.contains(ns, &key), None)
    } else {
        (false, None)
    };
    let reply = if opts.get { bulk_or_null(old) } else { Value::ok() };
    if (opts.nx && exists) || (opts.xx && !exists) {
        return if opts.get { reply.into() } else { Value::Null.into() };
    }
    shard.write(vec![Mutation::Put { ns, key, value }], reply)
}

/// `GETDEL key`: the old value (or null), and the key is gone.
pub async fn getdel(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let key = std::mem::take(&mut argv[1]);
    match shard.read(ns, &key).await {
        Ok(Some(old)) => shard.write(vec![Mutation::Delete { ns, key }], Value::Bulk(old)),
        Ok(None) => Value::Null.into(),
        Err(e) => e.into(),
    }
}

/// `DEL key [key …]`: how many existed (a key named twice counts once); one batch.
pub fn del(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let mut keys = argv.split_off(1);
    keys.sort_unstable();
    keys.dedup();
    keys.retain(|k| shard.store.contains(ns, k));
    if keys.is_empty() {
        return Value::Integer(0).into();
    }
    let n = keys.len() as i64;
    let muts = keys.into_iter().map(|key| Mutation::Delete { ns, key }).collect();
    shard.write(muts, Value::Integer(n))
}

/// `EXISTS key [key …]`: how many of the named keys exist (duplicates count each time).
pub fn exists(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>) -> Reply {
    Value::Integer(argv[1..].iter().filter(|k| shard.store.contains(ns, k)).count() as i64).into()
}

/// `MGET key [key …]`: one bulk or null per key, in order; values on disk are read in
/// parallel without holding up the connection. A failed read fails the whole reply.
pub async fn mget(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let mut out = Vec::with_capacity(argv.len() - 1);
    let mut pending: Vec<(usize, LaterValue)> = Vec::new();
    for (i, key) in argv.drain(1..).enumerate() {
        match shard.start_read(ns, key, bulk_or_null).await {
            Ok(v) => out.push(v),
            Err(later) => {
                out.push(Value::Null);
                pending.push((i, later));
            }
        }
    }
    let first_error = |out: &[Value]| out.iter().find(|v| v.is_error()).cloned();
    if pending.is_empty() {
        return first_error(&out).unwrap_or(Value::Array(out)).into();
    }
    Reply::Later(Box::pin(async move {
        for (i, read) in pending {
            out[i] = read.await;
        }
        first_error(&out).unwrap_or(Value::Array(out))
    }))
}

/// `MSET key value [key value …]`: one all-or-nothing batch.
pub fn mset(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let mut muts = Vec::with_capacity(argv.len() / 2);
    let mut rest = argv.drain(1..);
    while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
        muts.push(Mutation::Put { ns, key, value });
    }
    drop(rest);
    shard.write(muts, Value::ok())
}

/// Where INCR-family commands take their step from.
pub enum Step {
    /// INCR (+1) / DECR (-1).
    One(i64),
    /// INCRBY / DECRBY (negated) from argv[2].
    Arg { negate: bool },
}

/// `INCR key`, `DECR key`, `INCRBY key n`, `DECRBY key n`: the new value.
pub async fn incr_by(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>, step: Step) -> Reply {
    let delta = match step {
        Step::One(d) => d,
        Step::Arg { negate } => match parse_i64(&argv[2]) {
            None => return Reply::err(ERR_NOT_INTEGER),
            Some(i64::MIN) if negate => return Reply::err("ERR decrement would overflow"),
            Some(n) if negate => -n,
            Some(n) => n,
        },
    };
    let key = std::mem::take(&mut argv[1]);
    let current = match shard.read(ns, &key).await {
        Ok(None) => 0,
        Ok(Some(v)) => match parse_i64(&v) {
            Some(n) => n,
            None => return Reply::err(ERR_NOT_INTEGER),
        },
        Err(e) => return e.into(),
    };
    let Some(new) = current.checked_add(delta) else {
        return Reply::err("ERR increment or decrement would overflow");
    };
    let value = new.to_string().into_bytes();
    shard.write(vec![Mutation::Put { ns, key, value }], Value::Integer(new))
}

/// `APPEND key value`: the new length.
pub async fn append(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let key = std::mem::take(&mut argv[1]);
    let tail = std::mem::take(&mut argv[2]);
    let value = match shard.read(ns, &key).await {
        Ok(None) => tail,
        Ok(Some(mut old)) => {
            if old.len() + tail.len() > MAX_STRING_LEN {
                return Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            old.extend_from_slice(&tail);
            old
        }
        Err(e) => return e.into(),
    };
    let len = value.len() as i64;
    shard.write(vec![Mutation::Put { ns, key, value }], Value::Integer(len))
}

/// `STRLEN key`: the value's length, 0 if missing (no value read).
pub fn strlen(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>) -> Reply {
    Value::Integer(shard.store.value_len(ns, &argv[1]).unwrap_or(0) as i64).into()
}

/// `TYPE key`: `string` or `none`.
pub fn type_of(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>) -> Reply {
    let t = if shard.store.contains(ns, &argv[1]) { "string" } else { "none" };
    Value::Simple(t.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str], expected: Result<SetOptions, &str>) {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        assert_eq!(parse_set_options(&args), expected, "{args:?}");
    }

    fn opts(nx: bool, xx: bool, get: bool) -> Result<SetOptions, &'static str> {
        Ok(SetOptions { nx, xx, get })
    }

    #[test]
    fn set_options() {
        check(&[], opts(false, false, false));
        check(&["nx"], opts(true, false, false));
        check(&["XX"], opts(false, true, false));
        check(&["get"], opts(false, false, true));
        check(&["GET", "nX"], opts(true, false, true));
        check(&["xx", "get", "xx"], opts(false, true, true));
        check(&["KEEPTTL", "NX"], opts(true, false, false));
        check(&["NX", "XX"], Err(ERR_SYNTAX));
        check(&["XX", "NX"], Err(ERR_SYNTAX));
        check(&["FOO"], Err(ERR_SYNTAX));
        check(&["EX"], Err(ERR_SYNTAX));
        check(&["EX", "10"], Err(ERR_NO_EXPIRY));
        check(&["px", "10", "NX"], Err(ERR_NO_EXPIRY));
        check(&["EX", "10", "PX", "5"], Err(ERR_SYNTAX));
        check(&["EX", "10", "KEEPTTL"], Err(ERR_SYNTAX));
        check(&["KEEPTTL", "EXAT", "10"], Err(ERR_SYNTAX));
        check(&["GETX"], Err(ERR_SYNTAX));
    }
}
