//! Connection commands answered by the router: HELLO, SELECT, CLIENT (PING and ECHO
//! are stateless: `keel_protocol::command::stateless_reply`).

use super::{parse_i64, ConnState, Router};
use keel_protocol::resp::RespVersion;
use keel_protocol::Value;
use std::rc::Rc;

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`: switches the
/// connection to RESP2/RESP3 and replies with the server map (in the new protocol).
pub fn hello(rt: &Rc<Router>, conn: &mut ConnState, argv: &[Vec<u8>]) -> Value {
    let mut version = conn.resp;
    let mut name = None;
    if argv.len() >= 2 {
        match parse_i64(&argv[1]) {
            Some(2) => version = RespVersion::Resp2,
            Some(3) => version = RespVersion::Resp3,
            Some(_) => return Value::err("NOPROTO unsupported protocol version"),
            None => return Value::err("ERR Protocol version is not an integer or out of range"),
        }
        let mut i = 2;
        while i < argv.len() {
            let opt = argv[i].to_ascii_uppercase();
            let more = argv.len() - i - 1;
            if opt == b"AUTH" && more >= 2 {
                // No users are configured yet: the default user has no password (as Redis
                // with `nopass`), so any credentials are accepted.
                i += 3;
            } else if opt == b"SETNAME" && more >= 1 {
                if let Err(e) = check_client_name(&argv[i + 1]) {
                    return e;
                }
                name = Some(argv[i + 1].clone());
                i += 2;
            } else {
                return Value::err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&argv[i])
                ));
            }
        }
    }
    conn.resp = version;
    if let Some(n) = name {
        conn.info.set_name(Some(n));
    }
    let proto = if version == RespVersion::Resp3 { 3 } else { 2 };
    conn.info.set_resp(proto as u8);
    let _ = rt;
    Value::Map(vec![
        (Value::bulk("server"), Value::bulk("redis")),
        (Value::bulk("version"), Value::bulk(crate::router::REDIS_COMPAT_VERSION)),
        (Value::bulk("proto"), Value::Integer(proto)),
        (Value::bulk("id"), Value::Integer(conn.info.id as i64)),
        (Value::bulk("mode"), Value::bulk("standalone")),
        (Value::bulk("role"), Value::bulk("master")),
        (Value::bulk("modules"), Value::Array(vec![])),
    ])
}

/// `SELECT index`: the connection's database from now on (0 ..= `databases` − 1);
/// Redis's errors for a non-integer, one outside C `int`, and an index out of range.
pub fn select(rt: &Router, conn: &mut ConnState, argv: &[Vec<u8>]) -> Value {
    match keel_protocol::num::parse_db_index(&argv[1], rt.shared.cfg.databases) {
        Ok(db) => {
            conn.db = db;
            conn.info.set_db(db);
            Value::ok()
        }
        Err(e) => Value::err(e.text(None)),
    }
}

fn check_client_name(n: &[u8]) -> Result<(), Value> {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Value::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id …]`: every open connection
/// of every router executor, in id order (all of them are of type `normal`).
fn client_list(rt: &Router, opts: &[Vec<u8>]) -> Value {
    let mut only_normal = true;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 0;
    while i < opts.len() {
        match opts[i].to_ascii_uppercase().as_slice() {
            b"TYPE" if i + 1 < opts.len() => {
                match opts[i + 1].to_ascii_lowercase().as_slice() {
                    b"normal" => {}
                    b"master" | b"replica" | b"slave" | b"pubsub" => only_normal = false,
                    _ => {
                        return Value::err(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(&opts[i + 1])))
                    }
                }
                i += 2;
            }
            b"ID" if i + 1 < opts.len() => {
                let mut v = Vec::new();
                i += 1;
                while i < opts.len() {
                    match crate::cmd::parse_i64(&opts[i]) {
                        Some(n) if n > 0 => v.push(n as u64),
                        _ => return Value::err("ERR Invalid client ID"),
                    }
                    i += 1;
                }
                ids = Some(v);
            }
            _ => return Value::err("ERR syntax error"),
        }
    }
    let mut out = String::new();
    if only_normal {
        for c in rt.shared.clients.all() {
            if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
                out.push_str(&c.line());
            }
        }
    }
    Value::Verbatim("txt".into(), out.into_bytes())
}

/// `CLIENT ID | GETNAME | SETNAME name | SETINFO attr value | INFO | LIST [TYPE t] [ID id …] |
/// NO-EVICT | NO-TOUCH`. LIST and INFO lines: `crate::clients`.
pub fn client(rt: &Router, conn: &mut ConnState, argv: &[Vec<u8>]) -> Value {
    let sub = argv[1].to_ascii_uppercase();
    let wrong = || {
        Value::err(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(&argv[1]).to_ascii_lowercase()
        ))
    };
    match sub.as_slice() {
        b"ID" if argv.len() == 2 => Value::Integer(conn.info.id as i64),
        b"GETNAME" if argv.len() == 2 => match conn.info.name() {
            Some(n) => Value::Bulk(n),
            None => Value::Null,
        },
        b"SETNAME" if argv.len() == 3 => {
            if let Err(e) = check_client_name(&argv[2]) {
                return e;
            }
            conn.info.set_name(if argv[2].is_empty() { None } else { Some(argv[2].clone()) });
            Value::ok()
        }
        b"SETINFO" if argv.len() == 4 => {
            let attr = argv[2].to_ascii_uppercase();
            if check_client_name(&argv[3]).is_err() && !argv[3].is_empty() {
                return Value::err("ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.");
            }
            match attr.as_slice() {
                b"LIB-NAME" => conn.info.set_lib_name(argv[3].clone()),
                b"LIB-VER" => conn.info.set_lib_ver(argv[3].clone()),
                _ => {
                    return Value::err(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&argv[2])
                    ))
                }
            }
            Value::ok()
        }
        b"INFO" if argv.len() == 2 => Value::Verbatim("txt".into(), conn.info.line().into_bytes()),
        b"LIST" => client_list(rt, &argv[2..]),
        b"NO-EVICT" | b"NO-TOUCH" if argv.len() == 3 => Value::ok(),
        b"ID" | b"GETNAME" | b"SETNAME" | b"SETINFO" | b"INFO" | b"NO-EVICT" | b"NO-TOUCH" => wrong(),
        _ => Value::err(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}
