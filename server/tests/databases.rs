//! Numbered databases across restarts and crashes, and the `databases` config key:
//! SWAPDB, MOVE and FLUSHDB are durable (a graceful restart, SIGKILL of one shard,
//! SIGKILL of the whole group), and a configured count is what SELECT accepts.

mod common;

use common::check::{check, err, ok, s, Reply};
use common::{suite, Scratch, Server, Signal};
use std::time::{Duration, Instant};

/// Keys on both shards, several tenants each.
fn keys() -> Vec<String> {
    let tenants: Vec<String> = common::tenants_on("dur", 0, 2, 2).into_iter().chain(common::tenants_on("dur", 1, 2, 2)).collect();
    tenants.iter().flat_map(|t| (0..4).map(move |i| format!("{t}:k{i}"))).collect()
}

/// Database n holds `keys()` with values `n:key` for n in 1..=4; then SWAPDB 1 2, MOVE
/// of the first key from database 3 to 9, FLUSHDB of database 4.
fn populate(srv: &Server) {
    let mut c = srv.con();
    for db in 1..=4 {
        check(&mut c, &["SELECT", &db.to_string()], Reply::Ok);
        for k in keys() {
            check(&mut c, &["SET", k.as_str(), &format!("{db}:{k}")], Reply::Ok);
        }
    }
    check(&mut c, &["SWAPDB", "1", "2"], Reply::Ok);
    check(&mut c, &["SELECT", "3"], Reply::Ok);
    check(&mut c, &["MOVE", keys()[0].as_str(), "9"], Reply::Int(1));
    check(&mut c, &["SELECT", "4"], Reply::Ok);
    check(&mut c, &["FLUSHDB"], Reply::Ok);
}

/// What [`populate`] left, read on a new connection.
#[track_caller]
fn verify(srv: &Server, when: &str) {
    let mut c = srv.con();
    let keys = keys();
    let n = keys.len() as i64;
    // Database 1 holds what was written to 2, and the other way round.
    for (db, written_as, size) in [("1", "2", n), ("2", "1", n), ("3", "3", n - 1), ("4", "", 0), ("9", "3", 1), ("0", "", 0)] {
        check(&mut c, &["SELECT", db], Reply::Ok);
        assert_eq!(ok(&mut c, &["DBSIZE"]), redis::Value::Int(size), "DBSIZE of db {db} {when}");
        for (i, k) in keys.iter().enumerate() {
            let there = match db {
                "1" | "2" => true,
                "3" => i != 0,
                "9" => i == 0,
                _ => false,
            };
            let want = if there { s(&format!("{written_as}:{k}")) } else { Reply::Nil };
            check(&mut c, &["GET", k.as_str()], want);
        }
    }
    let lines = suite::keyspace_lines(&mut c);
    assert_eq!(
        lines,
        vec![
            format!("db1:keys={n},expires=0,avg_ttl=0"),
            format!("db2:keys={n},expires=0,avg_ttl=0"),
            format!("db3:keys={},expires=0,avg_ttl=0", n - 1),
            "db9:keys=1,expires=0,avg_ttl=0".to_string()
        ],
        "INFO keyspace {when}"
    );
}

#[test]
fn swapdb_move_and_flushdb_survive_restart_and_sigkill() {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    populate(&srv);
    verify(&srv, "before any restart");

    // SIGKILL of one shard: the supervisor restarts it, which recovers its map.
    let pid = srv.shard_pid(1);
    common::kill(pid, Signal::KILL);
    assert!(common::wait_gone(pid, Duration::from_secs(10)), "shard 1 survived SIGKILL");
    let t0 = Instant::now();
    let mut c = srv.con();
    while common::check::run(&mut c, &["DBSIZE"]).is_err() || srv.shard_pid(1) == pid {
        assert!(t0.elapsed() < Duration::from_secs(30), "shard 1 not back\n{}", srv.log_tail());
        std::thread::sleep(Duration::from_millis(20));
    }
    verify(&srv, "after SIGKILL of shard 1");

    // A second SWAPDB back and forth, then SIGKILL of the whole group.
    check(&mut c, &["SWAPDB", "2", "1"], Reply::Ok);
    check(&mut c, &["SWAPDB", "1", "2"], Reply::Ok);
    srv.kill9();
    let srv = Server::start(&scratch, &[]);
    verify(&srv, "after SIGKILL of the group");

    srv.stop();
    let srv = Server::start(&scratch, &[]);
    verify(&srv, "after a graceful restart");
    srv.stop();
}

/// `databases = 4` in the config file: SELECT 0..3, not 4; CONFIG GET says 4; a value
/// out of 1..=253 is refused at start with one line, exit 2.
#[test]
fn the_databases_config_key() {
    let scratch = Scratch::new();
    let cfg = scratch.path().join("keel.toml");
    for bad in ["0", "254"] {
        std::fs::write(&cfg, format!("databases = {bad}\n")).unwrap();
        let out = common::run_keel(&["--config", &cfg.display().to_string(), "--data-dir", &scratch.data_dir().display().to_string()]);
        assert_eq!(out.code(), Some(2), "databases = {bad}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("invalid databases {bad}: expected 1..=253")), "{}", out.stderr);
    }
    std::fs::write(&cfg, "databases = 4\n").unwrap();
    let srv = Server::start(&scratch, &["--config", &cfg.display().to_string()]);
    let mut c = srv.con();
    check(&mut c, &["SELECT", "3"], Reply::Ok);
    check(&mut c, &["SELECT", "4"], err("ERR DB index is out of range"));
    check(&mut c, &["MOVE", "k", "4"], err("ERR DB index is out of range"));
    check(&mut c, &["SWAPDB", "0", "4"], err("ERR DB index is out of range"));
    let got = suite::config_pairs(ok(&mut c, &["CONFIG", "GET", "databases"]), suite::Proto::Resp2);
    assert_eq!(got, vec![("databases".to_string(), "4".to_string())]);
    srv.stop();
}
