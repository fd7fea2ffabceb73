//! [`FlatIndex`]: exhaustive search over every stored vector, held as f32, int8 codes
//! or binary codes (DESIGN §4.2).

use crate::distance::Kernel;
use crate::quant::{binary_words, quantize_binary, quantize_i8};
use crate::IndexError;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Rows scored per kernel call during a scan (a 1 KiB score buffer on the stack).
const SCAN_BLOCK: usize = 256;
/// Bytes of rows in one block of a shared scan ([`FlatIndex::shared_step`]): the block
/// is scored for every member in turn, so it should stay in the L1 data cache (32–48 KiB
/// on current x86 and Arm cores) from the first member to the last, not be streamed
/// from L2 again for each.
const SHARED_BLOCK_BYTES: usize = 24 << 10;

/// How two vectors are compared. Every metric has a score that the search reports,
/// best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Cosine similarity `⟨a, b⟩ / (‖a‖·‖b‖)` in `[-1, 1]`, higher is closer. Vectors are
    /// stored normalized; the zero vector has no direction and is refused.
    Cosine,
    /// Euclidean distance `‖a − b‖` (the square root of the squared L2 distance the
    /// kernels compute), lower is closer. Any finite vector is accepted.
    L2,
    /// Inner product `⟨a, b⟩`, higher is closer (maximum inner product search). Any
    /// finite vector is accepted; vectors are stored as given.
    Ip,
}

impl Metric {
    /// Every metric, in the order of their names in error messages.
    pub const ALL: [Metric; 3] = [Metric::Cosine, Metric::L2, Metric::Ip];

    /// The name used in commands and replies: `cosine`, `l2`, `ip`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Ip => "ip",
        }
    }

    /// The metric named `name` (ASCII case-insensitive).
    pub fn parse(name: &[u8]) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The reported score of an internal ranking key (higher key = closer).
    fn score(self, key: f32) -> f32 {
        match self {
            Metric::Cosine | Metric::Ip => key,
            // `+ 0.0` turns -0.0 into 0.0: an exact match reports distance 0.
            Metric::L2 => (-key).max(0.0).sqrt() + 0.0,
        }
    }
}

/// What a [`FlatIndex`] keeps in RAM per vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The (for cosine: normalized) f32 vector, `4·dim` bytes: the scan is exact.
    F32,
    /// int8 codes with one f32 scale ([`crate::quant::quantize_i8`]), `dim + 4` bytes.
    /// The scan ranks by the codes; the caller re-ranks the best candidates with the
    /// f32 originals ([`FlatIndex::rerank`]).
    Int8,
    /// One bit per component, `8·⌈dim/64⌉` bytes: bit `j` is set when component `j` is
    /// above the mean of the vector's components (for cosine, of the normalized vector).
    /// Centering on the vector's own mean keeps the bits informative for data whose
    /// components are all positive (SIFT, images), where plain sign bits would all be 1.
    /// The scan ranks by Hamming distance; the caller re-ranks as for int8.
    Binary,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::F32, Kind::Int8, Kind::Binary];

    /// The name used in commands and replies: `f32`, `int8`, `binary`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::F32 => "f32",
            Kind::Int8 => "int8",
            Kind::Binary => "binary",
        }
    }

    /// The kind named `name` (ASCII case-insensitive).
    pub fn parse(name: &[u8]) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The per-slot storage of one kind; slot `s` is row `s` of each array.
#[derive(Clone)]
enum Rows {
    /// `dim` f32 per slot.
    F32(Vec<f32>),
    /// `dim` i8 codes and one scale per slot.
    Int8 { codes: Vec<i8>, scales: Vec<f32> },
    /// `binary_words(dim)` u64 per slot.
    Binary(Vec<u64>),
}

/// Exhaustive (brute-force) index over one metric and one kind of row.
///
/// Layout: slot-major arrays, one row per slot (see [`Kind`] for a row's bytes), a
/// slot → id array, a per-slot live flag, a free-slot list and an id → slot hash map.
/// A vector keeps its slot for as long as it is stored (an upsert of an existing id
/// rewrites its row in place; a removed vector's slot goes to the free list and is
/// reused by a later insert), so a [`Scan`] that runs in slices while vectors change
/// between them still visits every vector that was stored during the whole scan,
/// exactly once. [`FlatIndex::compact`] gives the free slots back; it moves vectors, so
/// the caller runs it only while no scan is in progress.
///
/// Memory: one row plus `8 + 1` bytes per slot, plus the id map (about 24 bytes per
/// vector at the hash table's load factor) and 8 bytes per free slot; see
/// [`FlatIndex::memory_bytes`]. For 100,000 × 384: f32 ~158 MiB, int8 ~41 MiB,
/// binary ~7 MiB.
#[derive(Clone)]
pub struct FlatIndex {
    dim: usize,
    metric: Metric,
    kind: Kind,
    rows: Rows,
    /// Slot → id (meaningless for a free slot).
    ids: Vec<u64>,
    /// Slot → whether it holds a vector.
    live: Vec<bool>,
    /// Free slots, reused last-freed first.
    free: Vec<usize>,
    /// Id → slot.
    slots: HashMap<u64, usize>,
}

/// A query prepared for one index: the validated (for cosine: normalized) f32 vector and
/// its code of the index's kind.
#[derive(Clone, Debug)]
pub struct Query {
    f32: Vec<f32>,
    codes: Vec<i8>,
    scale: f32,
    bits: Vec<u64>,
}

/// A vector [`FlatIndex::check`] accepted, as the row the index stores (f32: the
/// validated, for cosine normalized, vector; int8: its codes and scale; binary: its
/// bits), to be written by [`FlatIndex::upsert_checked`].
#[derive(Clone, Debug)]
pub struct Checked(Query);

