//! The one way to append to an append-only file (`graph.jsonl`, `inbox.jsonl`, `outbox.jsonl`,
//! `events.jsonl`, `log.jsonl`, `handler.log`).
//!
//! Every append holds an exclusive `flock` on the file itself, so appenders take turns, and
//! under it:
//! - a final line without its newline (an append a crash or a full disk cut short) is cut
//!   first, so the new record never glues onto a fragment;
//! - the record goes out in one `write_all`;
//! - if that write fails part-way (`ENOSPC`), the file is cut back to its length before the
//!   write: a failed append leaves nothing behind.
//!
//! Errors keep their `io::ErrorKind` (a full disk stays `StorageFull`) and name the path.

use std::fs::File;
#[cfg(test)]
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use fs2::FileExt as _;

use super::nofollow;

/// What an append did besides appending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    /// File length before the record (after any repair): where the record starts.
    pub at: u64,
    /// Bytes of a torn last line that were cut before appending.
    pub repaired: u64,
}

/// The error of an append, with the path and the operation in its message and the kind of
/// the underlying error kept.
fn named(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

/// Opens `path` for appending (creating it and its directory), readable for the repair.
/// Never through a link or into a special file under `.wg/` (see [`super::nofollow`]).
pub fn open(path: &Path) -> io::Result<File> {
    nofollow::open(path, nofollow::Mode::Append)
}

/// Appends `bytes` (whole lines) to `path`.
pub fn append(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<Appended> {
    let file = open(path)?;
    append_to(&file, path, bytes, fsync)
}

/// Appends `bytes` (whole lines) to the already open `file` (opened by [`open`]); `path` is
/// for messages.
pub fn append_to(file: &File, path: &Path, bytes: &[u8], fsync: bool) -> io::Result<Appended> {
    file.lock_exclusive().map_err(|e| named(path, "lock", e))?;
    let result = append_locked(file, path, bytes, fsync);
    let _ = fs2::FileExt::unlock(file);
    result
}

fn append_locked(file: &File, path: &Path, bytes: &[u8], fsync: bool) -> io::Result<Appended> {
    let len = file.metadata().map_err(|e| named(path, "stat", e))?.len();
    let keep = complete_len(file, len).map_err(|e| named(path, "read", e))?;
    if keep < len {
        file.set_len(keep)
            .map_err(|e| named(path, "repair the torn tail of", e))?;
        tracing::warn!(
            "{}: removed {} bytes of an unfinished last line (a write cut short by a crash or a full disk)",
            path.display(),
            len - keep
        );
    }
    let mut w = file;
    if let Err(e) = w.write_all(bytes) {
        // Whatever part of the record reached the file goes again: cutting frees space, so
        // this works on a full disk too.
        let _ = file.set_len(keep);
        return Err(named(path, "append to", e));
    }
    if fsync {
        if let Err(e) = file.sync_data() {
            let _ = file.set_len(keep);
            return Err(named(path, "sync", e));
        }
    }
    Ok(Appended {
        at: keep,
        repaired: len - keep,
    })
}

/// Takes back a record appended at `at` with `len` bytes, if it is still the file's last one
/// (used when the change it recorded could not be made). Returns whether it was taken back.
pub fn retract(path: &Path, at: u64, len: u64) -> io::Result<bool> {
    let file = nofollow::open(path, nofollow::Mode::ReadWrite)?;
    file.lock_exclusive().map_err(|e| named(path, "lock", e))?;
    let cur = file.metadata().map_err(|e| named(path, "stat", e))?.len();
    let ours = cur == at + len;
    if ours {
        file.set_len(at).map_err(|e| named(path, "truncate", e))?;
    }
    let _ = fs2::FileExt::unlock(&file);
    Ok(ours)
}

/// The length of `file`'s complete lines: `len` when it is empty or ends in a newline, else the
/// offset just past its last newline (0 when it has none).
pub fn complete_len(file: &File, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    // The common case, a file ending in a newline, costs one one-byte read.
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a").join("x.jsonl");
        append(&p, b"{\"a\":1}\n", false).unwrap();
        // A write cut short: half a record, no newline.
        let f = OpenOptions::new().append(true).open(&p).unwrap();
        (&f).write_all(b"{\"a\":2,\"tex").unwrap();
        let r = append(&p, b"{\"a\":3}\n", false).unwrap();
        assert_eq!(r.repaired, 11);
        assert_eq!(r.at, 8);
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\":1}\n{\"a\":3}\n");
    }

    #[test]
    fn a_file_of_one_torn_line_is_emptied_and_long_tails_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, vec![b'x'; 200_000]).unwrap();
        append(&p, b"ok\n", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"ok\n");
        let mut long = b"first\n".to_vec();
        long.extend(vec![b'y'; 150_000]);
        std::fs::write(&p, &long).unwrap();
        let r = append(&p, b"second\n", false).unwrap();
        assert_eq!(r.repaired, 150_000);
        assert_eq!(std::fs::read(&p).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn a_retracted_record_is_gone_unless_another_followed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        append(&p, b"a\n", false).unwrap();
        let r = append(&p, b"b\n", false).unwrap();
        assert!(retract(&p, r.at, 2).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"a\n");
        let r = append(&p, b"b\n", false).unwrap();
        append(&p, b"c\n", false).unwrap();
        assert!(!retract(&p, r.at, 2).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\nc\n");
    }

    #[test]
    fn errors_name_the_path_and_keep_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::create_dir(&p).unwrap();
        let e = append(&p, b"a\n", false).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
    }

    #[test]
    fn a_write_to_a_full_device_leaves_the_file_as_it_was() {
        // /dev/full: every write fails with ENOSPC, like a full disk.
        let p = Path::new("/dev/full");
        let f = OpenOptions::new().read(true).append(true).open(p).unwrap();
        let e = append_to(&f, p, b"a\n", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(e.to_string().contains("/dev/full"), "{e}");
    }
}
