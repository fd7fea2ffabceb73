//! The `keel` process from the outside: flags, config errors (exit 2 with one
//! `keel: …` line), the data dir's shard count, graceful shutdown and restart.

mod common;

use common::check::{check, ok, s, Reply};
use common::suite::{self, index_list, list_line, Proto};
use common::{blob, run_keel, run_keel_with_stdin, Scratch, Server};
use redis::Value;

#[test]
fn help_and_version_exit_0() {
    let out = run_keel(&["--help"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    for flag in ["--data-dir", "--resp-addr", "--shards", "--durability", "--config"] {
        assert!(out.stdout.contains(flag), "--help lacks {flag}:\n{}", out.stdout);
    }
    let out = run_keel(&["--version"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{out:?}");
}

/// Runs keel with `args` (plus a scratch data dir unless `args` has one) and asserts it
/// exits 2 with exactly one stderr line starting `keel: ` that contains `mentions`.
#[track_caller]
fn check_config_error(scratch: &Scratch, args: &[&str], mentions: &[&str]) -> String {
    let data = scratch.data_dir().display().to_string();
    let mut all: Vec<&str> = Vec::new();
    if !args.contains(&"--data-dir") {
        all.extend(["--data-dir", data.as_str()]);
    }
    if !args.contains(&"--resp-addr") {
        all.extend(["--resp-addr", "127.0.0.1:0"]);
    }
    all.extend(["--router-threads", "1"]);
    all.extend(args);
    let out = run_keel(&all);
    assert_eq!(out.code(), Some(2), "keel {all:?} must exit 2: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "keel {all:?} must print one line on stderr, got:\n{}", out.stderr);
    assert!(lines[0].starts_with("keel: "), "{:?}", lines[0]);
    for m in mentions {
        assert!(lines[0].contains(m), "{:?} should mention {m:?}", lines[0]);
    }
    lines[0].to_string()
}

#[test]
fn bad_config_exits_2_with_one_line() {
    let scratch = Scratch::new();
    let cfg = scratch.path().join("keel.toml");
    std::fs::write(&cfg, "shards = 2\nbogus_key = 1\n").unwrap();
    let cfg_s = cfg.display().to_string();
    check_config_error(&scratch, &["--config", &cfg_s], &["bogus_key"]);

    std::fs::write(&cfg, "shards = \"two\"\n").unwrap();
    check_config_error(&scratch, &["--config", &cfg_s], &[]);
    std::fs::write(&cfg, "durability = \"sometimes\"\n").unwrap();
    check_config_error(&scratch, &["--config", &cfg_s], &[]);
    std::fs::write(&cfg, "shards = [\n").unwrap();
    check_config_error(&scratch, &["--config", &cfg_s], &[]);
    let missing = scratch.path().join("missing.toml").display().to_string();
    check_config_error(&scratch, &["--config", &missing], &["missing.toml"]);

    check_config_error(&scratch, &["--shards", "2", "--durability", "sometimes"], &["sometimes"]);
    check_config_error(&scratch, &["--shards", "0"], &[]);
    check_config_error(&scratch, &["--shards", "2", "--resp-addr", "not-an-address"], &[]);
    // Nothing was started, so nothing was written to the data dir.
    assert!(!scratch.data_dir().join("keel.meta").exists());

    // A valid file works, and flags override it.
    std::fs::write(&cfg, "shards = 1\ndurability = \"relaxed\"\n").unwrap();
    let srv = Server::start(&scratch, &["--config", &cfg_s, "--shards", "2"]);
    let mut c = srv.con();
    let got = suite::config_pairs(ok(&mut c, &["CONFIG", "GET", "keel-*"]), Proto::Resp2);
    assert!(got.contains(&("keel-shards".into(), "2".into())), "{got:?}");
    assert!(got.contains(&("keel-durability".into(), "relaxed".into())), "{got:?}");
    assert_eq!(srv.shard_pids().len(), 2);
    srv.stop();
}

/// The three limit keys: validated (one line, exit 2), reported by CONFIG GET, and
/// written to `keel.effective.toml`, which is TOML that reads back as the same config
/// even when the data dir's name holds a quote and a backslash.
#[test]
fn limit_keys_and_the_effective_config_file() {
    let scratch = Scratch::new();
    let cfg = scratch.path().join("keel.toml");
    let cfg_s = cfg.display().to_string();
    for (bad, mentions) in [
        ("client_query_buffer_limit = 1024\n", "client_query_buffer_limit 1024"),
        ("max_frame_len = 4294967296\n", "max_frame_len 4294967296"),
        ("enable_debug_command = \"maybe\"\n", "enable_debug_command"),
    ] {
        std::fs::write(&cfg, bad).unwrap();
        check_config_error(&scratch, &["--config", &cfg_s], &[mentions]);
    }
    assert!(!scratch.data_dir().exists(), "a refused start creates nothing");

    std::fs::write(&cfg, "client_query_buffer_limit = 2097152\nmax_frame_len = 8388608\nenable_debug_command = true\n").unwrap();
    let data_dir = scratch.path().join("q\"b\\s");
    let srv = Server::start_with_data_dir(&scratch, &data_dir, &["--config", &cfg_s]);
    let mut c = srv.con();
    let mut got = suite::config_pairs(ok(&mut c, &["CONFIG", "GET", "client-query-buffer-limit", "enable-debug-command"]), Proto::Resp2);
    got.sort();
    assert_eq!(
        got,
        vec![("client-query-buffer-limit".into(), "2097152".into()), ("enable-debug-command".into(), "yes".into())]
    );
    check(&mut c, &["SET", "a:1", "x"], Reply::Ok);
    check(&mut c, &["GET", "a:1"], s("x"));

    let text = std::fs::read_to_string(data_dir.join("keel.effective.toml")).unwrap();
    assert!(!data_dir.join("keel.effective.toml.tmp").exists());
    let file = keel_config::FileConfig::from_toml(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let back = keel_config::Config::resolve(file, keel_config::Overrides::default(), 1).unwrap();
    assert_eq!(back.data_dir, data_dir, "{text}");
    assert_eq!(back.resp_addr, srv.addr, "the resolved port is written");
    assert_eq!((back.shards, back.router_threads), (2, 1));
    assert_eq!((back.client_query_buffer_limit, back.max_frame_len, back.enable_debug_command), (2 << 20, 8 << 20, true));
    assert!(common::read_lossy(&srv.log).contains("effective config written to"), "{}", srv.log_tail());
    srv.stop();
}

/// `keel shard` reads its configuration as TOML from stdin; what it cannot read is one
/// `keel shard: …` line and exit code 2, and nothing is created.
#[test]
fn shard_subcommand_refuses_a_malformed_config() {
    let scratch = Scratch::new();
    let dir = scratch.path().join("shard-000");
    let socket = dir.join("shard.sock");
    let valid = format!(
        "id = 0\nn_shards = 1\ndir = {:?}\nsocket = {:?}\nmax_bulk_len = 1048576\nclient_query_buffer_limit = 1048576\nmax_frame_len = 1074790400\ndatabases = 16\ninflight_bytes = 8388608\n\n[store]\nsegment_bytes = 1048576\ndurability = \"kernel\"\ninline_value_max = 16\ncompaction_dead_ratio = 0.5\n",
        dir.display().to_string(),
        socket.display().to_string()
    );
    for (input, mentions) in [
        (String::new(), "missing field"),
        ("id = [\n".to_string(), ""),
        (valid.replace("n_shards = 1", "n_shards = \"one\""), ""),
        (format!("bogus = 1\n{valid}"), "bogus"),
        (valid.replace("id = 0", "id = 1"), "shard id 1"),
        (valid.replace("databases = 16", "databases = 254"), "databases 254"),
        (valid.replace("\"kernel\"", "\"sometimes\""), "sometimes"),
    ] {
        let out = run_keel_with_stdin(&["shard"], Some(input.as_bytes()));
        assert_eq!(out.code(), Some(2), "{input:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{input:?}: one line on stderr, got:\n{}", out.stderr);
        assert!(lines[0].starts_with("keel shard: invalid configuration on stdin: "), "{:?}", lines[0]);
        assert!(lines[0].contains(mentions), "{:?} should mention {mentions:?}", lines[0]);
        assert!(!dir.exists(), "{input:?}: a refused configuration creates nothing");
    }
}

#[test]
fn port_in_use_exits_2() {
    let scratch = Scratch::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    check_config_error(&scratch, &["--shards", "2", "--resp-addr", &addr], &[&addr]);
    drop(holder);
}

#[test]
fn uncreatable_data_dir_exits_2() {
    let scratch = Scratch::new();
    let file = scratch.path().join("f");
    std::fs::write(&file, "not a dir").unwrap();
    let under = file.join("data").display().to_string();
    check_config_error(&scratch, &["--shards", "2", "--data-dir", &under], &[]);
}

#[test]
fn data_dir_in_use_exits_2() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    check_config_error(&scratch, &["--shards", "2"], &["in use"]);
    // The running server is unaffected.
    let mut c = srv.con();
    check(&mut c, &["SET", "a:1", "x"], Reply::Ok);
    check(&mut c, &["GET", "a:1"], s("x"));
    srv.stop();
}

#[test]
fn restart_with_another_shard_count_is_refused() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &["--shards", "2"]);
    let mut c = srv.con();
    check(&mut c, &["SET", "a:1", "kept"], Reply::Ok);
    drop(c);
    srv.stop();
    check_config_error(&scratch, &["--shards", "1"], &["2", "shards"]);
    check_config_error(&scratch, &["--shards", "3"], &["2", "shards"]);
    // The refused starts changed nothing.
    let srv = Server::start(&scratch, &["--shards", "2"]);
    check(&mut srv.con(), &["GET", "a:1"], s("kept"));
    srv.stop();
}

/// Writes a mix of keys across both shards and returns what each should read back.
fn write_kv(c: &mut redis::Connection, tag: &str) -> Vec<(String, Option<String>)> {
    let mut want = Vec::new();
    for t in 0..6 {
        let mut mset = vec!["MSET".to_string()];
        for j in 0..20 {
            mset.push(format!("{tag}{t}:k{j}"));
            mset.push(format!("{tag}-{t}-{j}"));
        }
        check(c, &mset, Reply::Ok);
        let base = want.len();
        for j in 0..20 {
            want.push((format!("{tag}{t}:k{j}"), Some(format!("{tag}-{t}-{j}"))));
        }
        check(c, &["SET", &format!("{tag}{t}:k0"), "overwritten"], Reply::Ok);
        want[base].1 = Some("overwritten".into());
        check(c, &["DEL", &format!("{tag}{t}:k1")], Reply::Int(1));
        want[base + 1].1 = None;
        for _ in 0..=t {
            ok(c, &["INCR", &format!("{tag}{t}:n")]);
        }
        want.push((format!("{tag}{t}:n"), Some((t + 1).to_string())));
        check(c, &["APPEND", &format!("{tag}{t}:k2"), "+"], Reply::Int(format!("{tag}-{t}-2+").len() as i64));
        want[base + 2].1 = Some(format!("{tag}-{t}-2+"));
    }
    want
}

#[track_caller]
fn check_kv(c: &mut redis::Connection, want: &[(String, Option<String>)]) {
    let mut bad = Vec::new();
    for (k, v) in want {
        let got = ok(c, &["GET", k.as_str()]);
        let expect = match v {
            Some(v) => Value::BulkString(v.clone().into_bytes()),
            None => Value::Nil,
        };
        if got != expect {
            bad.push(format!("{k}: got {got:?}, want {v:?}"));
        }
    }
    assert!(bad.is_empty(), "{} of {} keys wrong after restart:\n  {}", bad.len(), want.len(), bad.join("\n  "));
}

#[test]
fn sigterm_exits_0_and_relaxed_writes_survive() {
    let scratch = Scratch::new();
    // relaxed acks before fdatasync; a graceful stop must still sync everything.
    let srv = Server::start(&scratch, &["--durability", "relaxed"]);
    let want = write_kv(&mut srv.con(), "r");
    srv.stop();
    let srv = Server::start(&scratch, &["--durability", "relaxed"]);
    let mut c = srv.con();
    check_kv(&mut c, &want);
    check(&mut c, &["DBSIZE"], Reply::Int(want.iter().filter(|(_, v)| v.is_some()).count() as i64));
    drop(c);
    srv.stop();
}

/// The README's run command uses the default, relative data dir `./data`.
#[test]
fn default_relative_data_dir_serves_and_persists() {
    let scratch = Scratch::new();
    let srv = Server::start_default_data_dir(&scratch);
    let want = write_kv(&mut srv.con(), "d");
    srv.stop();
    assert!(scratch.path().join("data/keel.meta").is_file(), "data dir is not ./data under the working directory");
    let srv = Server::start_default_data_dir(&scratch);
    check_kv(&mut srv.con(), &want);
    srv.stop();
}

#[test]
fn sigint_exits_0_and_writes_survive() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    let want = write_kv(&mut srv.con(), "i");
    srv.stop_sigint();
    let srv = Server::start(&scratch, &[]);
    check_kv(&mut srv.con(), &want);
    srv.stop();
}

/// A small deterministic generator (xorshift64*), so the vectors are the same every run.
struct Rng(u64);

impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn vec(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.f32()).collect()
    }
}

