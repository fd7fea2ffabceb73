//! The keydir: in RAM, (namespace, key) → where the live value is.
//!
//! DESIGN §9 budgets the keydir at the key's bytes + ~24 B per key, so it is not a
//! general-purpose map of boxed entries. Per namespace:
//!
//! - **The slab** holds one fixed-size record per key, in size classes by the length of
//!   the key and its inline value (up to 8, 16, 24, 32, 48, 64, 96, 128, 192 or 255
//!   bytes; longer keys keep their bytes in one heap allocation and no value). A record
//!   is packed bytes, no padding:
//!
//!   | offset | size | field |
//!   |---:|---:|---|
//!   | 0 | 4 | `next`: the next slot of the same hash chain, or `NIL` |
//!   | 4 | 4 | `seg`: segment id (`u32::MAX`: the slot is free) |
//!   | 8 | 4 | `off`: file offset of the value's first byte in the segment |
//!   | 12 | 4 | `len`: value length, bytes (bits 0–30); bit 31: the value is inline |
//!   | 16 | 1 | `over`: the record's bytes besides key and value (`foot − len − key length`) |
//!   | 17 | 1 | key length (classes up to 255 bytes) |
//!   | 18 | class size | the key, then the value if it is inline, zero-padded |
//!
//!   A 16-byte key costs a 34-byte record, 42 bytes with an inline value of up to 8
//!   bytes. Values of at most the store's `inline_value_max` bytes are kept inline
//!   ([`Entry::inline`]): such a value is smaller than a value cache entry's bookkeeping
//!   alone, and a read of it touches the chain head and this record only. A record whose
//!   value changes size class moves to a slot of the new class, in place on its chain.
//!   Freed slots are reused (a free list through
//!   `next`). A slot id is `class << 28 | index`.
//! - **The table** is a power-of-two array of chain heads (`u32` slots). A key's chain
//!   is chosen by the *top* bits of its 48-bit xxh3 hash, and every chain is kept sorted
//!   by (hash, key); the table doubles when there are more keys than heads and halves
//!   when there are fewer than a quarter (4–8 B per key). Doubling splits chain `i` into
//!   `2i` and `2i+1` in order, so the keys in hash order are the chains in table order
//!   whatever the size: SCAN's cursor is simply the next hash to visit, which gives
//!   Redis's guarantee (a key present for the whole walk is returned at least once —
//!   exactly once when nothing changes — across any number of resizes), and cursors stay
//!   below 2^48.
//!
//! Measured with 16-byte keys: see `bench-results/kv-values.md` ("RAM per key"). A lookup
//! reads the chain head and then each record of the chain (1.25–1.5 on average) and
//! compares keys; hashes of chain members are recomputed only where order matters
//! (insert, remove, resize, SCAN), never stored.
//!
//! Sequence numbers are not kept, except while recovery replays the vLog
//! ([`Keydir::for_replay`] until [`Keydir::end_replay`]): only the replay compares them.
//! Expiry times live beside the slab, in a per-namespace TTL index that only keys with a
//! TTL are in (`Ttls`).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hasher;

use crate::Ns;

/// Cursors and key hashes are below `1 << CURSOR_BITS`.
pub(crate) const CURSOR_BITS: u32 = 48;
const HASH_MASK: u64 = (1 << CURSOR_BITS) - 1;

/// The 48-bit hash that places and orders a key.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let h = xxhash_rust::xxh3::xxh3_64(key) & HASH_MASK;
    #[cfg(test)]
    let h = h & TEST_HASH_MASK.with(std::cell::Cell::get);
    h
}

#[cfg(test)]
thread_local! {
    /// Tests only: [`key_hash`] keeps only these bits on this thread, so that keys with
    /// equal hashes are common.
    pub(crate) static TEST_HASH_MASK: std::cell::Cell<u64> = const { std::cell::Cell::new(HASH_MASK) };
}

/// Bytes kept inside the structure when short, on the heap otherwise: 24 bytes either
/// way. The keydir hands removed keys back in this form (the undo log keeps some).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum SmallBytes {
    Inline { len: u8, buf: [u8; SmallBytes::INLINE] },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    /// The longest byte string stored inline.
    pub const INLINE: usize = 22;

    /// A copy of `b`: inline when it fits, else one heap allocation of `b.len()` bytes.
    pub fn new(b: &[u8]) -> SmallBytes {
        if b.len() <= Self::INLINE {
            let mut buf = [0u8; Self::INLINE];
            buf[..b.len()].copy_from_slice(b);
            SmallBytes::Inline { len: b.len() as u8, buf }
        } else {
            SmallBytes::Heap(b.into())
        }
    }
}

