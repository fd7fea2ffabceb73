//! The data dir (DESIGN §1, §8): created if missing, locked for this process (`LOCK`,
//! flock), checked against `keel.meta` (format version and shard count N), and given
//! the effective configuration (`keel.effective.toml`). Shard `i` lives in
//! `shard-III/`, with its sockets there.
//!
//! `keel.meta` is written once, by temp file + fsync + rename + fsync of the directory;
//! a restart with another N is refused, since every key's shard is
//! `xxh3_64(tenant) % N`.

use keel_config::Config;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `data-dir/shard-III`.
pub fn shard_dir(data_dir: &Path, i: u32) -> PathBuf {
    data_dir.join(format!("shard-{i:03}"))
}

/// Each shard's request socket, `shard-III/shard.sock`. Errors: a path too long for a
/// Unix socket address.
pub fn shard_sockets(cfg: &Config) -> Result<Vec<PathBuf>, String> {
    let sockets: Vec<PathBuf> = (0..cfg.shards).map(|i| shard_dir(&cfg.data_dir, i).join("shard.sock")).collect();
    match sockets.iter().find(|s| s.as_os_str().len() >= 100) {
        Some(s) => Err(format!("data dir path too long for a Unix socket: {} (keep it under ~80 bytes)", s.display())),
        None => Ok(sockets),
    }
}

/// Creates the data dir if needed and takes its lock (`LOCK`, held while the returned
/// file is open: one keel per data dir). Errors: not creatable, or locked by another
/// keel.
pub fn create_and_lock(dir: &Path) -> Result<std::fs::File, String> {
    use rustix::fs::{flock, FlockOperation};
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    let path = dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot create lock file {}: {e}", path.display()))?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(format!("data dir {} is in use by another keel process", dir.display())),
        Err(e) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// Writes `keel.effective.toml` (DESIGN §8): the effective config as a config file that
/// reads back as the same config, written to a temp file and renamed over the old one,
/// so a reader sees the old file or the new one, never a mix. Logs its path; a failure
/// is logged, not fatal (the file is informational).
pub fn write_effective_config(cfg: &Config) {
    let path = cfg.data_dir.join("keel.effective.toml");
    let tmp = cfg.data_dir.join("keel.effective.toml.tmp");
    let write = || -> Result<(), String> {
        let body = cfg.to_toml()?;
        let text = format!(
            "# keel's effective configuration at its last start (written by keel {}; usable as --config)\n{body}",
            env!("CARGO_PKG_VERSION")
        );
        let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
    };
    match write() {
        Ok(()) => tracing::info!("effective config written to {}", path.display()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

/// Version of the data-dir layout this binary writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(serde::Deserialize)]
struct Meta {
    format_version: u32,
    shards: u32,
}

/// Checks `dir/keel.meta` against `shards`, creating it if absent.
/// Errors (one line each): unreadable/malformed file, other format version, other N.
pub fn check_or_create(dir: &Path, shards: u32) -> Result<(), String> {
    let path = dir.join("keel.meta");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let meta: Meta = toml::from_str(&text)
                .map_err(|e| format!("cannot parse {}: {}", path.display(), e.message()))?;
            if meta.format_version != FORMAT_VERSION {
                return Err(format!(
                    "data dir {} has format version {}, this keel reads version {}",
                    dir.display(),
                    meta.format_version,
                    FORMAT_VERSION
                ));
            }
            if meta.shards != shards {
                return Err(format!(
                    "data dir {} was created with {} shards and keys are placed by shard count; restart with --shards {} (got {})",
                    dir.display(),
                    meta.shards,
                    meta.shards,
                    shards
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join("keel.meta.tmp");
            let body = format!(
                "# keel data directory; do not edit\nformat_version = {FORMAT_VERSION}\nshards = {shards}\ncreated_by = \"keel {}\"\n",
                env!("CARGO_PKG_VERSION")
            );
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(body.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                std::fs::File::open(dir)?.sync_all()
            };
            write().map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_other_shard_count() {
        let d = tempfile::tempdir().unwrap();
        check_or_create(d.path(), 2).unwrap();
        check_or_create(d.path(), 2).unwrap();
        let e = check_or_create(d.path(), 3).unwrap_err();
        assert!(e.contains("created with 2 shards"), "{e}");
        assert!(e.contains("--shards 2"), "{e}");
    }
}
