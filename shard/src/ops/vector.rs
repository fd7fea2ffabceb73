//! The skeg vector dialect (DESIGN §4/§5) on flat f32 cosine indexes:
//! `SKEG.VINDEX.CREATE/DROP/LIST`, `SKEG.VSET/VDEL/VSEARCH`.
//!
//! Every request is validated completely before anything is written; the index in RAM
//! changes together with the keydir (at `Store::apply`), the reply waits for durability.
//! If that write or its sync fails, the store takes it back and the indexes are rebuilt
//! from the store before the next request that reads them (`Shard::handle`).

use crate::args::{parse_i64, parse_u64, show, ERR_SYNTAX};
use crate::registry::{split_vector_key, vector_key, IndexEntry, IndexMeta, BACKEND_FLAT, KIND_F32, METRIC_COSINE};
use crate::shard::{storage_error, Reply, Shard};
use keel_index::FlatIndex;
use keel_protocol::Value;
use keel_storage::{Mutation, NS_INDEX, NS_VECTOR};

/// Largest vector dimension.
pub const MAX_DIM: u32 = 65536;
/// Largest k of a search.
pub const MAX_K: i64 = 10_000;

fn no_such_index(name: &[u8]) -> Reply {
    Reply::err(format!("ERR no such index '{}'", show(name)))
}

fn index_error(e: keel_index::IndexError) -> Reply {
    Reply::err(format!("ERR {e}"))
}

/// The index named by `argv[1]` and the vector id in `argv[2]` (VSET, VDEL), or the
/// error reply.
fn index_and_id<'r>(
    reg: &'r mut crate::registry::Registry,
    argv: &[Vec<u8>],
) -> Result<(&'r mut IndexEntry, u64), Reply> {
    let Some(entry) = reg.by_name.get_mut(&argv[1]) else {
        return Err(no_such_index(&argv[1]));
    };
    let Some(id) = parse_u64(&argv[2]) else {
        return Err(Reply::err("ERR invalid id"));
    };
    Ok((entry, id))
}

