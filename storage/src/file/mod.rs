//! The vLog's file layer: every file operation of the vLog — create a segment, open
//! one, `read_at`, `write_at`, `fdatasync`, file size, truncate, remove, directory
//! fsync — goes through [`Fs`], [`File`] and [`Dir`], so that a test can put a
//! fault-injecting backend under the store (as redb's `tests/crash_consistency.rs` and
//! fjall's journal tests do).
//!
//! Two backends behind one enum each (enum dispatch: one match per call, no boxing and
//! no vtable on the hot path):
//! - **real**: glommio `DmaFile` / `Directory` (O_DIRECT through io_uring), exactly the
//!   calls the store made before this layer existed. In a build without the
//!   `fault-injection` feature it is the only variant and the match compiles away.
//! - **fault** (crate tests, and the public [`fault`] module behind the cargo feature
//!   `fault-injection`, off by default): wraps the real files, performs every operation
//!   on them, and keeps in RAM which bytes a power loss would keep (the *durable
//!   image*), can fail chosen operations, and can simulate a power loss. See
//!   [`fault`] for its model and its trade-offs.
//!
//! Errors are plain `io::Error`s (glommio's are converted, keeping the OS error code);
//! callers add the verb-phrase context.
//!
//! Not covered: the O_DIRECT probe (`probe.rs`, a transient file outside `vlog/`) and
//! the directory listing at open (`std::fs::read_dir`, startup only).

#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;

use glommio::io::{Directory, DmaBuffer, DmaFile, OpenOptions, ReadResult};

use crate::util::glommio_io;

/// Which backend the store's files use. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) enum Fs {
    /// glommio `DmaFile` / `Directory`.
    #[default]
    Real,
    /// The fault-injecting layer over the real files.
    #[cfg(any(test, feature = "fault-injection"))]
    Fault(fault::FaultFs),
}

/// One open segment file.
pub(crate) enum File {
    Real(DmaFile),
    #[cfg(any(test, feature = "fault-injection"))]
    Fault(fault::FaultFile),
}

/// An open directory (for fsync after creating or removing a file in it).
pub(crate) enum Dir {
    Real(Directory),
    #[cfg(any(test, feature = "fault-injection"))]
    Fault(fault::FaultDir),
}

impl Fs {
    /// Creates `path` (`O_CREAT|O_EXCL`), open for reading and writing.
    pub async fn create(&self, path: &Path) -> io::Result<File> {
        match self {
            Fs::Real => Ok(File::Real(real_create(path).await?)),
            #[cfg(any(test, feature = "fault-injection"))]
            Fs::Fault(f) => Ok(File::Fault(f.create(path).await?)),
        }
    }

    /// Opens the existing file `path` for reading, and for writing if `write`.
    pub async fn open(&self, path: &Path, write: bool) -> io::Result<File> {
        match self {
            Fs::Real => Ok(File::Real(real_open(path, write).await?)),
            #[cfg(any(test, feature = "fault-injection"))]
            Fs::Fault(f) => Ok(File::Fault(f.open(path, write).await?)),
        }
    }

    /// Opens the directory `path` (which must be absolute: glommio fails with EBADF on a
    /// relative one).
    pub async fn open_dir(&self, path: &Path) -> io::Result<Dir> {
        match self {
            Fs::Real => Ok(Dir::Real(Directory::open(path).await.map_err(glommio_io)?)),
            #[cfg(any(test, feature = "fault-injection"))]
            Fs::Fault(f) => Ok(Dir::Fault(f.open_dir(path).await?)),
        }
    }
}

pub(crate) async fn real_create(path: &Path) -> io::Result<DmaFile> {
    OpenOptions::new().read(true).write(true).create_new(true).dma_open(path).await.map_err(glommio_io)
}

pub(crate) async fn real_open(path: &Path, write: bool) -> io::Result<DmaFile> {
    OpenOptions::new().read(true).write(write).dma_open(path).await.map_err(glommio_io)
}

impl File {
    fn dma(&self) -> &DmaFile {
        match self {
            File::Real(f) => f,
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.dma(),
        }
    }

    /// An aligned buffer of `len` bytes for [`File::write_at`].
    pub fn alloc_dma_buffer(&self, len: usize) -> DmaBuffer {
        self.dma().alloc_dma_buffer(len)
    }

    /// Reads up to `len` bytes at `off` (fewer at the end of the file).
    pub async fn read_at(&self, off: u64, len: usize) -> io::Result<ReadResult> {
        match self {
            File::Real(f) => f.read_at(off, len).await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.read_at(off, len).await,
        }
    }

    /// Writes `buf` at `off` (both 4 KiB aligned); returns the bytes written.
    pub async fn write_at(&self, buf: DmaBuffer, off: u64) -> io::Result<usize> {
        match self {
            File::Real(f) => f.write_at(buf, off).await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.write_at(buf, off).await,
        }
    }

    /// `fdatasync(2)`.
    pub async fn fdatasync(&self) -> io::Result<()> {
        match self {
            File::Real(f) => f.fdatasync().await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.fdatasync().await,
        }
    }

    /// The file's size, bytes.
    pub async fn size(&self) -> io::Result<u64> {
        match self {
            File::Real(f) => f.file_size().await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.size().await,
        }
    }

    /// Sets the file's size to `len` bytes (durable only after [`File::fdatasync`]).
    pub async fn truncate(&self, len: u64) -> io::Result<()> {
        match self {
            File::Real(f) => f.truncate(len).await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.truncate(len).await,
        }
    }

    /// Unlinks the file (durable only after an fsync of its directory). The handle keeps
    /// working for reads.
    pub async fn remove(&self) -> io::Result<()> {
        match self {
            File::Real(f) => f.remove().await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            File::Fault(f) => f.remove().await,
        }
    }
}

impl Dir {
    /// fsync of the directory: makes the creations and removals of files in it durable.
    pub async fn sync(&self) -> io::Result<()> {
        match self {
            Dir::Real(d) => d.sync().await.map_err(glommio_io),
            #[cfg(any(test, feature = "fault-injection"))]
            Dir::Fault(d) => d.sync().await,
        }
    }
}
