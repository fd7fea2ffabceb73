//! Key expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX | XX | GT | LT),
//! TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST; and the expiry-time arithmetic SET,
//! SETEX, PSETEX and GETEX share ([`expire_time`]).
//!
//! Times are absolute unix-epoch milliseconds, by the store's clock
//! (`Store::now_ms`); `keel_storage` keeps them durably and removes expired keys (its
//! `expiry` module). A change of a key's TTL writes its value again with the new time
//! (one record, FORMAT.md kind 5), so EXPIRE and PERSIST read the value first (from RAM,
//! or one disk read for a large value).
//!
//! Semantics, error texts and their order follow Redis 7.0 (`expireGenericCommand`,
//! `ttlGenericCommand`, `persistCommand`, `getExpireMillisecondsOrReply` in its
//! `expire.c` and `t_string.c`).

use crate::args::{parse_i64, upper, ERR_NOT_INTEGER};
use crate::shard::{Reply, Shard};
use keel_protocol::Value;
use keel_storage::{Mutation, Ns};

/// The unit and base of an expiry argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds from now (EX, SETEX, EXPIRE).
    Ex,
    /// Milliseconds from now (PX, PSETEX, PEXPIRE).
    Px,
    /// Unix time in seconds (EXAT, EXPIREAT).
    Exat,
    /// Unix time in milliseconds (PXAT, PEXPIREAT).
    Pxat,
}

impl Unit {
    fn seconds(self) -> bool {
        matches!(self, Unit::Ex | Unit::Exat)
    }

    fn relative(self) -> bool {
        matches!(self, Unit::Ex | Unit::Px)
    }
}

/// Redis's text for an expiry time out of range: `ERR invalid expire time in 'set'
/// command`.
fn invalid_expire_time(command: &str) -> String {
    format!("ERR invalid expire time in '{command}' command")
}

/// The absolute expiry time (unix epoch ms, > 0) of SET/GETEX's `EX|PX|EXAT|PXAT arg`
/// or SETEX/PSETEX's argument, as Redis's `getExpireMillisecondsOrReply`: `arg` must be
/// an integer (`ERR value is not an integer or out of range`), positive, and neither
/// the conversion to ms nor the addition of `now` may pass `i64::MAX` (`ERR invalid
/// expire time in '<command>' command`). A past EXAT/PXAT time is valid (the key is
/// then deleted).
pub fn expire_time(unit: Unit, arg: &[u8], now: u64, command: &str) -> Result<u64, String> {
    let n = parse_i64(arg).ok_or_else(|| ERR_NOT_INTEGER.to_string())?;
    if n <= 0 || (unit.seconds() && n > i64::MAX / 1000) {
        return Err(invalid_expire_time(command));
    }
    let ms = if unit.seconds() { n * 1000 } else { n };
    let at = if unit.relative() { ms.checked_add(now as i64) } else { Some(ms) };
    match at {
        Some(at) if at > 0 => Ok(at as u64),
        _ => Err(invalid_expire_time(command)),
    }
}

/// The mutation that sets `key` to `value` expiring at `at` (unix epoch ms; 0: never):
/// a delete when `at` is not after `now` (Redis deletes a key given a past time).
pub fn put_expiring(ns: Ns, key: Vec<u8>, value: Vec<u8>, at: u64, now: u64) -> Mutation {
    match at {
        0 => Mutation::Put { ns, key, value },
        at if at <= now => Mutation::Delete { ns, key },
        expire_at => Mutation::PutExpiring { ns, key, value, expire_at },
    }
}

/// The mutation that sets `key` to `value` keeping its TTL (INCR, APPEND, SET KEEPTTL).
pub fn put_keeping_ttl(shard: &Shard, ns: Ns, key: Vec<u8>, value: Vec<u8>) -> Mutation {
    match shard.store.expire_at(ns, &key).unwrap_or(0) {
        0 => Mutation::Put { ns, key, value },
        at => put_expiring(ns, key, value, at, shard.store.now_ms()),
    }
}

