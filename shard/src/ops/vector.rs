//! The skeg vector dialect (DESIGN §4/§5) on flat indexes of three kinds (f32, int8,
//! binary) and three metrics (cosine, l2, ip): `SKEG.VINDEX.CREATE/DROP/LIST`,
//! `SKEG.VSET/VMSET/VGET/VDEL/VSEARCH`.
//!
//! Every request is validated completely before anything is written; the index in RAM
//! changes together with the keydir (at `Store::apply`), the reply waits for durability.
//! If that write or its sync fails, the store takes it back and the indexes are rebuilt
//! from the store before the next request that reads them (`Shard::handle`).
//!
//! A search works in slices of at most [`ROUND`] shared by the searches in progress (at
//! least [`MIN_SLICE`]) and between two slices waits for the shard's next I/O poll
//! ([`crate::runtime::poll::IoPoll`]), so a KV request that arrives meanwhile is
//! noticed and served within about two rounds, however long the search. Unfiltered
//! searches of one index scan it together ([`keel_index::SharedScan`]: each row read
//! once per lap for all of them; see `shared_scan`). For int8 and
//! binary indexes the best `max(k, l_search)` candidates by their codes are re-ranked
//! exactly with their f32 originals, read from the vLog (the reads are issued together
//! and go through the shard's I/O) and scored as they arrive, in the same slices.

use crate::args::{parse_i64, parse_u64, show, ERR_SYNTAX};
use crate::registry::{
    payload_fields, split_vector_key, split_vector_value, vector_key, vector_value, IndexEntry, IndexMeta, Registry,
};
use keel_index::filter::{Fields, Filter};
use crate::shard::{storage_error, Reply, Shard};
use keel_index::{Bounded, Kind, Metric, Query, Rerank};
use std::collections::HashMap;
use keel_protocol::Value;
use keel_storage::{Mutation, NS_INDEX, NS_VECTOR};
use std::time::{Duration, Instant};

/// The reply to a search whose index was dropped while it ran.
const ERR_DROPPED: &str = "ERR index was dropped during the search";

/// Largest vector dimension.
pub const MAX_DIM: u32 = 65536;
/// Largest k of a search.
pub const MAX_K: i64 = 10_000;
/// Largest l_search of a search (for int8 and binary: the re-rank depth).
pub const MAX_L_SEARCH: i64 = 100_000;
/// The longest stretch of search work between two I/O polls of the shard, shared by the
/// searches in progress: each works for `ROUND / searches` (at least [`MIN_SLICE`]),
/// then waits for the next poll. A KV request that arrives during a round is noticed at
/// its end and runs within the next one.
pub const ROUND: Duration = Duration::from_micros(300);
/// The shortest slice of one search (with more than 10 searches in progress a round
/// lasts longer than [`ROUND`]).
pub const MIN_SLICE: Duration = Duration::from_micros(30);
/// What a slice is charged for each record read it starts: the kernel does the work of
/// an O_DIRECT read (pinning pages, building the request) when the executor submits
/// it, at the end of the round, outside the slice's own clock (~5 µs each here; 1000
/// reads submitted in one poll held the shard for ~5 ms).
const READ_COST: Duration = Duration::from_micros(5);
/// Bytes of rows a scan scores between two looks at the clock (f32 at 384 dimensions:
/// 42 rows, ~6 µs at 10 GB/s).
const STEP_BYTES: usize = 64 << 10;
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

/// The index named by `argv[1]` and the vector id in `argv[2]` (VDEL), or the
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

/// Parses and checks `(id, blob)` for `entry` (the vector in the form the index stores,
/// validated and for cosine normalized once, decoded in `scratch`), or the error reply.
fn parse_vector(entry: &IndexEntry, id: &[u8], blob: &[u8], scratch: &mut Vec<f32>) -> Result<(u64, keel_index::Checked), Reply> {
    let id = parse_id(id)?;
    let checked = entry.index.check_blob(blob, scratch).map_err(index_error)?;
    Ok((id, checked))
}

