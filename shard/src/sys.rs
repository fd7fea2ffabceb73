//! The few libc calls the shard process needs; with `fdpass` (descriptor passing), the crate's only `unsafe`.

/// Names the calling thread (`/proc/PID/comm`, what `ps` and `top` show), cut to the
/// kernel's 15 bytes.
pub fn set_thread_name(name: &str) -> std::io::Result<()> {
    let cut: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    let name = std::ffi::CString::new(cut).map_err(std::io::Error::other)?;
    rustix::thread::set_name(&name).map_err(std::io::Error::from)
}

/// Asks the kernel to send SIGTERM to this process when its parent dies. Note: Linux
/// sends it when the parent *thread* that forked us exits, not the parent process.
#[expect(unsafe_code, reason = "prctl has no safe wrapper in std")]
pub fn set_parent_death_signal() -> std::io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit (glommio registers its I/O memory
/// against it); returns the resulting soft limit in bytes.
#[expect(unsafe_code, reason = "getrlimit/setrlimit have no safe wrapper in std")]
pub fn raise_memlock_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: `raised` is a valid rlimit read by the call only.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            return Ok(raised.rlim_cur);
        }
    }
    Ok(lim.rlim_cur)
}

/// The memory page size in bytes.
#[expect(unsafe_code, reason = "sysconf has no safe wrapper in std")]
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (0 if unreadable).
/// procfs reads do not block on I/O, so this is fine on the executor.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|f| f.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page_size())
}
