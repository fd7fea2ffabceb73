//! The client registry behind `CLIENT LIST`: every open connection of every router
//! executor, keyed by client id. The entry is the one place a connection's name and
//! library live (CLIENT GETNAME reads it); the connection updates it on SETNAME,
//! SETINFO, HELLO and SELECT (rare commands), and its activity time once per batch (one atomic
//! store), and leaves when it closes. A hand-off to a shard (`crate::handoff`) keeps the
//! entry.
//!
//! Line format: Redis's `CLIENT LIST` fields in Redis's order, without `fd` and `cmd`
//! (not tracked):
//! `id= addr= laddr= name= age=<s> idle=<s> flags=N db=<selected db> sub=0 psub=0 ssub=0 multi=-1
//! watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0
//! tot-mem=0 events=r user=default redir=-1 resp=<2|3> lib-name= lib-ver=`, one line per
//! client. keel has no pub/sub, MULTI, WATCH or ACL users yet, so those fields are
//! exact; the buffer and memory fields (`qbuf` … `tot-mem`) are not tracked and are 0.
//! Clients such as redis-py parse these fields as integers, so all of them are present.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What `CLIENT LIST` shows of one connection.
pub struct ClientInfo {
    pub id: u64,
    addr: String,
    laddr: String,
    /// When the connection was accepted.
    connected: Instant,
    /// Milliseconds after `connected` at which its last batch of commands arrived.
    active_ms: AtomicU64,
    meta: Mutex<Meta>,
}

#[derive(Default, Clone)]
struct Meta {
    name: Option<Vec<u8>>,
    lib_name: Option<Vec<u8>>,
    lib_ver: Option<Vec<u8>>,
    resp: u8,
    db: u8,
}

impl ClientInfo {
    /// A just-accepted connection: `addr`/`laddr` are the peer's and keel's `ip:port`;
    /// protocol RESP2, no name.
    pub fn new(id: u64, addr: String, laddr: String) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            connected: Instant::now(),
            active_ms: AtomicU64::new(0),
            meta: Mutex::new(Meta { resp: 2, ..Meta::default() }),
        }
    }

    /// Records activity now (called once per batch of commands).
    pub fn touch(&self) {
        self.active_ms.store(self.connected.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// The name set by CLIENT SETNAME or HELLO … SETNAME; `None` when unset or cleared.
    pub fn name(&self) -> Option<Vec<u8>> {
        self.meta().name.clone()
    }

    /// Sets (or with `None` clears) the name.
    pub fn set_name(&self, name: Option<Vec<u8>>) {
        self.meta().name = name;
    }

    /// CLIENT SETINFO LIB-NAME.
    pub fn set_lib_name(&self, v: Vec<u8>) {
        self.meta().lib_name = Some(v);
    }

    /// CLIENT SETINFO LIB-VER.
    pub fn set_lib_ver(&self, v: Vec<u8>) {
        self.meta().lib_ver = Some(v);
    }

    /// The selected database, shown as `db=`.
    pub fn set_db(&self, db: u8) {
        self.meta().db = db;
    }

    /// The protocol shown as `resp=` (2 or 3).
    pub fn set_resp(&self, resp: u8) {
        self.meta().resp = resp;
    }

    fn meta(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection's `CLIENT LIST` line, newline included.
    pub fn line(&self) -> String {
        let m = self.meta().clone();
        let text = |b: &Option<Vec<u8>>| b.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
        let age_ms = self.connected.elapsed().as_millis() as u64;
        let idle_ms = age_ms.saturating_sub(self.active_ms.load(Ordering::Relaxed));
        format!(
            "id={} addr={} laddr={} name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 watch=0 \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
             user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
            self.id,
            self.addr,
            self.laddr,
            text(&m.name),
            age_ms / 1000,
            idle_ms / 1000,
            m.db,
            m.resp,
            text(&m.lib_name),
            text(&m.lib_ver)
        )
    }
}

/// All open connections (shared by the router executors through `cmd::Shared`).
#[derive(Default)]
pub struct Registry {
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Registry {
    /// Registers an accepted connection.
    pub fn add(&self, c: Arc<ClientInfo>) {
        self.lock().insert(c.id, c);
    }

    /// Forgets a closed connection (no-op for an unknown id).
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Every open connection, in client id order.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientInfo>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_redis_field_names_and_the_registry_its_connections() {
        let r = Registry::default();
        let a = Arc::new(ClientInfo::new(7, "127.0.0.1:5000".into(), "127.0.0.1:6379".into()));
        a.set_name(Some(b"worker".to_vec()));
        a.set_lib_name(b"redis-py".to_vec());
        a.set_lib_ver(b"5.0".to_vec());
        a.set_resp(3);
        r.add(a.clone());
        r.add(Arc::new(ClientInfo::new(3, "127.0.0.1:5001".into(), "127.0.0.1:6379".into())));
        let lines: Vec<String> = r.all().iter().map(|c| c.line()).collect();
        let rest = "flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 \
                    rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r user=default redir=-1";
        assert_eq!(lines[0], format!("id=3 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 name= age=0 idle=0 {rest} resp=2 lib-name= lib-ver=\n"));
        assert_eq!(
            lines[1],
            format!("id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 name=worker age=0 idle=0 {rest} resp=3 lib-name=redis-py lib-ver=5.0\n")
        );
        r.remove(3);
        assert_eq!(r.all().len(), 1);
    }
}