/// `SKEG.VSET name id blob [PAYLOAD payload]`: inserts or replaces vector `id` (blob =
/// dim little-endian f32) with its payload (a JSON object or `key=value` tokens; none
/// without PAYLOAD: a replaced vector loses its old one).
pub fn vset(shard: &Shard, mut argv: Vec<Vec<u8>>) -> Reply {
    let payload = match argv.len() {
        4 => Vec::new(),
        6 if argv[4].eq_ignore_ascii_case(b"payload") => argv.pop().expect("6 arguments"),
        _ => return Reply::err(ERR_SYNTAX),
    };
    argv.truncate(4);
    set_vectors(shard, argv, vec![payload], false)
}

/// `SKEG.VMSET name id blob [id blob …]`: inserts or replaces every vector (without
/// payloads) in one all-or-nothing batch; replies with the number of (id, blob) pairs.
/// Every pair is checked before anything is written. An id given twice takes its last
/// vector.
pub fn vmset(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    if !argv.len().is_multiple_of(2) {
        return Reply::err("ERR wrong number of arguments for 'skeg.vmset' command");
    }
    let payloads = vec![Vec::new(); (argv.len() - 2) / 2];
    set_vectors(shard, argv, payloads, true)
}

/// Writes the `(id, blob)` pairs of `argv[2..]` with `payloads` (one per pair) as one
/// batch, then upserts them; replies `+OK` or, with `count`, the number of pairs.
fn set_vectors(shard: &Shard, mut argv: Vec<Vec<u8>>, payloads: Vec<Vec<u8>>, count: bool) -> Reply {
    let mut reg = shard.vectors.borrow_mut();
    let Some(entry) = reg.by_name.get_mut(&argv[1]) else {
        return no_such_index(&argv[1]);
    };
    let pairs = payloads.len();
    let mut vectors = Vec::with_capacity(pairs);
    let mut muts = Vec::with_capacity(pairs);
    let mut scratch = Vec::new();
    for (pair, payload) in argv[2..].chunks_exact_mut(2).zip(payloads) {
        let (id, v) = match parse_vector(entry, &pair[0], &pair[1], &mut scratch) {
            Ok(parsed) => parsed,
            Err(reply) => return reply,
        };
        let fields = match payload_fields(&payload) {
            Ok(f) => f,
            Err(e) => return Reply::err(format!("ERR {e}")),
        };
        let value = vector_value(std::mem::take(&mut pair[1]), &payload);
        muts.push(Mutation::Put { ns: NS_VECTOR, key: vector_key(entry.meta.uid, id), value });
        vectors.push((id, v, fields));
    }
    let bulk = muts.iter().map(|m| if let Mutation::Put { value, .. } = m { value.len() } else { 0 }).sum::<usize>() >= BULK_BYTES;
    match shard.store.apply(muts) {
        Ok(commit) => {
            entry.index.reserve(vectors.len());
            for (id, v, fields) in vectors {
                entry.upsert_checked(id, v, fields);
            }
            let ok = if count { Value::Integer(pairs as i64) } else { Value::ok() };
            let commit = if bulk { bulk_write(shard, commit) } else { commit };
            Reply::AfterCommit { commit, ok }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// A vector write of at least this many bytes of values is a bulk write: its request
/// buffers are large (a `SKEG.VMSET` of 256 × 384-d vectors: ~400 KB).
const BULK_BYTES: usize = 256 << 10;

/// `commit`, which, once it resolved (or was dropped), gives the freed memory back to
/// the OS if no other bulk write is in progress (`crate::release_freed`): the end of a
/// bulk load, whose buffers (request, arguments, records) the allocator would
/// otherwise keep for its decay time (~1 s). Before the reply, so the memory is back
/// when the client sees the load end. A loader that sends one batch at a time pays a
/// purge per batch (well under a millisecond here).
fn bulk_write(shard: &Shard, commit: keel_storage::Commit) -> keel_storage::Commit {
    struct InFlight(std::rc::Rc<std::cell::Cell<usize>>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            let left = self.0.get() - 1;
            self.0.set(left);
            if left == 0 {
                crate::release_freed();
            }
        }
    }
    let writes = shard.bulk_writes.clone();
    writes.set(writes.get() + 1);
    let in_flight = InFlight(writes);
    Box::pin(async move {
        let done = commit.await;
        drop(in_flight);
        done
    })
}

/// `SKEG.VGET name id`: the vector as stored (the blob VSET was given), or nil.
pub async fn vget(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let (key, dim) = {
        let reg = shard.vectors.borrow();
        let Some(entry) = reg.by_name.get(&argv[1]) else {
            return no_such_index(&argv[1]);
        };
        match parse_id(&argv[2]) {
            Ok(id) => (vector_key(entry.meta.uid, id), entry.meta.dim as usize),
            Err(reply) => return reply,
        }
    };
    let value = match shard.start_read(NS_VECTOR, key, bulk_or_null).await {
        Ok(v) => v,
        Err(later) => later.await,
    };
    match value {
        Value::Bulk(v) => match split_vector_value(&v, dim) {
            Some((blob, _)) => Value::Bulk(blob.to_vec()).into(),
            None => Reply::err("ERR stored vector record is shorter than its dimension"),
        },
        other => other.into(),
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
            entry.remove(id);
            let free = entry.index.free_slots();
            if shard.vector_scans.get() == 0 && free > COMPACT_MIN_FREE && free > entry.index.len() {
                entry.compact();
                reg.epoch += 1;
            }
            Reply::AfterCommit { commit, ok: Value::Integer(1) }
        }
        Err(e) => storage_error(&e).into(),
    }
}

/// Counts a search in progress for as long as it lives (see `Shard::vector_scans`), and
/// cuts its work into slices (see [`ROUND`]).
struct Searching<'s> {
    shard: &'s Shard,
    /// When the current slice began.
    since: Instant,
    /// Work done in this slice that its clock does not see (reads to submit).
    charged: Duration,
}

