//! The fault-injecting layer's model: what a power loss keeps, and how faults hit.

use std::io;
use std::path::{Path, PathBuf};

use glommio::{LocalExecutorBuilder, Placement};

use super::fault::{Effect, FaultFs, Injection, Op};
use super::{File, Fs};

fn run<F: std::future::Future<Output = ()>>(f: F) {
    LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().expect("build executor").run(f);
}

/// A temp dir (absolute) with the O_DIRECT probe done, and a layer over it.
async fn setup() -> (tempfile::TempDir, PathBuf, FaultFs) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    crate::probe_direct_io(&dir).await.unwrap();
    (tmp, dir, FaultFs::new())
}

async fn write_block(file: &File, off: u64, byte: u8) -> io::Result<usize> {
    let mut buf = file.alloc_dma_buffer(4096);
    buf.as_bytes_mut().fill(byte);
    file.write_at(buf, off).await
}

fn block(byte: u8) -> Vec<u8> {
    vec![byte; 4096]
}

/// Checks what is on disk at `path` (`None`: no file).
fn check_disk(path: &Path, want: Option<Vec<u8>>) {
    match std::fs::read(path) {
        Ok(got) => assert_eq!(Some(got), want, "{}", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => assert_eq!(None, want, "{} is missing", path.display()),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

#[test]
fn unsynced_writes_are_lost_and_synced_ones_kept() {
    run(async {
        let (_tmp, dir, faults) = setup().await;
        let fs = Fs::Fault(faults.clone());
        let path = dir.join("a");
        let file = fs.create(&path).await.unwrap();
        fs.open_dir(&dir).await.unwrap().sync().await.unwrap();
        write_block(&file, 0, 1).await.unwrap();
        file.fdatasync().await.unwrap();
        write_block(&file, 4096, 2).await.unwrap();
        write_block(&file, 0, 3).await.unwrap();
        assert_eq!(faults.unsynced_writes(), 2);
        assert_eq!(faults.durable_image(&path), Some(block(1)));
        faults.power_loss().await.unwrap();
        check_disk(&path, Some(block(1)));
        // The old handle is dead; a new one sees the durable image.
        assert!(write_block(&file, 0, 4).await.is_err());
        assert!(file.fdatasync().await.is_err());
        let file = fs.open(&path, true).await.unwrap();
        assert_eq!(&*file.read_at(0, 8192).await.unwrap(), &block(1)[..]);
    });
}

#[test]
fn a_creation_is_durable_only_after_a_directory_fsync() {
    run(async {
        let (_tmp, dir, faults) = setup().await;
        let fs = Fs::Fault(faults.clone());
        let (lost, kept) = (dir.join("lost"), dir.join("kept"));
        let file = fs.create(&kept).await.unwrap();
        write_block(&file, 0, 7).await.unwrap();
        file.fdatasync().await.unwrap();
        fs.open_dir(&dir).await.unwrap().sync().await.unwrap();
        let file = fs.create(&lost).await.unwrap();
        write_block(&file, 0, 8).await.unwrap();
        file.fdatasync().await.unwrap();
        assert_eq!(faults.durable_image(&lost), None);
        faults.power_loss().await.unwrap();
        check_disk(&kept, Some(block(7)));
        check_disk(&lost, None);
    });
}

#[test]
fn a_removal_is_durable_only_after_a_directory_fsync_and_truncation_after_fdatasync() {
    run(async {
        let (_tmp, dir, faults) = setup().await;
        // Files that exist before the layer first sees them count as durable.
        let (undone, gone, cut) = (dir.join("undone"), dir.join("gone"), dir.join("cut"));
        for p in [&undone, &gone, &cut] {
            std::fs::write(p, [block(5), block(6)].concat()).unwrap();
        }
        let fs = Fs::Fault(faults.clone());
        let d = fs.open_dir(&dir).await.unwrap();
        fs.open(&gone, true).await.unwrap().remove().await.unwrap();
        d.sync().await.unwrap();
        fs.open(&undone, true).await.unwrap().remove().await.unwrap();
        let f = fs.open(&cut, true).await.unwrap();
        f.truncate(4096).await.unwrap();
        f.fdatasync().await.unwrap();
        f.truncate(100).await.unwrap();
        assert_eq!(f.size().await.unwrap(), 100);
        faults.power_loss().await.unwrap();
        check_disk(&undone, Some([block(5), block(6)].concat()));
        check_disk(&gone, None);
        check_disk(&cut, Some(block(5)));
    });
}

#[test]
fn faults_hit_the_nth_matching_operation() {
    run(async {
        let (_tmp, dir, faults) = setup().await;
        let fs = Fs::Fault(faults.clone());
        let (a, b) = (fs.create(&dir.join("a")).await.unwrap(), fs.create(&dir.join("b")).await.unwrap());
        faults.inject(Injection { op: Op::Write, nth: 2, file: Some("b".into()), effect: Effect::Fail(libc::ENOSPC) });
        write_block(&b, 0, 1).await.unwrap();
        write_block(&a, 0, 1).await.unwrap(); // another file: not counted
        let err = write_block(&b, 4096, 1).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(b.size().await.unwrap(), 4096, "a failed write leaves the file alone");
        write_block(&b, 4096, 1).await.unwrap();
        assert_eq!(faults.armed(), 0);
        assert_eq!(faults.count(Op::Write), 4);

        faults.fail_next(Op::Sync, libc::EIO);
        assert_eq!(b.fdatasync().await.unwrap_err().raw_os_error(), Some(libc::EIO));
        assert_eq!(faults.unsynced_writes(), 3, "a failed sync makes nothing durable");
        b.fdatasync().await.unwrap();
        assert_eq!(faults.unsynced_writes(), 1);
        let syncs = faults.syncs();
        assert_eq!(syncs.len(), 1);
        assert!(syncs[0].oldest_write.is_some_and(|w| w <= syncs[0].at));
        assert_eq!(syncs[0].changes, 2);
    });
}

#[test]
fn short_and_landed_effects() {
    run(async {
        let (_tmp, dir, faults) = setup().await;
        let fs = Fs::Fault(faults.clone());
        let path = dir.join("f");
        let file = fs.create(&path).await.unwrap();
        fs.open_dir(&dir).await.unwrap().sync().await.unwrap();
        faults.inject(Injection { op: Op::Write, nth: 1, file: None, effect: Effect::Short });
        let mut buf = file.alloc_dma_buffer(8192);
        buf.as_bytes_mut().fill(9);
        assert_eq!(file.write_at(buf, 0).await.unwrap(), 4096);
        assert_eq!(file.size().await.unwrap(), 4096);
        // A write that lands and reports an error; a sync that persists and reports one.
        faults.inject(Injection { op: Op::Write, nth: 1, file: None, effect: Effect::Landed(libc::EIO) });
        assert!(write_block(&file, 4096, 2).await.is_err());
        assert_eq!(file.size().await.unwrap(), 8192);
        faults.inject(Injection { op: Op::Sync, nth: 1, file: None, effect: Effect::Landed(libc::EIO) });
        assert!(file.fdatasync().await.is_err());
        assert_eq!(faults.durable_image(&path), Some([block(9), block(2)].concat()));
    });
}