/// An exact re-rank in progress (int8 and binary candidates, scored with their f32
/// originals): made by [`FlatIndex::reranker`], fed one candidate at a time by
/// [`FlatIndex::rerank_push`], so that a caller can score candidates as their
/// originals arrive and stop between any two; ended by [`Rerank::finish`].
#[derive(Debug)]
pub struct Rerank {
    metric: Metric,
    dim: usize,
    top: TopK,
    /// The candidate's prepared (for cosine normalized) f32 form, reused.
    prepared: Vec<f32>,
    /// The candidate's decoded original ([`Rerank::push_blob`]), reused.
    raw: Vec<f32>,
}

impl Rerank {
    /// [`FlatIndex::rerank_push`] with the original as stored: `4·dim` bytes of
    /// little-endian f32 (the blob `parse_f32_blob` reads), decoded and validated once
    /// into a buffer the re-rank reuses, without the index at hand. Returns false,
    /// keeping nothing, when the blob is not a vector the index would accept (wrong
    /// length, a NaN or infinite component, for cosine the zero vector).
    pub fn push_blob(&mut self, query: &Query, id: u64, blob: &[u8]) -> bool {
        let mut raw = std::mem::take(&mut self.raw);
        let pushed = crate::parse_f32_blob_into(blob, self.dim, &mut raw).is_ok() && self.push_valid(query, id, &raw);
        self.raw = raw;
        pushed
    }

    /// Scores `v` (`dim` finite components) exactly against `query` and keeps it if it
    /// is among the best so far; false for the zero vector under cosine.
    fn push_valid(&mut self, query: &Query, id: u64, v: &[f32]) -> bool {
        let kernel = Kernel::best();
        let p: &[f32] = match self.metric {
            Metric::Cosine => {
                if normalize_into(v, &mut self.prepared).is_err() {
                    return false;
                }
                &self.prepared
            }
            Metric::L2 | Metric::Ip => v,
        };
        let key = match self.metric {
            Metric::Cosine => kernel.dot(&query.f32, p).clamp(-1.0, 1.0),
            Metric::Ip => kernel.dot(&query.f32, p),
            Metric::L2 => -kernel.l2(&query.f32, p),
        };
        self.top.push(id, key);
        true
    }

    /// False when a candidate whose ranking key is at most `upper` (a
    /// [`Bounded::upper`]) cannot enter the `k` best: `k` are kept and the worst of
    /// them is better. Such a candidate's original need not be read.
    pub fn admits(&self, upper: f64) -> bool {
        !(upper < f64::from(self.top.floor))
    }

    /// The `k` best candidates pushed, as `(id, score)`, best first (ties by smaller
    /// id); scores as [`Scan::finish`] reports them for [`Kind::F32`].
    pub fn finish(self) -> Vec<(u64, f32)> {
        let metric = self.metric;
        self.top.into_sorted().into_iter().map(|(id, key)| (id, metric.score(key))).collect()
    }
}

/// A re-rank candidate with an upper bound of its exact ranking key (higher is closer;
/// for l2 the negated squared distance), made by [`FlatIndex::rerank_bounds`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounded {
    pub id: u64,
    /// No original of this candidate scores a ranking key above this (+∞: unknown).
    pub upper: f64,
}

/// A search in progress: the query, the next slot to visit and the best candidates so
/// far. Made by [`FlatIndex::scan`], advanced by [`FlatIndex::scan_step`] or
/// [`FlatIndex::scan_slots`], ended by [`Scan::finish`].
#[derive(Debug)]
pub struct Scan {
    query: Query,
    metric: Metric,
    top: TopK,
    next: usize,
}

impl Scan {
    /// The prepared query (for [`FlatIndex::rerank`]).
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The candidates as `(id, score)`, best first (ties by smaller id); scores in the
    /// metric's units ([`Metric`]), exact for [`Kind::F32`], from the codes otherwise
    /// (binary: the negated Hamming distance).
    pub fn finish(self) -> Vec<(u64, f32)> {
        let metric = self.metric;
        self.top.into_sorted().into_iter().map(|(id, key)| (id, metric.score(key))).collect()
    }
}

/// Several searches of one index scanning it together: each row is read from memory
/// once per pass for every search in progress, instead of once per search (a shared,
/// or cooperative, scan: Zukowski et al., "Cooperative Scans: Dynamic Bandwidth Sharing
/// in a DBMS", VLDB 2007; PostgreSQL's synchronized sequential scans work alike). A
/// flat scan of int8 codes or f32 rows larger than the CPU's caches is bound by memory
/// bandwidth, so concurrent searches that share the reads each cost little more than
/// the kernel's arithmetic.
///
/// The scan sweeps the slots in a circle: a search [`join`](Self::join)s at the sweep's
/// current position, is scored for every slot from there to the end, then (after the
/// sweep wraps around) from slot 0 up to where it joined, and is then done. Whoever
/// drives the sweep ([`FlatIndex::shared_step`]) advances every member at once. A
/// member's result is exactly that of a lone [`Scan`] of the same slots
/// ([`FlatIndex::scan_step`]): the same rows scored by the same kernel, and the top-k
/// order (key, then smaller id) does not depend on the order the rows come in. Slots
/// added while a member runs are visited if the sweep reaches them before the member
/// is done; a member still sees every vector stored during its whole scan exactly once.
/// Like a lone scan, it must be [`restart`](Self::restart)ed when slots move
/// ([`FlatIndex::compact`], a rebuild).
#[derive(Debug, Default)]
pub struct SharedScan {
    /// The next slot the sweep scores.
    pos: usize,
    members: Vec<Member>,
    /// The next member id.
    next_id: u64,
}

