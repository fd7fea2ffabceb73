//! keel over RESP3 with the `redis` crate (`?protocol=resp3`: the client opens with
//! `HELLO 3`): every command family, and the RESP3 reply shapes (maps, doubles,
//! verbatim strings, nulls).

#[macro_use]
mod common;

use common::check::{check, ok, s, Reply};
use common::suite::{self, Proto};
use common::{blob, text, Scratch, Server};
use redis::Value;

const P: Proto = Proto::Resp3;

protocol_suite!(P);

fn server() -> (Scratch, Server) {
    let scratch = Scratch::new();
    let srv = Server::start(&scratch, &[]);
    (scratch, srv)
}

#[test]
fn resp3_reply_shapes() {
    let (_d, srv) = server();
    let mut c = srv.con3();
    let id = match ok(&mut c, &["CLIENT", "ID"]) {
        Value::Int(i) => i,
        other => panic!("CLIENT ID {other:?}"),
    };
    match ok(&mut c, &["HELLO", "3"]) {
        Value::Map(pairs) => {
            let field = |name: &str| pairs.iter().find(|(k, _)| text(k) == name).map(|(_, v)| v.clone());
            assert_eq!(field("proto"), Some(Value::Int(3)), "{pairs:?}");
            assert_eq!(field("id"), Some(Value::Int(id)), "{pairs:?}");
            assert_eq!(field("server").map(|v| text(&v)), Some("redis".to_string()));
            assert_eq!(field("mode").map(|v| text(&v)), Some("standalone".to_string()));
        }
        other => panic!("HELLO 3 reply must be a map: {other:?}"),
    }
    check(&mut c, &["HELLO", "x"], common::check::err("ERR Protocol version is not an integer or out of range"));
    assert_eq!(ok(&mut c, &["GET", "a:missing"]), Value::Nil);
    assert_eq!(ok(&mut c, &["SET", "a:1", "x"]), Value::Okay);
    assert!(matches!(ok(&mut c, &["INFO"]), Value::VerbatimString { .. }), "INFO must be a verbatim string in RESP3");
    match ok(&mut c, &["CONFIG", "GET", "save", "appendonly"]) {
        Value::Map(pairs) => assert_eq!(pairs.len(), 2, "{pairs:?}"),
        other => panic!("CONFIG GET must be a map in RESP3: {other:?}"),
    }
    match ok(&mut c, &["COMMAND", "DOCS", "set"]) {
        Value::Map(pairs) => assert_eq!(text(&pairs[0].0), "set"),
        other => panic!("COMMAND DOCS must be a map in RESP3: {other:?}"),
    }
    // Scores are doubles.
    check(&mut c, &["SKEG.VINDEX.CREATE", "t:idx", "2", "f32", "flat"], Reply::Ok);
    suite::vset(&mut c, "t:idx", 9, &[3.0, 4.0]).unwrap();
    let reply = ok(&mut c, &[b"SKEG.VSEARCH".to_vec(), b"t:idx".to_vec(), b"1".to_vec(), b"10".to_vec(), blob(&[3.0, 4.0])]);
    match &reply {
        Value::Array(items) if items.len() == 2 => match items[1] {
            Value::Double(d) => assert!((d - 1.0).abs() < 1e-5, "{reply:?}"),
            _ => panic!("score must be a RESP3 double: {reply:?}"),
        },
        _ => panic!("SKEG.VSEARCH: {reply:?}"),
    }
    // HELLO 2 goes back to RESP2 on this connection.
    match ok(&mut c, &["HELLO", "2"]) {
        Value::Array(items) => assert!(items.chunks(2).any(|kv| text(&kv[0]) == "proto" && kv[1] == Value::Int(2))),
        other => panic!("HELLO 2 reply: {other:?}"),
    }
    assert!(matches!(ok(&mut c, &["INFO", "server"]), Value::BulkString(_)));
    check(&mut c, &["PING"], s("PONG"));
}