impl<'s> Searching<'s> {
    fn new(shard: &'s Shard) -> Self {
        shard.vector_scans.set(shard.vector_scans.get() + 1);
        Searching { shard, since: Instant::now(), charged: Duration::ZERO }
    }

    /// How long one slice of this search may last: [`ROUND`] shared by the searches
    /// in progress, at least [`MIN_SLICE`].
    fn slice(&self) -> Duration {
        let searches = u32::try_from(self.shard.vector_scans.get()).unwrap_or(u32::MAX).max(1);
        (ROUND / searches).max(MIN_SLICE)
    }

    /// Between two steps of work: once the slice is used up, waits for the shard's next
    /// I/O poll (every task ready meanwhile runs first) and starts a new slice.
    async fn pause(&mut self) {
        if self.since.elapsed() + self.charged >= self.slice() {
            self.shard.io_poll.next().await;
            self.restart();
        }
    }

    /// Starts a new slice (after waiting for something else than a poll).
    fn restart(&mut self) {
        self.since = Instant::now();
        self.charged = Duration::ZERO;
    }

    /// Charges the slice for a record read that will be submitted at the next poll.
    fn charge_read(&mut self) {
        self.charged += READ_COST;
    }
}

impl Drop for Searching<'_> {
    fn drop(&mut self) {
        self.shard.vector_scans.set(self.shard.vector_scans.get() - 1);
    }
}