/// A search that joined a [`SharedScan`], named by the id [`SharedScan::join`] gave.
#[derive(Debug)]
struct Member {
    id: u64,
    scan: Scan,
    /// The slot where it joined: it is done when the sweep is back there.
    start: usize,
    /// The sweep has wrapped around since it joined.
    wrapped: bool,
    /// Every slot has been scored for it.
    done: bool,
}

/// Where a member of a [`SharedScan`] is (see [`SharedScan::progress`]).
#[derive(Debug)]
pub enum Progress {
    /// Slots are left to score for it.
    Running,
    /// It has visited every slot: its scan, to [`Scan::finish`]; it left the shared scan.
    Done(Scan),
    /// No member has this id (it left, or was never a member of this shared scan).
    Unknown,
}

impl SharedScan {
    /// An empty shared scan, at slot 0.
    pub fn new() -> SharedScan {
        SharedScan::default()
    }

    /// Adds `scan` (just made by [`FlatIndex::scan_prepared`] by the index this shared
    /// scan sweeps; the slot it had reached is ignored) as a member starting at the
    /// sweep's position; returns its id.
    pub fn join(&mut self, scan: Scan) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.members.push(Member { id, scan, start: self.pos, wrapped: false, done: false });
        id
    }

    /// Where member `id` is; a done member is taken out and its scan returned.
    pub fn progress(&mut self, id: u64) -> Progress {
        match self.members.iter().position(|m| m.id == id) {
            None => Progress::Unknown,
            Some(i) if self.members[i].done => Progress::Done(self.members.swap_remove(i).scan),
            Some(_) => Progress::Running,
        }
    }

    /// Takes member `id` out (a search that stops before it is done); nothing if it is
    /// not a member.
    pub fn leave(&mut self, id: u64) {
        if let Some(i) = self.members.iter().position(|m| m.id == id) {
            self.members.swap_remove(i);
        }
    }

    /// Starts every member over from slot 0 with no candidates (the slots moved, so
    /// what was scored may name the wrong vectors, or miss some).
    pub fn restart(&mut self) {
        self.pos = 0;
        for m in &mut self.members {
            m.scan.top = TopK::new(m.scan.top.k);
            m.start = 0;
            m.wrapped = false;
            m.done = false;
        }
    }

    /// Number of members (done or not, until [`progress`](Self::progress) takes them).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True if no search is a member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members not yet done: how many scans one step of the sweep scores.
    pub fn running(&self) -> usize {
        self.members.iter().filter(|m| !m.done).count()
    }

    /// The sweep went past the last of `n` slots: back to slot 0.
    fn wrap(&mut self, n: usize) {
        self.pos = 0;
        for m in &mut self.members {
            m.wrapped = true;
        }
        self.mark_done(n);
    }

    /// Marks done every member the sweep has brought back to where it joined (or, if
    /// the slots shrank below that, to their end).
    fn mark_done(&mut self, n: usize) {
        let pos = self.pos;
        for m in &mut self.members {
            if m.wrapped && pos >= m.start.min(n) {
                m.done = true;
            }
        }
    }
}

impl FlatIndex {
    /// An empty index for vectors of `dim` components (`dim` 0 accepts only the empty
    /// vector, and for cosine not even that).
    pub fn new(dim: usize, metric: Metric, kind: Kind) -> Self {
        let rows = match kind {
            Kind::F32 => Rows::F32(Vec::new()),
            Kind::Int8 => Rows::Int8 { codes: Vec::new(), scales: Vec::new() },
            Kind::Binary => Rows::Binary(Vec::new()),
        };
        FlatIndex { dim, metric, kind, rows, ids: Vec::new(), live: Vec::new(), free: Vec::new(), slots: HashMap::new() }
    }

    /// Number of components per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The index's metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The index's kind of row.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// True if search results need [`FlatIndex::rerank`] with the f32 originals to be
    /// exact (int8 and binary).
    pub fn needs_rerank(&self) -> bool {
        self.kind != Kind::F32
    }

    /// Number of vectors stored.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of one row (see [`Kind`]): what a scan reads per slot.
    pub fn row_bytes(&self) -> usize {
        match self.kind {
            Kind::F32 => 4 * self.dim,
            Kind::Int8 => self.dim + 4,
            Kind::Binary => 8 * binary_words(self.dim),
        }
    }

    /// Number of slots, live or free: the length of a full scan.
    pub fn slot_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of free slots (left by removals, not yet reused or compacted away).
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Reserves room for `additional` more vectors (e.g. before a bulk load).
    pub fn reserve(&mut self, additional: usize) {
        let words = binary_words(self.dim);
        match &mut self.rows {
            Rows::F32(d) => d.reserve(additional.saturating_mul(self.dim)),
            Rows::Int8 { codes, scales } => {
                codes.reserve(additional.saturating_mul(self.dim));
                scales.reserve(additional);
            }
            Rows::Binary(b) => b.reserve(additional.saturating_mul(words)),
        }
        self.ids.reserve(additional);
        self.live.reserve(additional);
        self.slots.reserve(additional);
    }

    /// Checks that `v` would be accepted by [`upsert`](Self::upsert), without changing
    /// anything: same errors, same order. Returns the row it would store (see
    /// [`Checked`]), which [`upsert_checked`](Self::upsert_checked) writes without
    /// validating, normalizing or quantizing again: a caller validates before it writes
    /// the vector durably, then upserts knowing it cannot fail. For int8 and binary the
    /// f32 form is dropped here, so a batch of checked vectors holds only their codes.
    pub fn check(&self, v: &[f32]) -> Result<Checked, IndexError> {
        let mut row = self.prepare(v)?;
        if self.kind != Kind::F32 {
            row.f32 = Vec::new();
        }
        Ok(Checked(row))
    }

