//! The client registry behind `CLIENT LIST`: every open connection of every router
//! executor, keyed by client id. A connection registers when accepted, updates its entry
//! when its name, library or protocol changes (rare commands) and its activity time once
//! per batch (one atomic store), and leaves when it closes. A move to another executor
//! (`crate::affinity`) keeps the entry.
//!
//! Line format: Redis's `CLIENT LIST` fields in Redis's order, without `fd` and `cmd`
//! (not tracked):
//! `id= addr= laddr= name= age=<s> idle=<s> flags=N db=0 sub=0 psub=0 ssub=0 multi=-1
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
    name: String,
    lib_name: String,
    lib_ver: String,
    resp: u8,
}

impl ClientInfo {
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

    /// Publishes the connection's name, library name and version, and protocol.
    pub fn set_meta(&self, name: Option<&[u8]>, lib_name: Option<&[u8]>, lib_ver: Option<&[u8]>, resp: u8) {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        *self.meta.lock().unwrap_or_else(|p| p.into_inner()) =
            Meta { name: text(name), lib_name: text(lib_name), lib_ver: text(lib_ver), resp };
    }

    /// The connection's `CLIENT LIST` line, newline included.
    pub fn line(&self) -> String {
        let m = self.meta.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let age_ms = self.connected.elapsed().as_millis() as u64;
        let idle_ms = age_ms.saturating_sub(self.active_ms.load(Ordering::Relaxed));
        format!(
            "id={} addr={} laddr={} name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 \
             qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
             user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
            self.id,
            self.addr,
            self.laddr,
            m.name,
            age_ms / 1000,
            idle_ms / 1000,
            m.resp,
            m.lib_name,
            m.lib_ver
        )
    }
}

/// All open connections (shared by the router executors through `cmd::Shared`).
#[derive(Default)]
pub struct Registry {
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Registry {
    pub fn add(&self, c: Arc<ClientInfo>) {
        self.lock().insert(c.id, c);
    }

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
        a.set_meta(Some(b"worker"), Some(b"redis-py"), Some(b"5.0"), 3);
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