/// The options of `SKEG.VSEARCH` after the query blob: `WITHPAYLOAD`, `FILTER expr`, in
/// any order.
fn parse_search_options(args: &[Vec<u8>]) -> Result<(bool, Option<Filter>), Reply> {
    let (mut with_payload, mut filter) = (false, None);
    let mut i = 0;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withpayload") {
            with_payload = true;
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"filter") {
            let Some(expr) = args.get(i + 1) else { return Err(Reply::err(ERR_SYNTAX)) };
            filter = Some(Filter::parse(expr).map_err(|e| Reply::err(format!("ERR {e}")))?);
            i += 2;
        } else {
            return Err(Reply::err(ERR_SYNTAX));
        }
    }
    Ok((with_payload, filter))
}

/// How many times a filtered search starts over when vectors stopped matching its
/// filter while it ran.
const MAX_FILTER_RESTARTS: usize = 3;

/// A filtered search scores only the matching slots when fewer than one slot in this
/// many matches, else it scans every slot and keeps the matching ones.
const SELECTIVE: u64 = 8;

/// `SKEG.VSEARCH name k l_search blob [WITHPAYLOAD] [FILTER expr]` →
/// `[id, score, id, score, …]` (with WITHPAYLOAD `[id, score, payload, …]`, the payload
/// as stored or nil), best first. The score is the index metric's: cosine similarity,
/// inner product, or l2 (Euclidean) distance (a Double; the router sends it as bulk on
/// RESP2). `l_search` is the re-rank depth of int8 and binary indexes (at least k);
/// f32 indexes are exact and ignore it. With FILTER only vectors whose payload matches
/// are candidates (the true top-k of the matching set on f32); a vector changed while
/// the search runs is checked against the filter again at the end.
pub async fn vsearch(shard: &Shard, argv: Vec<Vec<u8>>) -> Reply {
    let k = match parse_i64(&argv[2]) {
        Some(k) if (1..=MAX_K).contains(&k) => k as usize,
        _ => return Reply::err(format!("ERR k must be between 1 and {MAX_K}")),
    };
    let l_search = match parse_i64(&argv[3]) {
        Some(l) if (1..=MAX_L_SEARCH).contains(&l) => l as usize,
        _ => return Reply::err(format!("ERR l_search must be between 1 and {MAX_L_SEARCH}")),
    };
    let (with_payload, filter) = match parse_search_options(&argv[5..]) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    let name = &argv[1];
    let (uid, dim, query, depth, step, reranker) = {
        let reg = shard.vectors.borrow();
        let Some(entry) = reg.by_name.get(name) else {
            return no_such_index(name);
        };
        let dim = entry.meta.dim as usize;
        // Validated and prepared once: the scan (also when it starts over) and the
        // re-rank compare with it.
        let query = match keel_index::parse_f32_blob(&argv[4], dim).and_then(|q| entry.index.query(&q)) {
            Ok(query) => query,
            Err(e) => return index_error(e),
        };
        let reranker = entry.index.needs_rerank().then(|| entry.index.reranker(k));
        let depth = if reranker.is_some() { k.max(l_search) } else { k };
        let step = (STEP_BYTES / entry.index.row_bytes().max(1)).max(16);
        (entry.meta.uid, dim, query, depth, step, reranker)
    };
    let mut searching = Searching::new(shard);
    let candidates = match scan(&mut searching, name, uid, &query, depth, step, filter.as_ref()).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    // The stored records of the candidates, when the search needs them: the f32
    // originals to re-rank, the payloads to return. An int8 re-rank reads its k most
    // promising candidates first, then only those that can still enter the k best
    // (`rerank_bounds`); the result is the same as from reading them all. (A vector
    // rewritten after its bound was computed is judged by its old code, as the scan
    // already chose the candidates by their codes at the time.)
    let waves: [Vec<Bounded>; 2] = if reranker.is_some() {
        let bounds = {
            let reg = shard.vectors.borrow();
            match reg.by_name.get(name).filter(|e| e.meta.uid == uid) {
                Some(entry) => entry.index.rerank_bounds(&query, candidates.iter().map(|c| c.0)),
                None => return Reply::err(ERR_DROPPED),
            }
        };
        match bounds {
            Some(mut first) => {
                let rest = first.split_off(k.min(first.len()));
                [first, rest]
            }
            None => [unbounded(&candidates, candidates.len()), Vec::new()],
        }
    } else if with_payload {
        [unbounded(&candidates, k), Vec::new()]
    } else {
        [Vec::new(), Vec::new()]
    };
    let mut fetched = Fetched { name, uid, dim, query: &query, reranker, with_payload, payloads: HashMap::new(), reads: 0, skipped: 0 };
    for wave in waves {
        if let Err(reply) = fetched.read(&mut searching, wave).await {
            return reply;
        }
    }
    let Fetched { reranker, mut payloads, reads, skipped, .. } = fetched;
    let mut counts = shard.search_counts.get();
    counts.searches += 1;
    if reranker.is_some() {
        counts.rerank_reads += reads;
        counts.rerank_skipped += skipped;
    }
    shard.search_counts.set(counts);
    let hits = match reranker {
        Some(r) => r.finish(),
        None => candidates.into_iter().take(k).collect(),
    };
    let mut out = Vec::with_capacity(hits.len() * if with_payload { 3 } else { 2 });
    for (id, score) in hits {
        out.push(Value::Bulk(id.to_string().into_bytes()));
        out.push(Value::Double(f64::from(score)));
        if with_payload {
            out.push(payloads.remove(&id).map_or(Value::Null, Value::Bulk));
        }
    }
    Value::Array(out).into()
}

