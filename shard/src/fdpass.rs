//! A hand-off channel: a Unix stream socket that carries `keel_protocol::handoff`
//! messages, each with at most one socket descriptor as `SCM_RIGHTS` ancillary data
//! (unix(7)). Used by both ends: router executors pass client connections to a shard,
//! the shard passes them back or reports them closed.
//!
//! glommio reads sockets with plain `recv`, which would drop (close) passed
//! descriptors, so this module does its own `sendmsg`/`recvmsg` (non-blocking) and uses
//! glommio only to wait: `peek` of one byte resolves when the socket is readable.
//!
//! On Linux a `recvmsg` on a stream socket never reads past a message segment that
//! carries descriptors, and every message is sent with its descriptor on its first
//! byte, so descriptors arrive in message order: the receiver keeps them in a FIFO and
//! gives the next one to each message that has one.

use glommio::net::UnixStream;
use keel_protocol::handoff::{self, Message, MsgKind};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
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
        let waiter = sys::into_unix_stream(sock.try_clone()?.into());
        Ok(Channel { fd: sock.into(), stream: waiter, sending: glommio::sync::Semaphore::new(1) })
    }

    /// Sends `msg` with `fd` attached to its first byte, unless the channel is full
    /// right now ([`Sent::Full`], nothing sent). Once the first byte is out, waits for
    /// room to send the rest. Errors: the channel is broken (the descriptor may or may
    /// not have reached the peer).
    pub async fn try_send(&self, msg: &[u8], fd: Option<RawFd>) -> io::Result<Sent> {
        let _turn = self.sending.acquire_permit(1).await.map_err(|e| io::Error::other(e.to_string()))?;
        let sock = self.fd.as_raw_fd();
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
    pub async fn send(&self, msg: &[u8], fd: Option<RawFd>) -> io::Result<()> {
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
            let r = sys::recvmsg(self.fd.as_raw_fd(), &mut buf[at..], fds);
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
pub fn send_blocking(sock: &std::os::unix::net::UnixStream, bytes: &[u8], fd: RawFd) -> io::Result<()> {
    let mut sent = 0;
    let mut fd = Some(fd);
    while sent < bytes.len() {
        match sys::sendmsg(sock.as_raw_fd(), &bytes[sent..], fd) {
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
pub fn recv_nonblocking(sock: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    sys::recv(sock, buf)
}

/// A glommio TCP stream for a client socket received on a channel.
pub fn into_tcp_stream(fd: OwnedFd) -> glommio::net::TcpStream {
    sys::into_tcp_stream(fd)
}

mod sys {
    #![expect(unsafe_code, reason = "sendmsg/recvmsg with SCM_RIGHTS have no safe wrapper in std")]
    use std::collections::VecDeque;
    use std::io;
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};

    pub fn recv(sock: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call.
        let n = unsafe { libc::recv(sock, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    pub fn into_unix_stream(fd: OwnedFd) -> glommio::net::UnixStream {
        // SAFETY: as for `into_tcp_stream`.
        unsafe { glommio::net::UnixStream::from_raw_fd(fd.into_raw_fd()) }
    }

    pub fn into_tcp_stream(fd: OwnedFd) -> glommio::net::TcpStream {
        // SAFETY: `fd` is an open socket descriptor owned by nobody else (OwnedFd),
        // and the stream takes that ownership over.
        unsafe { glommio::net::TcpStream::from_raw_fd(fd.into_raw_fd()) }
    }

    /// Room for one `cmsghdr` carrying one `int`, with the alignment the kernel expects.
    #[repr(C, align(8))]
    struct CmsgSpace([u8; 64]);

    /// Non-blocking `sendmsg` of `bytes`, with `fd` as `SCM_RIGHTS` if given.
    pub fn sendmsg(sock: RawFd, bytes: &[u8], fd: Option<RawFd>) -> io::Result<usize> {
        let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
        let mut space = CmsgSpace([0; 64]);
        // SAFETY: zeroed msghdr is a valid "no name, no control" header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
            let (space_len, len) = unsafe {
                (libc::CMSG_SPACE(size_of::<RawFd>() as u32) as usize, libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize)
            };
            assert!(space_len <= space.0.len());
            msg.msg_control = space.0.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space_len as _;
            // SAFETY: msg_control points at `space_len` writable, aligned bytes, so the
            // first header and its data are inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = len as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
            }
        }
        // SAFETY: `msg` points at `iov` and `space`, which outlive the call.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Non-blocking `recvmsg` into `buf`; received descriptors (close-on-exec) are
    /// appended to `fds`.
    pub fn recvmsg(sock: RawFd, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> io::Result<usize> {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        let mut space = CmsgSpace([0; 64]);
        // SAFETY: zeroed msghdr is a valid "no name, no control" header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.0.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space.0.len() as _;
        // SAFETY: `msg` points at `iov` (into `buf`) and `space`, which outlive the call.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel filled `msg_control` with `msg_controllen` bytes of
        // well-formed control messages; each SCM_RIGHTS payload is an array of ints,
        // each a descriptor now owned by this process.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c);
                    let bytes = (*c).cmsg_len as usize - (data as usize - c as usize);
                    for i in 0..bytes / size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                        fds.push_back(OwnedFd::from_raw_fd(fd));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::other("hand-off channel: descriptors truncated"));
        }
        Ok(n as usize)
    }
}
