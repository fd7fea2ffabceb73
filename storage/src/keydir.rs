//! The keydir: in RAM, (namespace, key) → where the live value is.
//!
//! Per namespace, a hash map from the key's 48-bit xxh3 hash to a bucket (almost always
//! one key) gives GET one hash computation and one probe; a `BTreeSet` of the same
//! hashes orders the keys for SCAN, whose cursor is simply the next hash to visit. A
//! hash position does not move when other keys come and go, which gives Redis's SCAN
//! guarantee: a key present for the whole walk is returned at least once (exactly once
//! when nothing changes), and cursors stay below 2^48.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::Ns;

/// Cursors and bucket hashes are below `1 << CURSOR_BITS`.
pub(crate) const CURSOR_BITS: u32 = 48;
const HASH_MASK: u64 = (1 << CURSOR_BITS) - 1;

/// The 48-bit hash that orders a key for SCAN.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let h = xxhash_rust::xxh3::xxh3_64(key) & HASH_MASK;
    #[cfg(test)]
    let h = h & TEST_HASH_MASK.with(std::cell::Cell::get);
    h
}

#[cfg(test)]
thread_local! {
    /// Tests only: [`key_hash`] keeps only these bits on this thread, so that buckets of
    /// colliding keys are common.
    pub(crate) static TEST_HASH_MASK: std::cell::Cell<u64> = const { std::cell::Cell::new(HASH_MASK) };
}

/// Bytes kept inside the structure when short (keys, small values), on the heap
/// otherwise: 24 bytes either way, and no pointer to chase (and no cache miss) for a key
/// of up to [`SmallBytes::INLINE`] bytes.
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

/// Where one live value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Sequence number of the record that wrote it.
    pub seq: u64,
    /// Segment id.
    pub seg: u32,
    /// File offset of the value's first byte in the segment.
    pub off: u32,
    /// Value length, bytes.
    pub len: u32,
    /// Bytes of the segment this entry keeps alive (for the dead ratio).
    pub foot: u32,
    /// The value itself when it is at most `inline_value_max` bytes.
    pub inline: Option<SmallBytes>,
}

enum Bucket {
    One(SmallBytes, Entry),
    /// Hash collisions (rare): kept sorted by key.
    Many(Vec<(SmallBytes, Entry)>),
}

impl Bucket {
    fn get(&self, key: &[u8]) -> Option<&Entry> {
        match self {
            Bucket::One(k, e) => (**k == *key).then_some(e),
            Bucket::Many(v) => v.iter().find(|(k, _)| **k == *key).map(|(_, e)| e),
        }
    }

    /// The entry whose value is at `off` of segment `seg`. A record's location names
    /// its key, so no key comparison is needed.
    fn at(&self, seg: u32, off: u32) -> Option<&Entry> {
        match self {
            Bucket::One(_, e) => (e.seg == seg && e.off == off).then_some(e),
            Bucket::Many(v) => v.iter().map(|(_, e)| e).find(|e| e.seg == seg && e.off == off),
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(&[u8], &Entry)) {
        match self {
            Bucket::One(k, e) => f(k, e),
            Bucket::Many(v) => v.iter().for_each(|(k, e)| f(k, e)),
        }
    }
}

/// Turns the 48-bit key hash into a well-mixed map hash (hashbrown uses the top bits).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct Space {
    map: HashMap<u64, Bucket, BuildHasherDefault<MixHasher>>,
    order: BTreeSet<u64>,
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
    /// Removes the key at position `at` of bucket `h` (which must exist) and returns it
    /// with its entry; a bucket left with one key becomes `One`, an empty one goes.
    fn take(&mut self, h: u64, at: usize) -> (SmallBytes, Entry) {
        self.len -= 1;
        let bucket = self.map.get_mut(&h).expect("the bucket exists");
        if let Bucket::Many(v) = bucket {
            let taken = v.remove(at);
            if v.len() == 1 {
                let (k, e) = v.pop().expect("one left");
                *bucket = Bucket::One(k, e);
            }
            return taken;
        }
        let Some(Bucket::One(k, e)) = self.map.remove(&h) else { unreachable!() };
        self.order.remove(&h);
        (k, e)
    }
}

