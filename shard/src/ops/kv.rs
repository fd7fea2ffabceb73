//! String commands (all KV values are strings, in the namespace `ns` of the request's
//! database): GET, SET, SETEX, PSETEX,
//! GETEX, GETDEL, DEL, EXISTS, MGET, MSET, INCR/DECR/INCRBY/DECRBY, APPEND, STRLEN,
//! TYPE. TTLs as in Redis: SET, SETEX, PSETEX and MSET replace a key's TTL (SET KEEPTTL
//! keeps it), INCR-family and APPEND keep it; expired keys are invisible to every read
//! (`keel_storage` removes them).
//!
//! Reads that may need the disk (`Shard::read`) are awaited before the connection takes
//! its next request, so a read-modify-write cannot be overtaken by a later write.

use crate::args::{parse_i64, upper, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::ops::expire::{expire_time, put_expiring, put_keeping_ttl, Unit};
use crate::shard::{storage_error, LaterValue, Reply, Shard};
use keel_protocol::Value;
use keel_storage::{Appended, Mutation, Ns};

/// Redis's `proto-max-bulk-len`: the largest string APPEND may build.
const MAX_STRING_LEN: usize = 512 << 20;

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

/// Options of SET after the value (and of GETEX after the key).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetOptions<'a> {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub keepttl: bool,
    /// GETEX only.
    pub persist: bool,
    /// `EX|PX|EXAT|PXAT` and its (unparsed) argument.
    pub expire: Option<(Unit, &'a [u8])>,
}

/// Parses SET's `[NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]` (or, with
/// `getex`, GETEX's `[EX s | PX ms | EXAT t | PXAT t | PERSIST]`) in any order, with
/// Redis's rules (`parseExtendedStringArgumentsOrReply`): an option may repeat (the last
/// expiry argument wins); NX with XX, two different expiry options, or an expiry with
/// KEEPTTL/PERSIST is `ERR syntax error`, as is an option of the other command. The
/// expiry argument is checked later ([`expire_time`]), after every option.
pub fn parse_set_options(args: &[Vec<u8>], getex: bool) -> Result<SetOptions<'_>, &'static str> {
    let mut o = SetOptions::default();
    let mut i = 0;
    while i < args.len() {
        let mut buf = [0u8; 8];
        let opt = upper(&args[i], &mut buf).unwrap_or(b"");
        let next = args.get(i + 1).map(Vec::as_slice);
        let other_expiry = |u: Unit| o.keepttl || o.persist || o.expire.is_some_and(|(e, _)| e != u);
        match opt {
            b"NX" if !getex && !o.xx => o.nx = true,
            b"XX" if !getex && !o.nx => o.xx = true,
            b"GET" if !getex => o.get = true,
            b"KEEPTTL" if !getex && !o.persist && o.expire.is_none() => o.keepttl = true,
            b"PERSIST" if getex && !o.keepttl && o.expire.is_none() => o.persist = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                let unit = match opt {
                    b"EX" => Unit::Ex,
                    b"PX" => Unit::Px,
                    b"EXAT" => Unit::Exat,
                    _ => Unit::Pxat,
                };
                match next {
                    Some(arg) if !other_expiry(unit) => o.expire = Some((unit, arg)),
                    _ => return Err(ERR_SYNTAX),
                }
                i += 1;
            }
            _ => return Err(ERR_SYNTAX),
        }
        i += 1;
    }
    Ok(o)
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`: `+OK`;
/// with GET the old value (or null); null when the NX/XX condition is not met (the old
/// value with GET, as Redis 7). Without KEEPTTL the key's TTL is replaced (or removed);
/// an EXAT/PXAT time already past deletes the key (the reply is the same).
pub async fn set(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let opts = match parse_set_options(&argv[3..], false) {
        Ok(o) => o,
        Err(e) => return Reply::err(e),
    };
    // The clock only for a time to set (KEEPTTL reads it in put_keeping_ttl; most SETs
    // have neither).
    let now = if opts.expire.is_some() { shard.store.now_ms() } else { 0 };
    let at = match opts.expire.map(|(unit, arg)| expire_time(unit, arg, now, "set")) {
        None => 0,
        Some(Ok(at)) => at,
        Some(Err(e)) => return Reply::err(e),
    };
    let (nx, xx, get, keepttl) = (opts.nx, opts.xx, opts.get, opts.keepttl);
    let value = std::mem::take(&mut argv[2]);
    let key = std::mem::take(&mut argv[1]);
    let (exists, old) = if get {
        match shard.read(ns, &key).await {
            Ok(old) => (old.is_some(), old),
            Err(e) => return e.into(),
        }
    } else if nx || xx {
        (shard.store.contains(ns, &key), None)
    } else {
        (false, None)
    };
    let reply = if get { bulk_or_null(old) } else { Value::ok() };
    if (nx && exists) || (xx && !exists) {
        return if get { reply.into() } else { Value::Null.into() };
    }
    let put = if keepttl { put_keeping_ttl(shard, ns, key, value) } else { put_expiring(ns, key, value, at, now) };
    shard.write(vec![put], reply)
}

/// `SETEX key seconds value` / `PSETEX key milliseconds value` (`unit` Ex or Px):
/// `+OK`; the time must be positive.
pub fn setex(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>, unit: Unit) -> Reply {
    let now = shard.store.now_ms();
    let name = if unit == Unit::Ex { "setex" } else { "psetex" };
    let at = match expire_time(unit, &argv[2], now, name) {
        Ok(at) => at,
        Err(e) => return Reply::err(e),
    };
    let value = std::mem::take(&mut argv[3]);
    let key = std::mem::take(&mut argv[1]);
    shard.write(vec![put_expiring(ns, key, value, at, now)], Value::ok())
}

/// `GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]`: the value (null if missing),
/// and the key's TTL set, or removed with PERSIST. An EXAT/PXAT time already past
/// deletes the key. Options are checked first (syntax), the time only when the key
/// exists (as Redis 7.0).
pub async fn getex(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let opts = match parse_set_options(&argv[2..], true) {
        Ok(o) => o,
        Err(e) => return Reply::err(e),
    };
    let (persist, expire) = (opts.persist, opts.expire.map(|(u, a)| (u, a.to_vec())));
    let key = std::mem::take(&mut argv[1]);
    let value = match crate::ops::expire::read_for_rewrite(shard, ns, &key).await {
        Ok(Some(v)) => v,
        Ok(None) => return Value::Null.into(),
        Err(e) => return e.into(),
    };
    let now = shard.store.now_ms();
    if let Some((unit, arg)) = expire {
        let at = match expire_time(unit, &arg, now, "getex") {
            Ok(at) => at,
            Err(e) => return Reply::err(e),
        };
        let reply = Value::Bulk(value.clone());
        return shard.write(vec![put_expiring(ns, key, value, at, now)], reply);
    }
    if persist && shard.store.expire_at(ns, &key).is_some_and(|at| at != 0) {
        let reply = Value::Bulk(value.clone());
        return shard.write(vec![Mutation::Put { ns, key, value }], reply);
    }
    Value::Bulk(value).into()
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
    shard.write(vec![put_keeping_ttl(shard, ns, key, value)], Value::Integer(new))
}

/// `APPEND key value`: the new length. Writes only the appended bytes as a rule
/// (`keel_storage::Store::append`); keeps the key's TTL.
pub async fn append(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let key = std::mem::take(&mut argv[1]);
    match shard.store.append(ns, &key, &argv[2], MAX_STRING_LEN).await {
        Ok(Appended::Len(len, commit)) => Reply::AfterCommit { commit, ok: Value::Integer(len as i64) },
        Ok(Appended::TooLong) => Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
        Err(e) => Reply::Ready(storage_error(&e)),
    }
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

    type Parsed = (bool, bool, bool, bool, bool, Option<(Unit, String)>);

    fn check(args: &[&str], getex: bool, expected: Result<Parsed, &str>) {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let got = parse_set_options(&args, getex)
            .map(|o| (o.nx, o.xx, o.get, o.keepttl, o.persist, o.expire.map(|(u, a)| (u, String::from_utf8(a.to_vec()).unwrap()))));
        assert_eq!(got, expected, "{args:?}");
    }

    fn flags(nx: bool, xx: bool, get: bool, keepttl: bool) -> Result<Parsed, &'static str> {
        Ok((nx, xx, get, keepttl, false, None))
    }

    fn ex(unit: Unit, arg: &str) -> Result<Parsed, &'static str> {
        Ok((false, false, false, false, false, Some((unit, arg.into()))))
    }

    #[test]
    fn set_options() {
        check(&[], false, flags(false, false, false, false));
        check(&["nx"], false, flags(true, false, false, false));
        check(&["XX"], false, flags(false, true, false, false));
        check(&["get"], false, flags(false, false, true, false));
        check(&["GET", "nX"], false, flags(true, false, true, false));
        check(&["xx", "get", "xx"], false, flags(false, true, true, false));
        check(&["KEEPTTL", "NX"], false, flags(true, false, false, true));
        check(&["KEEPTTL", "keepttl"], false, flags(false, false, false, true));
        check(&["NX", "XX"], false, Err(ERR_SYNTAX));
        check(&["XX", "NX"], false, Err(ERR_SYNTAX));
        check(&["FOO"], false, Err(ERR_SYNTAX));
        check(&["EX"], false, Err(ERR_SYNTAX));
        check(&["EX", "10"], false, ex(Unit::Ex, "10"));
        check(&["px", "x"], false, ex(Unit::Px, "x"));
        check(&["exat", "1", "EXAT", "2"], false, ex(Unit::Exat, "2"));
        check(&["pxat", "-1"], false, ex(Unit::Pxat, "-1"));
        check(&["EX", "10", "PX", "5"], false, Err(ERR_SYNTAX));
        check(&["EX", "10", "KEEPTTL"], false, Err(ERR_SYNTAX));
        check(&["KEEPTTL", "EXAT", "10"], false, Err(ERR_SYNTAX));
        check(&["PERSIST"], false, Err(ERR_SYNTAX));
        check(&["GETX"], false, Err(ERR_SYNTAX));
        // GETEX
        check(&["PERSIST", "persist"], true, Ok((false, false, false, false, true, None)));
        check(&["PERSIST", "EX", "1"], true, Err(ERR_SYNTAX));
        check(&["PX", "1", "PERSIST"], true, Err(ERR_SYNTAX));
        check(&["NX"], true, Err(ERR_SYNTAX));
        check(&["GET"], true, Err(ERR_SYNTAX));
        check(&["KEEPTTL"], true, Err(ERR_SYNTAX));
        check(&["px", "5", "px", "6"], true, ex(Unit::Px, "6"));
    }
}