impl From<Vec<u8>> for SmallBytes {
    /// Reuses the vector's allocation when the bytes go to the heap.
    fn from(v: Vec<u8>) -> SmallBytes {
        if v.len() <= Self::INLINE {
            SmallBytes::new(&v)
        } else {
            SmallBytes::Heap(v.into_boxed_slice())
        }
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, buf } => &buf[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl std::hash::Hash for SmallBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

/// The most value bytes a record can keep beside its key ([`Entry::inline`]); the
/// store's `inline_value_max` is at most this.
pub(crate) const INLINE_CAP: usize = 32;

/// A value of at most [`INLINE_CAP`] bytes, kept in the keydir record beside its key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct InlineValue {
    len: u8,
    bytes: [u8; INLINE_CAP],
}

impl InlineValue {
    /// `v` if it is at most [`INLINE_CAP`] bytes long.
    pub fn new(v: &[u8]) -> Option<InlineValue> {
        if v.len() > INLINE_CAP {
            return None;
        }
        let mut bytes = [0u8; INLINE_CAP];
        bytes[..v.len()].copy_from_slice(v);
        Some(InlineValue { len: v.len() as u8, bytes })
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for InlineValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// Where one live value is (a copy: the keydir stores it packed), and the value itself
/// when it is small enough to live beside the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Sequence number of the record that wrote it; kept only while recovery replays
    /// (see [`Keydir::for_replay`]), 0 otherwise.
    pub seq: u64,
    /// Segment id.
    pub seg: u32,
    /// File offset of the value's first byte in the segment.
    pub off: u32,
    /// Value length, bytes.
    pub len: u32,
    /// Bytes of the segment this entry keeps alive (for the dead ratio): the value, the
    /// key and the record's (or batch entry's) own bytes, at most 255 more than key and
    /// value.
    pub foot: u32,
    /// The value's bytes (`len` of them) when the keydir keeps them beside the key: a
    /// read then needs neither the cache nor the vLog. The location above stays exact
    /// (compaction, the live byte counts and [`crate::ValueVersion`] use it). The keydir
    /// may drop them (a key and value longer than 255 bytes together, a revert), never
    /// change them.
    pub inline: Option<InlineValue>,
}

impl Entry {
    /// This entry with `value` kept inline if it is at most `max` bytes long.
    pub fn with_value(mut self, value: &[u8], max: usize) -> Entry {
        self.inline = if value.len() <= max { InlineValue::new(value) } else { None };
        self
    }
}

/// No slot: the end of a chain or of the free list.
const NIL: u32 = u32::MAX;
/// The most keys [`Keydir::prefetch`] loads at once.
pub(crate) const PREFETCH_MAX: usize = 32;
/// `seg` of a free slot (segment ids never reach it).
const FREE: u32 = u32::MAX;
const NEXT: usize = 0;
const SEG: usize = 4;
const OFF: usize = 8;
const LEN: usize = 12;
const OVER: usize = 16;
const KLEN: usize = 17;
const KEY: usize = 18;
/// Bit of the `len` field set when the value follows the key in the record.
const INLINE_FLAG: u32 = 1 << 31;
/// Key capacity of each size class; keys longer than the last go to [`BIG`].
const CAPS: [usize; 10] = [8, 16, 24, 32, 48, 64, 96, 128, 192, 255];
/// The class whose keys live in one heap allocation each.
const BIG: usize = CAPS.len();
const CLASS_SHIFT: u32 = 28;
const INDEX_MASK: u32 = (1 << CLASS_SHIFT) - 1;
/// The table never has fewer heads than this (once a namespace has a key).
const MIN_BITS: u32 = 4;

fn class_of(klen: usize) -> usize {
    CAPS.iter().position(|&c| klen <= c).unwrap_or(BIG)
}

/// The class of a record for a key of `klen` bytes and entry `e`, and whether the value
/// is kept inline (not for [`BIG`] keys, nor when key and value exceed 255 bytes).
fn class_for(klen: usize, e: &Entry) -> (usize, bool) {
    match e.inline {
        Some(v) if klen + v.as_slice().len() <= CAPS[BIG - 1] => (class_of(klen + v.as_slice().len()), true),
        _ => (class_of(klen), false),
    }
}

fn rd(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn wr(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// One size class: fixed-size records back to back.
struct Class {
    stride: usize,
    bytes: Vec<u8>,
    /// First free slot index, chained through `next`.
    free: u32,
    /// Keys of [`BIG`], by slot index (empty for a free slot and in other classes).
    big: Vec<Box<[u8]>>,
    /// Sequence numbers by slot index, while they are kept.
    seqs: Vec<u64>,
}

impl Class {
    fn new(class: usize) -> Class {
        let stride = KEY + if class == BIG { 0 } else { CAPS[class] };
        Class { stride, bytes: Vec::new(), free: NIL, big: Vec::new(), seqs: Vec::new() }
    }

    fn rec(&self, i: u32) -> &[u8] {
        let at = i as usize * self.stride;
        &self.bytes[at..at + self.stride]
    }

    fn rec_mut(&mut self, i: u32) -> &mut [u8] {
        let at = i as usize * self.stride;
        &mut self.bytes[at..at + self.stride]
    }

    fn slots(&self) -> u32 {
        (self.bytes.len() / self.stride) as u32
    }
}

/// One namespace.
#[derive(Default)]
struct Space {
    /// Chain heads; `1 << bits` of them, or none before the first key.
    heads: Vec<u32>,
    bits: u32,
    /// Size classes, created at the first key.
    classes: Vec<Class>,
    len: usize,
    ttl: Ttls,
}

/// The expiry times of one namespace's keys that have one (Redis's `expires` dict plus
/// an order by time): keys without a TTL cost nothing here, and the [`Entry`] of every
/// key stays as it is. Per key with a TTL: the key twice (a [`SmallBytes`], 24 bytes
/// when ≤ 22 bytes long, else a heap copy) and the time twice, in a hash map and an
/// ordered set, about 100 bytes. The ordered set gives the due keys in time order
/// (active expiry, counts without expired keys) without sampling.
#[derive(Default)]
struct Ttls {
    by_key: HashMap<SmallBytes, u64>,
    /// (expire_at, key), the same pairs as `by_key`.
    due: BTreeSet<(u64, SmallBytes)>,
    /// Sum of the `expire_at`s (INFO's `avg_ttl`).
    sum: u128,
}

impl Space {
    fn class(&self, slot: u32) -> (&Class, u32) {
        (&self.classes[(slot >> CLASS_SHIFT) as usize], slot & INDEX_MASK)
    }

    fn key(&self, slot: u32) -> &[u8] {
        let (c, i) = self.class(slot);
        if (slot >> CLASS_SHIFT) as usize == BIG {
            return &c.big[i as usize];
        }
        let r = c.rec(i);
        &r[KEY..KEY + r[KLEN] as usize]
    }

    fn next(&self, slot: u32) -> u32 {
        let (c, i) = self.class(slot);
        rd(c.rec(i), NEXT)
    }

    fn set_next(&mut self, slot: u32, next: u32) {
        let c = &mut self.classes[(slot >> CLASS_SHIFT) as usize];
        wr(c.rec_mut(slot & INDEX_MASK), NEXT, next);
    }

    fn entry(&self, slot: u32) -> Entry {
        let (c, i) = self.class(slot);
        let r = c.rec(i);
        let raw = rd(r, LEN);
        let len = raw & !INLINE_FLAG;
        let klen = self.key(slot).len();
        let inline = if raw & INLINE_FLAG != 0 { InlineValue::new(&r[KEY + klen..KEY + klen + len as usize]) } else { None };
        Entry {
            seq: c.seqs.get(i as usize).copied().unwrap_or(0),
            seg: rd(r, SEG),
            off: rd(r, OFF),
            len,
            foot: len + klen as u32 + r[OVER] as u32,
            inline,
        }
    }

    /// Writes `e` into `slot`, whose class must be `class_for(key length, &e)`.
    fn set_entry(&mut self, slot: u32, e: Entry, track_seq: bool) {
        let klen = self.key(slot).len();
        let over = e.foot.saturating_sub(e.len + klen as u32);
        debug_assert!(over <= u8::MAX as u32, "a record's own bytes fit a byte: {e:?}");
        let class = (slot >> CLASS_SHIFT) as usize;
        let (fits, inline) = class_for(klen, &e);
        debug_assert_eq!(fits, class, "the slot's class fits the entry");
        debug_assert!(e.len & INLINE_FLAG == 0, "value lengths are below 2^31");
        let c = &mut self.classes[class];
        let i = slot & INDEX_MASK;
        let r = c.rec_mut(i);
        wr(r, SEG, e.seg);
        wr(r, OFF, e.off);
        match e.inline {
            Some(v) if inline => {
                wr(r, LEN, e.len | INLINE_FLAG);
                r[KEY + klen..KEY + klen + v.as_slice().len()].copy_from_slice(v.as_slice());
            }
            _ => wr(r, LEN, e.len),
        }
        r[OVER] = over.min(u8::MAX as u32) as u8;
        if track_seq {
            if c.seqs.len() <= i as usize {
                c.seqs.resize(i as usize + 1, 0);
            }
            c.seqs[i as usize] = e.seq;
        }
    }

    /// A new slot holding `key` and `e`, not yet on a chain.
    fn alloc(&mut self, key: &[u8], e: Entry, track_seq: bool) -> u32 {
        if self.classes.is_empty() {
            self.classes = (0..=BIG).map(Class::new).collect();
        }
        let (class, _) = class_for(key.len(), &e);
        let c = &mut self.classes[class];
        let i = if c.free != NIL {
            let i = c.free;
            c.free = rd(c.rec(i), NEXT);
            i
        } else {
            let i = c.slots();
            assert!(i < INDEX_MASK, "keydir: more than 2^28 keys of one size class in one namespace");
            c.bytes.resize(c.bytes.len() + c.stride, 0);
            if class == BIG {
                c.big.push(Box::default());
            }
            i
        };
        if class == BIG {
            c.big[i as usize] = key.into();
        } else {
            let r = c.rec_mut(i);
            r[KLEN] = key.len() as u8;
            r[KEY..KEY + key.len()].copy_from_slice(key);
            r[KEY + key.len()..].fill(0);
        }
        let slot = (class as u32) << CLASS_SHIFT | i;
        self.set_next(slot, NIL);
        self.set_entry(slot, e, track_seq);
        slot
    }

    /// Frees `slot` (already off its chain); returns its key.
    fn free(&mut self, slot: u32) -> SmallBytes {
        let key = if (slot >> CLASS_SHIFT) as usize == BIG {
            let c = &mut self.classes[BIG];
            SmallBytes::Heap(std::mem::take(&mut c.big[(slot & INDEX_MASK) as usize]))
        } else {
            SmallBytes::new(self.key(slot))
        };
        self.release(slot);
        key
    }

    /// Frees `slot` (already off its chain, its key no longer needed).
    fn release(&mut self, slot: u32) {
        if (slot >> CLASS_SHIFT) as usize == BIG {
            self.classes[BIG].big[(slot & INDEX_MASK) as usize] = Box::default();
        }
        let c = &mut self.classes[(slot >> CLASS_SHIFT) as usize];
        let i = slot & INDEX_MASK;
        let free = c.free;
        let r = c.rec_mut(i);
        wr(r, NEXT, free);
        wr(r, SEG, FREE);
        c.free = i;
    }

    /// Sets the entry of `slot` (key hash `h`, after `prev` on its chain) to `e`; when
    /// `e` needs another size class, the record moves to a new slot at the same place on
    /// the chain. Returns the slot that holds the key now.
    fn put_at(&mut self, h: u64, prev: u32, slot: u32, e: Entry, track_seq: bool) -> u32 {
        let klen = self.key(slot).len();
        if class_for(klen, &e).0 == (slot >> CLASS_SHIFT) as usize {
            self.set_entry(slot, e, track_seq);
            return slot;
        }
        // Not BIG: a BIG key's class never changes. So the key is at most 255 bytes.
        let mut key = [0u8; 255];
        key[..klen].copy_from_slice(self.key(slot));
        let next = self.next(slot);
        let moved = self.alloc(&key[..klen], e, track_seq);
        self.link(h, prev, moved, next);
        self.release(slot);
        moved
    }

    fn bucket(&self, h: u64) -> usize {
        (h >> (CURSOR_BITS - self.bits)) as usize
    }

    /// The chain of `h`: walks it and returns `(prev, at, pos, found)`: `at` is the first
    /// slot not ordered before (h, key) (or `NIL`), `prev` the slot before it (or `NIL`:
    /// `at` is the head), `pos` the number of keys with hash `h` ordered before `key`.
    fn locate(&self, h: u64, key: &[u8]) -> (u32, u32, usize, bool) {
        let (mut prev, mut at, mut pos) = (NIL, self.heads[self.bucket(h)], 0);
        while at != NIL {
            let k = self.key(at);
            if k == key {
                // Found (an overwrite, a delete): no hash of its own needed.
                return (prev, at, pos, true);
            }
            // Not `key` (above): it orders strictly before or after it.
            let hk = key_hash(k);
            if hk.cmp(&h).then_with(|| k.cmp(key)) == Ordering::Greater {
                break;
            }
            if hk == h {
                pos += 1;
            }
            prev = at;
            at = self.next(at);
        }
        (prev, at, pos, false)
    }

    /// The `pos`-th key with hash `h`: `(prev, slot)`.
    fn nth(&self, h: u64, pos: usize) -> Option<(u32, u32)> {
        if self.heads.is_empty() {
            return None;
        }
        let (mut prev, mut at, mut seen) = (NIL, self.heads[self.bucket(h)], 0);
        while at != NIL {
            match key_hash(self.key(at)).cmp(&h) {
                Ordering::Less => {}
                Ordering::Equal if seen == pos => return Some((prev, at)),
                Ordering::Equal => seen += 1,
                Ordering::Greater => return None,
            }
            prev = at;
            at = self.next(at);
        }
        None
    }

    /// The slot of `key`, comparing keys only (a lookup needs no order).
    fn find(&self, h: u64, key: &[u8]) -> Option<u32> {
        if self.heads.is_empty() {
            return None;
        }
        let mut at = self.heads[self.bucket(h)];
        while at != NIL {
            if self.key(at) == key {
                return Some(at);
            }
            at = self.next(at);
        }
        None
    }

    fn link(&mut self, h: u64, prev: u32, slot: u32, at: u32) {
        self.set_next(slot, at);
        if prev == NIL {
            let b = self.bucket(h);
            self.heads[b] = slot;
        } else {
            self.set_next(prev, slot);
        }
    }

    fn unlink(&mut self, h: u64, prev: u32, slot: u32) {
        let next = self.next(slot);
        if prev == NIL {
            let b = self.bucket(h);
            self.heads[b] = next;
        } else {
            self.set_next(prev, next);
        }
    }

    /// Re-chains every key into `1 << bits` heads, keeping each chain in order.
    fn resize(&mut self, bits: u32) {
        let old = std::mem::replace(&mut self.heads, vec![NIL; 1 << bits]);
        self.bits = bits;
        let mut tails = vec![NIL; 1 << bits];
        // Old chains in table order are the keys in (hash, key) order; appending each to
        // its new chain's tail keeps every new chain sorted.
        for head in old {
            let mut at = head;
            while at != NIL {
                let next = self.next(at);
                let b = self.bucket(key_hash(self.key(at)));
                if tails[b] == NIL {
                    self.heads[b] = at;
                } else {
                    self.set_next(tails[b], at);
                }
                self.set_next(at, NIL);
                tails[b] = at;
                at = next;
            }
        }
    }

    fn grown(&mut self) {
        if self.heads.is_empty() {
            self.heads = vec![NIL; 1 << MIN_BITS];
            self.bits = MIN_BITS;
        } else if self.len > self.heads.len() {
            self.resize(self.bits + 1);
        }
    }

    fn shrunk(&mut self) {
        if self.bits > MIN_BITS && self.len * 4 < self.heads.len() {
            self.resize(self.bits - 1);
        }
        if self.len == 0 {
            // Give the slab and table back; the TTL index is the caller's to keep in step.
            self.heads = Vec::new();
            self.bits = 0;
            self.classes = Vec::new();
        }
    }

    /// Calls `f` for every live slot, in slab order.
    fn for_each_slot(&self, f: &mut dyn FnMut(u32)) {
        for (class, c) in self.classes.iter().enumerate() {
            for i in 0..c.slots() {
                if rd(c.rec(i), SEG) != FREE {
                    f((class as u32) << CLASS_SHIFT | i);
                }
            }
        }
    }
}

/// All namespaces' keys.
pub(crate) struct Keydir {
    spaces: Vec<Space>,
    /// Whether entries keep their sequence numbers (recovery's replay).
    track_seq: bool,
}

impl Default for Keydir {
    fn default() -> Self {
        Keydir { spaces: (0..=Ns::MAX as usize).map(|_| Space::default()).collect(), track_seq: false }
    }
}

impl Keydir {
    /// A keydir for recovery's replay: entries keep their sequence numbers until
    /// [`Keydir::end_replay`].
    pub fn for_replay() -> Keydir {
        Keydir { track_seq: true, ..Keydir::default() }
    }

    /// Ends the replay: sequence numbers are dropped.
    pub fn end_replay(&mut self) {
        self.track_seq = false;
        for c in self.spaces.iter_mut().flat_map(|s| s.classes.iter_mut()) {
            c.seqs = Vec::new();
        }
    }

    /// Live keys in `ns`.
    pub fn len(&self, ns: Ns) -> usize {
        self.spaces[ns as usize].len
    }

    pub fn get(&self, ns: Ns, key: &[u8]) -> Option<Entry> {
        let space = &self.spaces[ns as usize];
        space.find(key_hash(key), key).map(|s| space.entry(s))
    }

    /// Brings the chain heads and first records of up to [`PREFETCH_MAX`] `keys` into the
    /// CPU cache ahead of the work on them (a batch's puts, compaction's liveness checks):
    /// the loads are independent of each other, so the CPU overlaps their cache misses,
    /// where the work key by key would wait for each in turn (two misses per key: the
    /// head, then the record). Changes nothing.
    pub fn prefetch<'k>(&self, ns: Ns, keys: impl Iterator<Item = &'k [u8]>) {
        let space = &self.spaces[ns as usize];
        if space.heads.is_empty() {
            return;
        }
        let mut heads = [NIL; PREFETCH_MAX];
        let mut n = 0;
        for (head, key) in heads.iter_mut().zip(keys) {
            *head = space.heads[space.bucket(key_hash(key))];
            n += 1;
        }
        let mut touched = 0u8;
        for &at in &heads[..n] {
            if at != NIL {
                let (c, i) = space.class(at);
                touched ^= c.bytes[i as usize * c.stride + KLEN];
            }
        }
        std::hint::black_box(touched);
    }

    /// The entry of `key` if its value is the one at `off` of segment `seg` (compaction's
    /// liveness check).
    pub fn get_at(&self, ns: Ns, key: &[u8], seg: u32, off: u32) -> Option<Entry> {
        self.get(ns, key).filter(|e| e.seg == seg && e.off == off)
    }

    /// Sets `key` to `entry`; returns the entry it replaced.
    pub fn insert(&mut self, ns: Ns, key: &[u8], entry: Entry) -> Option<Entry> {
        let mut old = None;
        self.insert_with(ns, key_hash(key), key, entry, |slot, entry| old = Some(std::mem::replace(slot, entry)));
        old
    }

    /// Sets `key` (whose [`key_hash`] is `h`) to `entry`: if the key is there,
    /// `replace(slot, entry)` does it (and must leave `entry` in `slot`), with the old
    /// entry in `slot` when it is called. Returns whether the key was there, and its
    /// position among the keys of hash `h` (0 unless hashes collide; such keys are kept
    /// sorted) — the address the undo log keeps instead of the key.
    #[inline]
    pub fn insert_with(&mut self, ns: Ns, h: u64, key: &[u8], entry: Entry, replace: impl FnOnce(&mut Entry, Entry)) -> (bool, usize) {
        debug_assert_eq!(h, key_hash(key));
        let track = self.track_seq;
        let space = &mut self.spaces[ns as usize];
        space.grown();
        let (prev, at, pos, found) = space.locate(h, key);
        if found {
            let mut e = space.entry(at);
            replace(&mut e, entry);
            space.put_at(h, prev, at, e, track);
            return (true, pos);
        }
        let slot = space.alloc(key, entry, track);
        space.link(h, prev, slot, at);
        space.len += 1;
        (false, pos)
    }

    /// Removes `key`; returns its entry.
    pub fn remove(&mut self, ns: Ns, key: &[u8]) -> Option<Entry> {
        let space = &mut self.spaces[ns as usize];
        if space.heads.is_empty() {
            return None;
        }
        let h = key_hash(key);
        let (prev, at, _, found) = space.locate(h, key);
        if !found {
            return None;
        }
        // The caller has the key: the slot's copy is not made.
        let e = space.entry(at);
        space.unlink(h, prev, at);
        space.release(at);
        space.len -= 1;
        space.shrunk();
        Some(e)
    }

    fn take(space: &mut Space, h: u64, prev: u32, slot: u32) -> (SmallBytes, Entry) {
        let e = space.entry(slot);
        space.unlink(h, prev, slot);
        let k = space.free(slot);
        space.len -= 1;
        space.shrunk();
        (k, e)
    }

    /// Sets the key of `ns` at position `pos` among the keys of hash `h` (see
    /// [`Keydir::insert_with`]) to `entry`; returns the entry it replaced, or `None`
    /// (and changes nothing) if there is no such key. The undo log's way back to a key
    /// it did not keep.
    pub fn replace_nth(&mut self, ns: Ns, h: u64, pos: usize, entry: Entry) -> Option<Entry> {
        let track = self.track_seq;
        let space = &mut self.spaces[ns as usize];
        let (prev, slot) = space.nth(h, pos)?;
        let old = space.entry(slot);
        space.put_at(h, prev, slot, entry, track);
        Some(old)
    }

    /// Removes the key of `ns` at position `pos` among the keys of hash `h`; returns it
    /// with its entry, or `None` if there is no such key.
    pub fn remove_nth(&mut self, ns: Ns, h: u64, pos: usize) -> Option<(SmallBytes, Entry)> {
        let space = &mut self.spaces[ns as usize];
        let (prev, slot) = space.nth(h, pos)?;
        Some(Self::take(space, h, prev, slot))
    }

    /// Keeps the keys of `ns` for which `keep(key, entry)` is true; calls `removed` with
    /// each dropped key and entry.
    pub fn retain(&mut self, ns: Ns, keep: &mut dyn FnMut(&[u8], &Entry) -> bool, removed: &mut dyn FnMut(SmallBytes, Entry)) {
        let space = &mut self.spaces[ns as usize];
        for b in 0..space.heads.len() {
            let (mut prev, mut at) = (NIL, space.heads[b]);
            while at != NIL {
                let next = space.next(at);
                let e = space.entry(at);
                if keep(space.key(at), &e) {
                    prev = at;
                } else {
                    if prev == NIL {
                        space.heads[b] = next;
                    } else {
                        space.set_next(prev, next);
                    }
                    let k = space.free(at);
                    space.len -= 1;
                    removed(k, e);
                }
                at = next;
            }
        }
        space.shrunk();
    }

    /// Calls `f` for every key of `ns`, in no particular order.
    pub fn for_each(&self, ns: Ns, f: &mut dyn FnMut(&[u8], &Entry)) {
        let space = &self.spaces[ns as usize];
        space.for_each_slot(&mut |s| f(space.key(s), &space.entry(s)));
    }

    /// Calls `f` for every key of every namespace.
    pub fn for_each_all(&self, f: &mut dyn FnMut(Ns, &[u8], &Entry)) {
        for ns in 0..=Ns::MAX {
            self.for_each(ns, &mut |k, e| f(ns, k, e));
        }
    }

    /// Keys of `ns` from hash position `cursor` on, all keys of one hash at a time, until
    /// at least `count` (≥ 1) keys are collected; returns them and the next cursor (0 when
    /// the walk is complete).
    pub fn scan(&self, ns: Ns, cursor: u64, count: usize) -> (u64, Vec<Vec<u8>>) {
        let space = &self.spaces[ns as usize];
        let count = count.max(1);
        let mut keys = Vec::with_capacity(count.min(1024));
        if space.heads.is_empty() {
            return (0, keys);
        }
        let mut last = None;
        for b in space.bucket(cursor & HASH_MASK)..space.heads.len() {
            let mut at = space.heads[b];
            while at != NIL {
                let k = space.key(at);
                let h = key_hash(k);
                if h >= cursor {
                    if keys.len() >= count && last != Some(h) {
                        return (h, keys);
                    }
                    keys.push(k.to_vec());
                    last = Some(h);
                }
                at = space.next(at);
            }
        }
        (0, keys)
    }

    /// Bytes the keydir's structures fill (slab records, tables, long keys with their
    /// pointers; not the unused tail of a grown allocation, which is never touched and so
    /// not resident), for INFO and the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.spaces
            .iter()
            .map(|s| {
                s.heads.len() * 4
                    + s.classes.iter().map(|c| c.bytes.len() + c.big.iter().map(|k| k.len() + 16).sum::<usize>() + c.seqs.len() * 8).sum::<usize>()
            })
            .sum()
    }

    /// The expiry time of `key` (unix epoch ms), 0 if it has none. Not checked against
    /// the keydir: a key is given a time only while it is in the keydir.
    #[inline]
    pub fn expire_at(&self, ns: Ns, key: &[u8]) -> u64 {
        let ttl = &self.spaces[ns as usize].ttl;
        if ttl.by_key.is_empty() {
            return 0;
        }
        ttl.by_key.get(key).copied().unwrap_or(0)
    }

    /// Whether `key` has an expiry time at or before `now` (unix epoch ms).
    #[inline]
    pub fn is_expired(&self, ns: Ns, key: &[u8], now: u64) -> bool {
        let at = self.expire_at(ns, key);
        at != 0 && at <= now
    }

    /// Sets the expiry time of `key` to `at` (unix epoch ms; 0 removes it); returns the
    /// previous one (0: none).
    pub fn set_expire_at(&mut self, ns: Ns, key: &[u8], at: u64) -> u64 {
        let ttl = &mut self.spaces[ns as usize].ttl;
        let prev = if at == 0 {
            if ttl.by_key.is_empty() {
                return 0;
            }
            match ttl.by_key.remove_entry(key) {
                None => return 0,
                Some((k, prev)) => {
                    ttl.due.remove(&(prev, k));
                    prev
                }
            }
        } else {
            let k = SmallBytes::new(key);
            let prev = ttl.by_key.insert(k.clone(), at).unwrap_or(0);
            if prev == at {
                return prev;
            }
            if prev != 0 {
                ttl.due.remove(&(prev, k.clone()));
            }
            ttl.due.insert((at, k));
            prev
        };
        ttl.sum = ttl.sum + at as u128 - prev as u128;
        prev
    }

    /// Keys of `ns` with an expiry time.
    pub fn expiring(&self, ns: Ns) -> usize {
        self.spaces[ns as usize].ttl.by_key.len()
    }

    /// Keys of `ns` whose expiry time is at or before `now`, oldest first, at most `max`.
    pub fn due(&self, ns: Ns, now: u64, max: usize) -> Vec<Vec<u8>> {
        let ttl = &self.spaces[ns as usize].ttl;
        ttl.due.iter().take_while(|(at, _)| *at <= now).take(max).map(|(_, k)| k.to_vec()).collect()
    }

    /// How many keys of `ns` are due at `now` (walks them: active expiry keeps them few).
    pub fn due_count(&self, ns: Ns, now: u64) -> usize {
        let ttl = &self.spaces[ns as usize].ttl;
        if ttl.due.first().is_none_or(|(at, _)| *at > now) {
            return 0;
        }
        ttl.due.iter().take_while(|(at, _)| *at <= now).count()
    }

    /// Mean of (expire_at − `now`) over the keys of `ns` with a TTL, ms, 0 when none
    /// (keys already due count with their negative remainder, so it may be 0 early).
    pub fn avg_ttl(&self, ns: Ns, now: u64) -> u64 {
        let ttl = &self.spaces[ns as usize].ttl;
        let n = ttl.by_key.len() as u128;
        if n == 0 {
            return 0;
        }
        (ttl.sum / n).saturating_sub(now as u128) as u64
    }

    /// Namespaces that hold at least one key with an expiry time.
    pub fn namespaces_with_ttls(&self) -> Vec<Ns> {
        (0..=Ns::MAX).filter(|&ns| !self.spaces[ns as usize].ttl.by_key.is_empty()).collect()
    }

    /// Test helper: every chain is sorted by (hash, key), every key is on the chain its
    /// hash selects, and the counts agree.
    #[cfg(test)]
    pub(crate) fn order_is_consistent(&self) -> bool {
        self.spaces.iter().all(|s| {
            let mut n = 0;
            let mut last: Option<(u64, Vec<u8>)> = None;
            for (b, &head) in s.heads.iter().enumerate() {
                let mut at = head;
                while at != NIL {
                    let k = s.key(at).to_vec();
                    let h = key_hash(&k);
                    if s.bucket(h) != b || last.as_ref().is_some_and(|l| *l >= (h, k.clone())) {
                        return false;
                    }
                    last = Some((h, k));
                    n += 1;
                    at = s.next(at);
                }
            }
            let mut live = 0;
            s.for_each_slot(&mut |_| live += 1);
            n == s.len && live == s.len
        })
    }

    /// Test helper: every (ns, key, expire_at), sorted; checks that the two TTL indexes
    /// agree and that every key with a TTL is in the keydir.
    #[cfg(test)]
    pub(crate) fn ttls(&self) -> Vec<(Ns, Vec<u8>, u64)> {
        let mut out = Vec::new();
        for (ns, s) in self.spaces.iter().enumerate() {
            assert_eq!(s.ttl.by_key.len(), s.ttl.due.len());
            for (k, &at) in &s.ttl.by_key {
                assert!(s.ttl.due.contains(&(at, k.clone())));
                assert!(self.get(ns as Ns, k).is_some(), "a key with a TTL is in the keydir");
                out.push((ns as Ns, k.to_vec(), at));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry { seq, seg: 1, off: 0, len: 0, foot: 1, inline: None }
    }

    /// A keydir whose namespace 0 holds `keys`, and a check that a full scan with
    /// `count` returns exactly them.
    fn check_scan(keys: &[Vec<u8>], count: usize) {
        let mut kd = Keydir::for_replay();
        for (i, k) in keys.iter().enumerate() {
            kd.insert(0, k, entry(i as u64));
        }
        check_scan_of(&kd, keys, count);
    }

    fn check_scan_of(kd: &Keydir, keys: &[Vec<u8>], count: usize) {
        let (mut cursor, mut seen) = (0, Vec::new());
        loop {
            let (next, batch) = kd.scan(0, cursor, count);
            assert!(next < 1 << CURSOR_BITS);
            seen.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        let mut want = keys.to_vec();
        want.sort();
        want.dedup();
        assert_eq!(seen, want);
    }

    /// A prefetch reads: any number of keys, present, missing, long (held apart) or in
    /// an empty namespace, and the keydir is the same afterwards.
    #[test]
    fn prefetch_changes_nothing() {
        let mut kd = Keydir::for_replay();
        kd.prefetch(0, [b"k".as_slice()].into_iter());
        let keys: Vec<Vec<u8>> = (0..100).map(|i| if i % 7 == 0 { vec![b'x'; 300 + i] } else { format!("key:{i}").into_bytes() }).collect();
        for (i, k) in keys.iter().enumerate() {
            kd.insert(0, k, entry(i as u64));
        }
        kd.prefetch(0, keys.iter().map(Vec::as_slice).chain([b"missing".as_slice()]));
        kd.prefetch(1, keys.iter().map(Vec::as_slice));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(kd.get(0, k).map(|e| e.seq), Some(i as u64));
        }
        assert_eq!(kd.len(0), keys.len());
        assert!(kd.order_is_consistent());
    }

    #[test]
    fn scan_returns_every_key_once() {
        let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("key:{i}").into_bytes()).collect();
        check_scan(&keys, 1);
        check_scan(&keys, 7);
        check_scan(&keys, 5000);
        check_scan(&[], 10);
    }

    /// Redis's guarantee across resizes: a key present for the whole walk is returned,
    /// however many keys come and go (and the table doubles and halves) between calls.
    #[test]
    fn scan_keeps_its_guarantee_across_resizes() {
        let mut kd = Keydir::default();
        let stay: Vec<Vec<u8>> = (0..300).map(|i| format!("stay:{i}").into_bytes()).collect();
        for k in &stay {
            kd.insert(0, k, entry(0));
        }
        let (mut cursor, mut seen, mut round) = (0, std::collections::HashSet::new(), 0);
        loop {
            let (next, batch) = kd.scan(0, cursor, 5);
            seen.extend(batch);
            // Grow to thousands of keys, then shrink back, while the walk goes on.
            for i in 0..200 {
                let k = format!("churn:{round}:{i}");
                if round % 4 < 2 {
                    kd.insert(0, k.as_bytes(), entry(1));
                } else {
                    let old = format!("churn:{}:{i}", round - 2);
                    kd.remove(0, old.as_bytes());
                }
            }
            round += 1;
            assert!(kd.order_is_consistent());
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for k in &stay {
            assert!(seen.contains(k), "{:?} was never returned", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn bulk_load_keeps_sequence_numbers_until_the_order_is_built() {
        let mut kd = Keydir::for_replay();
        for i in 0..500 {
            kd.insert(0, format!("k{i}").as_bytes(), Entry { seq: i + 10, ..entry(0) });
        }
        for i in 0..100 {
            kd.remove(0, format!("k{i}").as_bytes());
        }
        assert_eq!(kd.get(0, b"k200").map(|e| e.seq), Some(210));
        kd.end_replay();
        assert_eq!(kd.get(0, b"k200").map(|e| e.seq), Some(0));
        assert!(kd.order_is_consistent());
        check_scan_of(&kd, &(100..500).map(|i| format!("k{i}").into_bytes()).collect::<Vec<_>>(), 9);
    }

    #[test]
    fn insert_get_remove_retain() {
        let mut kd = Keydir::for_replay();
        assert_eq!(kd.insert(1, b"a", entry(1)), None);
        assert_eq!(kd.insert(1, b"a", entry(2)).map(|e| e.seq), Some(1));
        assert_eq!(kd.insert(1, b"b", entry(3)), None);
        assert_eq!(kd.len(1), 2);
        assert_eq!(kd.len(0), 0);
        assert_eq!(kd.get(1, b"a").map(|e| e.seq), Some(2));
        assert!(kd.get(0, b"a").is_none());
        assert_eq!(kd.remove(1, b"a").map(|e| e.seq), Some(2));
        assert_eq!(kd.remove(1, b"a"), None);
        kd.insert(1, b"c", entry(4));
        let mut dropped = vec![];
        kd.retain(1, &mut |k, _| k != b"b", &mut |_, e| dropped.push(e.seq));
        assert_eq!(dropped, vec![3]);
        assert_eq!(kd.len(1), 1);
        assert_eq!(kd.scan(1, 0, 10).1, vec![b"c".to_vec()]);
    }

    /// Every key length, across every size class and the heap class, round-trips with
    /// its entry (foot included), and slots are reused after removal.
    #[test]
    fn keys_of_every_length_round_trip() {
        let mut kd = Keydir::default();
        let keys: Vec<Vec<u8>> = (0..600usize).map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect()).collect();
        for (n, k) in keys.iter().enumerate() {
            let e = Entry { seq: 0, seg: n as u32, off: 3 * n as u32, len: 5 + n as u32, foot: 28 + 2 * n as u32 + 5, inline: None };
            assert_eq!(kd.insert(0, k, e), None);
        }
        for (n, k) in keys.iter().enumerate() {
            let e = kd.get(0, k).unwrap();
            assert_eq!((e.seg, e.off, e.len, e.foot), (n as u32, 3 * n as u32, 5 + n as u32, 28 + 2 * n as u32 + 5));
        }
        assert!(kd.order_is_consistent());
        let bytes = kd.heap_bytes();
        for k in keys.iter().step_by(2) {
            assert!(kd.remove(0, k).is_some());
        }
        for k in keys.iter().step_by(2) {
            kd.insert(0, k, entry(0));
        }
        assert!(kd.heap_bytes() <= bytes + 64 * 4, "freed slots are reused");
        assert_eq!(kd.len(0), keys.len());
        for k in &keys {
            assert!(kd.remove(0, k).is_some());
        }
        assert_eq!((kd.len(0), kd.heap_bytes()), (0, 0), "an emptied namespace gives its memory back");
    }

    #[test]
    fn small_bytes_round_trip_at_every_length() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        for n in 0..64usize {
            let b: Vec<u8> = (0..n as u8).collect();
            let s = SmallBytes::new(&b);
            assert_eq!(&*s, &b[..]);
            assert_eq!(matches!(s, SmallBytes::Inline { .. }), n <= SmallBytes::INLINE);
            assert_eq!(&*SmallBytes::from(b.clone()), &b[..]);
        }
    }

    #[test]
    fn get_at_finds_an_entry_by_location() {
        let mut kd = Keydir::for_replay();
        kd.insert(0, b"k", Entry { seq: 1, seg: 3, off: 100, len: 1, foot: 30, inline: None });
        assert_eq!(kd.get_at(0, b"k", 3, 100).map(|e| e.seq), Some(1));
        assert!(kd.get_at(0, b"k", 3, 101).is_none());
        assert!(kd.get_at(0, b"k", 2, 100).is_none());
        assert!(kd.get_at(0, b"other", 3, 100).is_none());
    }

    #[test]
    fn positions_among_keys_of_one_hash() {
        // Every key has hash 0 (a test-only 0-bit hash on this thread).
        TEST_HASH_MASK.with(|m| m.set(0));
        let mut kd = Keydir::for_replay();
        let h = key_hash(b"any");
        let put = |kd: &mut Keydir, k: &[u8], seq| kd.insert_with(0, h, k, entry(seq), |slot, e| *slot = e);
        assert_eq!(put(&mut kd, b"m", 1), (false, 0));
        assert_eq!(put(&mut kd, b"z", 2), (false, 1));
        assert_eq!(put(&mut kd, b"a", 3), (false, 0));
        assert_eq!(put(&mut kd, b"q", 4), (false, 2));
        assert_eq!(put(&mut kd, b"m", 5), (true, 1), "replaced in place");
        // Sorted: a m q z.
        assert_eq!(kd.replace_nth(0, h, 2, entry(6)).map(|e| e.seq), Some(4));
        assert_eq!(kd.get(0, b"q").map(|e| e.seq), Some(6));
        assert!(kd.replace_nth(0, h, 4, entry(7)).is_none());
        assert!(kd.replace_nth(0, h + 1, 0, entry(7)).is_none());
        assert_eq!(kd.scan(0, 0, 1).1.len(), 4, "keys of one hash are never split");
        let (k, e) = kd.remove_nth(0, h, 0).unwrap();
        assert_eq!((&*k, e.seq), (&b"a"[..], 3));
        assert!(kd.remove_nth(0, h, 3).is_none());
        assert_eq!(kd.len(0), 3);
        let mut n = 0;
        kd.retain(0, &mut |k, _| k != b"q", &mut |_, _| n += 1);
        assert_eq!((n, kd.len(0)), (1, 2));
        for want in [&b"m"[..], b"z"] {
            let (k, _) = kd.remove_nth(0, h, 0).unwrap();
            assert_eq!(&*k, want);
        }
        assert_eq!(kd.len(0), 0);
        assert!(kd.order_is_consistent());
        assert!(kd.remove_nth(0, h, 0).is_none());
        TEST_HASH_MASK.with(|m| m.set(HASH_MASK));
    }

    /// The layout's promise: a 16-byte key costs its 34-byte record plus 4–8 bytes of
    /// table.
    #[test]
    fn a_16_byte_key_costs_under_48_bytes() {
        let mut kd = Keydir::default();
        let n = 100_000;
        for i in 0..n {
            let e = Entry { seq: 0, seg: 1, off: i, len: 3, foot: 28 + 16 + 3, inline: None };
            kd.insert(0, format!("key:{i:012}").as_bytes(), e.with_value(b"xxx", 16));
        }
        let per_key = kd.heap_bytes() as f64 / n as f64;
        assert!(per_key < 48.0, "{per_key} B per key, with a 3-byte value inline");
    }

    /// Removing keys longer than 255 bytes gives their heap copies back (the slots stay
    /// for reuse, empty).
    #[test]
    fn removed_long_keys_are_freed() {
        let mut kd = Keydir::default();
        kd.insert(0, b"stays", entry(0));
        let before = kd.heap_bytes();
        let keys: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 300]).collect();
        for k in &keys {
            kd.insert(0, k, entry(0));
        }
        assert!(kd.heap_bytes() >= before + 10 * 300);
        for k in &keys {
            assert!(kd.remove(0, k).is_some());
        }
        let after = kd.heap_bytes();
        assert!(after < before + 10 * 100, "{after} bytes after removing, {before} before: the long keys' copies stayed");
    }

    /// Values that change length move their record between size classes (inline, too
    /// long for inline, empty, key and value over 255 bytes, a long key), in place on
    /// chains of many colliding keys: every entry reads back as written, and the chains
    /// stay in SCAN order.
    #[test]
    fn records_move_between_classes_when_values_change() {
        TEST_HASH_MASK.with(|m| m.set(0x7));
        let mut kd = Keydir::default();
        let mut keys: Vec<Vec<u8>> = (0..150).map(|i| format!("key{i}").into_bytes()).collect();
        keys.push(vec![b'L'; 240]);
        keys.push(vec![b'B'; 300]);
        let mut model = HashMap::new();
        for round in 0..8usize {
            for (i, k) in keys.iter().enumerate() {
                if (i + round) % 5 == 0 {
                    assert_eq!(kd.remove(0, k), model.remove(k));
                    continue;
                }
                let n = (i * 7 + round * 5) % 40;
                let v = vec![(i + round) as u8; n];
                let e = Entry { seq: 0, seg: round as u32 + 1, off: i as u32, len: n as u32, foot: (n + k.len() + 20) as u32, inline: None };
                let e = e.with_value(&v, INLINE_CAP);
                assert_eq!(kd.insert(0, k, e), model.insert(k.clone(), kept(k, e)), "{k:?}");
            }
            assert!(kd.order_is_consistent());
            assert_eq!(kd.len(0), model.len());
            for (k, e) in &model {
                assert_eq!(kd.get(0, k), Some(*e), "{k:?} in round {round}");
            }
            let inline = model.values().filter(|e| e.inline.is_some()).count();
            assert!(inline > 0 && inline < model.len(), "some values inline, some not: {inline} of {}", model.len());
        }
        TEST_HASH_MASK.with(|m| m.set(HASH_MASK));

        /// What the keydir keeps of `e` for `k`: no inline value past 255 bytes.
        fn kept(k: &[u8], e: Entry) -> Entry {
            match e.inline {
                Some(v) if k.len() + v.as_slice().len() > 255 => Entry { inline: None, ..e },
                _ => e,
            }
        }
    }
}
