//! [`S3Fifo`]: a byte-bounded cache with S3-FIFO eviction, one per shard.
//!
//! The algorithm follows Yang, Zhang, Qiu, Yue and Rashmi, "FIFO queues are all you need
//! for cache eviction" (SOSP 2023), with entries of varying size counted in bytes:
//!
//! - **small** (S), a FIFO of about 10% of the budget, where every new entry starts;
//! - **main** (M), a FIFO holding the rest, entries with a 2-bit access count;
//! - **ghost** (G), a FIFO of the 64-bit hashes (no values) of entries evicted from S,
//!   at most as many as there are entries in the cache.
//!
//! A hit only raises the entry's count (saturating at 3); nothing moves. To make room,
//! when S holds at least 10% of the budget its oldest entry leaves S: to M if it was hit
//! while in S (count ≥ 1, the paper's prose; its pseudo-code says > 1), else out of the
//! cache with its hash into G. Otherwise M's oldest entry is evicted if its count is 0,
//! else it goes back to M's head with its count lowered by one (a CLOCK-like second
//! chance). A new entry whose hash is in G goes straight to M. So entries read once
//! (a scan) pass through S and do not push out what is read again and again.
//!
//! **Cost.** Every entry costs [`S3Fifo::entry_cost`]: its value's bytes rounded up to
//! the allocator's size class (jemalloc's: four classes per doubling) plus
//! [`S3Fifo::ENTRY_OVERHEAD`], the bookkeeping of the entry in the worst case (its hash
//! table slot at the lowest load factor right after a growth, its node in a slab that
//! grows by doubling, and its share of the ghost). The sum of the costs never exceeds
//! the budget, so the budget bounds the cache's resident memory. Entries larger than
//! [`S3Fifo::max_entry_bytes`] (an eighth of the budget) are not cached at all: one value
//! must not flush the whole small queue.
//!
//! The key is generic: the store caches values under [`crate::CacheKey`]; a later user
//! may add key kinds (a disk index's sectors, a value by its key) to that enum and share
//! the budget. The cache is single-threaded (`&mut self`), like everything in a shard.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// Entries of S at which (in bytes, as a fraction of the budget) S is evicted from:
/// 10%, as in the paper.
const SMALL_PERCENT: usize = 10;
/// Highest access count (2 bits).
const MAX_FREQ: u8 = 3;
/// A hit count in S at or above which an entry moves to M instead of being evicted.
const PROMOTE_FREQ: u8 = 1;
/// "No node" in the slab's links.
const NIL: u32 = u32::MAX;

/// Fast hash for small fixed-size keys (FxHash-style multiply-rotate), deterministic so
/// that the ghost's hashes are stable. Keys are locations keel chose, not client bytes.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        // Final avalanche (murmur3's fmix64), so every bit depends on every input bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// Which FIFO a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

/// One cached entry's place in one of the two doubly linked FIFOs (links are slab
/// indices; `prev` is towards the head (newest), `next` towards the tail (oldest)).
/// Its value and access count live in its map slot ([`Slot`]), so a hit touches the
/// map's bucket and the value, not the node.
struct Node<K> {
    key: K,
    cost: u32,
    queue: Queue,
    prev: u32,
    next: u32,
}

/// What the map holds per key: the entry's node, its access count and its value.
struct Slot {
    node: u32,
    freq: u8,
    value: Box<[u8]>,
}

/// A FIFO threaded through the slab.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    bytes: usize,
    len: usize,
}

impl List {
    const EMPTY: List = List { head: NIL, tail: NIL, bytes: 0, len: 0 };
}

/// Counters of a cache; sums over shards are what INFO shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The budget, bytes.
    pub capacity: u64,
    /// Sum of the entries' costs, bytes (≤ `capacity`).
    pub used: u64,
    /// Entries cached.
    pub entries: u64,
    /// Lookups that found their entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries evicted to make room (not counting removals and replacements).
    pub evictions: u64,
}

