//! Where the router executors and the shard processes run: [`Layout`] pins router
//! executor `i` and shard `i` to the `i`-th CPU this process may use, when both sides
//! fit; otherwise nothing is pinned.

use keel_config::Config;

/// Where executors run. DESIGN §7 pins executors only when each gets a core; keel
/// refines that: router executor `i` and shard `i` deliberately share CPU `i` (they hand
/// requests to each other, so sharing a core turns a cross-core wake-up into a plain
/// context switch). That layout is used when the router threads and the shards each
/// fit the allowed CPUs; otherwise nothing is pinned. Measured on the 2-core machine:
/// bench-results/kv.md ("Placement").
#[derive(Clone, Debug)]
pub struct Layout {
    /// CPU ids by index (the process's allowed CPUs, ascending); empty = unpinned.
    cpus: Vec<usize>,
    /// How many CPUs the process may use.
    allowed: usize,
}

impl Layout {
    /// The layout for `cfg` on the `allowed` CPU ids (ascending).
    pub fn for_config(cfg: &Config, allowed: &[usize]) -> Layout {
        let fits = cfg.router_threads <= allowed.len() && cfg.shards as usize <= allowed.len();
        Layout { cpus: if fits { allowed.to_vec() } else { Vec::new() }, allowed: allowed.len() }
    }

    /// Router executor `i` and shard `i` share a pinned CPU.
    pub fn colocated(&self) -> bool {
        !self.cpus.is_empty()
    }

    /// The CPU router executor `t` is pinned to, if any.
    pub fn router_cpu(&self, t: usize) -> Option<usize> {
        self.cpus.get(t).copied()
    }

    /// The CPU shard `i` is pinned to, if any.
    pub fn shard_cpu(&self, i: u32) -> Option<usize> {
        self.cpus.get(i as usize).copied()
    }

    /// The log line that says what is pinned.
    pub fn describe(&self, cfg: &Config) -> String {
        if self.colocated() {
            format!(
                "placement: router executor i and shard i pinned together on CPU i (CPUs {:?})",
                &self.cpus[..cfg.router_threads.max(cfg.shards as usize)]
            )
        } else {
            format!(
                "placement: unpinned ({} router threads and {} shards do not each fit the {} allowed CPUs)",
                cfg.router_threads, cfg.shards, self.allowed
            )
        }
    }
}

/// CPUs online (the default for `shards` and `router_threads`).
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The CPUs this process may run on (sched_getaffinity), ascending; `0..online` if that
/// call fails.
pub fn allowed_cpus() -> Vec<usize> {
    use rustix::thread::{sched_getaffinity, CpuSet};
    if let Ok(set) = sched_getaffinity(None) {
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect();
        if !cpus.is_empty() {
            return cpus;
        }
    }
    (0..online_cpus()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::{FileConfig, Overrides};

    fn cfg(router_threads: usize, shards: u32) -> Config {
        let flags = Overrides { router_threads: Some(router_threads), shards: Some(shards), ..Overrides::default() };
        Config::resolve(FileConfig::default(), flags, 2).unwrap()
    }

    #[test]
    fn router_executor_i_and_shard_i_share_the_ith_allowed_cpu() {
        let l = Layout::for_config(&cfg(2, 2), &[3, 5]);
        assert!(l.colocated());
        assert_eq!((l.router_cpu(0), l.router_cpu(1)), (Some(3), Some(5)));
        assert_eq!((l.shard_cpu(0), l.shard_cpu(1)), (Some(3), Some(5)));
        let l = Layout::for_config(&cfg(1, 2), &[0, 1]);
        assert_eq!((l.router_cpu(0), l.shard_cpu(1)), (Some(0), Some(1)));
    }

    #[test]
    fn nothing_is_pinned_when_either_side_does_not_fit() {
        for (t, s) in [(3, 2), (2, 3)] {
            let l = Layout::for_config(&cfg(t, s), &[0, 1]);
            assert!(!l.colocated(), "{t} router threads, {s} shards on 2 CPUs");
            assert_eq!((l.router_cpu(0), l.shard_cpu(0)), (None, None));
        }
    }
}
