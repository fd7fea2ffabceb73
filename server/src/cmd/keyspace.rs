//! Commands that touch more than one shard: multi-key commands split by shard and
//! reassembled in order (DEL, EXISTS, MGET, MSET), and keyspace-wide commands fanned out
//! to every shard (DBSIZE, KEYS, SCAN, FLUSHALL, SKEG.VINDEX.LIST). DESIGN §1.

use super::{Pending, Router};
use crate::streak::BatchShards;
use keel_protocol::Value;
use std::rc::Rc;

/// Bits of a SCAN cursor holding the shard-local cursor; the shard number sits above.
const LOCAL_BITS: u32 = 48;

/// Groups argument indexes by shard, keeping argument order within each group.
fn group_by_shard(rt: &Router, keys: impl Iterator<Item = (usize, usize)>, argv: &[Vec<u8>]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (pos, key_at) in keys {
        let s = rt.shard_of(&argv[key_at]);
        match groups.iter_mut().find(|(g, _)| *g == s) {
            Some((_, v)) => v.push(pos),
            None => groups.push((s, vec![pos])),
        }
    }
    groups
}

/// Records the shards a multi-key command went to (connection hand-off).
fn note_shards(used: &mut BatchShards, groups: &[(usize, Vec<usize>)]) {
    match groups {
        [(s, _)] => used.add(*s),
        [] => {}
        _ => used.many(),
    }
}

/// DEL / EXISTS (integer sum) and MGET (values placed back in argument order).
pub fn multi_key(rt: &Rc<Router>, name: &'static str, argv: &[Vec<u8>], used: &mut BatchShards) -> Pending {
    let groups = group_by_shard(rt, (1..argv.len()).map(|i| (i, i)), argv);
    note_shards(used, &groups);
    if groups.len() == 1 {
        return Pending::One(rt.links[groups[0].0].call(argv));
    }
    let calls: Vec<_> = groups
        .iter()
        .map(|(s, positions)| {
            let mut refs: Vec<&[u8]> = Vec::with_capacity(positions.len() + 1);
            refs.push(&argv[0]);
            refs.extend(positions.iter().map(|&p| argv[p].as_slice()));
            rt.links[*s].call(&refs)
        })
        .collect();
    let n = argv.len() - 1;
    Pending::Many(Box::pin(async move {
        let mut sum = 0i64;
        let mut values = vec![Value::Null; if name == "mget" { n } else { 0 }];
        for ((_, positions), call) in groups.into_iter().zip(calls) {
            match call.await {
                Value::Integer(i) => sum += i,
                Value::Array(items) if items.len() == positions.len() && name == "mget" => {
                    for (p, v) in positions.into_iter().zip(items) {
                        values[p - 1] = v;
                    }
                }
                e @ Value::Error(_) => return e,
                other => return Value::err(format!("ERR internal: unexpected shard reply {other:?}")),
            }
        }
        if name == "mget" {
            Value::Array(values)
        } else {
            Value::Integer(sum)
        }
    }))
}

/// MSET k v [k v …]: one all-or-nothing batch per shard.
pub fn mset(rt: &Rc<Router>, argv: &[Vec<u8>], used: &mut BatchShards) -> Pending {
    if argv.len() % 2 != 1 {
        return Pending::Ready(Value::err("ERR wrong number of arguments for 'mset' command"));
    }
    let groups = group_by_shard(rt, (1..argv.len()).step_by(2).map(|i| (i, i)), argv);
    note_shards(used, &groups);
    if groups.len() == 1 {
        return Pending::One(rt.links[groups[0].0].call(argv));
    }
    let calls: Vec<_> = groups
        .iter()
        .map(|(s, positions)| {
            let mut refs: Vec<&[u8]> = Vec::with_capacity(positions.len() * 2 + 1);
            refs.push(&argv[0]);
            for &p in positions {
                refs.push(&argv[p]);
                refs.push(&argv[p + 1]);
            }
            rt.links[*s].call(&refs)
        })
        .collect();
    Pending::Many(Box::pin(async move {
        let mut first_err = None;
        for call in calls {
            let v = call.await;
            if v.is_error() && first_err.is_none() {
                first_err = Some(v);
            }
        }
        first_err.unwrap_or_else(Value::ok)
    }))
}

/// DBSIZE, KEYS, FLUSHALL/FLUSHDB, SKEG.VINDEX.LIST to every shard; SCAN to one.
pub fn fan_out(rt: &Rc<Router>, name: &'static str, argv: &[Vec<u8>]) -> Pending {
    if name == "scan" {
        return scan(rt, argv);
    }
    if (name == "flushall" || name == "flushdb") && argv.len() > 1 {
        let ok = argv.len() == 2 && matches!(argv[1].to_ascii_uppercase().as_slice(), b"ASYNC" | b"SYNC");
        if !ok {
            return Pending::Ready(Value::err("ERR syntax error"));
        }
    }
    let calls: Vec<_> = rt.links.iter().map(|l| l.call(argv)).collect();
    Pending::Many(Box::pin(async move {
        let mut sum = 0i64;
        let mut items = Vec::new();
        for call in calls {
            match call.await {
                Value::Integer(i) => sum += i,
                Value::Array(a) => items.extend(a),
                Value::Simple(_) => {}
                e @ Value::Error(_) => return e,
                other => return Value::err(format!("ERR internal: unexpected shard reply {other:?}")),
            }
        }
        match name {
            "dbsize" => Value::Integer(sum),
            "flushall" | "flushdb" => Value::ok(),
            "skeg.vindex.list" => {
                items.sort_by(|a, b| match (a, b) {
                    (Value::Bulk(x), Value::Bulk(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
                Value::Array(items)
            }
            _ => Value::Array(items),
        }
    }))
}

/// SCAN cursor [MATCH p] [COUNT n] [TYPE t]: cursor = shard << 48 | shard-local cursor;
/// walks shard 0 to N-1 in turn and returns 0 after the last.
fn scan(rt: &Rc<Router>, argv: &[Vec<u8>]) -> Pending {
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
    let call = rt.links[shard].call(&refs);
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
