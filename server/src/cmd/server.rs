//! Server commands answered by the router: COMMAND, CONFIG GET, INFO.

use super::table::{lookup, public_commands, Route, Spec};
use super::{ConnState, Pending, Router};
use keel_protocol::Value;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;

fn command_info(s: &Spec) -> Value {
    Value::Array(vec![
        Value::bulk(s.name),
        Value::Integer(s.arity as i64),
        Value::Set(s.flags.iter().map(|f| Value::Simple((*f).into())).collect()),
        Value::Integer(s.first_key as i64),
        Value::Integer(s.last_key as i64),
        Value::Integer(s.step as i64),
        Value::Set(vec![Value::Simple(format!("@{}", s.group))]),
        Value::Set(vec![]),
        Value::Array(vec![]),
        Value::Array(vec![]),
    ])
}

fn command_docs(s: &Spec) -> Value {
    Value::Map(vec![
        (Value::bulk("summary"), Value::bulk(s.summary)),
        (Value::bulk("since"), Value::bulk("0.1.0")),
        (Value::bulk("group"), Value::bulk(s.group)),
    ])
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO [name…]`, `COMMAND DOCS [name…]`, `COMMAND LIST`.
pub fn command(argv: &[Vec<u8>]) -> Value {
    // Internal commands (router → shard) are not the clients' business.
    let find = |name: &[u8]| lookup(name).filter(|s| s.route != Route::Internal);
    if argv.len() == 1 {
        return Value::Array(public_commands().map(command_info).collect());
    }
    let sub = argv[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"COUNT" if argv.len() == 2 => Value::Integer(public_commands().count() as i64),
        b"LIST" if argv.len() == 2 => Value::Array(public_commands().map(|s| Value::bulk(s.name)).collect()),
        b"INFO" => {
            if argv.len() == 2 {
                return Value::Array(public_commands().map(command_info).collect());
            }
            Value::Array(argv[2..].iter().map(|n| find(n).map(command_info).unwrap_or(Value::NullArray)).collect())
        }
        b"DOCS" => {
            let specs: Vec<_> = if argv.len() == 2 {
                public_commands().collect()
            } else {
                argv[2..].iter().filter_map(|n| find(n)).collect()
            };
            Value::Map(specs.into_iter().map(|s| (Value::bulk(s.name), command_docs(s))).collect())
        }
        b"COUNT" | b"LIST" => Value::err(format!(
            "ERR wrong number of arguments for 'command|{}' command",
            String::from_utf8_lossy(&argv[1]).to_ascii_lowercase()
        )),
        _ => Value::err(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}

/// Glob match for CONFIG GET patterns (`*` and `?`; parameter names are plain ASCII).
fn simple_glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| simple_glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && simple_glob(rest, &s[1..]),
        Some((c, rest)) => s.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && simple_glob(rest, &s[1..]),
    }
}

/// The parameters CONFIG GET reports (what redis-benchmark and clients ask for).
fn config_params(rt: &Router) -> Vec<(&'static str, String)> {
    let cfg = &rt.shared.cfg;
    let (appendonly, appendfsync) = match cfg.durability {
        keel_config::Durability::Relaxed => ("yes", "no"),
        _ => ("yes", "always"),
    };
    vec![
        ("appendfsync", appendfsync.into()),
        ("appendonly", appendonly.into()),
        ("bind", cfg.resp_addr.ip().to_string()),
        ("client-query-buffer-limit", cfg.client_query_buffer_limit.to_string()),
        ("databases", cfg.databases.to_string()),
        ("dir", cfg.data_dir.display().to_string()),
        ("enable-debug-command", if cfg.enable_debug_command { "yes" } else { "no" }.into()),
        ("maxclients", "10000".into()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("port", rt.shared.port.to_string()),
        ("proto-max-bulk-len", cfg.max_bulk_len.to_string()),
        ("save", String::new()),
        ("keel-cache-bytes", cfg.cache_bytes.to_string()),
        ("keel-durability", cfg.durability.as_str().into()),
        ("keel-inflight-bytes", cfg.inflight_bytes.to_string()),
        ("keel-shards", cfg.shards.to_string()),
    ]
}

/// `CONFIG GET pattern [pattern …]` → map of matching parameters; `CONFIG RESETSTAT`.
pub fn config(rt: &Rc<Router>, argv: &[Vec<u8>]) -> Value {
    let sub = argv[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" if argv.len() >= 3 => {
            let params = config_params(rt);
            let mut out = Vec::new();
            for (k, v) in &params {
                if argv[2..].iter().any(|p| simple_glob(p, k.as_bytes())) {
                    out.push((Value::bulk(k), Value::bulk(v)));
                }
            }
            Value::Map(out)
        }
        b"RESETSTAT" if argv.len() == 2 => Value::ok(),
        b"SET" | b"REWRITE" => Value::err(format!(
            "ERR CONFIG {} is not supported by keel; use the config file or flags",
            String::from_utf8_lossy(&sub)
        )),
        b"GET" | b"RESETSTAT" => Value::err(format!(
            "ERR wrong number of arguments for 'config|{}' command",
            String::from_utf8_lossy(&argv[1]).to_ascii_lowercase()
        )),
        _ => Value::err(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}

/// `DEBUG PANIC` (this router executor panics) and `DEBUG PANIC-SHARD key` (the key's
/// shard panics), for testing what a panic does; refused, with Redis's text, unless
/// `enable_debug_command` is set (Redis's `enable-debug-command`, off by default).
pub fn debug(rt: &Rc<Router>, conn: &ConnState, argv: &[Vec<u8>]) -> Pending {
    if !rt.shared.cfg.enable_debug_command {
        return Pending::Ready(Value::err(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
             you can run it from a local connection, otherwise you need to set this option in the \
             configuration file, and then restart the server.",
        ));
    }
    let sub = argv[1].to_ascii_uppercase();
    match (sub.as_slice(), argv.len()) {
        (b"PANIC", 2) => panic!("DEBUG PANIC requested by client {}", conn.info.id),
        (b"PANIC-SHARD", 3) => {
            let s = rt.shard_of(&argv[2]);
            tracing::warn!("DEBUG PANIC-SHARD: client {} asks shard {s} to panic", conn.info.id);
            Pending::One(rt.links[s].call(&[&b"KEEL.DEBUG"[..], b"PANIC"]))
        }
        _ => Pending::Ready(Value::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&argv[1])
        ))),
    }
}

const SECTIONS: &[&str] = &["server", "clients", "memory", "persistence", "stats", "keyspace"];

/// `INFO [section …]`: server, clients, memory, persistence, stats, keyspace (`all`,
/// `everything` and `default` give them all). Shard figures come from `KEEL.INFO`.
pub fn info(rt: &Rc<Router>, argv: &[Vec<u8>]) -> Pending {
    let mut want: Vec<String> = argv[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    if want.is_empty() || want.iter().any(|w| w == "all" || w == "everything" || w == "default") {
        want = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let rt2 = rt.clone();
    let calls: Vec<_> = rt.links.iter().map(|l| l.call(&[b"KEEL.INFO"])).collect();
    Pending::Many(Box::pin(async move {
        let mut per_shard = Vec::new();
        for c in calls {
            per_shard.push(c.await);
        }
        Value::Verbatim("txt".into(), render_info(&rt2, &want, &per_shard).into_bytes())
    }))
}

fn shard_fields(v: &Value) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    if let Value::Map(pairs) = v {
        for (k, v) in pairs {
            if let (Value::Bulk(k), Value::Integer(i)) = (k, v) {
                m.insert(String::from_utf8_lossy(k).into_owned(), *i);
            }
        }
    }
    m
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

fn render_info(rt: &Router, want: &[String], shards: &[Value]) -> String {
    use std::fmt::Write;
    let sh = &rt.shared;
    let cfg = &sh.cfg;
    let fields: Vec<_> = shards.iter().map(shard_fields).collect();
    let up = shards.iter().filter(|v| !v.is_error()).count();
    let sum = |k: &str| fields.iter().map(|f| f.get(k).copied().unwrap_or(0)).sum::<i64>();
    let mut s = String::new();
    for sec in SECTIONS.iter().filter(|sec| want.iter().any(|w| w == *sec)) {
        match *sec {
            "server" => {
                let _ = write!(
                    s,
                    "# Server\r\nredis_version:{}\r\nkeel_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nshards:{}\r\nshards_up:{}\r\nrouter_threads:{}\r\nexecutable:{}\r\nconfig_file:\r\n\r\n",
                    crate::router::REDIS_COMPAT_VERSION,
                    env!("CARGO_PKG_VERSION"),
                    std::env::consts::OS,
                    std::env::consts::ARCH,
                    std::process::id(),
                    sh.run_id,
                    sh.port,
                    sh.started.elapsed().as_secs(),
                    cfg.shards,
                    up,
                    cfg.router_threads,
                    std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                );
            }
            "clients" => {
                let _ = write!(
                    s,
                    "# Clients\r\nconnected_clients:{}\r\nmaxclients:10000\r\nblocked_clients:0\r\n\r\n",
                    sh.connected_clients.load(Ordering::Relaxed)
                );
            }
            "memory" => {
                let router_rss = rss_bytes() as i64;
                let shard_rss = sum("rss_bytes");
                let total = router_rss + shard_rss;
                let _ = write!(
                    s,
                    "# Memory\r\nused_memory:{total}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{total}\r\nused_memory_router_rss:{router_rss}\r\nused_memory_shards_rss:{shard_rss}\r\nused_memory_vector_indexes:{}\r\nused_memory_keydir:{}\r\ncache_bytes:{}\r\ncache_used_bytes:{}\r\ncache_entries:{}\r\ninflight_bytes:{}\r\ninflight_used_bytes:{}\r\ninflight_peak_bytes:{}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n",
                    total as f64 / (1 << 20) as f64,
                    sum("index_memory_bytes"),
                    sum("keydir_bytes"),
                    sum("cache_bytes"),
                    sum("cache_used_bytes"),
                    sum("cache_entries"),
                    sum("inflight_bytes"),
                    sum("inflight_used_bytes"),
                    // A peak per shard, not a sum: the largest of them.
                    fields.iter().map(|f| f.get("inflight_peak_bytes").copied().unwrap_or(0)).max().unwrap_or(0),
                );
            }
            "persistence" => {
                let restarts: u64 = sh.shard_restarts.iter().map(|r| r.load(Ordering::Relaxed)).sum();
                let _ = write!(
                    s,
                    "# Persistence\r\nloading:0\r\naof_enabled:1\r\nrdb_bgsave_in_progress:0\r\nkeel_durability:{}\r\nvlog_segments:{}\r\nvlog_disk_bytes:{}\r\nvlog_live_bytes:{}\r\nvlog_dead_bytes:{}\r\nvlog_compactions:{}\r\nshard_restarts:{restarts}\r\n\r\n",
                    cfg.durability.as_str(),
                    sum("vlog_segments"),
                    sum("vlog_disk_bytes"),
                    sum("vlog_live_bytes"),
                    sum("vlog_dead_bytes"),
                    sum("compactions"),
                );
            }
            "stats" => {
                let _ = write!(
                    s,
                    "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nexpired_keys:{}\r\nshard_handoffs:{}\r\ncache_hits:{}\r\ncache_misses:{}\r\ncache_evictions:{}\r\nvector_searches:{}\r\nvector_rerank_reads:{}\r\nvector_rerank_skipped:{}\r\n\r\n",
                    sh.total_connections.load(Ordering::Relaxed),
                    sh.total_commands.load(Ordering::Relaxed),
                    sum("expired_keys"),
                    sh.shard_handoffs.load(Ordering::Relaxed),
                    sum("cache_hits"),
                    sum("cache_misses"),
                    sum("cache_evictions"),
                    sum("vector_searches"),
                    sum("vector_rerank_reads"),
                    sum("vector_rerank_skipped")
                );
            }
            "keyspace" => {
                s.push_str("# Keyspace\r\n");
                // One line per non-empty database, as Redis; shards report `dbN.keys`,
                // `dbN.expires` and `dbN.avg_ttl` for their non-empty databases. avg_ttl:
                // the shards' means weighted by their keys with a TTL.
                for db in 0..cfg.databases {
                    let keys = sum(&format!("db{db}.keys"));
                    if keys > 0 {
                        let expires = sum(&format!("db{db}.expires"));
                        let weighted: i128 = fields
                            .iter()
                            .map(|f| f.get(&format!("db{db}.avg_ttl")).copied().unwrap_or(0) as i128 * f.get(&format!("db{db}.expires")).copied().unwrap_or(0) as i128)
                            .sum();
                        let avg_ttl = if expires > 0 { weighted / expires as i128 } else { 0 };
                        let _ = write!(s, "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n");
                    }
                }
                let _ = write!(s, "vector_indexes:{}\r\nvectors:{}\r\n\r\n", sum("indexes"), sum("vectors"));
            }
            _ => {}
        }
    }
    while s.ends_with("\r\n\r\n") {
        s.truncate(s.len() - 2);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::simple_glob;

    #[test]
    fn config_glob() {
        assert!(simple_glob(b"save", b"save"));
        assert!(simple_glob(b"*", b"appendonly"));
        assert!(simple_glob(b"append*", b"appendonly"));
        assert!(simple_glob(b"APPENDONLY", b"appendonly"));
        assert!(!simple_glob(b"max?", b"maxmemory"));
    }
}
