//! keel over RESP2 with the `redis` crate: every command family, and the RESP2 reply
//! shapes (maps as flat arrays, doubles as bulk strings, verbatim as bulk).

#[macro_use]
mod common;

use common::check::{check, ok, s, Reply};
use common::suite::Proto;
use common::{text, Scratch, Server};
use redis::Value;

const P: Proto = Proto::Resp2;

protocol_suite!(P);

fn server() -> (Scratch, Server) {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    (scratch, srv)
}

#[test]
fn resp2_reply_shapes() {
    let (_d, srv) = server();
    let mut c = srv.con();
    // HELLO 2: the server map as a flat array.
    let id = match ok(&mut c, &["CLIENT", "ID"]) {
        Value::Int(i) => i,
        other => panic!("CLIENT ID {other:?}"),
    };
    match ok(&mut c, &["HELLO", "2"]) {
        Value::Array(items) => {
            assert!(items.len() % 2 == 0, "{items:?}");
            let field = |name: &str| items.chunks(2).find(|kv| text(&kv[0]) == name).map(|kv| kv[1].clone());
            assert_eq!(field("proto"), Some(Value::Int(2)), "{items:?}");
            assert_eq!(field("id"), Some(Value::Int(id)), "{items:?}");
            assert_eq!(field("server").map(|v| text(&v)), Some("redis".to_string()));
        }
        other => panic!("HELLO 2 in RESP2 must be a flat array: {other:?}"),
    }
    check(&mut c, &["HELLO", "4"], common::check::err("NOPROTO unsupported protocol version"));
    // Still RESP2 after the failed HELLO.
    assert_eq!(ok(&mut c, &["TYPE", "nothing"]), Value::SimpleString("none".into()));
    assert_eq!(ok(&mut c, &["SET", "a:1", "x"]), Value::Okay);
    assert_eq!(ok(&mut c, &["GET", "a:1"]), Value::BulkString(b"x".to_vec()));
    assert_eq!(ok(&mut c, &["GET", "a:2"]), Value::Nil);
    assert!(matches!(ok(&mut c, &["INFO", "server"]), Value::BulkString(_)), "INFO must be a bulk string in RESP2");
    assert!(matches!(ok(&mut c, &["CONFIG", "GET", "save"]), Value::Array(_)));
    check(&mut c, &["PING"], s("PONG"));
    check(&mut c, &["ECHO", ""], s(""));
    check(&mut c, &["CLIENT", "GETNAME"], Reply::Nil);
    // HELLO 3 switches this connection to RESP3: the next map is a map.
    match ok(&mut c, &["HELLO", "3"]) {
        Value::Map(pairs) => {
            assert!(pairs.iter().any(|(k, v)| text(k) == "proto" && *v == Value::Int(3)), "{pairs:?}");
        }
        other => panic!("HELLO 3 reply: {other:?}"),
    }
    assert!(matches!(ok(&mut c, &["CONFIG", "GET", "save"]), Value::Map(_)));
}
