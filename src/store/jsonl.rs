//! Append-only JSON Lines files: one `write_all` per record (see `append.rs`), readers skip a
//! torn last line.

use std::io;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Appends one record as one line. A single `write_all` on an `O_APPEND` file, so concurrent
/// appenders never interleave inside a line (records are far below the pipe/page limits).
pub fn append<T: Serialize>(path: &Path, record: &T, fsync: bool) -> io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
    line.push(b'\n');
    append_bytes(path, &line, fsync)
}

/// Appends whole lines through the shared primitive (torn tail repaired first, a failed write
/// taken back, errors naming the path).
pub fn append_bytes(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    super::append::append(path, bytes, fsync).map(|_| ())
}

/// A line that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct BadLine {
    pub path: String,
    pub line: usize,
    pub reason: String,
}

/// Reads every complete line of `path` as `T`. A missing file is empty; a final line without
/// its newline is an append in flight and is skipped; any other bad line is an error.
pub fn read_all<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReadError> {
    let bytes = match super::nofollow::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ReadError::Io {
                path: path.display().to_string(),
                source: e,
            })
        }
    };
    parse_lines(path, &bytes)
}

pub fn parse_lines<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Vec<T>, ReadError> {
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    let mut out = Vec::new();
    for (n, line) in complete.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(v) => out.push(v),
            Err(e) => {
                return Err(ReadError::Bad(BadLine {
                    path: path.display().to_string(),
                    line: n + 1,
                    reason: e.to_string(),
                }))
            }
        }
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Bad(BadLine),
}
