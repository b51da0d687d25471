//! One task and what `wg show` says about it (ready or not, which dependencies hold it),
//! read through the sealed index: the task's record, its dependencies' entries and the
//! records of the done ones (for the evaluation gate) are all that is parsed, besides the
//! tail the index does not cover. Without a sealed index the caller parses everything.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::index::{Entry, Index, Loc};
use super::{file_identity, light_records, Result, Store, StoreError};
use crate::model::{Task, TaskStatus};

/// A task as found, with the facts `wg show` prints.
pub struct Found {
    pub task: Task,
    pub archived: bool,
    pub ready: bool,
    /// Its live dependencies' records (for the evaluation gate's "held by").
    pub deps: BTreeMap<String, Task>,
}

/// Reads the record at `offset` of `path`.
fn record_at(path: &Path, offset: u64) -> Result<Task> {
    let mut file = File::open(path).map_err(StoreError::io("open", path))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(StoreError::io("read", path))?;
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .map_err(StoreError::io("read", path))?;
    serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
        path: path.display().to_string(),
        line: 0,
        reason: format!("record at byte {offset}: {e}"),
    })
}

impl Store {
    /// Finds task `id` through the index when its seal says it describes the graph file as
    /// the last writer left it. `Ok(None)`: no usable index (the caller parses the files).
    /// `Ok(Some(None))`: no such task.
    pub fn lookup(&self, id: &str) -> Result<Option<Option<Found>>> {
        let layout = &self.layout;
        let Some(idx) = Index::load(&layout.graph_index()) else {
            return Ok(None);
        };
        let graph_path = layout.graph();
        let (inode, len, mtime) =
            file_identity(&graph_path).map_err(StoreError::io("stat", &graph_path))?;
        let archive_len = file_identity(&layout.archive())
            .map_err(StoreError::io("stat", &layout.archive()))?
            .1;
        let h = idx.header;
        let sealed = h.inode == inode
            && h.seal_size == len
            && h.seal_mtime == mtime
            && h.covered <= len
            && h.archive == archive_len;
        if !sealed || len == 0 {
            return Ok(None);
        }
        // The tail: lines past what the index covers, parsed (and so checked) as writers do.
        let mut file = File::open(&graph_path).map_err(StoreError::io("open", &graph_path))?;
        let mut bytes = Vec::with_capacity((len - h.covered) as usize);
        file.seek(SeekFrom::Start(h.covered))
            .and_then(|_| file.take(len - h.covered).read_to_end(&mut bytes))
            .map_err(StoreError::io("read", &graph_path))?;
        let mut tail: BTreeMap<String, Entry> = BTreeMap::new();
        for (rec, here) in light_records(&graph_path, &bytes, h.covered, h.lines)? {
            let entry = Entry {
                status: rec.status,
                loc: Loc::Graph(here),
                after: rec.after,
            };
            tail.insert(rec.id, entry);
        }
        let find = |id: &str| tail.get(id).cloned().or_else(|| idx.find(id));
        let read = |loc: Loc| match loc {
            Loc::Graph(o) => record_at(&graph_path, o),
            Loc::Archive(o) => record_at(&layout.archive(), o),
        };
        let Some(entry) = find(id) else {
            return Ok(Some(None));
        };
        let task = read(entry.loc)?;
        let archived = matches!(entry.loc, Loc::Archive(_));
        let mut deps = BTreeMap::new();
        let mut ready = !archived && task.status == TaskStatus::Open;
        for d in &task.after {
            let Some(e) = find(d) else {
                ready = false;
                continue;
            };
            if e.status != TaskStatus::Done {
                ready = false;
            }
            // Archived dependencies count with their status; only live ones can be held by
            // the evaluation gate, which only a done one can be.
            if let Loc::Graph(_) = e.loc {
                if e.status == TaskStatus::Done {
                    let dep = read(e.loc)?;
                    ready &= !dep.awaiting_evaluation();
                    deps.insert(d.clone(), dep);
                }
            }
        }
        Ok(Some(Some(Found {
            task,
            archived,
            ready,
            deps,
        })))
    }
}
