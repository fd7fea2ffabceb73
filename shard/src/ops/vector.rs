//! The skeg vector dialect (DESIGN §4/§5) on flat indexes of three kinds (f32, int8,
//! binary) and three metrics (cosine, l2, ip): `SKEG.VINDEX.CREATE/DROP/LIST`,
//! `SKEG.VSET/VMSET/VGET/VDEL/VSEARCH`.
//!
//! Every request is validated completely before anything is written; the index in RAM
//! changes together with the keydir (at `Store::apply`), the reply waits for durability.
//! If that write or its sync fails, the store takes it back and the indexes are rebuilt
//! from the store before the next request that reads them (`Shard::handle`).
//!
//! A search scans in slices of about [`SLICE_BYTES`] of rows and lets the shard's other
//! tasks run between them, so a long scan does not hold up the shard's KV requests.
//! For int8 and binary indexes the best `max(k, l_search)` candidates by their codes are
//! re-ranked exactly with their f32 originals, read from the vLog (the reads are issued
//! together and go through the shard's I/O).

use crate::args::{parse_i64, parse_u64, show, ERR_SYNTAX};
use crate::registry::{split_vector_key, vector_key, IndexEntry, IndexMeta, Registry};
use crate::shard::{storage_error, Reply, Shard};
use keel_index::{Kind, Metric};
use keel_protocol::Value;
use keel_storage::{Mutation, NS_INDEX, NS_VECTOR};

/// Largest vector dimension.
pub const MAX_DIM: u32 = 65536;
/// Largest k of a search.
pub const MAX_K: i64 = 10_000;
/// Largest l_search of a search (for int8 and binary: the re-rank depth).
pub const MAX_L_SEARCH: i64 = 100_000;
/// Bytes of rows a search scans before it lets other tasks run (~0.1 ms at memory
/// bandwidth).
pub const SLICE_BYTES: usize = 1 << 20;
/// A delete compacts an index when more than this many slots, and more slots than it
/// has vectors, are free (and no search is in progress).
const COMPACT_MIN_FREE: usize = 1024;

fn no_such_index(name: &[u8]) -> Reply {
    Reply::err(format!("ERR no such index '{}'", show(name)))
}

fn index_error(e: keel_index::IndexError) -> Reply {
    Reply::err(format!("ERR {e}"))
}

fn parse_id(b: &[u8]) -> Result<u64, Reply> {
    parse_u64(b).ok_or_else(|| Reply::err("ERR invalid id"))
}

/// The index named by `argv[1]` and the vector id in `argv[2]` (VSET, VDEL), or the
/// error reply.
fn index_and_id<'r>(reg: &'r mut Registry, argv: &[Vec<u8>]) -> Result<(&'r mut IndexEntry, u64), Reply> {
    let Some(entry) = reg.by_name.get_mut(&argv[1]) else {
        return Err(no_such_index(&argv[1]));
    };
    Ok((entry, parse_id(&argv[2])?))
}

/// The options of `SKEG.VINDEX.CREATE name dim [kind [backend]] [METRIC metric]`.
fn parse_create_options(args: &[Vec<u8>]) -> Result<(Kind, Metric), Reply> {
    let (mut kind, mut metric) = (Kind::F32, Metric::Cosine);
    let mut rest = args;
    let is_metric = |a: &[u8]| a.eq_ignore_ascii_case(b"metric");
    if let Some(k) = rest.first().filter(|a| !is_metric(a)) {
        kind = Kind::parse(k)
            .ok_or_else(|| Reply::err(format!("ERR unsupported vector kind '{}' (supported: f32, int8, binary)", show(k))))?;
        rest = &rest[1..];
        if let Some(b) = rest.first().filter(|a| !is_metric(a)) {
            if !b.eq_ignore_ascii_case(b"flat") {
                return Err(Reply::err(format!("ERR unsupported index backend '{}' (supported: flat)", show(b))));
            }
            rest = &rest[1..];
        }
    }
    if rest.first().is_some_and(|a| is_metric(a)) {
        let Some(name) = rest.get(1) else { return Err(Reply::err(ERR_SYNTAX)) };
        metric = Metric::parse(name)
            .ok_or_else(|| Reply::err(format!("ERR unknown metric '{}' (supported: cosine, l2, ip)", show(name))))?;
        rest = &rest[2..];
    }
    if !rest.is_empty() {
        return Err(Reply::err(ERR_SYNTAX));
    }
    Ok((kind, metric))
}