    /// [`check`](Self::check) of a vector given as its blob (`4·dim` bytes of
    /// little-endian f32, as [`crate::parse_f32_blob`] reads it): the same result and
    /// errors as parsing, then checking ([`IndexError::BlobLength`] and
    /// [`IndexError::NonFinite`] from the parse first). The decoded (and for cosine
    /// normalized) form is built in `scratch`, reused from call to call, so a row costs
    /// one allocation: the row itself (f32), or its code (int8, binary).
    pub fn check_blob(&self, blob: &[u8], scratch: &mut Vec<f32>) -> Result<Checked, IndexError> {
        crate::parse_f32_blob_into(blob, self.dim, scratch)?;
        if self.kind == Kind::F32 {
            return self.check(scratch);
        }
        if self.metric == Metric::Cosine {
            normalize_in_place(scratch)?;
        }
        Ok(Checked(self.code_of(scratch)))
    }

    /// Inserts or replaces vector `id`.
    ///
    /// Errors (checked in this order, leaving the index unchanged): [`IndexError::Dim`],
    /// [`IndexError::NonFinite`] with the component index, and for cosine
    /// [`IndexError::ZeroVector`]. Returns the vector's slot.
    pub fn upsert(&mut self, id: u64, v: &[f32]) -> Result<usize, IndexError> {
        let checked = self.check(v)?;
        Ok(self.upsert_checked(id, checked))
    }

