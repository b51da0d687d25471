//! Crash-safe whole-file writes: temp file in the same directory, fsync, rename, fsync dir.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::nofollow;

/// Replaces `path` with `bytes` so that a reader or a crash sees either the old or the new
/// file, never a mix. `durable` adds the fsyncs that make it survive power loss.
/// The directory is reached without following a link under `.wg/` (see
/// [`super::nofollow`]); the rename replaces a planted link instead of writing through it.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let dir = nofollow::open_dir(parent, false)?;
    let here = nofollow::in_dir(&dir, std::ffi::OsStr::new(""));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&here)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(here.join(name)).map_err(|e| e.error)?;
    if durable {
        File::from(dir).sync_all()?;
    }
    Ok(())
}