/// The value of `key` for a command that writes it back unchanged with another TTL
/// (EXPIRE, PERSIST, GETEX): read again if the key was written while a disk read was
/// awaited, so that such a command never puts back a value another connection has
/// replaced meanwhile. `Ok(None)`: the key is missing (or was deleted meanwhile).
pub async fn read_for_rewrite(shard: &Shard, ns: Ns, key: &[u8]) -> Result<Option<Vec<u8>>, Value> {
    loop {
        let Some(before) = shard.store.version(ns, key) else { return Ok(None) };
        let value = shard.read(ns, key).await?;
        if shard.store.version(ns, key) == Some(before) {
            return Ok(value);
        }
    }
}

/// EXPIRE's condition flags.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// Parses EXPIRE's `[NX | XX | GT | LT]` (repeats allowed; XX with GT or LT allowed) as
/// Redis's `parseExtendedExpireArgumentsOrReply`: an unknown word is `ERR Unsupported
/// option <word>`; NX with any other, or GT with LT, are their own errors.
pub fn parse_condition(args: &[Vec<u8>]) -> Result<Condition, String> {
    let mut c = Condition::default();
    for a in args {
        let mut buf = [0u8; 2];
        match upper(a, &mut buf).unwrap_or(b"") {
            b"NX" => c.nx = true,
            b"XX" => c.xx = true,
            b"GT" => c.gt = true,
            b"LT" => c.lt = true,
            _ => return Err(format!("ERR Unsupported option {}", crate::args::show(a))),
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if c.gt && c.lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(c)
}

/// `EXPIRE key seconds [cond]`, `PEXPIRE key ms [cond]`, `EXPIREAT key unix-s [cond]`,
/// `PEXPIREAT key unix-ms [cond]` (`unit` Ex, Px, Exat, Pxat): `:1` if the TTL was set
/// (a time not after now deletes the key), `:0` if the key is missing or the condition
/// fails (NX: no TTL yet; XX: has one; GT/LT: later/earlier than the current one, no
/// TTL counting as infinite). Negative times are allowed; a time whose conversion to ms
/// or sum with now passes the i64 range is `ERR invalid expire time in '<command>'
/// command`. Errors come in Redis's order: options, integer, range, then the key.
pub async fn expire(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>, unit: Unit) -> Reply {
    let command = match unit {
        Unit::Ex => "expire",
        Unit::Px => "pexpire",
        Unit::Exat => "expireat",
        Unit::Pxat => "pexpireat",
    };
    let cond = match parse_condition(&argv[3..]) {
        Ok(c) => c,
        Err(e) => return Reply::err(e),
    };
    let Some(mut when) = parse_i64(&argv[2]) else { return Reply::err(ERR_NOT_INTEGER) };
    if unit.seconds() {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Reply::err(invalid_expire_time(command));
        }
        when *= 1000;
    }
    let now = shard.store.now_ms();
    let base = if unit.relative() { now as i64 } else { 0 };
    let Some(when) = when.checked_add(base) else { return Reply::err(invalid_expire_time(command)) };
    let key = std::mem::take(&mut argv[1]);
    let Some(current) = shard.store.expire_at(ns, &key) else { return Value::Integer(0).into() };
    // As Redis: no TTL is -1 for NX/XX, infinite for GT/LT.
    let refused = (cond.nx && current != 0)
        || (cond.xx && current == 0)
        || (cond.gt && (current == 0 || when <= current as i64))
        || (cond.lt && current != 0 && when >= current as i64);
    if refused {
        return Value::Integer(0).into();
    }
    if when <= now as i64 {
        return shard.write(vec![Mutation::Delete { ns, key }], Value::Integer(1));
    }
    if when as u64 == current {
        return Value::Integer(1).into();
    }
    let value = match read_for_rewrite(shard, ns, &key).await {
        Ok(Some(v)) => v,
        Ok(None) => return Value::Integer(0).into(), // deleted while the value was read
        Err(e) => return e.into(),
    };
    shard.write(vec![put_expiring(ns, key, value, when as u64, now)], Value::Integer(1))
}

/// What [`ttl`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlKind {
    /// TTL: seconds left.
    Ttl,
    /// PTTL: milliseconds left.
    Pttl,
    /// EXPIRETIME: unix time in seconds.
    Expiretime,
    /// PEXPIRETIME: unix time in milliseconds.
    Pexpiretime,
}

