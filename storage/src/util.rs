//! Small error-conversion helpers.

use std::io;

use crate::StorageError;

/// Converts a glommio error into an `io::Error`, keeping the OS error code (glommio's
/// own conversion drops it for "enhanced" errors; the code matters for EOPNOTSUPP).
pub(crate) fn glommio_io(e: glommio::GlommioError<()>) -> io::Error {
    match e {
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        other => other.into(),
    }
}

/// `map_err` adapter: wraps an I/O error with the operation it interrupted, e.g.
/// `.map_err(io_err(format!("open vlog segment {path}")))`.
pub(crate) fn io_err<E: Into<io::Error>>(op: impl Into<String>) -> impl FnOnce(E) -> StorageError {
    let op = op.into();
    move |e| StorageError::Io { op, source: e.into() }
}

/// Like [`io_err`] for glommio errors.
pub(crate) fn gio_err(op: impl Into<String>) -> impl FnOnce(glommio::GlommioError<()>) -> StorageError {
    let op = op.into();
    move |e| StorageError::Io { op, source: glommio_io(e) }
}

/// A copy of an I/O error (io::Error is not `Clone`): same kind, OS code and message.
pub(crate) fn clone_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}