/// A byte-bounded S3-FIFO cache from `K` to byte strings (module docs).
pub struct S3Fifo<K> {
    capacity: usize,
    map: HashMap<K, Slot, Fx>,
    nodes: Vec<Node<K>>,
    /// Free slab slots (their nodes hold a stale key; values live in the map's slots).
    free: Vec<u32>,
    small: List,
    main: List,
    ghost: VecDeque<u64>,
    /// Hash → how many times it is in `ghost`.
    ghost_set: HashMap<u64, u32, Fx>,
    hits: u64,
    misses: u64,
    evictions: u64,
    /// Test only: keys in the order they were evicted.
    #[cfg(test)]
    evicted: Vec<K>,
}

impl<K: Hash + Eq + Clone> S3Fifo<K> {
    /// Bytes charged per entry on top of its value's allocation: the worst case of the
    /// hash table slot (key, [`Slot`] — node index, access count, the value's pointer —
    /// and a control byte, at a load of 7/16 just after the table doubled), of the slab
    /// node (slab capacity up to twice its length), and
    /// of one ghost hash (a `u64` in a ring that may be twice its length, and a
    /// (`u64`, `u32`) set slot at a load of 7/16).
    pub const ENTRY_OVERHEAD: usize = {
        let map_slot = (std::mem::size_of::<(K, Slot)>() + 1) * 16 / 7;
        let node = std::mem::size_of::<Node<K>>() * 2;
        let ghost = 8 * 2 + (std::mem::size_of::<(u64, u32)>() + 1) * 16 / 7;
        map_slot + node + ghost
    };

    /// An empty cache that holds at most `capacity` bytes of [`S3Fifo::entry_cost`].
    pub fn new(capacity: usize) -> S3Fifo<K> {
        S3Fifo {
            capacity,
            map: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            small: List::EMPTY,
            main: List::EMPTY,
            ghost: VecDeque::new(),
            ghost_set: HashMap::default(),
            hits: 0,
            misses: 0,
            evictions: 0,
            #[cfg(test)]
            evicted: Vec::new(),
        }
    }

    /// The budget, bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Largest [`S3Fifo::entry_cost`] that is cached: an eighth of the budget (and
    /// below 4 GiB).
    pub fn max_entry_bytes(&self) -> usize {
        (self.capacity / 8).min(u32::MAX as usize)
    }

    /// What an entry whose value has `len` bytes costs: `len` rounded up to its
    /// allocation size class, plus [`S3Fifo::ENTRY_OVERHEAD`].
    pub fn entry_cost(len: usize) -> usize {
        alloc_size(len).saturating_add(Self::ENTRY_OVERHEAD)
    }

    /// Whether a value of `len` bytes would be cached by [`S3Fifo::insert`].
    pub fn admits(&self, len: usize) -> bool {
        Self::entry_cost(len) <= self.max_entry_bytes()
    }

