//! The one way to change the task store: a [`Writer`] holds `graph.lock`, knows every task's
//! status and place from the index plus the tail written since, appends records, and on commit
//! folds the tail into the index or compacts the log.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::*;

/// What a writer knows about a task touched in the tail (or by itself).
#[derive(Debug, Clone)]
struct TailEntry {
    status: TaskStatus,
    offset: u64,
    after: Vec<String>,
    /// A tombstone (`wg rm`): the task is gone.
    removed: bool,
}

/// Holds `graph.lock` for its lifetime. All changes to the task store go through it.
pub struct Writer<'s> {
    store: &'s Store,
    _lock: FileLock,
    index: Index,
    tail: HashMap<String, TailEntry>,
    tail_lines: u64,
    /// Ids first seen in the tail (new live tasks since the index was written).
    tail_new: u64,
    graph_len: u64,
    /// Torn tail repairs done while opening, for the caller to report.
    pub repairs: Vec<String>,
}

/// Cuts a final line that has no newline (an append a crash interrupted). Returns a
/// description of what was cut, if anything.
fn repair_torn_tail(path: &Path) -> Result<Option<String>> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open", path)(e)),
    };
    let len = file.metadata().map_err(StoreError::io("stat", path))?.len();
    if len == 0 {
        return Ok(None);
    }
    let keep = append::complete_len(&file, len).map_err(StoreError::io("read", path))?;
    if keep == len {
        return Ok(None);
    }
    file.set_len(keep)
        .map_err(StoreError::io("truncate", path))?;
    file.sync_all().map_err(StoreError::io("sync", path))?;
    Ok(Some(format!(
        "{}: removed {} bytes of an unfinished last line (a write interrupted by a crash)",
        path.display(),
        len - keep
    )))
}

