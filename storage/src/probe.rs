//! The O_DIRECT probe run before any segment is opened.

use std::path::Path;

use glommio::io::OpenOptions;

use crate::util::glommio_io;
use crate::StorageError;

const PROBE_FILE: &str = ".keel-direct-io-probe";
const PROBE_LEN: usize = 4096;

/// Checks that O_DIRECT reads and writes through glommio work in `dir` (created if
/// missing), and primes glommio's per-thread, per-device io_uring IOPOLL cache.
///
/// glommio decides whether a device supports IOPOLL by reading offset 0 of the first
/// `DmaFile` opened on it in this thread and caches the answer. If that file is new and
/// empty the read trivially succeeds, glommio caches "pollable", and every later
/// O_DIRECT read on the device fails with EOPNOTSUPP (os error 95). This probe writes a
/// non-empty 4 KiB file with `std::fs` first, opens it as a `DmaFile` (so the IOPOLL
/// probe reads real data and caches the right answer), reads it back, writes a new
/// pattern with O_DIRECT, reads that back, fdatasyncs, and deletes the file.
///
/// Call it (or [`crate::Store::open`], which calls it) on each executor thread before
/// that thread opens any other `DmaFile` on the same device.
///
/// Errors: `Io` naming the step and `dir`, with a hint when the error is EOPNOTSUPP.
pub async fn probe_direct_io(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(PROBE_FILE);
    let err = |step: &str, source: std::io::Error| {
        let hint = if source.raw_os_error() == Some(libc::EOPNOTSUPP) {
            " (EOPNOTSUPP: glommio probably cached IOPOLL support from an empty file; \
             open the store before any other DmaFile on this device)"
        } else {
            ""
        };
        StorageError::Io { op: format!("probe O_DIRECT I/O in {}: {step}{hint}", dir.display()), source }
    };
    std::fs::create_dir_all(dir).map_err(|e| err("create the directory", e))?;
    let first: Vec<u8> = (0..PROBE_LEN).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(&path, &first).map_err(|e| err("write the probe file", e))?;
    let result = async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|e| err("open the probe file with O_DIRECT", glommio_io(e)))?;
        let read = file.read_at_aligned(0, PROBE_LEN).await.map_err(|e| err("read 4 KiB with O_DIRECT", glommio_io(e)))?;
        if *read != first[..] {
            return Err(err("read 4 KiB with O_DIRECT", std::io::Error::other("read back different bytes")));
        }
        drop(read);
        let mut buf = file.alloc_dma_buffer(PROBE_LEN);
        buf.as_bytes_mut().iter_mut().enumerate().for_each(|(i, b)| *b = (i % 241) as u8 ^ 0x5a);
        let second = buf.as_bytes().to_vec();
        let n = file.write_at(buf, 0).await.map_err(|e| err("write 4 KiB with O_DIRECT", glommio_io(e)))?;
        if n != PROBE_LEN {
            return Err(err("write 4 KiB with O_DIRECT", std::io::Error::other(format!("short write: {n} bytes"))));
        }
        file.fdatasync().await.map_err(|e| err("fdatasync", glommio_io(e)))?;
        let read = file.read_at_aligned(0, PROBE_LEN).await.map_err(|e| err("read back 4 KiB with O_DIRECT", glommio_io(e)))?;
        if *read != second[..] {
            return Err(err("read back 4 KiB with O_DIRECT", std::io::Error::other("read back different bytes")));
        }
        drop(read);
        file.close().await.map_err(|e| err("close the probe file", glommio_io(e)))?;
        Ok(())
    }
    .await;
    let removed = std::fs::remove_file(&path);
    result?;
    removed.map_err(|e| err("remove the probe file", e))
}
