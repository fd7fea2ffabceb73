//! A fault-injecting file layer for tests: it sits under the vLog in place of the plain
//! glommio files ([`crate::Store::open_with_faults`]), performs every operation on the
//! real files, and keeps in RAM what a power loss would leave of them.
//!
//! Available to the crate's own tests and, behind the cargo feature `fault-injection`
//! (off by default; `keel-storage` and `keel-shard` enable it only as a dev-dependency
//! feature), to integration tests. A production build has no trace of it.
//!
//! **The model.** Per file the layer keeps its *durable image*: the file's content as of
//! its last successful `fdatasync` (for a file that existed when first opened through
//! the layer: its content then), and the changes since (writes and truncations, with
//! their times). A successful `fdatasync` folds the changes into the image. A file's
//! *existence* is durable only after an fsync of its directory that follows its
//! creation, and a removal likewise. [`FaultFs::power_loss`] makes every handle opened so
//! far fail from then on, waits for operations already issued to the kernel, and then
//! rewrites every file to its durable image: unsynced writes are gone, a file whose
//! creation was never followed by a directory fsync is gone, a removal never followed
//! by one is undone. Reads see the real file (the page cache), as a process does.
//!
//! **Trade-offs.** The model is the strict reading of POSIX: it drops *every* unsynced
//! write, while a real disk keeps some of them (possibly a later block but not an
//! earlier one: recovery's torn-tail rules cover that, tested separately with byte
//! edits). It therefore checks that nothing acknowledged depends on an unsynced write,
//! not every torn combination. It keeps a copy of every file in RAM (tests use small
//! segments), and reading a file's image when first opened costs one read of the file.
//! A path re-created after a removal starts a fresh record (segment ids are never
//! reused, so the store never does that).
//!
//! **Faults.** [`FaultFs::inject`] arms an [`Injection`]: the `nth` next operation of a
//! kind ([`Op`]), optionally only on one file name, gets an [`Effect`]: fail without
//! touching the file (`Fail`), take effect and then report an error (`Landed`: the
//! bytes reached the file, or an fdatasync persisted them, but the caller sees the
//! error), or, for writes, write only a prefix (`Short`). Errors are OS errors, e.g.
//! `libc::EIO` or `libc::ENOSPC`. [`FaultFs::set_disk_full`] models a file system that
//! fills up: while set, writes fail with ENOSPC (the first one writes a prefix and
//! returns short, as O_DIRECT does when the space runs out mid-write). Counters ([`FaultFs::count`]) and the list of syncs
//! with their times ([`FaultFs::syncs`]) tell a test when data became durable.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::{Directory, DmaBuffer, DmaFile, ReadResult};

use super::{real_create, real_open};
use crate::util::glommio_io;

/// The fault-injecting file system shared by a test and the stores it opens; cheap to
/// clone (`Rc`), `!Send`. Open every store of one directory through the same `FaultFs`
/// (files it never saw are left alone by [`FaultFs::power_loss`]).
#[derive(Clone, Default)]
pub struct FaultFs {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("FaultFs").field("files", &st.files.len()).field("epoch", &st.epoch).field("armed", &st.plan.len()).finish()
    }
}

/// A kind of file operation that can be counted and failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Creating a file (`O_CREAT|O_EXCL`).
    Create,
    /// `write_at`.
    Write,
    /// `fdatasync` of a file.
    Sync,
    /// fsync of a directory.
    DirSync,
    /// Setting a file's size.
    Truncate,
    /// Unlinking a file.
    Remove,
    /// `read_at` (only [`Effect::Delay`] applies to reads).
    Read,
}

const N_OPS: usize = 7;

/// What an armed fault does to the operation it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The operation does nothing and fails with this OS error (e.g. `libc::EIO`).
    Fail(i32),
    /// The operation takes effect (a write's bytes reach the file; an fdatasync makes
    /// them durable; a creation, truncation or removal happens), then fails with this OS
    /// error.
    Landed(i32),
    /// Writes only: the first half of the buffer, rounded down to whole 4 KiB blocks
    /// (possibly nothing), is written, and the call returns that count.
    Short,
    /// Reads only: the read waits this long, then happens as usual (to hold a task at
    /// one await while other tasks run: a failed round taken back meanwhile, say).
    Delay(Duration),
}

/// One armed fault: the `nth` (1 = the next) operation of kind `op` from now on, on the
/// file named `file` if given (the last path component, e.g. `"00000002.vlog"`; `None`
/// = any file or directory), gets `effect`.
#[derive(Debug, Clone)]
pub struct Injection {
    pub op: Op,
    pub nth: u64,
    pub file: Option<String>,
    pub effect: Effect,
}