    /// The value cached under `key`, counting a hit (and raising the entry's access
    /// count) or a miss.
    pub fn get(&mut self, key: &K) -> Option<&[u8]> {
        match self.map.get_mut(key) {
            Some(slot) => {
                self.hits += 1;
                slot.freq = (slot.freq + 1).min(MAX_FREQ);
                Some(&slot.value)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Like [`S3Fifo::get`], but a miss is not counted (for a caller that falls back
    /// to [`S3Fifo::get`] when it finds nothing, which counts it then). One probe of
    /// the map.
    pub fn get_if_cached(&mut self, key: &K) -> Option<&[u8]> {
        let slot = self.map.get_mut(key)?;
        self.hits += 1;
        slot.freq = (slot.freq + 1).min(MAX_FREQ);
        Some(&slot.value)
    }

    /// Whether `key` is cached (no counting).
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// The cached value of `key` without counting a hit or a miss or raising its
    /// frequency (a look ahead, see `Store::prefetch`).
    pub fn peek(&self, key: &K) -> Option<&[u8]> {
        self.map.get(key).map(|slot| &*slot.value)
    }

    /// Caches `value` under `key`, replacing an entry already there, evicting as S3-FIFO
    /// says until it fits. Returns false (and caches nothing; an old entry under `key`
    /// is removed) when its cost passes [`S3Fifo::max_entry_bytes`].
    pub fn insert(&mut self, key: K, value: Box<[u8]>) -> bool {
        self.remove(&key);
        let cost = Self::entry_cost(value.len());
        if cost > self.max_entry_bytes() {
            return false;
        }
        while self.small.bytes + self.main.bytes + cost > self.capacity {
            if !self.evict() {
                break;
            }
        }
        let hash = Fx::default().hash_one(&key);
        let queue = if self.ghost_set.contains_key(&hash) { Queue::Main } else { Queue::Small };
        let node = Node { key: key.clone(), cost: cost as u32, queue, prev: NIL, next: NIL };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.push_head(i);
        self.map.insert(key, Slot { node: i, freq: 0, value });
        true
    }

    /// An overwrite: drops the entry under `old` (if any) and caches `value` under
    /// `new`, like [`S3Fifo::remove`] then [`S3Fifo::insert`]. When `old` is cached and
    /// `value` fits in the budget in its place, `new` takes over `old`'s node where it
    /// stands — same queue place and access count (the key the client sees is the same,
    /// only its value moved in the vLog) — so neither queue is relinked and the
    /// neighbours' nodes are not touched, which an overwrite-heavy load (MSET) otherwise
    /// pays as cache misses. Returns whether `value` is cached.
    pub fn replace(&mut self, old: &K, new: K, value: Box<[u8]>) -> bool {
        let cost = Self::entry_cost(value.len());
        let in_place = *old != new
            && cost <= self.max_entry_bytes()
            && self.map.get(old).is_some_and(|slot| self.small.bytes + self.main.bytes - self.nodes[slot.node as usize].cost as usize + cost <= self.capacity);
        if !in_place {
            self.remove(old);
            return self.insert(new, value);
        }
        self.remove(&new);
        let slot = self.map.remove(old).expect("checked above");
        let i = slot.node;
        let (q, old_cost) = {
            let n = &mut self.nodes[i as usize];
            let old_cost = n.cost as usize;
            n.key = new.clone();
            n.cost = cost as u32;
            (n.queue, old_cost)
        };
        let l = self.list(q);
        l.bytes = l.bytes - old_cost + cost;
        self.map.insert(new, Slot { node: i, freq: slot.freq, value });
        true
    }

    /// Drops the entry under `key`; returns whether there was one.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(slot) = self.map.remove(key) else { return false };
        self.unlink(slot.node);
        self.release(slot.node);
        true
    }

    /// Moves the entry under `old` to `new` (same value, count and queue; it becomes the
    /// newest of its queue). An entry under `new` is replaced, also when `old` is not
    /// cached (it is dropped then). Nothing happens when `old` equals `new`.
    pub fn rekey(&mut self, old: &K, new: K) {
        if *old == new {
            return;
        }
        if !self.map.contains_key(old) {
            self.remove(&new);
            return;
        }
        self.remove(&new);
        let slot = self.map.remove(old).expect("checked above");
        let i = slot.node;
        self.unlink(i);
        self.nodes[i as usize].key = new.clone();
        self.push_head(i);
        self.map.insert(new, slot);
    }

    /// Keeps only the entries whose key `keep` accepts (no eviction is counted).
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let drop: Vec<K> = self.map.keys().filter(|k| !keep(k)).cloned().collect();
        for k in &drop {
            self.remove(k);
        }
    }

    /// Drops every entry (and the ghost); the counters stay.
    pub fn clear(&mut self) {
        self.map.clear();
        self.nodes.clear();
        self.free.clear();
        self.small = List::EMPTY;
        self.main = List::EMPTY;
        self.ghost.clear();
        self.ghost_set.clear();
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            capacity: self.capacity as u64,
            used: (self.small.bytes + self.main.bytes) as u64,
            entries: self.map.len() as u64,
            hits: self.hits,
            misses: self.misses,
            evictions: self.evictions,
        }
    }

    /// Evicts one entry (moving others between the queues as needed); false when the
    /// cache is empty.
    fn evict(&mut self) -> bool {
        let small_share = self.capacity / 100 * SMALL_PERCENT + self.capacity % 100 * SMALL_PERCENT / 100;
        if self.small.len > 0 && (self.small.bytes >= small_share || self.main.len == 0) && self.evict_small() {
            return true;
        }
        self.evict_main()
    }

    /// Takes entries off S's tail: hit ones move to M, the first one never hit leaves
    /// the cache (its hash into G). Returns whether one left (false: S emptied into M).
    fn evict_small(&mut self) -> bool {
        while self.small.tail != NIL {
            let i = self.small.tail;
            self.unlink(i);
            if self.freq(i) >= PROMOTE_FREQ {
                self.nodes[i as usize].queue = Queue::Main;
                self.push_head(i);
            } else {
                let hash = Fx::default().hash_one(&self.nodes[i as usize].key);
                self.evict_node(i);
                self.ghost_push(hash);
                return true;
            }
        }
        false
    }

    /// Takes entries off M's tail: those with a count go back to M's head with the
    /// count lowered, the first without leaves the cache. Returns whether one left.
    fn evict_main(&mut self) -> bool {
        while self.main.tail != NIL {
            let i = self.main.tail;
            self.unlink(i);
            let slot = self.map.get_mut(&self.nodes[i as usize].key).expect("a linked node is in the map");
            if slot.freq > 0 {
                slot.freq -= 1;
                self.push_head(i);
            } else {
                self.evict_node(i);
                return true;
            }
        }
        false
    }

    /// The access count of linked node `i`.
    fn freq(&self, i: u32) -> u8 {
        self.map.get(&self.nodes[i as usize].key).map_or(0, |slot| slot.freq)
    }

    /// Drops unlinked node `i` as an eviction.
    fn evict_node(&mut self, i: u32) {
        let key = self.nodes[i as usize].key.clone();
        self.map.remove(&key);
        self.evictions += 1;
        #[cfg(test)]
        self.evicted.push(key);
        self.release(i);
    }

    /// Records `hash` in the ghost, which keeps at most as many hashes as the cache has
    /// entries (at least one).
    fn ghost_push(&mut self, hash: u64) {
        self.ghost.push_back(hash);
        *self.ghost_set.entry(hash).or_insert(0) += 1;
        self.trim_ghost();
    }

    /// Drops the ghost's oldest hashes while it has more than the cache's entries (at
    /// least one), which bounds its memory by [`S3Fifo::ENTRY_OVERHEAD`].
    fn trim_ghost(&mut self) {
        let cap = self.map.len().max(1);
        while self.ghost.len() > cap {
            let old = self.ghost.pop_front().expect("longer than cap ≥ 1");
            if let Some(n) = self.ghost_set.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.ghost_set.remove(&old);
                }
            }
        }
    }

    /// Frees slab slot `i` (already unlinked and out of the map, which dropped its value).
    fn release(&mut self, i: u32) {
        self.free.push(i);
        self.trim_ghost();
        if self.map.is_empty() {
            // Nothing is linked: give the slab back in one go.
            self.nodes.clear();
            self.free.clear();
        }
    }

    fn list(&mut self, q: Queue) -> &mut List {
        match q {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        }
    }

    /// Links node `i` at the head (newest end) of its queue.
    fn push_head(&mut self, i: u32) {
        let (q, cost) = {
            let n = &self.nodes[i as usize];
            (n.queue, n.cost as usize)
        };
        let old_head = self.list(q).head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old_head;
        }
        if old_head != NIL {
            self.nodes[old_head as usize].prev = i;
        }
        let l = self.list(q);
        l.head = i;
        if l.tail == NIL {
            l.tail = i;
        }
        l.bytes += cost;
        l.len += 1;
    }

    /// Unlinks node `i` from its queue.
    fn unlink(&mut self, i: u32) {
        let (q, prev, next, cost) = {
            let n = &self.nodes[i as usize];
            (n.queue, n.prev, n.next, n.cost as usize)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        let l = self.list(q);
        if l.head == i {
            l.head = next;
        }
        if l.tail == i {
            l.tail = prev;
        }
        l.bytes -= cost;
        l.len -= 1;
        let n = &mut self.nodes[i as usize];
        n.prev = NIL;
        n.next = NIL;
    }

    /// Test only: the keys of `q` from oldest to newest.
    #[cfg(test)]
    fn order(&self, q: Queue) -> Vec<K> {
        let l = match q {
            Queue::Small => self.small,
            Queue::Main => self.main,
        };
        let mut out = Vec::new();
        let mut i = l.tail;
        while i != NIL {
            out.push(self.nodes[i as usize].key.clone());
            i = self.nodes[i as usize].prev;
        }
        out
    }

    /// Test only: checks the links, byte counts and map agree.
    #[cfg(test)]
    fn check(&self) {
        let mut seen = 0;
        for (q, l) in [(Queue::Small, self.small), (Queue::Main, self.main)] {
            let keys = self.order(q);
            assert_eq!(keys.len(), l.len);
            let bytes: usize = keys.iter().map(|k| self.nodes[self.map[k].node as usize].cost as usize).sum();
            assert_eq!(bytes, l.bytes);
            for k in &keys {
                assert_eq!(self.nodes[self.map[k].node as usize].queue, q);
            }
            seen += keys.len();
        }
        assert_eq!(seen, self.map.len());
        assert!(self.small.bytes + self.main.bytes <= self.capacity, "over budget");
        assert!(self.ghost.len() <= self.map.len().max(1));
    }
}

