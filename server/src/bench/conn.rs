//! One blocking RESP2 connection to keel.

use anyhow::{bail, Context, Result};
use keel_protocol::resp::{encode_request, parse_value, Limits};
use keel_protocol::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One blocking RESP2 connection with its own read and write buffers.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) rbuf: Vec<u8>,
    /// Bytes of `rbuf` already parsed.
    pub(super) rpos: usize,
    pub(super) wbuf: Vec<u8>,
    pub(super) limits: Limits,
}

impl Conn {
    pub(super) fn connect(addr: &str) -> Result<Conn> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect to keel at {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Conn { stream, rbuf: Vec::with_capacity(64 << 10), rpos: 0, wbuf: Vec::new(), limits: Limits::default() })
    }

    /// Queues one command; sent by the next [`Conn::flush`].
    pub(super) fn queue(&mut self, argv: &[&[u8]]) {
        encode_request(argv, &mut self.wbuf);
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.wbuf).context("send to keel")?;
        self.wbuf.clear();
        Ok(())
    }

    /// A reply already buffered, if a complete one is.
    pub(super) fn try_reply(&mut self) -> Result<Option<Value>> {
        match parse_value(&self.rbuf[self.rpos..], &self.limits) {
            Ok(Some((v, used))) => {
                self.rpos += used;
                Ok(Some(v))
            }
            Ok(None) => Ok(None),
            Err(e) => bail!("malformed reply from keel: {e}"),
        }
    }

    /// The next reply, reading from the socket as needed.
    pub(super) fn reply(&mut self) -> Result<Value> {
        loop {
            if let Some(v) = self.try_reply()? {
                return Ok(v);
            }
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            let len = self.rbuf.len();
            self.rbuf.resize(len + (64 << 10), 0);
            let got = self.stream.read(&mut self.rbuf[len..]);
            self.rbuf.truncate(len + got.as_ref().map_or(0, |&n| n));
            match got {
                Ok(0) => bail!("keel closed the connection"),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("read reply from keel"),
            }
        }
    }

    /// Sends one command and returns its reply; `-ERR` becomes an error naming `what`.
    pub(super) fn call(&mut self, argv: &[&[u8]], what: &str) -> Result<Value> {
        self.queue(argv);
        self.flush()?;
        check(self.reply()?, what)
    }
}

/// Turns an error reply into an error naming the command.
pub(super) fn check(v: Value, what: &str) -> Result<Value> {
    match v {
        Value::Error(e) => bail!("keel replied to {what}: -{e}"),
        v => Ok(v),
    }
}

