//! The router's RESP listeners: one SO_REUSEPORT listener per router executor on one
//! address, so that the kernel spreads incoming connections over the executors.

use std::net::{SocketAddr, TcpListener};

/// Binds `router_threads` SO_REUSEPORT listeners on `addr`; port 0 picks one free port
/// for all of them. Returns the listeners and the port. Errors (one line, naming the
/// address): the address is in use (by anyone: it is probed without SO_REUSEPORT first)
/// or cannot be bound.
pub fn bind(addr: SocketAddr, router_threads: usize) -> Result<(Vec<TcpListener>, u16), String> {
    let port = match TcpListener::bind(addr) {
        Ok(l) => l.local_addr().map(|a| a.port()).unwrap_or(addr.port()),
        Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
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
