//! A full disk, through the real binary (issue 15): a shard on an 8 MiB tmpfs, SETs of
//! 64 KiB values until the first error. That error says "No space left on device", the
//! failed key is not there, every acknowledged key is, reads keep working; once space is
//! freed (a filler file the test put there is removed) writes succeed again without a
//! restart, and everything acknowledged survives a graceful restart.
//!
//! Needs to mount a tmpfs (root, as these tests run): skipped with a note otherwise.

mod common;

use common::{Scratch, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted at a directory; unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "8m") at `dir`; `None` if not permitted here.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            Ok(o) => {
                eprintln!("SKIPPED: cannot mount a tmpfs here: {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process being torn down): detach it now, freed when unused.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn value(i: usize) -> Vec<u8> {
    (0..64 << 10).map(|j| (i * 31 + j / 4096) as u8).collect()
}

fn set(c: &mut redis::Connection, k: &str, v: &[u8]) -> redis::RedisResult<()> {
    redis::cmd("SET").arg(k).arg(v).query(c)
}

fn get(c: &mut redis::Connection, k: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(k).query(c).unwrap()
}

fn dbsize(c: &mut redis::Connection) -> usize {
    redis::cmd("DBSIZE").query(c).unwrap()
}

#[test]
fn a_full_disk_fails_writes_clearly_and_they_resume_once_space_is_freed() {
    let scratch = Scratch::new();
    let Some(fs) = Tmpfs::mount(&scratch.path().join("m"), "8m") else { return };
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![1u8; 1 << 20]).unwrap();
    let data_dir = fs.0.join("d");
    let srv = Server::start_with_data_dir(&scratch, &data_dir, &["--shards", "1"]);
    let mut c = srv.con();

    // SETs until the first error.
    let mut acked = 0;
    let err = loop {
        assert!(acked < 200, "8 MiB should be full long before 200 values of 64 KiB");
        match set(&mut c, &format!("k{acked}"), &value(acked)) {
            Ok(()) => acked += 1,
            Err(e) => break e.to_string(),
        }
    };
    eprintln!("the first error, after {acked} SETs: {err}");
    assert!(err.contains("No space left on device"), "{err}\n{}", srv.log_tail());
    assert!(acked > 50, "{acked} values before the disk was full");
    assert_eq!(get(&mut c, &format!("k{acked}")), None, "the failed SET is not visible");
    assert_eq!(dbsize(&mut c), acked);
    assert_eq!(get(&mut c, "k0"), Some(value(0)));
    assert_eq!(get(&mut c, &format!("k{}", acked - 1)), Some(value(acked - 1)));

    // Still full: the same clear error, nothing changes.
    let err = set(&mut c, "still-full", &value(999)).unwrap_err().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(dbsize(&mut c), acked);

    // Space freed: writes resume without a restart (the store may still be taking back
    // the last failed write for a moment).
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match set(&mut c, &format!("k{acked}"), &value(acked)) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && e.to_string().contains("No space left on device") => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("SET after freeing space: {e}\n{}", srv.log_tail()),
        }
    }
    acked += 1;
    set(&mut c, "after", b"freed").unwrap();
    assert_eq!(dbsize(&mut c), acked + 1);
    drop(c);
    srv.stop();

    let srv = Server::start_with_data_dir(&scratch, &data_dir, &["--shards", "1"]);
    let mut c = srv.con();
    assert_eq!(dbsize(&mut c), acked + 1);
    for i in [0, acked / 2, acked - 1] {
        assert_eq!(get(&mut c, &format!("k{i}")), Some(value(i)), "k{i} after a restart");
    }
    assert_eq!(get(&mut c, "after"), Some(b"freed".to_vec()));
    drop(c);
    srv.stop();
}
