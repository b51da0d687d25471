//! Reading the graph's records by line: the light records (id, status, edges) with their byte
//! offsets, and the index rebuilt from a full parse.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use super::index::{self, Entry, Header, Index, Loc};
use super::{file_identity, LightRecord, Result, Store, StoreError};

/// The light records of the complete lines of `bytes`, with the byte offset of each in its
/// file. `bytes` start at byte `base`, line `first_line + 1` of `path` (for error messages).
/// A final line without its newline is an append in flight and is left out; any other line
/// that does not parse is a corrupt store.
pub(super) fn light_records(
    path: &Path,
    bytes: &[u8],
    base: u64,
    first_line: u64,
) -> Result<Vec<(LightRecord, u64)>> {
    let mut out = Vec::new();
    let mut offset = base;
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let here = offset;
        offset += line.len() as u64;
        if line.last() != Some(&b'\n') {
            break;
        }
        let rec: LightRecord = serde_json::from_slice(line).map_err(|e| StoreError::Corrupt {
            path: path.display().to_string(),
            line: (first_line + i as u64 + 1) as usize,
            reason: e.to_string(),
        })?;
        out.push((rec, here));
    }
    Ok(out)
}

/// Byte offset of the last line for each id in a JSONL file of task records.
pub(super) fn line_offsets(path: &Path) -> Result<HashMap<String, u64>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(StoreError::io("read", path)(e)),
    };
    let mut out = HashMap::new();
    for (rec, here) in light_records(path, &bytes, 0, 0)? {
        out.insert(rec.id, here);
    }
    Ok(out)
}

/// Rebuilds the index from a full parse of the graph and the archive. This validates every
/// line: a corrupt store stops here with the file and line number.
pub(super) fn rebuild_index(store: &Store) -> Result<Index> {
    let layout = &store.layout;
    let graph_path = layout.graph();
    // Full parse first: it reports corruption with the line number and full schema checks.
    let _validated = store.load()?;
    let _archive_validated = store.load_archive()?;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for (path, archived) in [(layout.archive(), true), (graph_path.clone(), false)] {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        for (rec, here) in light_records(&path, &bytes, 0, 0)? {
            let loc = if archived {
                Loc::Archive(here)
            } else {
                Loc::Graph(here)
            };
            let entry = Entry {
                status: rec.status,
                loc,
                after: rec.after,
            };
            entries.insert(rec.id, entry);
        }
    }
    let (inode, len, mtime) =
        file_identity(&graph_path).map_err(StoreError::io("stat", &graph_path))?;
    let archive_len = file_identity(&layout.archive())
        .map_err(StoreError::io("stat", &layout.archive()))?
        .1;
    let lines = count_lines(&graph_path)?;
    let live = entries
        .values()
        .filter(|e| matches!(e.loc, Loc::Graph(_)))
        .count() as u64;
    let header = Header {
        inode,
        covered: len,
        lines,
        live,
        archive: archive_len,
        seal_size: len,
        seal_mtime: mtime,
    };
    let idx_path = layout.graph_index();
    index::write(
        &idx_path,
        &header,
        entries.iter().map(|(k, v)| (k.as_str(), v)),
    )
    .map_err(StoreError::io("write", &idx_path))?;
    Index::load(&idx_path).ok_or_else(|| StoreError::Io {
        action: "read back",
        path: idx_path.display().to_string(),
        source: io::Error::other("index unreadable right after writing it"),
    })
}

pub(super) fn read_or_empty(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io("read", path)(e)),
    }
}

fn count_lines(path: &Path) -> Result<u64> {
    match std::fs::read(path) {
        Ok(b) => Ok(b.iter().filter(|c| **c == b'\n').count() as u64),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io("read", path)(e)),
    }
}