/// All namespaces' keys.
pub(crate) struct Keydir {
    spaces: Vec<Space>,
    /// Whether the SCAN order is maintained (off during recovery's bulk load).
    ordered: bool,
}

impl Default for Keydir {
    fn default() -> Self {
        Keydir { spaces: (0..=Ns::MAX as usize).map(|_| Space::default()).collect(), ordered: true }
    }
}

impl Keydir {
    /// A keydir that does not maintain the SCAN order until [`Keydir::build_order`]
    /// (random inserts into the ordered set dominate a bulk load otherwise).
    pub fn unordered() -> Keydir {
        Keydir { ordered: false, ..Keydir::default() }
    }

    /// Builds the SCAN order from scratch (bulk: sort, then build the set in one pass).
    pub fn build_order(&mut self) {
        for space in &mut self.spaces {
            let mut hashes: Vec<u64> = space.map.keys().copied().collect();
            hashes.sort_unstable();
            space.order = hashes.into_iter().collect();
        }
        self.ordered = true;
    }

    /// Live keys in `ns`.
    pub fn len(&self, ns: Ns) -> usize {
        self.spaces[ns as usize].len
    }

    pub fn get(&self, ns: Ns, key: &[u8]) -> Option<&Entry> {
        self.spaces[ns as usize].map.get(&key_hash(key))?.get(key)
    }

    /// The entry of `key` if its value is the one at `off` of segment `seg` (compaction's
    /// liveness check; cheaper than [`get`](Self::get): no key comparison).
    pub fn get_at(&self, ns: Ns, key: &[u8], seg: u32, off: u32) -> Option<&Entry> {
        self.spaces[ns as usize].map.get(&key_hash(key))?.at(seg, off)
    }

    /// Sets `key` to `entry`; returns the entry it replaced.
    pub fn insert(&mut self, ns: Ns, key: &[u8], entry: Entry) -> Option<Entry> {
        let mut old = None;
        self.insert_with(ns, key_hash(key), key, entry, |slot, entry| old = Some(std::mem::replace(slot, entry)));
        old
    }

    /// Sets `key` (whose [`key_hash`] is `h`) to `entry`: if the key is there,
    /// `replace(slot, entry)` does it (and must leave `entry` in `slot`), so that the
    /// caller sees the old entry in place (the undo log copies what it needs from there:
    /// nothing is moved through a temporary, see [`crate::undo`]). Returns whether the
    /// key was there, and its position in its bucket (0 unless the bucket holds keys
    /// whose hashes collide; its keys are kept sorted).
    #[inline]
    pub fn insert_with(&mut self, ns: Ns, h: u64, key: &[u8], entry: Entry, replace: impl FnOnce(&mut Entry, Entry)) -> (bool, usize) {
        debug_assert_eq!(h, key_hash(key));
        let space = &mut self.spaces[ns as usize];
        let Some(bucket) = space.map.get_mut(&h) else {
            space.map.insert(h, Bucket::One(SmallBytes::new(key), entry));
            if self.ordered {
                space.order.insert(h);
            }
            space.len += 1;
            return (false, 0);
        };
        // Where the key is, or would go (one call site for `replace`, so it inlines).
        let (pos, found) = match bucket {
            Bucket::One(k, _) => match (**k).cmp(key) {
                Ordering::Equal => (0, true),
                Ordering::Less => (1, false),
                Ordering::Greater => (0, false),
            },
            Bucket::Many(v) => {
                let pos = v.partition_point(|(k, _)| **k < *key);
                (pos, v.get(pos).is_some_and(|(k, _)| **k == *key))
            }
        };
        if found {
            let slot = match bucket {
                Bucket::One(_, e) => e,
                Bucket::Many(v) => &mut v[pos].1,
            };
            replace(slot, entry);
            return (true, pos);
        }
        let new = (SmallBytes::new(key), entry);
        match bucket {
            Bucket::One(..) => {
                let Bucket::One(k, e) = std::mem::replace(bucket, Bucket::Many(Vec::with_capacity(2))) else { unreachable!() };
                let Bucket::Many(v) = bucket else { unreachable!() };
                v.push((k, e));
                v.insert(pos, new);
            }
            Bucket::Many(v) => v.insert(pos, new),
        }
        space.len += 1;
        (false, pos)
    }