/// `TTL key`, `PTTL key`, `EXPIRETIME key`, `PEXPIRETIME key`: `:-2` if the key is
/// missing, `:-1` if it has no TTL, else the time left (never negative) or the absolute
/// time; seconds are rounded to the nearest ((ms + 500) / 1000, as Redis).
pub fn ttl(shard: &Shard, ns: Ns, argv: Vec<Vec<u8>>, kind: TtlKind) -> Reply {
    let n = match shard.store.expire_at(ns, &argv[1]) {
        None => -2,
        Some(0) => -1,
        Some(at) => {
            let at = at.min(i64::MAX as u64) as i64;
            let v = match kind {
                TtlKind::Ttl | TtlKind::Pttl => (at - shard.store.now_ms() as i64).max(0),
                TtlKind::Expiretime | TtlKind::Pexpiretime => at,
            };
            match kind {
                TtlKind::Pttl | TtlKind::Pexpiretime => v,
                TtlKind::Ttl | TtlKind::Expiretime => v.saturating_add(500) / 1000,
            }
        }
    };
    Value::Integer(n).into()
}

/// `PERSIST key`: `:1` if the key's TTL was removed, `:0` if it is missing or has none.
pub async fn persist(shard: &Shard, ns: Ns, mut argv: Vec<Vec<u8>>) -> Reply {
    let key = std::mem::take(&mut argv[1]);
    if shard.store.expire_at(ns, &key).is_none_or(|at| at == 0) {
        return Value::Integer(0).into();
    }
    match read_for_rewrite(shard, ns, &key).await {
        Ok(Some(value)) => shard.write(vec![Mutation::Put { ns, key, value }], Value::Integer(1)),
        Ok(None) => Value::Integer(0).into(),
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn expire_times_follow_redis() {
        let t = |unit, arg: &str| expire_time(unit, arg.as_bytes(), NOW, "set");
        let invalid = Err("ERR invalid expire time in 'set' command".to_string());
        assert_eq!(t(Unit::Ex, "10"), Ok(NOW + 10_000));
        assert_eq!(t(Unit::Px, "10"), Ok(NOW + 10));
        assert_eq!(t(Unit::Exat, "10"), Ok(10_000));
        assert_eq!(t(Unit::Pxat, "1"), Ok(1));
        assert_eq!(t(Unit::Pxat, "9223372036854775807"), Ok(i64::MAX as u64));
        assert_eq!(t(Unit::Ex, "0"), invalid);
        assert_eq!(t(Unit::Px, "-1"), invalid);
        assert_eq!(t(Unit::Exat, "9223372036854775808"), Err(ERR_NOT_INTEGER.to_string()));
        assert_eq!(t(Unit::Exat, "9223372036854776"), invalid, "seconds past i64::MAX / 1000");
        assert_eq!(t(Unit::Exat, "9223372036854775"), Ok(9_223_372_036_854_775_000));
        assert_eq!(t(Unit::Ex, "9223372036854775"), invalid, "overflows when now is added");
        assert_eq!(t(Unit::Px, "9223372036854775807"), invalid);
        assert_eq!(t(Unit::Ex, "1.5"), Err(ERR_NOT_INTEGER.to_string()));
        assert_eq!(t(Unit::Ex, " 1"), Err(ERR_NOT_INTEGER.to_string()));
    }

    #[test]
    fn conditions_follow_redis() {
        let c = |a: &[&str]| parse_condition(&a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>());
        assert_eq!(c(&[]), Ok(Condition::default()));
        assert_eq!(c(&["xx", "GT", "gt"]), Ok(Condition { xx: true, gt: true, ..Condition::default() }));
        let nx_err = Err("ERR NX and XX, GT or LT options at the same time are not compatible".to_string());
        assert_eq!(c(&["NX", "XX"]), nx_err);
        assert_eq!(c(&["lt", "nx"]), nx_err);
        assert_eq!(c(&["GT", "LT"]), Err("ERR GT and LT options at the same time are not compatible".to_string()));
        assert_eq!(c(&["NX", "foo"]), Err("ERR Unsupported option foo".to_string()));
        assert_eq!(c(&["nxx"]), Err("ERR Unsupported option nxx".to_string()));
    }
}
