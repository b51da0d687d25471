//! A small tmpfs for the disk-full tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs mounted for one test (unmounted on drop), or `None` with the reason printed
/// where mounting is impossible. Under `CI=true` it must work.
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(SmallDisk { dir: at.into() }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the disk-full test must mount a tmpfs under CI=true (run as root): {why}");
        }
        eprintln!("\n!!! SKIPPED: cannot mount a tmpfs for the disk-full test: {why} !!!\n");
        None
    }

    /// Fills the disk: a file grows until the next write fails with ENOSPC.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![b'f'; 4096];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                break;
            }
        }
        // Byte by byte to the very last one.
        while f.write_all(b"f").is_ok() {}
        path
    }

    /// Frees `bytes` of the space `fill` took (tmpfs counts whole 4 KiB pages).
    pub fn free(&self, filler: &Path, bytes: u64) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(filler)
            .unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(bytes)).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
