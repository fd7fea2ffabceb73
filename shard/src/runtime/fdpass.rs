//! A hand-off channel: a Unix stream socket that carries `keel_protocol::handoff`
//! messages, each with at most one socket descriptor as `SCM_RIGHTS` ancillary data
//! (unix(7)). Used by both ends: router executors pass client connections to a shard,
//! the shard passes them back or reports them closed.
//!
//! glommio reads sockets with plain `recv`, which would drop (close) passed
//! descriptors, so this module does its own `sendmsg`/`recvmsg` (non-blocking, through
//! rustix) and uses glommio only to wait: `peek` of one byte resolves when the socket is
//! readable.
//!
//! On Linux a `recvmsg` on a stream socket never reads past a message segment that
//! carries descriptors, and every message is sent with its descriptor on its first
//! byte, so descriptors arrive in message order: the receiver keeps them in a FIFO and
//! gives the next one to each message that has one.

use glommio::net::UnixStream;
use keel_protocol::handoff::{self, Message, MsgKind};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// How long a sender waits before retrying when the channel's buffer is full.
const FULL_RETRY: Duration = Duration::from_millis(1);
/// Bytes asked of the socket per `recvmsg`.
const RECV_CHUNK: usize = 64 << 10;

/// One end of a hand-off channel, owned by one executor (not `Send`).
pub struct Channel {
    /// The socket, for `sendmsg`/`recvmsg`.
    fd: OwnedFd,
    /// A duplicate of it, for glommio to wait on (glommio streams do not expose theirs).
    stream: UnixStream,
    /// Held while a message is being sent, so that two tasks' messages never interleave.
    sending: glommio::sync::Semaphore,
}

/// What [`Channel::try_send`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The whole message and its descriptor are on their way.
    All,
    /// Nothing was sent: the channel's buffer is full. The descriptor is still ours.
    Full,
}

impl Channel {
    /// Wraps a connected Unix stream socket (made non-blocking here). Errors: no
    /// descriptor left for the duplicate glommio waits on.
    pub fn new(sock: std::os::unix::net::UnixStream) -> io::Result<Channel> {
        sock.set_nonblocking(true)?;
        let waiter = super::fd::unix_stream(sock.try_clone()?.into());
        Ok(Channel { fd: sock.into(), stream: waiter, sending: glommio::sync::Semaphore::new(1) })
    }

    /// Sends `msg` with `fd` attached to its first byte, unless the channel is full
    /// right now ([`Sent::Full`], nothing sent). Once the first byte is out, waits for
    /// room to send the rest. Errors: the channel is broken (the descriptor may or may
    /// not have reached the peer).
    pub async fn try_send(&self, msg: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<Sent> {
        let _turn = self.sending.acquire_permit(1).await.map_err(|e| io::Error::other(e.to_string()))?;
        let sock = self.fd.as_fd();
        let mut sent = match sys::sendmsg(sock, msg, fd) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Sent::Full),
            Err(e) => return Err(e),
        };
        while sent < msg.len() {
            match sys::sendmsg(sock, &msg[sent..], None) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => glommio::timer::sleep(FULL_RETRY).await,
                Err(e) => return Err(e),
            }
        }
        Ok(Sent::All)
    }

    /// Sends `msg` with `fd`, waiting for room as long as it takes. Errors: the channel
    /// is broken.
    pub async fn send(&self, msg: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        loop {
            match self.try_send(msg, fd).await? {
                Sent::All => return Ok(()),
                Sent::Full => glommio::timer::sleep(FULL_RETRY).await,
            }
        }
    }

    /// Waits until the peer sent something, then appends everything readable now to
    /// `buf` and the descriptors that came with it to `fds`. Returns the bytes read;
    /// 0 means the peer closed the channel. Errors: the socket failed.
    pub async fn recv(&self, buf: &mut Vec<u8>, fds: &mut VecDeque<OwnedFd>) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let at = buf.len();
            buf.resize(at + RECV_CHUNK, 0);
            let r = sys::recvmsg(self.fd.as_fd(), &mut buf[at..], fds);
            match r {
                Ok(0) => {
                    buf.truncate(at);
                    return Ok(total);
                }
                Ok(n) => {
                    buf.truncate(at + n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    buf.truncate(at);
                    if total > 0 {
                        return Ok(total);
                    }
                    // Nothing yet: wait until readable (or closed), then read again.
                    let mut one = [0u8; 1];
                    if self.stream.peek(&mut one).await? == 0 {
                        return Ok(0);
                    }
                }
                Err(e) => {
                    buf.truncate(at);
                    return Err(e);
                }
            }
        }
    }
}