/// `SKEG.VINDEX.CREATE name dim [f32|int8|binary [flat]] [METRIC cosine|l2|ip]`
/// (defaults: f32, flat, cosine).
pub fn create(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let dim = match parse_i64(&argv[2]) {
        Some(d) if (1..=i64::from(MAX_DIM)).contains(&d) => d as u32,
        _ => return Reply::err("ERR invalid dimension"),
    };
    let (kind, metric) = match parse_create_options(&argv[3..]) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    let name = &argv[1];
    let mut reg = shard.vectors.borrow_mut();
    if reg.by_name.contains_key(name) {
        return Reply::err("ERR index already exists");
    }
    let uid = reg.allocate_uid(&shard.store);
    let meta = IndexMeta { uid, dim, kind, metric };
    match shard.store.apply(vec![Mutation::Put { ns: NS_INDEX, key: name.clone(), value: meta.encode() }]) {
        Ok(commit) => {
            reg.by_name.insert(name.clone(), IndexEntry::new(meta));
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

/// `SKEG.VINDEX.LIST`: one line per index, sorted by name:
/// `name=… dim=… kind=… metric=… backend=flat n_vectors=…`.
pub fn list(shard: &Shard) -> Reply {
    let reg = shard.vectors.borrow();
    let lines = reg
        .by_name
        .iter()
        .map(|(name, e)| {
            let mut line = Vec::with_capacity(name.len() + 80);
            line.extend_from_slice(b"name=");
            line.extend_from_slice(name);
            let m = &e.meta;
            let rest = format!(
                " dim={} kind={} metric={} backend=flat n_vectors={}",
                m.dim,
                m.kind.name(),
                m.metric.name(),
                e.index.len()
            );
            line.extend_from_slice(rest.as_bytes());
            Value::Bulk(line)
        })
        .collect();
    Value::Array(lines).into()
}

/// Parses and checks `(id, blob)` for `entry` (the vector's f32 components), or the
/// error reply.
fn parse_vector(entry: &IndexEntry, id: &[u8], blob: &[u8]) -> Result<(u64, Vec<f32>), Reply> {
    let id = parse_id(id)?;
    let v = keel_index::parse_f32_blob(blob, entry.meta.dim as usize).map_err(index_error)?;
    entry.index.check(&v).map_err(index_error)?;
    Ok((id, v))
}

/// `SKEG.VSET name id blob`: inserts or replaces vector `id` (blob = dim little-endian f32).
pub fn vset(shard: &Shard, mut argv: Vec<Vec<u8>>) -> Reply {
    let blob = std::mem::take(&mut argv[3]);
    argv.truncate(3);
    argv.push(blob);
    vmset_or_vset(shard, argv, false)
}

/// `SKEG.VMSET name id blob [id blob …]`: inserts or replaces every vector in one
/// all-or-nothing batch; replies with the number of (id, blob) pairs. Every pair is
/// checked before anything is written. An id given twice takes its last vector.
pub fn vmset(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    if !argv.len().is_multiple_of(2) {
        return Reply::err("ERR wrong number of arguments for 'skeg.vmset' command");
    }
    vmset_or_vset(shard, argv, true)
}

fn vmset_or_vset(shard: &Shard, mut argv: Vec<Vec<u8>>, count: bool) -> Reply {
    let mut reg = shard.vectors.borrow_mut();
    let Some(entry) = reg.by_name.get_mut(&argv[1]) else {
        return no_such_index(&argv[1]);
    };
    let pairs = (argv.len() - 2) / 2;
    let mut vectors = Vec::with_capacity(pairs);
    let mut muts = Vec::with_capacity(pairs);
    for pair in argv[2..].chunks_exact_mut(2) {
        match parse_vector(entry, &pair[0], &pair[1]) {
            Ok((id, v)) => {
                muts.push(Mutation::Put { ns: NS_VECTOR, key: vector_key(entry.meta.uid, id), value: std::mem::take(&mut pair[1]) });
                vectors.push((id, v));
            }
            Err(reply) => return reply,
        }
    }
    match shard.store.apply(muts) {
        Ok(commit) => {
            entry.index.reserve(vectors.len());
            for (id, v) in vectors {
                // Checked above; the same checks cannot fail now.
                if let Err(e) = entry.index.upsert(id, &v) {
                    tracing::error!("vector {id} passed its check but upsert failed: {e}");
                }
            }
            let ok = if count { Value::Integer(pairs as i64) } else { Value::ok() };
            Reply::AfterCommit { commit, ok }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// `SKEG.VGET name id`: the vector as stored (the blob VSET was given), or nil.
pub async fn vget(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let key = {
        let reg = shard.vectors.borrow();
        let Some(entry) = reg.by_name.get(&argv[1]) else {
            return no_such_index(&argv[1]);
        };
        match parse_id(&argv[2]) {
            Ok(id) => vector_key(entry.meta.uid, id),
            Err(reply) => return reply,
        }
    };
    match shard.start_read(NS_VECTOR, key, bulk_or_null).await {
        Ok(v) => v.into(),
        Err(later) => Reply::Later(later),
    }
}

fn bulk_or_null(v: Option<Vec<u8>>) -> Value {
    v.map_or(Value::Null, Value::Bulk)
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
            let free = entry.index.free_slots();
            if shard.vector_scans.get() == 0 && free > COMPACT_MIN_FREE && free > entry.index.len() {
                entry.index.compact();
                reg.epoch += 1;
            }
            Reply::AfterCommit { commit, ok: Value::Integer(1) }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// Counts a search in progress for as long as it lives (see `Shard::vector_scans`).
struct Searching<'s>(&'s Shard);

impl<'s> Searching<'s> {
    fn new(shard: &'s Shard) -> Self {
        shard.vector_scans.set(shard.vector_scans.get() + 1);
        Searching(shard)
    }
}

impl Drop for Searching<'_> {
    fn drop(&mut self) {
        self.0.vector_scans.set(self.0.vector_scans.get() - 1);
    }
}

/// `SKEG.VSEARCH name k l_search blob` → `[id, score, id, score, …]`, best first. The
/// score is the index metric's: cosine similarity, inner product, or l2 (Euclidean)
/// distance (a Double; the router sends it as bulk on RESP2). `l_search` is the re-rank
/// depth of int8 and binary indexes (at least k); f32 indexes are exact and ignore it.
pub async fn vsearch(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    if argv.len() > 5 {
        return Reply::err(ERR_SYNTAX);
    }
    let k = match parse_i64(&argv[2]) {
        Some(k) if (1..=MAX_K).contains(&k) => k as usize,
        _ => return Reply::err(format!("ERR k must be between 1 and {MAX_K}")),
    };
    let l_search = match parse_i64(&argv[3]) {
        Some(l) if (1..=MAX_L_SEARCH).contains(&l) => l as usize,
        _ => return Reply::err(format!("ERR l_search must be between 1 and {MAX_L_SEARCH}")),
    };
    let name = &argv[1];
    let (uid, rerank, q, depth, slice, mut epoch, mut scan) = {
        let reg = shard.vectors.borrow();
        let Some(entry) = reg.by_name.get(name) else {
            return no_such_index(name);
        };
        let q = match keel_index::parse_f32_blob(&argv[4], entry.meta.dim as usize) {
            Ok(q) => q,
            Err(e) => return index_error(e),
        };
        let rerank = entry.index.needs_rerank();
        let depth = if rerank { k.max(l_search) } else { k };
        let scan = match entry.index.scan(&q, depth) {
            Ok(s) => s,
            Err(e) => return index_error(e),
        };
        let slice = (SLICE_BYTES / entry.index.row_bytes().max(1)).max(64);
        (entry.meta.uid, rerank, q, depth, slice, reg.epoch, scan)
    };
    let _searching = Searching::new(shard);
    loop {
        let done = {
            let reg = shard.vectors.borrow();
            let Some(entry) = reg.by_name.get(name).filter(|e| e.meta.uid == uid) else {
                return Reply::err("ERR index was dropped during the search");
            };
            if reg.epoch != epoch {
                // Vectors moved between slots (a rebuild): start over.
                epoch = reg.epoch;
                scan = entry.index.scan(&q, depth).expect("the query passed this index's checks");
            }
            entry.index.scan_step(&mut scan, slice, None)
        };
        if done {
            break;
        }
        futures_lite::future::yield_now().await;
    }
    let hits = if rerank {
        let query = scan.query().clone();
        let candidates = scan.finish();
        // Issue every read first (each is polled once), then collect them.
        let mut read = Vec::with_capacity(candidates.len());
        let mut pending = Vec::new();
        for &(id, _) in &candidates {
            match shard.start_read(NS_VECTOR, vector_key(uid, id), bulk_or_null).await {
                Ok(v) => read.push((id, v)),
                Err(later) => pending.push((id, later)),
            }
        }
        for (id, later) in pending {
            read.push((id, later.await));
        }
        let mut originals = Vec::with_capacity(read.len());
        for (id, v) in read {
            match v {
                Value::Bulk(blob) => originals.push((id, blob)),
                Value::Null => {} // deleted since the scan saw it
                err => return err.into(),
            }
        }
        let reg = shard.vectors.borrow();
        let Some(entry) = reg.by_name.get(name).filter(|e| e.meta.uid == uid) else {
            return Reply::err("ERR index was dropped during the search");
        };
        let dim = entry.meta.dim as usize;
        let vectors = originals.into_iter().filter_map(|(id, blob)| Some((id, keel_index::parse_f32_blob(&blob, dim).ok()?)));
        entry.index.rerank(&query, k, vectors)
    } else {
        scan.finish()
    };
    let mut out = Vec::with_capacity(hits.len() * 2);
    for (id, score) in hits {
        out.push(Value::Bulk(id.to_string().into_bytes()));
        out.push(Value::Double(f64::from(score)));
    }
    Value::Array(out).into()
}
