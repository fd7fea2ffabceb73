//! Keyed commands and the commands that touch more than one shard (DESIGN §1), all
//! driven by the command table: a keyed command goes whole to the shard of its keys, or
//! is split by shard with each key's arguments and the replies merged as the table's
//! [`Merge`] says (DEL, EXISTS, MGET, MSET); keyspace-wide commands fan out to every
//! shard and merge the same way (DBSIZE, KEYS, FLUSHALL, SKEG.VINDEX.LIST); SCAN walks
//! the shards one at a time.

use super::table::{Merge, Route, Spec};
use super::{Pending, Router};
use crate::streak::BatchShards;
use keel_protocol::Value;
use std::rc::Rc;

/// Bits of a SCAN cursor holding the shard-local cursor; the shard number sits above.
const LOCAL_BITS: u32 = 48;

/// A [`Route::Key`] or [`Route::Keys`] command: to the one shard of its keys, else split.
pub fn keyed(rt: &Rc<Router>, db: u8, spec: &'static Spec, argv: &[Vec<u8>], used: &mut BatchShards) -> Pending {
    let single = match spec.route {
        Route::Key => Some(rt.shard_of(&argv[1])),
        _ => spec.single_shard(argv, rt.links.len()),
    };
    if let Some(s) = single {
        used.add(s);
        return Pending::One(rt.links[s].call_in(db, argv));
    }
    used.many();
    match spec.route {
        Route::Keys(merge) => split(rt, db, spec, merge, argv),
        // Only keyed commands get here, and a key-less one routes nowhere.
        _ => Pending::Ready(Value::err(format!("ERR internal: '{}' has no keys to route", spec.name))),
    }
}

/// Sends each shard the command name and its keys' argument groups (a key and the
/// `step − 1` arguments after it), then merges the replies in key order.
fn split(rt: &Rc<Router>, db: u8, spec: &'static Spec, merge: Merge, argv: &[Vec<u8>]) -> Pending {
    let step = spec.step.max(1) as usize;
    // Per shard: the indexes (0-based, in argument order) of the keys it gets.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut n_keys = 0;
    for (i, p) in spec.key_positions(argv.len()).enumerate() {
        n_keys += 1;
        let s = rt.shard_of(&argv[p]);
        match groups.iter_mut().find(|(g, _)| *g == s) {
            Some((_, keys)) => keys.push(i),
            None => groups.push((s, vec![i])),
        }
    }
    let first = spec.first_key as usize;
    let calls: Vec<_> = groups
        .iter()
        .map(|(s, keys)| {
            let mut part: Vec<&[u8]> = Vec::with_capacity(1 + keys.len() * step);
            part.push(&argv[0]);
            for &i in keys {
                let p = first + i * step;
                part.extend(argv[p..p + step].iter().map(Vec::as_slice));
            }
            rt.links[*s].call_in(db, &part)
        })
        .collect();
    Pending::Many(Box::pin(async move {
        let mut merged = Merged::new(merge, n_keys);
        for ((_, keys), call) in groups.into_iter().zip(calls) {
            merged.add(&keys, call.await);
        }
        merged.finish()
    }))
}

/// A [`Route::All`] command: to every shard, the replies merged. SWAPDB and FLUSHDB run
/// on each shard atomically, not across shards.
pub fn fan_out(rt: &Rc<Router>, db: u8, merge: Merge, argv: &[Vec<u8>]) -> Pending {
    let calls: Vec<_> = rt.links.iter().map(|l| l.call_in(db, argv)).collect();
    Pending::Many(Box::pin(async move {
        let mut merged = Merged::new(merge, 0);
        for call in calls {
            merged.add(&[], call.await);
        }
        merged.finish()
    }))
}

/// The replies of several shards becoming one, as [`Merge`] says. Every part is
/// awaited (so a write's reply leaves only when all its shards answered); the first
/// error reply wins.
struct Merged {
    merge: Merge,
    sum: i64,
    items: Vec<Value>,
    error: Option<Value>,
}

impl Merged {
    /// For `n_keys` keys ([`Merge::ByKey`] places values at their index).
    fn new(merge: Merge, n_keys: usize) -> Merged {
        let items = if merge == Merge::ByKey { vec![Value::Null; n_keys] } else { Vec::new() };
        Merged { merge, sum: 0, items, error: None }
    }