    /// Inserts or replaces vector `id` with a vector [`check`](Self::check)ed by this
    /// index. Returns the vector's slot.
    ///
    /// # Panics
    /// If `v` was checked by an index of another dimension or kind.
    pub fn upsert_checked(&mut self, id: u64, v: Checked) -> usize {
        let p = v.0;
        let fits = match self.kind {
            Kind::F32 => p.f32.len() == self.dim,
            Kind::Int8 => p.codes.len() == self.dim,
            Kind::Binary => p.bits.len() == binary_words(self.dim),
        };
        assert!(fits, "vector checked by an index of another dimension or kind");
        let slot = match self.slots.get(&id) {
            Some(&slot) => slot,
            None => {
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => self.push_slot(),
                };
                self.ids[slot] = id;
                self.live[slot] = true;
                self.slots.insert(id, slot);
                slot
            }
        };
        self.write_row(slot, &p);
        slot
    }

    /// Removes `id`; returns the slot it had. O(1): the slot is marked free.
    pub fn remove(&mut self, id: u64) -> Option<usize> {
        let slot = self.slots.remove(&id)?;
        self.live[slot] = false;
        self.free.push(slot);
        Some(slot)
    }

    /// True if `id` is stored.
    pub fn contains(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    /// The slot of `id`, if stored.
    pub fn slot_of(&self, id: u64) -> Option<usize> {
        self.slots.get(&id).copied()
    }

    /// Moves the last live vectors into the free slots and shrinks the arrays, so that
    /// no slot is free. Returns the moves as `(from, to)` slots, for a caller that keys
    /// other state by slot. Must not run while a [`Scan`] of this index is in progress
    /// (it would then miss or repeat the moved vectors).
    pub fn compact(&mut self) -> Vec<(usize, usize)> {
        let mut moves = Vec::new();
        let mut free = std::mem::take(&mut self.free);
        free.sort_unstable();
        let mut free = free.into_iter();
        let mut end = self.ids.len();
        'fill: for hole in free.by_ref() {
            // The last live slot above the hole.
            loop {
                if end <= hole {
                    break 'fill;
                }
                end -= 1;
                if self.live[end] {
                    break;
                }
            }
            self.move_row(end, hole);
            self.slots.insert(self.ids[hole], hole);
            moves.push((end, hole));
        }
        self.truncate_slots(self.slots.len());
        moves
    }

    /// Validates `q` as [`FlatIndex::scan`] does and prepares it for
    /// [`FlatIndex::rerank`] (its f32 form, for cosine normalized, and its code).
    ///
    /// Errors: as [`FlatIndex::scan`].
    pub fn query(&self, q: &[f32]) -> Result<Query, IndexError> {
        self.prepare(q)
    }

    /// Starts a search for the `depth` best vectors of query `q` (see [`Scan`]).
    ///
    /// Errors: the query is validated like [`FlatIndex::upsert`] ([`IndexError::Dim`],
    /// [`IndexError::NonFinite`], for cosine [`IndexError::ZeroVector`]), also when the
    /// index is empty.
    pub fn scan(&self, q: &[f32], depth: usize) -> Result<Scan, IndexError> {
        Ok(self.scan_prepared(&self.prepare(q)?, depth))
    }

    /// [`FlatIndex::scan`] with a query already prepared by [`FlatIndex::query`] (by
    /// this index, or one of the same dimension, metric and kind), e.g. a search that
    /// starts over.
    pub fn scan_prepared(&self, query: &Query, depth: usize) -> Scan {
        Scan { query: query.clone(), metric: self.metric, top: TopK::new(depth), next: 0 }
    }

    /// Scores up to `max_slots` more slots of `scan` in slot order and returns true when
    /// the scan has visited every slot. Only live slots for which `allow(slot)` is true
    /// (or all live slots without `allow`) become candidates. Slots added after the scan
    /// started are visited if they lie beyond where the scan is.
    ///
    /// # Panics
    /// If `scan` was made by an index of another dimension or kind.
    pub fn scan_step(&self, scan: &mut Scan, max_slots: usize, allow: Option<&dyn Fn(usize) -> bool>) -> bool {
        let end = self.ids.len().min(scan.next.saturating_add(max_slots.max(1)));
        let kernel = Kernel::best();
        let mut start = scan.next;
        let mut scratch = Scratch::new();
        while start < end {
            let n = (end - start).min(SCAN_BLOCK);
            self.score_range(kernel, scan, start, start + n, allow, &mut scratch);
            start += n;
        }
        scan.next = end;
        end >= self.ids.len()
    }

    /// Advances `shared` by up to `max_slots` slots from its position, scoring them for
    /// every member that still needs them (see [`SharedScan`]); a member that has then
    /// visited every slot is done ([`SharedScan::progress`]). The rows are scored in
    /// blocks of about [`SHARED_BLOCK_BYTES`] (8 to [`SCAN_BLOCK`] rows), each block for
    /// every member in turn while it is in the L1 cache, so the rows are read from
    /// memory once per step, not once per member.
    ///
    /// # Panics
    /// If a member's scan was made by an index of another dimension or kind.
    pub fn shared_step(&self, shared: &mut SharedScan, max_slots: usize) {
        let n = self.ids.len();
        if shared.pos > n {
            // The slots shrank under it (a caller restarts it when slots move; this is
            // the fallback): go on from the start.
            shared.wrap(n);
        }
        let end = n.min(shared.pos.saturating_add(max_slots.max(1)));
        let kernel = Kernel::best();
        let block = (SHARED_BLOCK_BYTES / self.row_bytes().max(1)).clamp(8, SCAN_BLOCK);
        let mut start = shared.pos;
        let mut scratch = Scratch::new();
        while start < end {
            let stop = end.min(start + block);
            for m in shared.members.iter_mut().filter(|m| !m.done) {
                // A member that wrapped around stops where it joined.
                let m_stop = if m.wrapped { stop.min(m.start) } else { stop };
                if start < m_stop {
                    self.score_range(kernel, &mut m.scan, start, m_stop, None, &mut scratch);
                }
            }
            start = stop;
        }
        shared.pos = end;
        shared.mark_done(n);
        if end >= n {
            shared.wrap(n);
        }
    }

    /// Scores slots `start..end` (at most [`SCAN_BLOCK`]) for `scan`: the live ones that
    /// `allow` accepts (all live ones without it) become candidates.
    fn score_range(&self, kernel: Kernel, scan: &mut Scan, start: usize, end: usize, allow: Option<&dyn Fn(usize) -> bool>, scratch: &mut Scratch) {
        let n = end - start;
        let keys = &mut scratch.keys[..n];
        self.score_block(kernel, &scan.query, start, n, keys, &mut scratch.dist[..n]);
        for (i, &key) in keys.iter().enumerate() {
            let slot = start + i;
            if self.live[slot] && allow.is_none_or(|f| f(slot)) {
                scan.top.push(self.ids[slot], key);
            }
        }
    }

    /// Scores exactly the given slots (a selective filter's matches), skipping free
    /// ones and slots past the end; the scan is then complete (a later
    /// [`FlatIndex::scan_step`] adds nothing).
    pub fn scan_slots(&self, scan: &mut Scan, slots: impl IntoIterator<Item = usize>) {
        let kernel = Kernel::best();
        let (mut key, mut dist) = ([0.0f32], [0u32]);
        for slot in slots {
            if slot < self.ids.len() && self.live[slot] {
                self.score_block(kernel, &scan.query, slot, 1, &mut key, &mut dist);
                scan.top.push(self.ids[slot], key[0]);
            }
        }
        scan.next = usize::MAX;
    }

    /// The `k` best of `candidates` (ids with their f32 originals, as stored by the
    /// caller) by the exact metric against `query`, best first, ties by smaller id; the
    /// scores as [`Scan::finish`] reports them. A candidate whose vector no longer passes
    /// [`FlatIndex::check`] (or of the wrong dimension) is skipped. The whole of
    /// [`FlatIndex::reranker`] / [`FlatIndex::rerank_push`] / [`Rerank::finish`] in one
    /// call.
    pub fn rerank<V: AsRef<[f32]>>(&self, query: &Query, k: usize, candidates: impl IntoIterator<Item = (u64, V)>) -> Vec<(u64, f32)> {
        let mut r = self.reranker(k);
        for (id, v) in candidates {
            self.rerank_push(&mut r, query, id, v.as_ref());
        }
        r.finish()
    }

    /// An empty re-rank keeping the `k` best candidates (see [`Rerank`]).
    pub fn reranker(&self, k: usize) -> Rerank {
        Rerank { metric: self.metric, dim: self.dim, top: TopK::new(k), prepared: Vec::with_capacity(self.dim), raw: Vec::new() }
    }

    /// Scores candidate `id` by its f32 original `v` exactly against `query` (made by
    /// [`FlatIndex::query`]) and keeps it if it is among the best so far. Returns false,
    /// keeping nothing, when `v` no longer passes [`FlatIndex::check`] (e.g. of the wrong
    /// dimension). Allocates nothing after the first call.
    pub fn rerank_push(&self, r: &mut Rerank, query: &Query, id: u64, v: &[f32]) -> bool {
        self.validate(v).is_ok() && r.push_valid(query, id, v)
    }

    /// The re-rank order of int8 candidates `ids`, each with a proven upper bound of
    /// the ranking key its f32 original will get in a [`Rerank`] (`None` for the other
    /// kinds: f32 needs no re-rank, and a Hamming distance bounds nothing).
    ///
    /// A candidate's estimate is `⟨x̂, q⟩` (l2: `‖x̂ − q‖`) between its dequantized code
    /// `x̂` and the query's f32 form `q` (not its code), so only the stored side's
    /// quantization error is left (the scan also quantized the query). With the
    /// per-component error `eₓ` of [`crate::quant::quantize_i8`]:
    ///
    /// - cosine, ip: `⟨x, q⟩ ≤ ⟨x̂, q⟩ + eₓ·‖q‖₁`, plus the f32 rounding of the
    ///   estimate's sum and of the re-rank's dot product, together at most
    ///   `γ·Σ|xᵢqᵢ|` with `γ = (dim + 8)·2⁻²³` (twice the textbook `n·u` of a
    ///   summation in any order, once for each);
    /// - l2: `‖x − q‖ ≥ ‖x̂ − q‖ − √dim·eₓ`, and each f32 sum of squares (the
    ///   estimate's, the re-rank's) is within a factor `1 ± γ` of the true one.
    ///
    /// Cost: one pass over each candidate's `dim` codes (~0.2 µs at 384 dimensions).
    ///
    /// The order is by estimate, best first; ids no longer in the index (and rows
    /// whose scale is 0, whose error the bound does not cover) come last with an
    /// infinite bound. A caller that skips every candidate whose bound is below the
    /// k-th best exact key so far ([`Rerank::admits`]) gets the same result as a
    /// re-rank of them all (the usual bound-and-prune of quantized search; the error
    /// terms are this crate's, checked by `tests`).
    pub fn rerank_bounds(&self, query: &Query, ids: impl IntoIterator<Item = u64>) -> Option<Vec<Bounded>> {
        let Rows::Int8 { codes, scales } = &self.rows else { return None };
        let d = self.dim;
        let q = &query.f32;
        let q_l1: f64 = q.iter().map(|&v| f64::from(v).abs()).sum();
        let gamma = (d as f64 + 8.0) * f64::from(f32::EPSILON);
        let sqrt_dim = (d as f64).sqrt();
        let mut out: Vec<(f64, Bounded)> = ids
            .into_iter()
            .map(|id| {
                let unknown = (f64::NEG_INFINITY, Bounded { id, upper: f64::INFINITY });
                let Some(&slot) = self.slots.get(&id) else { return unknown };
                let s = f64::from(scales[slot]);
                if s == 0.0 {
                    return unknown;
                }
                // `quantize_i8`'s bound (for `fl(s·c)`, so also for the exact `s·c`).
                let e = s * (0.5 + 255.0 * f64::from(f32::EPSILON) / 2.0);
                let row = &codes[slot * d..(slot + 1) * d];
                // The sums below are f32 (eight lanes, so they vectorize): their own
                // rounding is at most `(dim + 3)·u` relative to `Σ|terms|`, which `gamma`
                // (twice the re-rank's) covers along with the re-rank's.
                let (estimate, upper) = match self.metric {
                    Metric::Cosine | Metric::Ip => {
                        let (dot, abs) = dot_abs_i8(row, q);
                        if !(dot.is_finite() && abs.is_finite()) {
                            return unknown;
                        }
                        let (dot, abs) = (s * f64::from(dot), s * f64::from(abs) * (1.0 + gamma));
                        let err = e * q_l1;
                        (dot, dot + err + gamma * (abs + err) + 1e-300)
                    }
                    Metric::L2 => {
                        let sq = l2_dequantized(row, scales[slot], q);
                        if !sq.is_finite() {
                            return unknown;
                        }
                        let dist = (f64::from(sq) * (1.0 - gamma)).sqrt();
                        let lo = ((dist - sqrt_dim * e) * (1.0 - 1e-12)).max(0.0);
                        (-dist, -(lo * lo) * (1.0 - gamma))
                    }
                };
                if upper.is_nan() {
                    return unknown;
                }
                (estimate, Bounded { id, upper })
            })
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        Some(out.into_iter().map(|(_, b)| b).collect())
    }

    /// The `k` best vectors for `q` in one call (a whole [`Scan`]), best first, ties by
    /// smaller id; scores as [`Scan::finish`] gives them (exact only for [`Kind::F32`]).
    ///
    /// Errors: as [`FlatIndex::scan`].
    pub fn search(&self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        let mut scan = self.scan(q, k)?;
        while !self.scan_step(&mut scan, usize::MAX, None) {}
        Ok(scan.finish())
    }

    /// Bytes of RAM held: every array's allocated capacity and the id map (entries
    /// plus one control byte each). Excludes `size_of::<Self>()`.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let rows = match &self.rows {
            Rows::F32(d) => d.capacity() * size_of::<f32>(),
            Rows::Int8 { codes, scales } => codes.capacity() + scales.capacity() * size_of::<f32>(),
            Rows::Binary(b) => b.capacity() * size_of::<u64>(),
        };
        rows + self.ids.capacity() * size_of::<u64>()
            + self.live.capacity()
            + self.free.capacity() * size_of::<usize>()
            + self.slots.capacity() * (size_of::<(u64, usize)>() + 1)
    }

    /// Validates `v` (length, finite, for cosine non-zero) and makes its f32 form (for
    /// cosine normalized) and its code.
    fn prepare(&self, v: &[f32]) -> Result<Query, IndexError> {
        Ok(self.encode(self.prepare_f32(v)?))
    }

    /// A validated f32 form with its code of the index's kind.
    fn encode(&self, f32: Vec<f32>) -> Query {
        let mut q = self.code_of(&f32);
        q.f32 = f32;
        q
    }

    /// The code of the index's kind of `f` (a validated, for cosine normalized, f32
    /// form), without the f32 form (none for [`Kind::F32`]).
    fn code_of(&self, f: &[f32]) -> Query {
        let mut q = Query { f32: Vec::new(), codes: Vec::new(), scale: 0.0, bits: Vec::new() };
        match self.kind {
            Kind::F32 => {}
            Kind::Int8 => {
                q.codes = vec![0; self.dim];
                q.scale = quantize_i8(f, &mut q.codes);
            }
            Kind::Binary => q.bits = centered_bits(f),
        }
        q
    }

    /// Validates `v` (length, finite, for cosine non-zero) and makes its f32 form (for
    /// cosine normalized).
    fn prepare_f32(&self, v: &[f32]) -> Result<Vec<f32>, IndexError> {
        self.validate(v)?;
        match self.metric {
            Metric::Cosine => {
                let mut unit = Vec::with_capacity(v.len());
                normalize_into(v, &mut unit)?;
                Ok(unit)
            }
            Metric::L2 | Metric::Ip => Ok(v.to_vec()),
        }
    }

    /// Checks `v`'s length and that every component is finite (the errors of
    /// [`FlatIndex::check`] before the cosine's zero-vector check).
    fn validate(&self, v: &[f32]) -> Result<(), IndexError> {
        if v.len() != self.dim {
            return Err(IndexError::Dim { got: v.len(), want: self.dim });
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(IndexError::NonFinite(i));
        }
        Ok(())
    }

    /// Appends a free-to-write slot (row zeroed) and returns it.
    fn push_slot(&mut self) -> usize {
        let slot = self.ids.len();
        match &mut self.rows {
            Rows::F32(d) => d.resize(d.len() + self.dim, 0.0),
            Rows::Int8 { codes, scales } => {
                codes.resize(codes.len() + self.dim, 0);
                scales.push(0.0);
            }
            Rows::Binary(b) => b.resize(b.len() + binary_words(self.dim), 0),
        }
        self.ids.push(0);
        self.live.push(false);
        slot
    }

    fn write_row(&mut self, slot: usize, p: &Query) {
        let d = self.dim;
        match &mut self.rows {
            Rows::F32(data) => data[slot * d..(slot + 1) * d].copy_from_slice(&p.f32),
            Rows::Int8 { codes, scales } => {
                codes[slot * d..(slot + 1) * d].copy_from_slice(&p.codes);
                scales[slot] = p.scale;
            }
            Rows::Binary(b) => {
                let w = p.bits.len();
                b[slot * w..(slot + 1) * w].copy_from_slice(&p.bits);
            }
        }
    }

    /// Moves slot `from`'s row, id and live flag to `to` (the id map is the caller's).
    fn move_row(&mut self, from: usize, to: usize) {
        let d = self.dim;
        match &mut self.rows {
            Rows::F32(data) => data.copy_within(from * d..(from + 1) * d, to * d),
            Rows::Int8 { codes, scales } => {
                codes.copy_within(from * d..(from + 1) * d, to * d);
                scales[to] = scales[from];
            }
            Rows::Binary(b) => {
                let w = binary_words(d);
                b.copy_within(from * w..(from + 1) * w, to * w);
            }
        }
        self.ids[to] = self.ids[from];
        self.live[to] = true;
        self.live[from] = false;
    }

    /// Keeps the first `n` slots and gives back capacity beyond twice that (arrays grow
    /// by doubling; small arrays keep theirs).
    fn truncate_slots(&mut self, n: usize) {
        let d = self.dim;
        let words = binary_words(d);
        let keep = if self.ids.capacity() <= 64 { usize::MAX } else { n.saturating_mul(2) };
        match &mut self.rows {
            Rows::F32(data) => fit(data, n * d, keep.saturating_mul(d)),
            Rows::Int8 { codes, scales } => {
                fit(codes, n * d, keep.saturating_mul(d));
                fit(scales, n, keep);
            }
            Rows::Binary(b) => fit(b, n * words, keep.saturating_mul(words)),
        }
        fit(&mut self.ids, n, keep);
        fit(&mut self.live, n, keep);
        if keep != usize::MAX {
            self.free.shrink_to_fit();
            self.slots.shrink_to(keep);
        }
    }

    /// Ranking keys (higher is closer) of slots `start .. start + out.len()` for `q`.
    fn score_block(&self, kernel: Kernel, q: &Query, start: usize, n: usize, out: &mut [f32], dist: &mut [u32]) {
        let d = self.dim;
        match &self.rows {
            Rows::F32(data) => {
                let rows = &data[start * d..(start + n) * d];
                match self.metric {
                    Metric::Cosine | Metric::Ip => kernel.dot_rows(&q.f32, rows, out),
                    Metric::L2 => {
                        kernel.l2_rows(&q.f32, rows, out);
                        out.iter_mut().for_each(|x| *x = -*x);
                    }
                }
                if self.metric == Metric::Cosine {
                    out.iter_mut().for_each(|x| *x = x.clamp(-1.0, 1.0));
                }
            }
            Rows::Int8 { codes, scales } => {
                let rows = &codes[start * d..(start + n) * d];
                let scales = &scales[start..start + n];
                match self.metric {
                    Metric::Cosine | Metric::Ip => kernel.ip_i8_rows(&q.codes, q.scale, rows, scales, out),
                    Metric::L2 => {
                        kernel.l2_i8_rows(&q.codes, q.scale, rows, scales, out);
                        out.iter_mut().for_each(|x| *x = -*x);
                    }
                }
            }
            Rows::Binary(b) => {
                let w = q.bits.len();
                kernel.hamming_rows(&q.bits, &b[start * w..(start + n) * w], dist);
                for (o, &h) in out.iter_mut().zip(dist.iter()) {
                    *o = -(h as f32);
                }
            }
        }
    }
}

