//! Numbered databases (Redis `SELECT n`) on one shard: which storage namespace holds
//! each database's keys, and the durable map that SWAPDB rewrites.
//!
//! Every database is a keydir namespace of its own (`keel_storage::Ns`, one byte). At
//! first, database 0 is namespace 0 (`NS_KV`, so data dirs from before databases read
//! unchanged) and database n ≥ 1 is namespace n + 3 ([`home_ns`]): namespaces 1 and 2
//! hold vector data and 3 ([`NS_DB_MAP`]) the map below, so 253 databases fit
//! (`keel_config::MAX_DATABASES`).
//!
//! `SWAPDB a b` swaps two entries of the map (database → namespace) and writes the whole
//! map as one put (`NS_DB_MAP`, key [`DB_MAP_KEY`]; value: byte i = namespace of database
//! i): O(1) in the number of keys, as in Redis, and no key is rewritten. The map is read
//! at start; a missing record is the identity map. `FLUSHALL` (a clear-all record)
//! removes it too, which is right: every database is empty then, so the identity map
//! serves as well as any. Byte layout: `shard/FORMAT.md`.

use keel_storage::{Lookup, Ns, Store};
use std::cell::{Cell, RefCell};

/// The namespace of the database map record.
pub const NS_DB_MAP: Ns = 3;
/// The key of the database map record in [`NS_DB_MAP`].
pub const DB_MAP_KEY: &[u8] = b"map";
/// The first namespace of database 1 (database n ≥ 1 starts in namespace n + 3).
const FIRST_DB_NS: Ns = NS_DB_MAP + 1;

const _: () = assert!(keel_config::MAX_DATABASES == (Ns::MAX - FIRST_DB_NS) as usize + 2, "every database has a namespace");

/// The namespace database `db` starts in (before any SWAPDB): 0 for 0, `db + 3` else.
/// `db` must be below `keel_config::MAX_DATABASES`.
pub fn home_ns(db: u8) -> Ns {
    if db == 0 {
        keel_storage::NS_KV
    } else {
        db + (FIRST_DB_NS - 1)
    }
}

/// The database map of one shard.
pub(crate) struct Databases {
    /// Databases clients may select (the `databases` config key).
    count: usize,
    /// Entry i: the namespace of database i. At least `count` entries; more when a
    /// store written with a larger `databases` still maps them (kept as they are).
    map: RefCell<Vec<Ns>>,
    /// The `Store::reverts` count `map` was read at.
    at: Cell<u64>,
}

/// The map record cannot be read or is not a map of databases to their namespaces.
#[derive(Debug, thiserror::Error)]
#[error("bad database map record (namespace 3, key \"map\"): {0}")]
pub struct BadMap(String);

impl Databases {
    /// Reads the map from `store` (the identity map if it has none) for `count` databases.
    ///
    /// # Errors
    /// [`BadMap`]: a failed read, or a record that is not a permutation of the first
    /// namespaces of its length.
    pub async fn load(store: &Store, count: usize) -> Result<Databases, BadMap> {
        let at = store.reverts();
        let map = read_map(store, count).await?;
        Ok(Databases { count, map: RefCell::new(map), at: Cell::new(at) })
    }

    /// Databases clients may select.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The namespace of database `db` (below [`Databases::count`]).
    pub fn ns(&self, db: u8) -> Ns {
        self.map.borrow()[db as usize]
    }

    /// Whether the map must be read again from the store: it took back unacknowledged
    /// writes (perhaps a SWAPDB's) since the map was read or written.
    pub fn stale(&self, store: &Store) -> bool {
        store.reverts() != self.at.get()
    }

    /// Reads the map again (after the store took back writes).
    ///
    /// # Errors
    /// As [`Databases::load`]; the map in RAM stays as it was.
    pub async fn reload(&self, store: &Store) -> Result<(), BadMap> {
        let at = store.reverts();
        let map = read_map(store, self.count).await?;
        *self.map.borrow_mut() = map;
        self.at.set(at);
        Ok(())
    }

    /// The map with databases `a` and `b` swapped (the record value SWAPDB writes; the
    /// map in RAM is unchanged until [`Databases::set`]).
    pub fn swapped(&self, a: u8, b: u8) -> Vec<Ns> {
        let mut map = self.map.borrow().clone();
        map.swap(a as usize, b as usize);
        map
    }

    /// Makes `map` (from [`Databases::swapped`], just written) the map in RAM.
    pub fn set(&self, map: Vec<Ns>) {
        *self.map.borrow_mut() = map;
    }

    /// Back to the identity map (after FLUSHALL removed the record).
    pub fn reset(&self) {
        let mut map = self.map.borrow_mut();
        let n = map.len();
        *map = identity(n);
    }
}

fn identity(n: usize) -> Vec<Ns> {
    (0..n).map(|db| home_ns(db as u8)).collect()
}

async fn read_map(store: &Store, count: usize) -> Result<Vec<Ns>, BadMap> {
    let stored = match store.lookup(NS_DB_MAP, DB_MAP_KEY) {
        Lookup::Missing => None,
        Lookup::InMemory(v) => Some(v),
        Lookup::OnDisk => store.get(NS_DB_MAP, DB_MAP_KEY).await.map_err(|e| BadMap(e.to_string()))?,
    };
    let mut map = stored.unwrap_or_default();
    check_map(&map)?;
    if map.len() < count {
        let n = map.len();
        map.extend((n..count).map(|db| home_ns(db as u8)));
    }
    Ok(map)
}

/// A map must hold each of the home namespaces of its databases exactly once.
fn check_map(map: &[Ns]) -> Result<(), BadMap> {
    if map.len() > keel_config::MAX_DATABASES {
        return Err(BadMap(format!("{} databases, more than {}", map.len(), keel_config::MAX_DATABASES)));
    }
    let mut seen = [false; 256];
    for &ns in map {
        seen[ns as usize] = true;
    }
    if identity(map.len()).iter().any(|&ns| !seen[ns as usize]) {
        return Err(BadMap(format!("not a permutation of the databases' namespaces: {map:?}")));
    }
    Ok(())
}

/// Redis's text for a database index outside 0..databases (the protocol crate's).
pub use keel_protocol::num::ERR_DB_RANGE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_namespaces_keep_db0_and_skip_the_vector_and_map_namespaces() {
        assert_eq!(home_ns(0), 0);
        assert_eq!(home_ns(1), 4);
        assert_eq!(home_ns(252), 255);
        let all = identity(keel_config::MAX_DATABASES);
        assert!(check_map(&all).is_ok());
        assert!(!all.contains(&1) && !all.contains(&2) && !all.contains(&NS_DB_MAP));
    }

    #[test]
    fn a_map_must_be_a_permutation() {
        assert!(check_map(&[]).is_ok());
        assert!(check_map(&[5, 0, 4]).is_ok());
        assert!(check_map(&[0, 0, 4]).is_err());
        assert!(check_map(&[0, 3]).is_err());
        assert!(check_map(&[4]).is_err());
    }
}