/// The `depth` best candidates for `query` in the index `name` (whose uid is `uid`)
/// among the vectors `filter` accepts, best first. Without a filter: the index's shared
/// scan ([`shared_scan`]). With one: a scan of its own in steps of `step` slots, in the
/// slices of `searching`, started over if the index's slots moved meanwhile (a
/// rebuild); candidates whose payload no longer matches at the end are dropped, and the
/// search starts over (up to [`MAX_FILTER_RESTARTS`] times) so that the vectors they
/// kept out are seen.
async fn scan(
    searching: &mut Searching<'_>,
    name: &[u8],
    uid: u64,
    query: &Query,
    depth: usize,
    step: usize,
    filter: Option<&Filter>,
) -> Result<Vec<(u64, f32)>, Reply> {
    let Some(filter) = filter else {
        return shared_scan(searching, name, uid, query, depth, step).await;
    };
    let shard = searching.shard;
    let dropped = || Reply::err(ERR_DROPPED);
    let mut attempt = 0;
    'start: loop {
        // (the scan, its epoch, the matching slots of a selective filter, the matching
        // slots of a broad one)
        let (mut scan, epoch, mut selected, broad) = {
            let reg = shard.vectors.borrow();
            let entry = reg.by_name.get(name).filter(|e| e.meta.uid == uid).ok_or_else(dropped)?;
            let scan = entry.index.scan_prepared(query, depth);
            let rows = entry.postings.evaluate(filter);
            if rows.len() * SELECTIVE < entry.index.slot_count() as u64 {
                let slots: Vec<usize> = rows.iter().map(|r| r as usize).collect();
                (scan, reg.epoch, Some(slots.into_iter()), None)
            } else {
                (scan, reg.epoch, None, Some(rows))
            }
        };
        loop {
            let done = {
                let reg = shard.vectors.borrow();
                let entry = reg.by_name.get(name).filter(|e| e.meta.uid == uid).ok_or_else(dropped)?;
                if reg.epoch != epoch {
                    continue 'start; // slots moved: start over
                }
                match &mut selected {
                    Some(slots) => {
                        let before = slots.len();
                        entry.index.scan_slots(&mut scan, slots.by_ref().take(step));
                        before <= step
                    }
                    None => {
                        let allow = |slot: usize| broad.as_ref().is_some_and(|rows| rows.contains(slot as u32));
                        entry.index.scan_step(&mut scan, step, Some(&allow))
                    }
                }
            };
            if done {
                break;
            }
            searching.pause().await;
        }
        let mut candidates = scan.finish();
        let reg = shard.vectors.borrow();
        let entry = reg.by_name.get(name).filter(|e| e.meta.uid == uid).ok_or_else(dropped)?;
        let none = Fields::new();
        let found = candidates.len();
        candidates.retain(|&(id, _)| entry.index.contains(id) && filter.matches(entry.fields_of(id).unwrap_or(&none)));
        // Some stopped matching while the scan ran: the matching slots it started from
        // are stale, and vectors that would have replaced them were passed over. Start
        // over (a few times at most, against a steady stream of such changes).
        if candidates.len() < found && attempt < MAX_FILTER_RESTARTS {
            attempt += 1;
            continue 'start;
        }
        return Ok(candidates);
    }
}