impl std::fmt::Debug for FlatIndex {
    /// Shape only: printing every vector would be useless at scale.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("kind", &self.kind)
            .field("len", &self.len())
            .field("free", &self.free.len())
            .finish_non_exhaustive()
    }
}

/// `(Σ cᵢqᵢ, Σ|cᵢqᵢ|)` in f32, eight lanes wide ([`FlatIndex::rerank_bounds`]).
fn dot_abs_i8(c: &[i8], q: &[f32]) -> (f32, f32) {
    let (mut dot, mut abs) = ([0.0f32; 8], [0.0f32; 8]);
    let (c8, c_tail) = c.as_chunks::<8>();
    let (q8, q_tail) = q.as_chunks::<8>();
    for (c, q) in c8.iter().zip(q8) {
        for l in 0..8 {
            let p = f32::from(c[l]) * q[l];
            dot[l] += p;
            abs[l] += p.abs();
        }
    }
    for (&c, &q) in c_tail.iter().zip(q_tail) {
        let p = f32::from(c) * q;
        dot[0] += p;
        abs[0] += p.abs();
    }
    (dot.iter().sum(), abs.iter().sum())
}

/// `Σ (fl(s·cᵢ) − qᵢ)²` in f32, eight lanes wide ([`FlatIndex::rerank_bounds`]).
fn l2_dequantized(c: &[i8], s: f32, q: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (c8, c_tail) = c.as_chunks::<8>();
    let (q8, q_tail) = q.as_chunks::<8>();
    for (c, q) in c8.iter().zip(q8) {
        for l in 0..8 {
            let t = s * f32::from(c[l]) - q[l];
            acc[l] += t * t;
        }
    }
    for (&c, &q) in c_tail.iter().zip(q_tail) {
        let t = s * f32::from(c) - q;
        acc[0] += t * t;
    }
    acc.iter().sum()
}