impl<'s> Writer<'s> {
    pub(super) fn open(store: &'s Store) -> Result<Writer<'s>> {
        store.check_format()?;
        let layout = &store.layout;
        let lock = FileLock::acquire(&layout.graph_lock(), store.lock_timeout)?;
        let mut repairs = Vec::new();
        for path in [layout.graph(), layout.archive()] {
            if let Some(r) = repair_torn_tail(&path)? {
                tracing::warn!("{r}");
                repairs.push(r);
            }
        }
        let graph_path = layout.graph();
        let (inode, len, mtime) =
            file_identity(&graph_path).map_err(StoreError::io("stat", &graph_path))?;
        let archive_len = file_identity(&layout.archive())
            .map_err(StoreError::io("stat", &layout.archive()))?
            .1;
        let fresh = Index::load(&layout.graph_index()).filter(|idx| {
            let h = &idx.header;
            h.inode == inode
                && h.seal_size == len
                && h.seal_mtime == mtime
                && h.covered <= len
                && h.archive == archive_len
        });
        let index = match fresh {
            Some(idx) => idx,
            None => rebuild_index(store)?,
        };
        let mut w = Writer {
            store,
            _lock: lock,
            tail: HashMap::new(),
            tail_lines: 0,
            tail_new: 0,
            graph_len: len,
            index,
            repairs,
        };
        w.read_tail()?;
        Ok(w)
    }

    /// Parses (and so validates) every line after the part the index covers.
    fn read_tail(&mut self) -> Result<()> {
        let covered = self.index.header.covered;
        if covered >= self.graph_len {
            return Ok(());
        }
        let path = self.store.layout.graph();
        let mut file = File::open(&path).map_err(StoreError::io("open", &path))?;
        file.seek(SeekFrom::Start(covered))
            .map_err(StoreError::io("read", &path))?;
        let mut bytes = Vec::with_capacity((self.graph_len - covered) as usize);
        io::Read::read_to_end(&mut file, &mut bytes).map_err(StoreError::io("read", &path))?;
        let first_line = self.index.header.lines;
        for (rec, here) in light_records(&path, &bytes, covered, first_line)? {
            let removed = rec.removed.is_some();
            self.note(rec.id, rec.status, rec.after, here, removed);
        }
        Ok(())
    }

    fn note(
        &mut self,
        id: String,
        status: TaskStatus,
        after: Vec<String>,
        offset: u64,
        removed: bool,
    ) {
        let known = self.tail.contains_key(&id)
            || matches!(
                self.index.find(&id),
                Some(Entry {
                    loc: Loc::Graph(_),
                    ..
                })
            );
        if !known {
            self.tail_new += 1;
        }
        self.tail_lines += 1;
        self.tail.insert(
            id,
            TailEntry {
                status,
                offset,
                after,
                removed,
            },
        );
    }

    fn locate(&self, id: &str) -> Option<(TaskStatus, Loc, Vec<String>)> {
        if let Some(t) = self.tail.get(id) {
            if t.removed {
                return None;
            }
            return Some((t.status, Loc::Graph(t.offset), t.after.clone()));
        }
        self.index.find(id).map(|e| (e.status, e.loc, e.after))
    }

    pub fn layout(&self) -> &Layout {
        &self.store.layout
    }

    /// Whether a task with this id exists, live or archived.
    pub fn exists(&self, id: &str) -> bool {
        self.locate(id).is_some()
    }

    /// The status and dependencies of a task, live or archived.
    pub fn status_of(&self, id: &str) -> Option<(TaskStatus, Vec<String>)> {
        self.locate(id).map(|(s, _, a)| (s, a))
    }

    /// Whether the task is archived (and so frozen).
    pub fn is_archived(&self, id: &str) -> bool {
        matches!(self.locate(id), Some((_, Loc::Archive(_), _)))
    }

    /// Reads the latest full record of a task.
    pub fn get(&self, id: &str) -> Result<Option<Task>> {
        let Some((_, loc, _)) = self.locate(id) else {
            return Ok(None);
        };
        let (path, offset) = match loc {
            Loc::Graph(o) => (self.store.layout.graph(), o),
            Loc::Archive(o) => (self.store.layout.archive(), o),
        };
        let mut file = File::open(&path).map_err(StoreError::io("open", &path))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(StoreError::io("read", &path))?;
        let mut line = String::new();
        BufReader::new(file)
            .read_line(&mut line)
            .map_err(StoreError::io("read", &path))?;
        let task: Task = serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
            path: path.display().to_string(),
            line: 0,
            reason: format!("record at byte {offset}: {e}"),
        })?;
        Ok(Some(task))
    }

    /// If `task` starts depending on `dep`, the cycle that would close, spelled out.
    pub fn cycle_if_added(&self, task: &str, dep: &str) -> Option<Vec<String>> {
        graph::cycle_through(task, dep, |id| self.locate(id).map(|(_, _, a)| a))
    }

    /// Appends whole records in one write. Each becomes the latest record of its id.
    pub fn put(&mut self, tasks: &[Task]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(tasks.len() * 256);
        let mut offsets = Vec::with_capacity(tasks.len());
        for t in tasks {
            offsets.push(self.graph_len + buf.len() as u64);
            serde_json::to_writer(&mut buf, t).expect("a task always serializes");
            buf.push(b'\n');
        }
        let path = self.store.layout.graph();
        jsonl::append_bytes(&path, &buf, self.store.fsync)
            .map_err(StoreError::io("append to", &path))?;
        self.graph_len += buf.len() as u64;
        for (t, offset) in tasks.iter().zip(offsets) {
            self.note(
                t.id.clone(),
                t.status,
                t.after.clone(),
                offset,
                t.is_tombstone(),
            );
        }
        Ok(())
    }

    /// Parses the whole live graph under the lock (for changes that need all of it).
    pub fn load_all(&self) -> Result<Graph> {
        self.store.load()
    }

    /// Replaces the live graph with `graph`, compacted. The old file is only replaced after
    /// it was fully parsed (by the caller's `load_all`), so a corrupt store is never rewritten.
    pub fn replace_all(&mut self, graph: &Graph) -> Result<()> {
        let archive = self.store.load_archive()?;
        self.write_compacted(graph, &archive)
    }

    /// Rewrites `graph.jsonl` with one record per live task (`wg doctor --fix`).
    pub fn compact(&mut self) -> Result<()> {
        let graph = self.load_all()?;
        self.replace_all(&graph)
    }

    /// Moves `ids` from the live graph to `archive.jsonl` (fsynced first, so a crash leaves a
    /// task in both files, never in neither; the live copy wins until the rewrite).
    pub fn archive(&mut self, graph: &mut Graph, ids: &[String]) -> Result<()> {
        let moved: Vec<Task> = ids.iter().filter_map(|id| graph.tasks.remove(id)).collect();
        let mut buf = Vec::new();
        for t in &moved {
            serde_json::to_writer(&mut buf, t).expect("a task always serializes");
            buf.push(b'\n');
        }
        let path = self.store.layout.archive();
        jsonl::append_bytes(&path, &buf, true).map_err(StoreError::io("append to", &path))?;
        self.replace_all(graph)
    }

    fn write_compacted(&mut self, graph: &Graph, archive: &BTreeMap<String, Task>) -> Result<()> {
        let layout = &self.store.layout;
        let mut buf = Vec::with_capacity(graph.tasks.len() * 256);
        let mut entries: BTreeMap<&str, Entry> = BTreeMap::new();
        // Archived records first so live ones (same id after a crash mid-archive) win.
        let archive_offsets = line_offsets(&layout.archive())?;
        for (t, offset) in archive
            .values()
            .filter_map(|t| archive_offsets.get(&t.id).map(|o| (t, *o)))
        {
            entries.insert(
                &t.id,
                Entry {
                    status: t.status,
                    loc: Loc::Archive(offset),
                    after: t.after.clone(),
                },
            );
        }
        for t in graph.tasks.values() {
            let offset = buf.len() as u64;
            serde_json::to_writer(&mut buf, t).expect("a task always serializes");
            buf.push(b'\n');
            entries.insert(
                &t.id,
                Entry {
                    status: t.status,
                    loc: Loc::Graph(offset),
                    after: t.after.clone(),
                },
            );
        }
        // Tombstones are kept (after the tasks, by id): a merge with a branch that still has
        // a removed task must not bring it back.
        for t in graph.removed.values() {
            serde_json::to_writer(&mut buf, t).expect("a task always serializes");
            buf.push(b'\n');
        }
        let records = (graph.tasks.len() + graph.removed.len()) as u64;
        let path = layout.graph();
        atomic::write_atomic(&path, &buf, true).map_err(StoreError::io("write", &path))?;
        let (inode, len, mtime) = file_identity(&path).map_err(StoreError::io("stat", &path))?;
        let archive_len = file_identity(&layout.archive())
            .map_err(StoreError::io("stat", &layout.archive()))?
            .1;
        let header = Header {
            inode,
            covered: len,
            lines: records,
            live: records,
            archive: archive_len,
            seal_size: len,
            seal_mtime: mtime,
        };
        let idx_path = layout.graph_index();
        index::write(&idx_path, &header, entries.iter().map(|(k, v)| (*k, v)))
            .map_err(StoreError::io("write", &idx_path))?;
        self.index = Index::load(&idx_path).ok_or_else(|| StoreError::Io {
            action: "read back",
            path: idx_path.display().to_string(),
            source: io::Error::other("index unreadable right after writing it"),
        })?;
        self.tail.clear();
        self.tail_lines = 0;
        self.tail_new = 0;
        self.graph_len = len;
        Ok(())
    }

    /// Finishes a write: compacts when the log is more than twice the live tasks, folds a long
    /// tail into the index, and seals the index against the file as wg left it.
    /// The changes are in `graph.jsonl` already (`put`), so a failure here (a full disk) is
    /// only a warning: an applied change is never reported as failed. The compaction is
    /// atomic, and the next writer rebuilds an index whose seal no longer fits.
    pub fn commit(self) -> Result<()> {
        let path = self.store.layout.graph_index();
        if let Err(e) = self.finish() {
            tracing::warn!(
                "the change is saved, but the index {} could not be brought up to date: {e}; it is rebuilt on the next change",
                path.display()
            );
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        let lines = self.index.header.lines + self.tail_lines;
        let live = self.index.header.live + self.tail_new;
        if lines > COMPACT_MIN_LINES && lines > 2 * live {
            let graph = self.load_all()?;
            return self.replace_all(&graph);
        }
        let layout = &self.store.layout;
        let graph_path = layout.graph();
        let (inode, len, mtime) =
            file_identity(&graph_path).map_err(StoreError::io("stat", &graph_path))?;
        let idx_path = layout.graph_index();
        if self.tail_lines > TAIL_FOLD_LINES {
            let mut merged: Vec<(String, Entry)> =
                Vec::with_capacity(self.index.len() + self.tail.len());
            let mut tail: Vec<(&String, &TailEntry)> = self.tail.iter().collect();
            tail.sort_by(|a, b| a.0.cmp(b.0));
            let mut tail = tail.into_iter().peekable();
            // A removed task's tail entry takes its index entry away with it.
            let push = |merged: &mut Vec<(String, Entry)>, id: &str, te: &TailEntry| {
                if !te.removed {
                    merged.push((id.to_string(), tail_entry(te)));
                }
            };
            for (id, entry) in self.index.entries() {
                while let Some((tid, te)) = tail.peek() {
                    if tid.as_str() < id {
                        push(&mut merged, tid, te);
                        tail.next();
                    } else {
                        break;
                    }
                }
                if let Some((tid, te)) = tail.peek() {
                    if tid.as_str() == id {
                        push(&mut merged, id, te);
                        tail.next();
                        continue;
                    }
                }
                merged.push((id.to_string(), entry));
            }
            for (id, te) in tail {
                push(&mut merged, id, te);
            }
            let header = Header {
                inode,
                covered: len,
                lines,
                live,
                archive: self.index.header.archive,
                seal_size: len,
                seal_mtime: mtime,
            };
            index::write_owned(&idx_path, &header, &merged)
                .map_err(StoreError::io("write", &idx_path))?;
        } else {
            let header = Header {
                seal_size: len,
                seal_mtime: mtime,
                ..self.index.header
            };
            index::reseal(&idx_path, &header).map_err(StoreError::io("write", &idx_path))?;
        }
        Ok(())
    }
}

fn tail_entry(te: &TailEntry) -> Entry {
    Entry {
        status: te.status,
        loc: Loc::Graph(te.offset),
        after: te.after.clone(),
    }
}
