//! Reading client sockets on a glommio executor (the shard's handed-off connections
//! and the router's).

use super::sync::{unless, Event};
use glommio::net::TcpStream;

/// A connection or link buffer grown past this many bytes (for one large request or
/// reply) is given back once it is empty, so one big value does not pin its memory for
/// the life of the connection (ARCHITECTURE "Memory given back"). One value for the
/// router's client connections and links and the shard's links and handed-off
/// connections.
pub const SHRINK_ABOVE: usize = 1 << 20;

/// Reads what the client sent into `buf`: the bytes read (0 = the client closed the
/// connection), an I/O error, or `None` once `shutdown` is set.
///
/// The common case on a busy shard is that the client's next request is already there
/// when this task gets to run again, so the read is tried first with a plain
/// non-blocking `recv` after letting the other tasks run once. Only when nothing is
/// there does the task wait through io_uring (a one-byte `peek`). glommio's own stream
/// read would instead arm an io_uring poll after every read, and each of those
/// completions interrupts the running executor (glommio's rings lack
/// `IORING_SETUP_COOP_TASKRUN`), which costs more than the `recv` it saves.
pub async fn read(stream: &TcpStream, buf: &mut [u8], shutdown: &Event) -> Option<std::io::Result<usize>> {
    futures_lite::future::yield_now().await;
    loop {
        if shutdown.is_set() {
            return None;
        }
        match super::fdpass::recv_nonblocking(super::fd::borrow(stream), buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return Some(r),
        }
        let mut one = [0u8; 1];
        match unless(shutdown, stream.peek(&mut one)).await? {
            Ok(0) => return Some(Ok(0)),
            Ok(_) => {}
            Err(e) => return Some(Err(std::io::Error::from(e))),
        }
    }
}