    /// Adds one shard's reply to the command for the keys at indexes `keys`.
    fn add(&mut self, keys: &[usize], reply: Value) {
        if self.error.is_some() {
            return;
        }
        match (self.merge, reply) {
            (_, e @ Value::Error(_)) => self.error = Some(e),
            (Merge::Sum, Value::Integer(i)) => self.sum = self.sum.saturating_add(i),
            (Merge::ByKey, Value::Array(values)) if values.len() == keys.len() => {
                for (&i, v) in keys.iter().zip(values) {
                    self.items[i] = v;
                }
            }
            (Merge::Concat | Merge::Sorted, Value::Array(values)) => self.items.extend(values),
            (Merge::AllOk, Value::Simple(s)) if s == "OK" => {}
            (_, other) => self.error = Some(Value::err(format!("ERR internal: unexpected shard reply {other:?}"))),
        }
    }

    fn finish(mut self) -> Value {
        if let Some(e) = self.error {
            return e;
        }
        match self.merge {
            Merge::Sum => Value::Integer(self.sum),
            Merge::ByKey | Merge::Concat => Value::Array(self.items),
            Merge::Sorted => {
                self.items.sort_by(|a, b| match (a, b) {
                    (Value::Bulk(x), Value::Bulk(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
                Value::Array(self.items)
            }
            Merge::AllOk => Value::ok(),
        }
    }
}

/// SCAN cursor [MATCH p] [COUNT n] [TYPE t]: cursor = shard << 48 | shard-local cursor;
/// walks shard 0 to N-1 in turn and returns 0 after the last.
pub fn scan(rt: &Rc<Router>, db: u8, argv: &[Vec<u8>]) -> Pending {
    let cursor: u64 = match std::str::from_utf8(&argv[1]).ok().and_then(|s| s.parse().ok()) {
        Some(c) => c,
        None => return Pending::Ready(Value::err("ERR invalid cursor")),
    };
    let shard = (cursor >> LOCAL_BITS) as usize;
    let local = cursor & ((1u64 << LOCAL_BITS) - 1);
    if shard >= rt.links.len() {
        return Pending::Ready(Value::err("ERR invalid cursor"));
    }
    let local_text = local.to_string();
    let mut refs: Vec<&[u8]> = Vec::with_capacity(argv.len());
    refs.push(&argv[0]);
    refs.push(local_text.as_bytes());
    refs.extend(argv[2..].iter().map(|a| a.as_slice()));
    let call = rt.links[shard].call_in(db, &refs);
    let n_shards = rt.links.len();
    Pending::Many(Box::pin(async move {
        match call.await {
            Value::Array(mut parts) if parts.len() == 2 => {
                let keys = parts.pop().unwrap_or(Value::Array(vec![]));
                let next_local: u64 = match &parts[0] {
                    Value::Bulk(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
                    _ => 0,
                };
                let next = if next_local != 0 {
                    ((shard as u64) << LOCAL_BITS) | next_local
                } else if shard + 1 < n_shards {
                    ((shard + 1) as u64) << LOCAL_BITS
                } else {
                    0
                };
                Value::Array(vec![Value::bulk(next.to_string()), keys])
            }
            e @ Value::Error(_) => e,
            other => Value::err(format!("ERR internal: unexpected shard reply {other:?}")),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(merge: Merge, n_keys: usize, parts: Vec<(Vec<usize>, Value)>, expected: Value) {
        let mut m = Merged::new(merge, n_keys);
        for (keys, v) in parts {
            m.add(&keys, v);
        }
        assert_eq!(m.finish(), expected);
    }

    #[test]
    fn merges() {
        use Value::{Array, Integer};
        let b = |s: &str| Value::bulk(s);
        check(Merge::Sum, 3, vec![(vec![0, 2], Integer(2)), (vec![1], Integer(1))], Integer(3));
        check(Merge::ByKey, 3, vec![(vec![0, 2], Array(vec![b("a"), b("c")])), (vec![1], Array(vec![Value::Null]))], Array(vec![b("a"), Value::Null, b("c")]));
        check(Merge::Concat, 0, vec![(vec![], Array(vec![b("x")])), (vec![], Array(vec![b("y")]))], Array(vec![b("x"), b("y")]));
        check(Merge::Sorted, 0, vec![(vec![], Array(vec![b("z")])), (vec![], Array(vec![b("a")]))], Array(vec![b("a"), b("z")]));
        check(Merge::AllOk, 0, vec![(vec![], Value::ok()), (vec![], Value::ok())], Value::ok());
    }

    #[test]
    fn the_first_error_wins_and_odd_replies_are_errors() {
        let e1 = Value::err("ERR one");
        check(Merge::AllOk, 0, vec![(vec![], Value::ok()), (vec![], e1.clone()), (vec![], Value::err("ERR two"))], e1);
        let Value::Error(e) = ({
            let mut m = Merged::new(Merge::ByKey, 2);
            m.add(&[0, 1], Value::Array(vec![Value::Null]));
            m.finish()
        }) else {
            panic!("a short MGET part is an error")
        };
        assert!(e.starts_with("ERR internal"), "{e}");
    }
}