/// The `depth` best candidates for `query` among every vector of the index `name`
/// (uid `uid`), best first, from the index's shared scan (`Shard::shared_scans`,
/// [`keel_index::SharedScan`]): the unfiltered searches in progress of one index sweep
/// its rows together, and whichever of them runs a slice advances all of them, `step`
/// slots at a time (divided among the members, so that a step lasts about as long as a
/// lone one), so each row is read from memory once per sweep, not once per search. A
/// search that starts joins the sweep where it is and is done one lap later. When the
/// index's slots moved (`Registry::epoch`), every member starts over.
async fn shared_scan(
    searching: &mut Searching<'_>,
    name: &[u8],
    uid: u64,
    query: &Query,
    depth: usize,
    step: usize,
) -> Result<Vec<(u64, f32)>, Reply> {
    let shard = searching.shard;
    let mut member: Option<Member<'_>> = None;
    loop {
        let done = {
            let reg = shard.vectors.borrow();
            let Some(entry) = reg.by_name.get(name).filter(|e| e.meta.uid == uid) else {
                return Err(Reply::err(ERR_DROPPED));
            };
            let mut scans = shard.shared_scans.borrow_mut();
            let (epoch, shared) = scans.entry(uid).or_insert_with(|| (reg.epoch, keel_index::SharedScan::new()));
            if *epoch != reg.epoch {
                shared.restart(); // slots moved: every member starts over
                *epoch = reg.epoch;
            }
            let id = match &member {
                Some(m) => m.id,
                None => member.insert(Member { shard, uid, id: shared.join(entry.index.scan_prepared(query, depth)) }).id,
            };
            let mut progress = shared.progress(id);
            if matches!(progress, keel_index::Progress::Running) {
                let rows = (step / shared.running().max(1)).max(16);
                entry.index.shared_step(shared, rows);
                progress = shared.progress(id);
            }
            match progress {
                keel_index::Progress::Running => None,
                keel_index::Progress::Done(scan) => Some(scan),
                // Not a member (cannot happen while `member` lives): join again.
                keel_index::Progress::Unknown => {
                    member = None;
                    None
                }
            }
        };
        if let Some(scan) = done {
            return Ok(scan.finish());
        }
        searching.pause().await;
    }
}

/// Counters of a shard's vector searches (`Shard::search_counts`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SearchCounts {
    /// Searches answered.
    pub searches: u64,
    /// Originals read to re-rank candidates (int8, binary).
    pub rerank_reads: u64,
    /// Candidates not read because their bound could not reach the k best
    /// ([`Rerank::admits`]).
    pub rerank_skipped: u64,
}

/// The first `n` of `candidates` with no bound on their exact keys (all are read).
fn unbounded(candidates: &[(u64, f32)], n: usize) -> Vec<Bounded> {
    candidates.iter().take(n).map(|&(id, _)| Bounded { id, upper: f64::INFINITY }).collect()
}