/// `SKEG.VINDEX.CREATE name dim [f32 [flat]]`
pub fn create(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    if argv.len() > 5 {
        return Reply::err(ERR_SYNTAX);
    }
    let dim = match parse_i64(&argv[2]) {
        Some(d) if (1..=i64::from(MAX_DIM)).contains(&d) => d as u32,
        _ => return Reply::err("ERR invalid dimension"),
    };
    if let Some(kind) = argv.get(3) {
        if !kind.eq_ignore_ascii_case(b"f32") {
            return Reply::err(format!("ERR unsupported vector kind '{}' (supported: f32)", show(kind)));
        }
    }
    if let Some(backend) = argv.get(4) {
        if !backend.eq_ignore_ascii_case(b"flat") {
            return Reply::err(format!("ERR unsupported index backend '{}' (supported: flat)", show(backend)));
        }
    }
    let name = &argv[1];
    let mut reg = shard.vectors.borrow_mut();
    if reg.by_name.contains_key(name) {
        return Reply::err("ERR index already exists");
    }
    let uid = reg.allocate_uid(&shard.store);
    let meta = IndexMeta { uid, dim, kind: KIND_F32, backend: BACKEND_FLAT, metric: METRIC_COSINE };
    match shard.store.apply(vec![Mutation::Put { ns: NS_INDEX, key: name.clone(), value: meta.encode() }]) {
        Ok(commit) => {
            reg.by_name.insert(name.clone(), IndexEntry { meta, index: FlatIndex::new(dim as usize) });
            Reply::AfterCommit { commit, ok: Value::ok() }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `SKEG.VINDEX.DROP name`: the meta record is deleted durably; the vectors are forgotten
/// from the keydir (their records die at compaction) and their RAM is freed.
pub fn drop_index(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let name = &argv[1];
    let mut reg = shard.vectors.borrow_mut();
    let Some(uid) = reg.by_name.get(name).map(|e| e.meta.uid) else {
        return no_such_index(name);
    };
    match shard.store.apply(vec![Mutation::Delete { ns: NS_INDEX, key: name.clone() }]) {
        Ok(commit) => {
            reg.by_name.remove(name);
            drop(reg);
            shard.store.forget_where(NS_VECTOR, &mut |k| split_vector_key(k).is_some_and(|(u, _)| u == uid));
            Reply::AfterCommit { commit, ok: Value::ok() }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `SKEG.VINDEX.LIST`: one line per index, sorted by name.
pub fn list(shard: &Shard) -> Reply {
    let reg = shard.vectors.borrow();
    let lines = reg
        .by_name
        .iter()
        .map(|(name, e)| {
            let mut line = Vec::with_capacity(name.len() + 64);
            line.extend_from_slice(b"name=");
            line.extend_from_slice(name);
            line.extend_from_slice(format!(" dim={} kind=f32 backend=flat n_vectors={}", e.meta.dim, e.index.len()).as_bytes());
            Value::Bulk(line)
        })
        .collect();
    Value::Array(lines).into()
}

/// `SKEG.VSET name id blob`: inserts or replaces vector `id` (blob = dim little-endian f32).
pub fn vset(shard: &Shard, mut argv: Vec<Vec<u8>>) -> Reply {
    let mut reg = shard.vectors.borrow_mut();
    let (entry, id) = match index_and_id(&mut reg, &argv) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let v = match keel_index::parse_f32_blob(&argv[3], entry.meta.dim as usize) {
        Ok(v) => v,
        Err(e) => return index_error(e),
    };
    // Everything is validated before anything is written; after a successful append the
    // upsert cannot fail (same checks).
    if let Err(e) = entry.index.check(&v) {
        return index_error(e);
    }
    let blob = std::mem::take(&mut argv[3]);
    match shard.store.apply(vec![Mutation::Put { ns: NS_VECTOR, key: vector_key(entry.meta.uid, id), value: blob }]) {
        Ok(commit) => {
            if let Err(e) = entry.index.upsert(id, &v) {
                tracing::error!("vector {id} passed its check but upsert failed: {e}");
            }
            Reply::AfterCommit { commit, ok: Value::ok() }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `SKEG.VDEL name id`: 1 if the vector existed, else 0.
pub fn vdel(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let mut reg = shard.vectors.borrow_mut();
    let (entry, id) = match index_and_id(&mut reg, &argv) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    if !entry.index.contains(id) {
        return Value::Integer(0).into();
    }
    match shard.store.apply(vec![Mutation::Delete { ns: NS_VECTOR, key: vector_key(entry.meta.uid, id) }]) {
        Ok(commit) => {
            entry.index.remove(id);
            Reply::AfterCommit { commit, ok: Value::Integer(1) }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `SKEG.VSEARCH name k l_search blob` → `[id, score, id, score, …]`, best first; the
/// score is the cosine similarity (a Double; the router sends it as bulk on RESP2).
pub fn vsearch(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    if argv.len() > 5 {
        return Reply::err(ERR_SYNTAX);
    }
    let reg = shard.vectors.borrow();
    let Some(entry) = reg.by_name.get(&argv[1]) else {
        return no_such_index(&argv[1]);
    };
    let k = match parse_i64(&argv[2]) {
        Some(k) if (1..=MAX_K).contains(&k) => k as usize,
        _ => return Reply::err(format!("ERR k must be between 1 and {MAX_K}")),
    };
    match parse_i64(&argv[3]) {
        Some(l) if l >= 1 => {} // the flat backend is exact; l_search is for graph indexes
        _ => return Reply::err("ERR l_search must be a positive integer"),
    }
    let q = match keel_index::parse_f32_blob(&argv[4], entry.meta.dim as usize) {
        Ok(q) => q,
        Err(e) => return index_error(e),
    };
    match entry.index.search(&q, k) {
        Ok(hits) => {
            let mut out = Vec::with_capacity(hits.len() * 2);
            for (id, score) in hits {
                out.push(Value::Bulk(id.to_string().into_bytes()));
                out.push(Value::Double(f64::from(score)));
            }
            Value::Array(out).into()
        }
        Err(e) => index_error(e),
    }
}
