//! `data-dir/keel.meta`: the data dir's format version and shard count N (DESIGN §1).
//! Written once, by temp file + fsync + rename + fsync of the directory; a restart with
//! another N is refused, since every key's shard is `xxh3_64(tenant) % N`.

use std::io::Write;
use std::path::Path;

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
