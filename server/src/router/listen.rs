//! The router's RESP listeners: one SO_REUSEPORT listener per router executor on one
//! address, so that the kernel spreads incoming connections over the executors.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// How long an address in use is retried before giving up. A listening socket of a
/// keel that just exited can outlive its process by a few ms: glommio's in-flight accept
/// holds it inside io_uring, and the kernel drops that reference only when it tears the
/// ring down, asynchronously, after the exit (a graceful stop shuts its listeners down
/// first, see `executor::serve`; a killed keel cannot).
const IN_USE_RETRY: Duration = Duration::from_secs(2);

/// Binds `router_threads` SO_REUSEPORT listeners on `addr`; port 0 picks one free port
/// for all of them. Returns the listeners and the port. Errors (one line, naming the
/// address): the address is in use (by anyone: it is probed without SO_REUSEPORT first;
/// retried for up to [`IN_USE_RETRY`]) or cannot be bound.
pub fn bind(addr: SocketAddr, router_threads: usize) -> Result<(Vec<TcpListener>, u16), String> {
    let started = Instant::now();
    let mut logged = false;
    let port = loop {
        match TcpListener::bind(addr) {
            Ok(l) => {
                if logged {
                    tracing::info!("{addr} was in use and became free after {:?} (a keel that just stopped was still releasing it)", started.elapsed());
                }
                break l.local_addr().map(|a| a.port()).unwrap_or(addr.port());
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse && started.elapsed() < IN_USE_RETRY => {
                if !std::mem::replace(&mut logged, true) {
                    tracing::debug!("{addr} is in use; retrying for up to {IN_USE_RETRY:?} (a keel that just stopped may still be releasing it)");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
        }
    };
    let mut addr = addr;
    addr.set_port(port);
    let listeners = (0..router_threads)
        .map(|_| reuseport_listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((listeners, port))
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}