/// One successful `fdatasync`.
#[derive(Debug, Clone)]
pub struct SyncEvent {
    /// The file synced.
    pub file: PathBuf,
    /// When the sync completed.
    pub at: Instant,
    /// When the oldest write it made durable completed; `None` if nothing was pending.
    pub oldest_write: Option<Instant>,
    /// Writes and truncations it made durable.
    pub changes: usize,
}

#[derive(Default)]
struct State {
    files: BTreeMap<PathBuf, Tracked>,
    plan: Vec<Injection>,
    counts: [u64; N_OPS],
    syncs: Vec<SyncEvent>,
    /// Bumped by each power loss; handles of an older epoch fail.
    epoch: u64,
    /// Operations issued to the kernel and not yet completed.
    in_flight: usize,
    /// The "disk" is full ([`FaultFs::set_disk_full`]); `Some(true)` until the first
    /// write since it filled up, which is short.
    full: Option<bool>,
}

/// What the layer knows about one file.
struct Tracked {
    /// The content a power loss keeps (if `exists_durably`).
    durable: Vec<u8>,
    /// Changes since the last successful fdatasync, oldest first.
    pending: Vec<Change>,
    exists: bool,
    exists_durably: bool,
}

enum Change {
    Write { off: u64, bytes: Vec<u8>, at: Instant },
    Truncate { len: u64 },
}

impl Change {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            Change::Write { off, bytes, .. } => {
                let (off, end) = (*off as usize, *off as usize + bytes.len());
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[off..end].copy_from_slice(bytes);
            }
            Change::Truncate { len } => image.resize(*len as usize, 0),
        }
    }
}

fn powered_off() -> io::Error {
    io::Error::other("simulated power loss: this handle is dead")
}

/// Counts an operation as in flight until dropped.
struct InFlight(Rc<RefCell<State>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.borrow_mut().in_flight -= 1;
    }
}

impl FaultFs {
    /// A layer with no files, no armed faults.
    pub fn new() -> FaultFs {
        FaultFs::default()
    }

    /// Arms a fault (see [`Injection`]). Several may be armed at once; each counts its
    /// own matching operations from now on. `nth` 0 is treated as 1.
    pub fn inject(&self, injection: Injection) {
        let nth = injection.nth.max(1);
        self.state.borrow_mut().plan.push(Injection { nth, ..injection });
    }

    /// Makes the next operation of kind `op` (any file) fail with OS error `errno`
    /// without taking effect.
    pub fn fail_next(&self, op: Op, errno: i32) {
        self.inject(Injection { op, nth: 1, file: None, effect: Effect::Fail(errno) });
    }

    /// `true`: the file system is full from now on. The next write writes the first half
    /// of its buffer (whole 4 KiB blocks, possibly nothing) and returns that count;
    /// every later write fails with ENOSPC without touching the file. Faults armed with
    /// [`FaultFs::inject`] take precedence. Other operations (creating, truncating,
    /// syncing, removing) work as usual. `false`: space was freed, writes work again.
    pub fn set_disk_full(&self, full: bool) {
        self.state.borrow_mut().full = full.then_some(true);
    }

    /// Faults armed and not yet triggered.
    pub fn armed(&self) -> usize {
        self.state.borrow().plan.len()
    }

    /// Operations of kind `op` attempted so far (including failed ones), over all
    /// files, since this layer was made.
    pub fn count(&self, op: Op) -> u64 {
        self.state.borrow().counts[op as usize]
    }

    /// Every successful fdatasync so far, oldest first.
    pub fn syncs(&self) -> Vec<SyncEvent> {
        self.state.borrow().syncs.clone()
    }

    /// Writes (over all files) that completed but are not yet durable.
    pub fn unsynced_writes(&self) -> usize {
        self.state.borrow().files.values().flat_map(|t| &t.pending).filter(|c| matches!(c, Change::Write { .. })).count()
    }

    /// Completion time of the oldest write that is not yet durable, if any.
    pub fn oldest_unsynced_write(&self) -> Option<Instant> {
        let st = self.state.borrow();
        st.files
            .values()
            .flat_map(|t| &t.pending)
            .filter_map(|c| match c {
                Change::Write { at, .. } => Some(*at),
                Change::Truncate { .. } => None,
            })
            .min()
    }

    /// What a power loss now would leave of `path`: `None` if the file would not exist
    /// (or the layer never saw it).
    pub fn durable_image(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.borrow();
        st.files.get(path).filter(|t| t.exists_durably).map(|t| t.durable.clone())
    }

