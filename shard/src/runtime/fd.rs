//! Descriptors into glommio types. glommio builds its streams and listeners only from a
//! raw descriptor (`FromRawFd`, `unsafe`), and its streams expose only `AsRawFd`; these
//! functions take owned (or borrowed) descriptors instead, so their callers need no
//! `unsafe`.
#![expect(unsafe_code, reason = "glommio's sockets convert from and to raw descriptors only")]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

/// A glommio TCP stream for a connected socket (e.g. a client socket received on a
/// hand-off channel).
pub fn tcp_stream(fd: OwnedFd) -> glommio::net::TcpStream {
    // SAFETY: `fd` is an open descriptor owned by nobody else (OwnedFd); the stream
    // takes that ownership over (into_raw_fd gives it up without closing it).
    unsafe { glommio::net::TcpStream::from_raw_fd(fd.into_raw_fd()) }
}

/// A glommio Unix stream for a connected Unix socket.
pub fn unix_stream(fd: OwnedFd) -> glommio::net::UnixStream {
    // SAFETY: as for `tcp_stream`.
    unsafe { glommio::net::UnixStream::from_raw_fd(fd.into_raw_fd()) }
}

/// A glommio TCP listener for a bound, listening, non-blocking std listener (one
/// router executor's SO_REUSEPORT listener).
pub fn tcp_listener(listener: std::net::TcpListener) -> glommio::net::TcpListener {
    // SAFETY: `listener` is an open listening socket we own; ownership moves to the
    // glommio listener.
    unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// The descriptor of a glommio stream, borrowed for as long as the stream is, for system
/// calls glommio does not make itself (`recv`, `sendmsg`).
pub fn borrow<S: AsRawFd>(stream: &S) -> BorrowedFd<'_> {
    // SAFETY: a glommio stream owns its descriptor and keeps it open until it is dropped;
    // the returned borrow cannot outlive `stream`.
    unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }
}