    /// Removes `key`; returns its entry.
    pub fn remove(&mut self, ns: Ns, key: &[u8]) -> Option<Entry> {
        let space = &mut self.spaces[ns as usize];
        let h = key_hash(key);
        let bucket = space.map.get_mut(&h)?;
        let at = match bucket {
            Bucket::One(k, _) => (**k == *key).then_some(0)?,
            Bucket::Many(v) => v.iter().position(|(k, _)| **k == *key)?,
        };
        Some(space.take(h, at).1)
    }

    /// Sets the key of `ns` at position `pos` of bucket `h` (see
    /// [`Keydir::insert_with`]) to `entry`; returns the entry it replaced, or `None`
    /// (and changes nothing) if there is no such key. The undo log's way back to a key
    /// it did not keep.
    pub fn replace_nth(&mut self, ns: Ns, h: u64, pos: usize, entry: Entry) -> Option<Entry> {
        let e = match self.spaces[ns as usize].map.get_mut(&h)? {
            Bucket::One(_, e) => (pos == 0).then_some(e)?,
            Bucket::Many(v) => &mut v.get_mut(pos)?.1,
        };
        Some(std::mem::replace(e, entry))
    }

    /// Removes the key of `ns` at position `pos` of bucket `h`; returns it with its
    /// entry, or `None` if there is no such key.
    pub fn remove_nth(&mut self, ns: Ns, h: u64, pos: usize) -> Option<(SmallBytes, Entry)> {
        let space = &mut self.spaces[ns as usize];
        let n = match space.map.get(&h)? {
            Bucket::One(..) => 1,
            Bucket::Many(v) => v.len(),
        };
        (pos < n).then(|| space.take(h, pos))
    }

    /// Keeps the keys of `ns` for which `keep(key, entry)` is true; calls `removed` with
    /// each dropped key and entry.
    pub fn retain(&mut self, ns: Ns, keep: &mut dyn FnMut(&[u8], &Entry) -> bool, removed: &mut dyn FnMut(SmallBytes, Entry)) {
        let space = &mut self.spaces[ns as usize];
        let mut emptied = Vec::new();
        let mut n_removed = 0;
        for (h, bucket) in space.map.iter_mut() {
            match bucket {
                Bucket::One(k, e) => {
                    if !keep(k, e) {
                        emptied.push(*h);
                    }
                }
                Bucket::Many(v) => {
                    let mut i = 0;
                    while i < v.len() {
                        if keep(&v[i].0, &v[i].1) {
                            i += 1;
                        } else {
                            let (k, e) = v.remove(i);
                            removed(k, e);
                            n_removed += 1;
                        }
                    }
                    match v.len() {
                        0 => emptied.push(*h),
                        1 => {
                            let (k, e) = v.pop().expect("one left");
                            *bucket = Bucket::One(k, e);
                        }
                        _ => {}
                    }
                }
            }
        }
        for h in emptied {
            if let Some(Bucket::One(k, e)) = space.map.remove(&h) {
                removed(k, e);
                n_removed += 1;
            }
            space.order.remove(&h);
        }
        space.len -= n_removed;
    }

    /// Calls `f` for every key of `ns`, in no particular order.
    pub fn for_each(&self, ns: Ns, f: &mut dyn FnMut(&[u8], &Entry)) {
        for bucket in self.spaces[ns as usize].map.values() {
            bucket.for_each(f);
        }
    }

    /// Calls `f` for every key of every namespace.
    pub fn for_each_all(&self, f: &mut dyn FnMut(Ns, &[u8], &Entry)) {
        for ns in 0..=Ns::MAX {
            self.for_each(ns, &mut |k, e| f(ns, k, e));
        }
    }