/// Bytes jemalloc allocates for `len` bytes: 0 for 0, 8 and 16 for small sizes, then four
/// size classes per doubling (e.g. 1024 → 1024, 1025 → 1280, 16384 → 16384).
pub fn alloc_size(len: usize) -> usize {
    match len {
        0 => 0,
        1..=8 => 8,
        9..=16 => 16,
        _ => {
            let k = usize::BITS - 1 - (len - 1).leading_zeros(); // 2^k < len ≤ 2^(k+1)
            let step = (1usize << k.saturating_sub(2)).max(16);
            len.div_ceil(step).saturating_mul(step)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type C = S3Fifo<u32>;

    fn val(len: usize, tag: u8) -> Box<[u8]> {
        vec![tag; len].into_boxed_slice()
    }

    /// A budget that holds exactly `n` entries of `len`-byte values.
    fn budget(n: usize, len: usize) -> usize {
        n * C::entry_cost(len)
    }

    #[test]
    fn size_classes() {
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(3), 8);
        assert_eq!(alloc_size(17), 32);
        assert_eq!(alloc_size(100), 112);
        assert_eq!(alloc_size(1024), 1024);
        assert_eq!(alloc_size(1025), 1280);
        assert_eq!(alloc_size(16384), 16384);
        assert_eq!(alloc_size(16385), 20480);
        assert_eq!(alloc_size(5 << 20), 5 << 20);
        for len in 1..100_000 {
            assert!(alloc_size(len) >= len && alloc_size(len) <= len + len / 4 + 16, "{len}");
        }
    }

    #[test]
    fn overhead_covers_the_entry() {
        // keel's key type: the figure the README and ARCHITECTURE quote.
        assert_eq!(S3Fifo::<crate::CacheKey>::ENTRY_OVERHEAD, 177);
        // Key + index in the map, the node, a ghost hash: at least these, whatever K.
        const { assert!(C::ENTRY_OVERHEAD >= std::mem::size_of::<(u32, u32)>() + std::mem::size_of::<Node<u32>>() + 8) };
        const { assert!(C::ENTRY_OVERHEAD < 512) };
    }

    #[test]
    fn hit_returns_what_was_inserted_and_counts() {
        let mut c = C::new(1 << 20);
        assert!(c.insert(1, val(1000, 7)));
        assert_eq!(c.get(&1), Some(&[7u8; 1000][..]));
        assert_eq!(c.get(&2), None);
        assert!(c.insert(1, val(10, 8)));
        assert_eq!(c.get(&1), Some(&[8u8; 10][..]));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.entries, s.used), (2, 1, 1, C::entry_cost(10) as u64));
        assert!(c.remove(&1));
        assert!(!c.remove(&1));
        assert_eq!(c.get(&1), None);
        assert_eq!(c.stats().used, 0);
        c.check();
    }

    #[test]
    fn too_large_is_not_cached_and_drops_the_old_entry() {
        let mut c = C::new(80_000);
        assert_eq!(c.max_entry_bytes(), 10_000);
        assert!(c.insert(1, val(100, 1)));
        assert!(!c.admits(10_000));
        assert!(!c.insert(1, val(10_000, 2)));
        assert!(!c.contains(&1), "a value too large to cache must not leave the old one");
        assert_eq!(c.stats().used, 0);
    }

    #[test]
    fn one_hit_wonders_leave_in_fifo_order() {
        let mut c = C::new(budget(20, 100));
        for k in 0..100 {
            c.insert(k, val(100, k as u8));
            c.check();
        }
        // Nothing was read: every entry went through S (after M, empty, took none) and
        // left in insertion order.
        assert_eq!(c.evicted, (0..80).collect::<Vec<_>>());
        assert_eq!(c.stats().evictions, 80);
    }

    #[test]
    fn a_hit_entry_survives_a_scan() {
        let mut c = C::new(budget(20, 100));
        // A working set of 5, each read once while in S.
        for k in 0..5 {
            c.insert(k, val(100, 0));
            assert!(c.get(&k).is_some());
        }
        // A scan of 1000 keys read once each.
        for k in 100..1100 {
            c.insert(k, val(100, 1));
            for w in 0..5 {
                if k % 10 == 0 {
                    c.get(&w);
                }
            }
            c.check();
        }
        for w in 0..5 {
            assert!(c.contains(&w), "working-set key {w} was evicted by a scan");
        }
        assert!(c.order(Queue::Main).iter().all(|k| *k < 5));
    }

    #[test]
    fn ghost_hit_goes_to_main() {
        let mut c = C::new(budget(10, 100));
        for k in 0..12 {
            c.insert(k, val(100, 0));
        }
        // 0 and 1 were evicted from S into the ghost; re-inserted, 0 goes to M.
        assert!(!c.contains(&0));
        c.insert(0, val(100, 0));
        assert_eq!(c.order(Queue::Main), vec![0]);
        c.check();
    }

    #[test]
    fn main_gives_a_second_chance() {
        let mut c = C::new(budget(10, 100));
        for k in 0..10 {
            c.insert(k, val(100, 0));
            c.get(&k);
        }
        // All ten hit once; each insertion beyond makes room: S (≥ 10%) moves hit
        // entries to M, then M evicts after lowering counts.
        for k in 10..30 {
            c.insert(k, val(100, 0));
            c.check();
        }
        assert!(c.stats().used as usize <= c.capacity());
        assert!(c.stats().evictions >= 20);
    }

    #[test]
    fn rekey_retain_clear() {
        let mut c = C::new(1 << 20);
        for k in 0..10 {
            c.insert(k, val(300, k as u8));
        }
        c.rekey(&3, 103);
        assert!(!c.contains(&3));
        assert_eq!(c.get(&103), Some(&[3u8; 300][..]));
        c.rekey(&4, 5); // replaces 5's entry
        assert_eq!(c.get(&5), Some(&[4u8; 300][..]));
        assert_eq!(c.stats().entries, 9);
        c.retain(|k| k % 2 == 1);
        assert_eq!(c.stats().entries, 5); // 1, 5, 7, 9, 103
        c.check();
        c.clear();
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().used, 0);
        c.check();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Get(u8),
        Remove(u8),
        Rekey(u8, u8),
        Replace(u8, u8, u16),
        RetainEven,
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<u8>(), 0u16..3000).prop_map(|(k, l)| Op::Insert(k % 64, l)),
            8 => any::<u8>().prop_map(|k| Op::Get(k % 64)),
            2 => any::<u8>().prop_map(|k| Op::Remove(k % 64)),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Rekey(a % 64, b % 64)),
            4 => (any::<u8>(), any::<u8>(), 0u16..3000).prop_map(|(a, b, l)| Op::Replace(a % 64, b % 64, l)),
            1 => Just(Op::RetainEven),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// Against a model (a map of what was inserted and not removed): never over
        /// budget, a hit returns exactly the last value inserted under the key, an
        /// entry is only gone by removal, clear, rekey or a counted eviction, and
        /// entries never hit after insertion leave in insertion order.
        #[test]
        fn behaves_like_a_bounded_map(cap in 1_000usize..60_000, ops in proptest::collection::vec(op(), 1..400)) {
            let mut c = S3Fifo::<u8>::new(cap);
            let mut model: HashMap<u8, Vec<u8>> = HashMap::new();
            let mut tag = 0u8;
            for op in ops {
                let before = c.stats().evictions;
                let evicted_before = c.evicted.len();
                match op {
                    Op::Insert(k, len) => {
                        tag = tag.wrapping_add(1);
                        let v = vec![tag; len as usize];
                        let ok = c.insert(k, v.clone().into_boxed_slice());
                        prop_assert_eq!(ok, S3Fifo::<u8>::entry_cost(len as usize) <= cap / 8);
                        if ok { model.insert(k, v); } else { model.remove(&k); }
                    }
                    Op::Get(k) => {
                        if let Some(v) = c.get(&k) {
                            prop_assert_eq!(Some(v), model.get(&k).map(Vec::as_slice));
                        }
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(c.remove(&k), model.contains_key(&k));
                        model.remove(&k);
                    }
                    Op::Rekey(a, b) => {
                        let had = c.contains(&a);
                        c.rekey(&a, b);
                        if a != b {
                            match model.remove(&a) {
                                Some(v) => { model.insert(b, v); }
                                None => { model.remove(&b); }
                            }
                        }
                        prop_assert_eq!(had, c.contains(&b));
                    }
                    Op::Replace(a, b, len) => {
                        tag = tag.wrapping_add(1);
                        let v = vec![tag; len as usize];
                        let ok = c.replace(&a, b, v.clone().into_boxed_slice());
                        prop_assert_eq!(ok, S3Fifo::<u8>::entry_cost(len as usize) <= cap / 8);
                        prop_assert!(a == b || !c.contains(&a), "the replaced entry is gone");
                        model.remove(&a);
                        if ok { model.insert(b, v); } else { model.remove(&b); }
                    }
                    Op::RetainEven => {
                        c.retain(|k| k % 2 == 0);
                        model.retain(|k, _| k % 2 == 0);
                    }
                    Op::Clear => {
                        c.clear();
                        model.clear();
                    }
                }
                c.check();
                let newly = c.evicted[evicted_before..].to_vec();
                prop_assert_eq!(newly.len() as u64, c.stats().evictions - before);
                for k in newly {
                    prop_assert!(model.remove(&k).is_some(), "evicted {} was not cached", k);
                }
                // What is cached is exactly what the model still has.
                prop_assert_eq!(c.stats().entries as usize, model.len());
                for (k, v) in &model {
                    prop_assert_eq!(c.map[k].value.as_ref(), v.as_slice());
                }
            }
        }

        /// Inserting distinct keys, never read: evictions happen in insertion order,
        /// whatever the sizes (every entry goes through S and leaves it unhit; the ghost
        /// sees only keys never inserted again).
        #[test]
        fn unread_entries_leave_in_insertion_order(cap in 5_000usize..100_000, lens in proptest::collection::vec(0usize..4000, 1..300)) {
            let mut c = S3Fifo::<u32>::new(cap);
            let mut admitted = Vec::new();
            for (k, len) in lens.into_iter().enumerate() {
                if c.insert(k as u32, vec![0; len].into_boxed_slice()) {
                    admitted.push(k as u32);
                }
                c.check();
            }
            prop_assert_eq!(&c.evicted[..], &admitted[..c.evicted.len()]);
        }
    }
}