/// A search: index, k, query.
type Query = (String, usize, Vec<f32>);

struct VectorState {
    list: Vec<String>,
    /// Each query with its raw reply.
    searches: Vec<(Query, Value)>,
}

fn vector_state(c: &mut redis::Connection, queries: &[Query]) -> VectorState {
    let searches = queries
        .iter()
        .map(|(idx, k, q)| {
            let argv: Vec<Vec<u8>> = vec![b"SKEG.VSEARCH".to_vec(), idx.as_str().into(), k.to_string().into(), b"10".to_vec(), blob(q)];
            ((idx.clone(), *k, q.clone()), ok(c, &argv))
        })
        .collect();
    VectorState { list: index_list(c), searches }
}

#[test]
fn graceful_restart_keeps_kv_and_vector_indexes() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con();
    let want = write_kv(&mut c, "g");

    // Two indexes on different shards, one dropped index, deletes and replacements.
    let a = common::tenants_on("va", 0, 2, 1).remove(0) + ":idx";
    let b = common::tenants_on("vb", 1, 2, 1).remove(0) + ":idx";
    let gone = common::tenants_on("vc", 1, 2, 1).remove(0) + ":idx";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    check(&mut c, &["SKEG.VINDEX.CREATE", a.as_str(), "8", "f32", "flat"], Reply::Ok);
    check(&mut c, &["SKEG.VINDEX.CREATE", b.as_str(), "16", "f32", "flat"], Reply::Ok);
    check(&mut c, &["SKEG.VINDEX.CREATE", gone.as_str(), "4", "f32", "flat"], Reply::Ok);
    for id in 0..60u64 {
        suite::vset(&mut c, &a, id, &rng.vec(8)).unwrap();
        suite::vset(&mut c, &b, id * 1000, &rng.vec(16)).unwrap();
    }
    suite::vset(&mut c, &gone, 1, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    for id in [3u64, 17, 59] {
        ok(&mut c, &["SKEG.VDEL", a.as_str(), &id.to_string()]);
    }
    for id in [5u64, 6] {
        suite::vset(&mut c, &a, id, &rng.vec(8)).unwrap();
    }
    check(&mut c, &["SKEG.VINDEX.DROP", gone.as_str()], Reply::Ok);
    let mut want_list = vec![list_line(&a, 8, 57), list_line(&b, 16, 60)];
    want_list.sort();
    assert_eq!(index_list(&mut c), want_list);
    let queries: Vec<Query> = (0..6)
        .map(|i| if i % 2 == 0 { (a.clone(), 10, rng.vec(8)) } else { (b.clone(), 25, rng.vec(16)) })
        .collect();
    let before = vector_state(&mut c, &queries);
    for (_, v) in &before.searches {
        let Value::Array(items) = v else { panic!("{v:?}") };
        assert!(items.len() >= 20, "{v:?}");
    }
    drop(c);
    srv.stop();

    for round in 0..2 {
        let srv = Server::start(&scratch, &[]);
        let mut c = srv.con();
        check_kv(&mut c, &want);
        let after = vector_state(&mut c, &queries);
        assert_eq!(after.list, before.list, "SKEG.VINDEX.LIST after restart {round}");
        for ((q, v0), (_, v1)) in before.searches.iter().zip(&after.searches) {
            assert_eq!(v0, v1, "search {} k={} differs after restart {round}", q.0, q.1);
        }
        let r = suite::vset(&mut c, &gone, 1, &[1.0, 2.0, 3.0, 4.0]);
        assert!(r.is_err(), "dropped index {gone} is back after restart: {r:?}");
        drop(c);
        srv.stop();
    }

    // The restarted indexes accept writes, and those survive too.
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con();
    suite::vset(&mut c, &a, 1_000_000, &[1.0; 8]).unwrap();
    assert!(index_list(&mut c).contains(&list_line(&a, 8, 58)));
    drop(c);
    srv.stop();
    let srv = Server::start(&scratch, &[]);
    let mut c = srv.con();
    assert!(index_list(&mut c).contains(&list_line(&a, 8, 58)));
    let top = suite::search(&mut c, Proto::Resp2, &a, 1, &[1.0; 8]);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].0, 1_000_000);
    assert!((top[0].1 - 1.0).abs() < 1e-5, "{top:?}");
    drop(c);
    srv.stop();
}
