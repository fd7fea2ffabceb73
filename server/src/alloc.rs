//! The process's allocator: jemalloc (both the router and the shards, one binary), with
//! its options set so that memory freed by the process goes back to the OS within about
//! a second, even when the process is idle afterwards.
//!
//! jemalloc keeps freed pages ("dirty") for reuse and returns them to the OS on a decay
//! curve (default 10 s), and only when some thread calls into the allocator — an idle
//! router that just served a few large values kept their pages for the rest of its life
//! (issue 14: 243–256 MiB after one 100 MB SET/GET/DEL). Options
//! (<https://jemalloc.net/jemalloc.3.html>, "TUNING" and `opt.*`):
//! - `background_thread:true`, `max_background_threads:1`: one jemalloc thread per
//!   process does the purging, so it happens while every executor sleeps and never on an
//!   executor's hot path;
//! - `dirty_decay_ms:1000`: freed pages are returned over ~1 s instead of ~10 s;
//! - `muzzy_decay_ms:0`: returned with `MADV_DONTNEED` at once rather than first
//!   `MADV_FREE`d, which Linux still counts in RSS until it is under memory pressure —
//!   keel's promise is a small RSS as the neighbour (an LLM) sees it.
//!
//! Allocations above 8 MiB already go to jemalloc's oversize arena, which returns them
//! on free; these options cover the many mid-sized buffers of a busy server.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this string (`opt.*` settings, comma-separated) once, at its first
/// allocation. tikv-jemalloc-sys builds jemalloc with the `_rjem_` symbol prefix, hence the
/// name.
#[expect(unsafe_code, reason = "exporting a symbol is unsafe: this is the one jemalloc reads, a NUL-terminated string")]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 85] = b"background_thread:true,max_background_threads:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
