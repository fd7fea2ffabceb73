//! keel's thin runtime boundary (DESIGN §7): everything that ties keel to glommio and
//! to Linux sockets, used by the shard and by the router (`keel-server` reaches it
//! only through this module). What lives here:
//!
//! - [`sync`]: single-executor primitives (a latched `Event`, a re-armable `Notify`,
//!   one-shot slots, `Live` task counting, `unless` = run until shutdown);
//! - [`net`]: the client-socket read of router and shard (a non-blocking `recv` first,
//!   waiting through io_uring only when nothing is there);
//! - [`fdpass`]: hand-off channels, Unix stream sockets that carry messages and socket
//!   descriptors (`SCM_RIGHTS`);
//! - [`poll`]: [`poll::IoPoll`], a yield that lasts until the executor's next I/O poll
//!   (for work cut into slices, e.g. a vector search);
//! - [`fd`]: conversions from descriptors (a std socket, an `OwnedFd`) into glommio
//!   streams and listeners, the only place keel needs `unsafe` for them.
//!
//! Nothing above this module (the request path, the ops, the router's command code)
//! should name glommio's socket types' raw-descriptor constructors or do raw socket
//! system calls. This is the seam for a later portable backend (one single-threaded
//! async executor per core over kqueue/epoll, e.g. `async-io`/`mio`): it would provide
//! these same modules behind a cargo feature. System calls go through `rustix` (safe
//! wrappers; kqueue platforms included), not `libc`.

pub mod fd;
pub mod fdpass;
pub mod net;
pub mod poll;
pub mod sync;