/// A search's membership of its index's shared scan: leaves it when dropped (the search
/// ended, or its connection went away), and drops the index's shared scan once no search
/// is left in it.
struct Member<'s> {
    shard: &'s Shard,
    uid: u64,
    id: u64,
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        // `shared_scans` is borrowed only within synchronous stretches of
        // `shared_scan`, which never drop a search.
        if let Ok(mut scans) = self.shard.shared_scans.try_borrow_mut() {
            if let Some((_, shared)) = scans.get_mut(&self.uid) {
                shared.leave(self.id);
                if shared.is_empty() {
                    scans.remove(&self.uid);
                }
            }
        }
    }
}

/// The stored records a search reads after its scan, and what it makes of them: each
/// candidate's f32 original scored into `reranker` (int8, binary), its non-empty payload
/// kept in `payloads` (WITHPAYLOAD).
struct Fetched<'a> {
    name: &'a [u8],
    uid: u64,
    dim: usize,
    query: &'a Query,
    reranker: Option<Rerank>,
    with_payload: bool,
    payloads: HashMap<u64, Vec<u8>>,
    /// Records read, and candidates not read because [`Fetched::admits`] turned them
    /// away.
    reads: u64,
    skipped: u64,
}

impl Fetched<'_> {
    /// Reads the records of the vectors in `wave` (every read is issued before any is
    /// awaited; a record in the value cache needs none) and takes each in as it
    /// arrives, in the slices of `searching`. A candidate the re-rank no longer admits
    /// ([`Rerank::admits`] of its bound) is not read; one whose read is under way when
    /// that becomes true is not scored. Vectors deleted since the scan saw them are left
    /// out.
    async fn read(&mut self, searching: &mut Searching<'_>, wave: Vec<Bounded>) -> Result<(), Reply> {
        let shard = searching.shard;
        let mut pending = Vec::new();
        for Bounded { id, upper } in wave {
            if !self.admits(upper) {
                self.skipped += 1;
                continue;
            }
            self.reads += 1;
            match shard.start_read(NS_VECTOR, vector_key(self.uid, id), bulk_or_null).await {
                Ok(v) => self.take(id, v)?,
                Err(later) => {
                    pending.push((id, upper, later));
                    searching.charge_read();
                }
            }
            searching.pause().await;
        }
        for (id, upper, mut later) in pending {
            let v = match futures_lite::future::poll_once(&mut later).await {
                Some(v) => v,
                None => {
                    // Waited for the disk: the shard's other tasks ran meanwhile, so
                    // this search starts a new slice.
                    let v = later.await;
                    searching.restart();
                    v
                }
            };
            if self.admits(upper) {
                self.take(id, v)?;
            }
            searching.pause().await;
        }
        // The index may have been dropped while its records were read.
        let reg = shard.vectors.borrow();
        if reg.by_name.get(self.name).is_none_or(|e| e.meta.uid != self.uid) {
            return Err(Reply::err(ERR_DROPPED));
        }
        Ok(())
    }

    /// Whether a candidate whose exact ranking key is at most `upper` may still be
    /// among the results (always, when nothing is re-ranked).
    fn admits(&self, upper: f64) -> bool {
        self.reranker.as_ref().is_none_or(|r| r.admits(upper))
    }

    /// Takes in the record `v` of candidate `id`: scores its original (a record whose
    /// blob the index would not accept is skipped), keeps its payload.
    fn take(&mut self, id: u64, v: Value) -> Result<(), Reply> {
        let value = match v {
            Value::Bulk(value) => value,
            Value::Null => return Ok(()), // deleted since the scan saw it
            err => return Err(err.into()),
        };
        if let Some(reranker) = &mut self.reranker {
            if let Some((blob, _)) = split_vector_value(&value, self.dim) {
                reranker.push_blob(self.query, id, blob);
            }
        }
        if self.with_payload {
            // Only the payload is kept (up to l_search records are read): none or an
            // empty one is a nil in the reply.
            if let Some((_, payload)) = split_vector_value(&value, self.dim).filter(|(_, p)| !p.is_empty()) {
                self.payloads.insert(id, payload.to_vec());
            }
        }
        Ok(())
    }
}
