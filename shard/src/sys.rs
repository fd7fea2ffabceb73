//! The few process-level system calls the shard process needs, through rustix's safe
//! wrappers (no `unsafe` here).

/// Names the calling thread (`/proc/PID/comm`, what `ps` and `top` show), cut to the
/// kernel's 15 bytes.
pub fn set_thread_name(name: &str) -> std::io::Result<()> {
    let cut: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    let name = std::ffi::CString::new(cut).map_err(std::io::Error::other)?;
    Ok(rustix::thread::set_name(&name)?)
}

/// Asks the kernel to send SIGTERM to this process when its parent dies. Note: Linux
/// sends it when the parent *thread* that forked us exits, not the parent process.
pub fn set_parent_death_signal() -> std::io::Result<()> {
    Ok(rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?)
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit (glommio registers its I/O memory
/// against it); returns the resulting soft limit in bytes (`None` = unlimited).
pub fn raise_memlock_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Memlock);
    let below_hard = match (lim.current, lim.maximum) {
        (Some(cur), Some(max)) => cur < max,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit { current: lim.maximum, maximum: lim.maximum };
        setrlimit(Resource::Memlock, raised)?;
        return Ok(lim.maximum);
    }
    Ok(lim.current)
}

/// The memory page size in bytes.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (0 if unreadable).
/// procfs reads do not block on I/O, so this is fine on the executor.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|f| f.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page_size())
}