/// `v` (finite) scaled to unit length, written to `out` (cleared first);
/// [`IndexError::ZeroVector`] if it has no direction.
///
/// The norm is computed in f64, so neither huge components (whose squares overflow
/// f32) nor tiny ones (whose squares underflow) are a problem.
fn normalize_into(v: &[f32], out: &mut Vec<f32>) -> Result<(), IndexError> {
    out.clear();
    out.extend_from_slice(v);
    normalize_in_place(out)
}

/// [`normalize_into`] in place (`v` holds nothing meaningful after an error).
fn normalize_in_place(v: &mut [f32]) -> Result<(), IndexError> {
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x = (f64::from(*x) / norm) as f32);
    // A norm of 0, or one so small that every component rounds to 0, has no direction.
    if norm == 0.0 || v.iter().all(|&x| x == 0.0) {
        return Err(IndexError::ZeroVector);
    }
    Ok(())
}

/// `v` (finite) scaled to unit length (see [`normalize_into`]).
#[cfg(test)]
fn normalized(v: &[f32]) -> Result<Vec<f32>, IndexError> {
    let mut out = Vec::with_capacity(v.len());
    normalize_into(v, &mut out)?;
    Ok(out)
}

/// Truncates `v` to `len` and gives back its capacity beyond `keep` (at least `len`).
fn fit<T>(v: &mut Vec<T>, len: usize, keep: usize) {
    v.truncate(len);
    if v.capacity() > keep {
        v.shrink_to(keep.max(len));
    }
}

