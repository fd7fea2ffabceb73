//! SIGINT/SIGTERM for the router (DESIGN §7): a dedicated thread (signal-hook) sets the
//! shared shutdown flag, which the executors and the startup wait poll.

use crate::cmd::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Starts the signal thread. Close the returned handle at exit. Errors: the handlers or
/// the thread cannot be installed.
pub fn install(shared: Arc<Shared>) -> std::io::Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let handle = signals.handle();
    std::thread::Builder::new().name("keel-signals".into()).spawn(move || {
        for sig in signals.forever() {
            tracing::info!("received signal {sig}: shutting down (stop accepting, drain, sync)");
            shared.shutdown.store(true, Ordering::SeqCst);
        }
    })?;
    Ok(handle)
}
