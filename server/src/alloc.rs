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
//!
//! After a burst of large frees whose end is known (a bulk vector load's last batch
//! committed on a shard, a connection that carried one handed to its shard),
//! [`release_freed`] returns the freed pages at once instead of over the decay time.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this string (`opt.*` settings, comma-separated) once, at its first
/// allocation. tikv-jemalloc-sys builds jemalloc with the `_rjem_` symbol prefix, hence the
/// name.
#[expect(unsafe_code, reason = "exporting a symbol is unsafe: this is the one jemalloc reads, a NUL-terminated string")]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 85] = b"background_thread:true,max_background_threads:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// How long a shard process keeps freed pages before returning them, in ms (the
/// router keeps [`MALLOC_CONF`]'s 1000). A shard serving values that miss its cache frees
/// a read buffer, a value and an evicted cache entry per GET; with 1 s of decay the pages
/// of a second's churn stayed resident (the serving shard at 75–78 MiB during 16 KiB
/// GETs at -P 16 with a 32 MiB cache), with 200 ms at 66–69 MiB at the same GET rate,
/// while 0 (`madvise` on every free) cost ~25% of it (bench-results/kv-values.md).
pub const SHARD_DIRTY_DECAY_MS: isize = 200;

/// Sets jemalloc's dirty-page decay of this process to `ms` (see
/// [`SHARD_DIRTY_DECAY_MS`]): `arenas.dirty_decay_ms`, the default of arenas made
/// later, and `arena.<i>.dirty_decay_ms` of each arena that exists. A failure is
/// ignored: the process keeps the decay it had.
pub fn set_dirty_decay_ms(ms: isize) {
    let mut narenas: u32 = 0;
    let mut len = std::mem::size_of::<u32>();
    // SAFETY: `arenas.narenas` is an unsigned read-only value; `narenas` and `len` are
    // valid for writes of its size, as jemalloc(3) documents.
    #[expect(unsafe_code, reason = "mallctl is jemalloc's C interface; the buffers are valid and sized")]
    let read = unsafe { tikv_jemalloc_sys::mallctl(c"arenas.narenas".as_ptr(), (&raw mut narenas).cast(), &raw mut len, std::ptr::null_mut(), 0) };
    let names = std::iter::once("arenas.dirty_decay_ms".to_string()).chain((0..if read == 0 { narenas } else { 0 }).map(|i| format!("arena.{i}.dirty_decay_ms")));
    for name in names {
        let Ok(name) = std::ffi::CString::new(name) else { continue };
        let mut value = ms;
        // SAFETY: `name` is NUL-terminated; the new value is an `ssize_t` (isize on the
        // platforms keel builds for) read from `value`, of the length passed; nothing is
        // read back (null old pointers).
        #[expect(unsafe_code, reason = "mallctl is jemalloc's C interface; the buffers are valid and sized")]
        let _ = unsafe {
            tikv_jemalloc_sys::mallctl(name.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), (&raw mut value).cast(), std::mem::size_of::<isize>())
        };
    }
}

/// `arena.<i>.purge` for every arena: 4096 is jemalloc's `MALLCTL_ARENAS_ALL`.
const PURGE_ALL: &std::ffi::CStr = c"arena.4096.purge";

/// Gives the memory jemalloc holds freed back to the OS now: flushes the calling
/// thread's cache of freed small objects (`thread.tcache.flush`, so their slabs can
/// empty), then purges the unused dirty pages of every arena (`arena.4096.purge`,
/// `madvise(MADV_DONTNEED)`). Its cost grows with the dirty pages (a few MiB: well under
/// a millisecond here) and the next allocations fault their pages in again, so it is
/// for the end of a burst of large frees, never per ordinary request. A failure is
/// ignored: nothing is lost but the early return of memory.
pub fn release_freed() {
    const FLUSH: &std::ffi::CStr = c"thread.tcache.flush";
    for name in [FLUSH, PURGE_ALL] {
        // SAFETY: `name` is a NUL-terminated mallctl name of a command that reads and
        // writes nothing (null old/new pointers, lengths 0), as jemalloc(3) documents
        // for `thread.tcache.flush` and `arena.<i>.purge`.
        #[expect(unsafe_code, reason = "mallctl is jemalloc's C interface; the call passes no buffers")]
        let _ = unsafe {
            tikv_jemalloc_sys::mallctl(name.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), 0)
        };
    }
}

#[cfg(test)]
mod tests {
    /// The `ssize_t` value of the jemalloc setting `name`, read back.
    fn read_isize(name: &std::ffi::CStr) -> isize {
        let mut value: isize = -2;
        let mut len = std::mem::size_of::<isize>();
        // SAFETY: `name` is NUL-terminated; `value` and `len` are valid for writes of an
        // `ssize_t`, which these settings are.
        #[expect(unsafe_code, reason = "mallctl is jemalloc's C interface; the buffers are valid and sized")]
        let rc = unsafe { tikv_jemalloc_sys::mallctl(name.as_ptr(), (&raw mut value).cast(), &raw mut len, std::ptr::null_mut(), 0) };
        assert_eq!(rc, 0, "mallctl {name:?}");
        value
    }

    #[test]
    fn set_dirty_decay_ms_reaches_existing_and_later_arenas() {
        assert_eq!(read_isize(c"arenas.dirty_decay_ms"), 1000, "the compiled-in default");
        super::set_dirty_decay_ms(super::SHARD_DIRTY_DECAY_MS);
        assert_eq!(read_isize(c"arenas.dirty_decay_ms"), super::SHARD_DIRTY_DECAY_MS);
        assert_eq!(read_isize(c"arena.0.dirty_decay_ms"), super::SHARD_DIRTY_DECAY_MS);
    }
}