    /// Keys of `ns` from hash position `cursor` on, whole buckets at a time, until at
    /// least `count` (≥ 1) keys are collected; returns them and the next cursor (0 when
    /// the walk is complete).
    pub fn scan(&self, ns: Ns, cursor: u64, count: usize) -> (u64, Vec<Vec<u8>>) {
        debug_assert!(self.ordered);
        let space = &self.spaces[ns as usize];
        let count = count.max(1);
        let mut keys = Vec::with_capacity(count.min(1024));
        for &h in space.order.range(cursor..) {
            if keys.len() >= count {
                return (h, keys);
            }
            space.map[&h].for_each(&mut |k, _| keys.push(k.to_vec()));
        }
        (0, keys)
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

    /// Test helper: the SCAN order matches the map.
    #[cfg(test)]
    pub(crate) fn order_is_consistent(&self) -> bool {
        self.spaces.iter().all(|s| s.order.len() == s.map.len() && s.order.iter().all(|h| s.map.contains_key(h)))
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
        let mut kd = Keydir::default();
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

    #[test]
    fn scan_returns_every_key_once() {
        let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("key:{i}").into_bytes()).collect();
        check_scan(&keys, 1);
        check_scan(&keys, 7);
        check_scan(&keys, 5000);
        check_scan(&[], 10);
    }

    #[test]
    fn bulk_load_builds_the_same_order() {
        let mut kd = Keydir::unordered();
        for i in 0..500 {
            kd.insert(0, format!("k{i}").as_bytes(), entry(i));
        }
        for i in 0..100 {
            kd.remove(0, format!("k{i}").as_bytes());
        }
        kd.build_order();
        assert!(kd.order_is_consistent());
        check_scan_of(&kd, &(100..500).map(|i| format!("k{i}").into_bytes()).collect::<Vec<_>>(), 9);
    }

    #[test]
    fn insert_get_remove_retain() {
        let mut kd = Keydir::default();
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

    #[test]
    fn small_bytes_round_trip_at_every_length() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        assert_eq!(std::mem::size_of::<Option<SmallBytes>>(), 24);
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
        let mut kd = Keydir::default();
        kd.insert(0, b"k", Entry { seq: 1, seg: 3, off: 100, len: 1, foot: 10, inline: None });
        assert_eq!(kd.get_at(0, b"k", 3, 100).map(|e| e.seq), Some(1));
        assert!(kd.get_at(0, b"k", 3, 101).is_none());
        assert!(kd.get_at(0, b"k", 2, 100).is_none());
        assert!(kd.get_at(0, b"other", 3, 100).is_none());
    }

    #[test]
    fn positions_in_a_bucket_of_colliding_keys() {
        // Every key in one bucket (a test-only 0-bit hash on this thread).
        TEST_HASH_MASK.with(|m| m.set(0));
        let mut kd = Keydir::default();
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
        let (k, e) = kd.remove_nth(0, h, 0).unwrap();
        assert_eq!((&*k, e.seq), (&b"a"[..], 3));
        assert!(kd.remove_nth(0, h, 3).is_none());
        assert_eq!(kd.len(0), 3);
        for want in [&b"m"[..], b"q", b"z"] {
            let (k, _) = kd.remove_nth(0, h, 0).unwrap();
            assert_eq!(&*k, want);
        }
        assert_eq!(kd.len(0), 0);
        assert!(kd.order_is_consistent());
        assert!(kd.remove_nth(0, h, 0).is_none());
        TEST_HASH_MASK.with(|m| m.set(HASH_MASK));
    }

    #[test]
    fn colliding_buckets_behave_like_single_keys() {
        // Force collisions by inserting straight into one bucket.
        let mut kd = Keydir::default();
        let h = key_hash(b"x");
        let space = &mut kd.spaces[0];
        space.map.insert(h, Bucket::Many(vec![(SmallBytes::new(b"x"), entry(1)), (SmallBytes::new(b"y"), entry(2))]));
        space.order.insert(h);
        space.len = 2;
        assert_eq!(kd.scan(0, 0, 1).1.len(), 2, "a bucket is never split");
        let mut n = 0;
        kd.retain(0, &mut |k, _| k == b"x", &mut |_, _| n += 1);
        assert_eq!((n, kd.len(0)), (1, 1));
        assert_eq!(kd.get(0, b"x").map(|e| e.seq), Some(1));
    }
}