    /// Simulates a power loss: every handle opened through this layer so far fails from
    /// now on (with `ErrorKind::Other`), armed faults are dropped, operations already
    /// issued are waited for, then every file the layer knows is rewritten to its durable
    /// image, or deleted if its existence was never durable, or re-created if its
    /// removal was never durable. Drop the store first; open it again afterwards through
    /// the same layer. Uses blocking `std::fs` calls (a test-only simulation of a reboot;
    /// nothing else of the store runs then).
    ///
    /// Errors: the first failed `std::fs` call (the files are then in no defined state).
    pub async fn power_loss(&self) -> io::Result<()> {
        {
            let mut st = self.state.borrow_mut();
            st.epoch += 1;
            st.plan.clear();
        }
        while self.state.borrow().in_flight > 0 {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let files = std::mem::take(&mut self.state.borrow_mut().files);
        let mut kept = BTreeMap::new();
        for (path, mut t) in files {
            if !t.exists_durably {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            std::fs::write(&path, &t.durable)?;
            t.pending.clear();
            t.exists = true;
            kept.insert(path, t);
        }
        self.state.borrow_mut().files = kept;
        Ok(())
    }

    /// Starts an operation on `path` with a handle of `epoch`: fails if the handle is
    /// dead, counts it and returns the fault armed for it, if any.
    fn begin(&self, epoch: u64, op: Option<Op>, path: &Path) -> io::Result<(Option<Effect>, InFlight)> {
        let mut st = self.state.borrow_mut();
        if epoch != st.epoch {
            return Err(powered_off());
        }
        let mut effect = None;
        if let Some(op) = op {
            st.counts[op as usize] += 1;
            for i in st.plan.iter_mut().filter(|i| i.op == op && i.file.as_deref().is_none_or(|f| path.ends_with(f))) {
                i.nth -= 1;
                if i.nth == 0 && effect.is_none() {
                    effect = Some(i.effect);
                }
            }
            st.plan.retain(|i| i.nth > 0);
            if op == Op::Write && effect.is_none() {
                effect = match st.full {
                    None => None,
                    Some(true) => Some(Effect::Short),
                    Some(false) => Some(Effect::Fail(libc::ENOSPC)),
                };
                if st.full.is_some() {
                    st.full = Some(false);
                }
            }
        }
        st.in_flight += 1;
        Ok((effect, InFlight(self.state.clone())))
    }

    /// Fails if a power loss happened since `epoch` (the operation then did not happen).
    fn check_alive(&self, epoch: u64) -> io::Result<()> {
        if self.state.borrow().epoch != epoch {
            return Err(powered_off());
        }
        Ok(())
    }

    fn with_file<R>(&self, path: &Path, f: impl FnOnce(&mut Tracked) -> R) -> Option<R> {
        self.state.borrow_mut().files.get_mut(path).map(f)
    }

    pub(crate) async fn create(&self, path: &Path) -> io::Result<FaultFile> {
        let epoch = self.state.borrow().epoch;
        let (effect, _g) = self.begin(epoch, Some(Op::Create), path)?;
        if let Some(Effect::Fail(errno)) = effect {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let real = real_create(path).await?;
        self.check_alive(epoch)?;
        let fresh = Tracked { durable: Vec::new(), pending: Vec::new(), exists: true, exists_durably: false };
        self.state.borrow_mut().files.insert(path.to_path_buf(), fresh);
        if let Some(Effect::Landed(errno)) = effect {
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(FaultFile { real, path: path.to_path_buf(), fs: self.clone(), epoch })
    }

    pub(crate) async fn open(&self, path: &Path, write: bool) -> io::Result<FaultFile> {
        let epoch = self.state.borrow().epoch;
        let (_, _g) = self.begin(epoch, None, path)?;
        let real = real_open(path, write).await?;
        let known = self.state.borrow().files.get(path).is_some_and(|t| t.exists);
        if !known {
            // First seen: what is there now counts as durable.
            let size = real.file_size().await.map_err(glommio_io)?;
            let durable = if size == 0 { Vec::new() } else { real.read_at(0, size as usize).await.map_err(glommio_io)?.to_vec() };
            let t = Tracked { durable, pending: Vec::new(), exists: true, exists_durably: true };
            self.state.borrow_mut().files.insert(path.to_path_buf(), t);
        }
        self.check_alive(epoch)?;
        Ok(FaultFile { real, path: path.to_path_buf(), fs: self.clone(), epoch })
    }

    pub(crate) async fn open_dir(&self, path: &Path) -> io::Result<FaultDir> {
        let epoch = self.state.borrow().epoch;
        let (_, _g) = self.begin(epoch, None, path)?;
        let real = Directory::open(path).await.map_err(glommio_io)?;
        Ok(FaultDir { real, path: path.to_path_buf(), fs: self.clone(), epoch })
    }
}

/// A file opened through [`FaultFs`].
pub(crate) struct FaultFile {
    real: DmaFile,
    path: PathBuf,
    fs: FaultFs,
    epoch: u64,
}

impl FaultFile {
    pub fn dma(&self) -> &DmaFile {
        &self.real
    }

    pub async fn read_at(&self, off: u64, len: usize) -> io::Result<ReadResult> {
        let (effect, _g) = self.fs.begin(self.epoch, Some(Op::Read), &self.path)?;
        if let Some(Effect::Delay(d)) = effect {
            glommio::timer::sleep(d).await;
            self.fs.check_alive(self.epoch)?;
        }
        self.real.read_at(off, len).await.map_err(glommio_io)
    }

    pub async fn size(&self) -> io::Result<u64> {
        let (_, _g) = self.fs.begin(self.epoch, None, &self.path)?;
        self.real.file_size().await.map_err(glommio_io)
    }

    pub async fn write_at(&self, mut buf: DmaBuffer, off: u64) -> io::Result<usize> {
        let (effect, _g) = self.fs.begin(self.epoch, Some(Op::Write), &self.path)?;
        match effect {
            Some(Effect::Fail(errno)) => return Err(io::Error::from_raw_os_error(errno)),
            Some(Effect::Short) => {
                let keep = buf.len() / 2 / 4096 * 4096;
                if keep == 0 {
                    return Ok(0);
                }
                buf.trim_to_size(keep);
            }
            _ => {}
        }
        let bytes = buf.as_bytes().to_vec();
        let n = self.real.write_at(buf, off).await.map_err(glommio_io)?;
        self.fs.check_alive(self.epoch)?;
        let change = Change::Write { off, bytes: bytes[..n.min(bytes.len())].to_vec(), at: Instant::now() };
        self.fs.with_file(&self.path, |t| t.pending.push(change));
        match effect {
            Some(Effect::Landed(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(n),
        }
    }

    pub async fn fdatasync(&self) -> io::Result<()> {
        let (effect, _g) = self.fs.begin(self.epoch, Some(Op::Sync), &self.path)?;
        if let Some(Effect::Fail(errno)) = effect {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.real.fdatasync().await.map_err(glommio_io)?;
        self.fs.check_alive(self.epoch)?;
        let event = self.fs.with_file(&self.path, |t| {
            let oldest_write = t.pending.iter().find_map(|c| match c {
                Change::Write { at, .. } => Some(*at),
                Change::Truncate { .. } => None,
            });
            let changes = t.pending.len();
            for c in t.pending.drain(..) {
                c.apply(&mut t.durable);
            }
            SyncEvent { file: self.path.clone(), at: Instant::now(), oldest_write, changes }
        });
        if let Some(event) = event {
            self.fs.state.borrow_mut().syncs.push(event);
        }
        match effect {
            Some(Effect::Landed(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }

    pub async fn truncate(&self, len: u64) -> io::Result<()> {
        let (effect, _g) = self.fs.begin(self.epoch, Some(Op::Truncate), &self.path)?;
        if let Some(Effect::Fail(errno)) = effect {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.real.truncate(len).await.map_err(glommio_io)?;
        self.fs.check_alive(self.epoch)?;
        self.fs.with_file(&self.path, |t| t.pending.push(Change::Truncate { len }));
        match effect {
            Some(Effect::Landed(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }

    pub async fn remove(&self) -> io::Result<()> {
        let (effect, _g) = self.fs.begin(self.epoch, Some(Op::Remove), &self.path)?;
        if let Some(Effect::Fail(errno)) = effect {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.real.remove().await.map_err(glommio_io)?;
        self.fs.check_alive(self.epoch)?;
        self.fs.with_file(&self.path, |t| t.exists = false);
        match effect {
            Some(Effect::Landed(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }
}

/// A directory opened through [`FaultFs`].
pub(crate) struct FaultDir {
    real: Directory,
    path: PathBuf,
    fs: FaultFs,
    epoch: u64,
}

impl FaultDir {
    pub async fn sync(&self) -> io::Result<()> {
        let (effect, _g) = self.fs.begin(self.epoch, Some(Op::DirSync), &self.path)?;
        if let Some(Effect::Fail(errno)) = effect {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.real.sync().await.map_err(glommio_io)?;
        self.fs.check_alive(self.epoch)?;
        {
            let mut st = self.fs.state.borrow_mut();
            for (path, t) in st.files.iter_mut() {
                if path.parent() == Some(self.path.as_path()) {
                    t.exists_durably = t.exists;
                }
            }
            st.files.retain(|_, t| t.exists || t.exists_durably);
        }
        match effect {
            Some(Effect::Landed(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }
}