/// The binary code of `v` (see [`Kind::Binary`]): bit `j` set when `v[j]` is above the
/// mean of `v`'s components.
fn centered_bits(v: &[f32]) -> Vec<u64> {
    let mean = if v.is_empty() { 0.0 } else { (v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64) as f32 };
    let centered: Vec<f32> = v.iter().map(|&x| x - mean).collect();
    let mut bits = vec![0; binary_words(v.len())];
    quantize_binary(&centered, &mut bits);
    bits
}

/// A candidate in the top-k heap. `Ord` puts the *worse* candidate first (greater),
/// so the max-heap's top is the current k-th best: lower key is worse, and at equal
/// key the larger id is worse.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    key: f32,
    id: u64,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.total_cmp(&self.key).then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// The scores of one block of rows ([`FlatIndex::score_range`]): made once per step of
/// a scan, not zeroed again for every block.
struct Scratch {
    keys: [f32; SCAN_BLOCK],
    dist: [u32; SCAN_BLOCK],
}

impl Scratch {
    fn new() -> Scratch {
        Scratch { keys: [0.0; SCAN_BLOCK], dist: [0; SCAN_BLOCK] }
    }
}

/// Bounded top-k selection: keeps the k best candidates seen so far.
#[derive(Debug)]
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
    /// Once k are kept, the key of the worst of them (a key below it cannot get in);
    /// −∞ before (+∞ for k = 0). Most candidates of a scan are turned away by this one
    /// comparison, without touching the heap.
    floor: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        let floor = if k == 0 { f32::INFINITY } else { f32::NEG_INFINITY };
        TopK { k, heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1), floor }
    }

    #[inline]
    fn push(&mut self, id: u64, key: f32) {
        // `+ 0.0` turns -0.0 into +0.0 so that equal keys compare equal under
        // `total_cmp` and ties go by id.
        let c = Candidate { key: key + 0.0, id };
        if c.key < self.floor {
            return; // worse than the k-th best (a NaN is not turned away here)
        }
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c < *worst {
                *worst = c;
            } else {
                return;
            }
        }
        if self.heap.len() == self.k {
            self.floor = self.heap.peek().map_or(f32::INFINITY, |w| w.key);
        }
    }

    /// Best first, as (id, key).
    fn into_sorted(self) -> Vec<(u64, f32)> {
        self.heap.into_sorted_vec().into_iter().map(|c| (c.id, c.key)).collect()
    }
}

#[cfg(test)]
mod tests;