/// Sends `bytes` with `fd` attached on a blocking socket (for a plain thread). Errors:
/// the socket is broken.
pub fn send_blocking(sock: &std::os::unix::net::UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut sent = 0;
    let mut fd = Some(fd);
    while sent < bytes.len() {
        match sys::sendmsg(sock.as_fd(), &bytes[sent..], fd) {
            Ok(n) => {
                sent += n;
                fd = None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(FULL_RETRY),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads a channel's `keel_protocol::handoff` messages and pairs each take and return
/// with the socket descriptor that came with it.
#[derive(Default)]
pub struct MessageReader {
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

impl MessageReader {
    /// Waits for the peer, then returns every complete message received so far (possibly
    /// none, when only part of one has arrived). Errors, as a message for the log: the
    /// peer closed the channel, the socket failed, a malformed message, or a take or
    /// return without its descriptor. The channel is then unusable.
    pub async fn next(&mut self, chan: &Channel) -> Result<Vec<(Message, Option<OwnedFd>)>, String> {
        match chan.recv(&mut self.buf, &mut self.fds).await {
            Ok(0) => return Err("closed by the peer".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let mut out = Vec::new();
        let mut at = 0;
        while let Some((m, used)) = handoff::decode(&self.buf[at..]).map_err(|e| e.to_string())? {
            at += used;
            let fd = match m.kind {
                MsgKind::Take | MsgKind::Return => {
                    Some(self.fds.pop_front().ok_or_else(|| format!("a {:?} message without its socket", m.kind))?)
                }
                MsgKind::Closed => None,
            };
            out.push((m, fd));
        }
        self.buf.drain(..at);
        Ok(out)
    }
}

/// Non-blocking `recv` on a socket: `WouldBlock` when nothing is there.
pub fn recv_nonblocking(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    sys::recv(sock, buf)
}

/// The system calls of a channel, through rustix's safe wrappers.
mod sys {
    use rustix::net::{
        RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage,
        SendFlags,
    };
    use std::collections::VecDeque;
    use std::io::{self, IoSlice, IoSliceMut};
    use std::mem::MaybeUninit;
    use std::os::fd::{BorrowedFd, OwnedFd};

    /// Descriptors one `recvmsg` accepts; the peer sends at most one per message, and a
    /// stream `recvmsg` does not read past a segment that carries descriptors.
    const MAX_FDS: usize = 8;

    pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::net::recv(sock, buf, RecvFlags::DONTWAIT)?.0)
    }

    /// Non-blocking `sendmsg` of `bytes`, with `fd` as `SCM_RIGHTS` if given.
    pub fn sendmsg(sock: BorrowedFd<'_>, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<usize> {
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("hand-off channel: no room for the descriptor"));
        }
        let iov = [IoSlice::new(bytes)];
        Ok(rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)?)
    }

    /// Non-blocking `recvmsg` into `buf`; received descriptors (close-on-exec) are
    /// appended to `fds`.
    pub fn recvmsg(sock: BorrowedFd<'_>, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> io::Result<usize> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC)?;
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(io::Error::other("hand-off channel: descriptors truncated"));
        }
        Ok(msg.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A descriptor sent with a message arrives with it, in order, and works.
    #[test]
    fn descriptors_travel_with_their_messages() {
        let (tx, rx) = UnixStream::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        let (mut near, far) = UnixStream::pair().unwrap();
        send_blocking(&tx, b"take", far.as_fd()).unwrap();
        drop(far); // only the passed copy is left
        let (mut buf, mut fds) = (vec![0u8; 64], VecDeque::new());
        let n = sys::recvmsg(rx.as_fd(), &mut buf, &mut fds).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"take"[..], 1));
        let mut passed = UnixStream::from(fds.pop_front().unwrap());
        passed.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        near.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");

        // Nothing there: WouldBlock, no descriptor.
        let e = sys::recvmsg(rx.as_fd(), &mut buf, &mut fds).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(fds.is_empty());
        assert_eq!(recv_nonblocking(rx.as_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // The peer gone: end of stream.
        drop(tx);
        assert_eq!(sys::recvmsg(rx.as_fd(), &mut buf, &mut fds).unwrap(), 0);
    }
}
