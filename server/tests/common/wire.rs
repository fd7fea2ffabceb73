//! Raw RESP on a `TcpStream`, for the byte-level tests: build a request, read a line,
//! see that the server closed the connection.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;

/// A multibulk request of `argv`.
pub fn req(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one CRLF-terminated line (without the CRLF).
pub fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => panic!("connection closed mid-line after {:?}", String::from_utf8_lossy(&line)),
            Ok(_) => {
                line.push(b[0]);
                if line.ends_with(b"\r\n") {
                    line.truncate(line.len() - 2);
                    return String::from_utf8_lossy(&line).into_owned();
                }
            }
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&line)),
        }
    }
}

/// Asserts the server closed the connection: a read returns 0 (or a reset).
#[track_caller]
pub fn expect_closed(s: &mut TcpStream) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!("expected the connection to be closed, got {:?}", String::from_utf8_lossy(&b[..n])),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected the connection to be closed, got {e}"),
    }
}
