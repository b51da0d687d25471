//! Advisory file locks (fs2). Every writer of `graph.jsonl` holds `graph.lock` exclusively.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An exclusive lock, released when dropped (or by the kernel when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path} is locked by another wg process (waited {waited:?})")]
    Busy { path: PathBuf, waited: Duration },
    #[error("cannot open lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn open_lock_file(path: &Path) -> Result<File, LockError> {
    super::nofollow::open(path, super::nofollow::Mode::Create).map_err(|source| LockError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl FileLock {
    /// Takes the lock, retrying until `timeout`. Short sleeps first so that many
    /// short-lived writers (8 concurrent `wg add` loops) hand the lock over quickly.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<FileLock, LockError> {
        let file = open_lock_file(path)?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match fs2::FileExt::try_lock_exclusive(&file) {
                Ok(()) => {
                    return Ok(FileLock {
                        _file: file,
                        path: path.to_path_buf(),
                    })
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::EWOULDBLOCK) =>
                {
                    if start.elapsed() >= timeout {
                        return Err(LockError::Busy {
                            path: path.to_path_buf(),
                            waited: start.elapsed(),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(LockError::Io {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
    }

    /// Takes the lock only if it is free right now.
    pub fn try_acquire(path: &Path) -> Result<Option<FileLock>, LockError> {
        let file = open_lock_file(path)?;
        match fs2::FileExt::try_lock_exclusive(&file) {
            Ok(()) => Ok(Some(FileLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(source) => Err(LockError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The open file behind the lock, e.g. to write the holder's pid into it.
    pub fn file(&self) -> &File {
        &self._file
    }
}
