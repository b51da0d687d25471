//! The task store: `graph.jsonl`, an append-mostly log of whole task records (last line for an
//! id wins), compacted when it holds more than twice as many lines as live tasks. Readers take
//! no lock; every writer holds `graph.lock`. See `docs/storage.md`.

pub mod append;
pub mod atomic;
pub mod index;
pub mod jsonl;
pub mod layout;
pub mod lock;
mod ready;
pub mod tasklog;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::model::graph;
use crate::model::{Task, TaskStatus};
use index::{Entry, Header, Index, Loc};
pub use layout::Layout;
use lock::{FileLock, LockError};

/// The store format this binary reads and writes (`.wg/format`).
pub const FORMAT_VERSION: u32 = 1;

/// Below this many lines the log is never compacted: small files are cheap either way.
const COMPACT_MIN_LINES: u64 = 64;
/// Tail lines a writer tolerates before it folds them into the index.
const TAIL_FOLD_LINES: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("corrupt task store: {path}:{line}: {reason}")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error("{path}: store format {found} is newer than this wg understands ({FORMAT_VERSION})")]
    TooNew { path: String, found: String },
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StoreError + 'p {
        move |source| StoreError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<jsonl::ReadError> for StoreError {
    fn from(e: jsonl::ReadError) -> Self {
        match e {
            jsonl::ReadError::Bad(b) => StoreError::Corrupt {
                path: b.path,
                line: b.line,
                reason: b.reason,
            },
            jsonl::ReadError::Io { path, source } => StoreError::Io {
                action: "read",
                path,
                source,
            },
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// All live tasks, by id.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    pub tasks: BTreeMap<String, Task>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub layout: Layout,
    /// fsync every append (config `durability = "fsync"`).
    pub fsync: bool,
    pub lock_timeout: Duration,
}

/// The fields a writer needs from a tail line. Parsing only these (the rest is skipped, but
/// still checked to be valid JSON) keeps `wg add` fast on a long tail.
#[derive(Deserialize)]
struct LightRecord {
    #[serde(deserialize_with = "crate::model::task::de_id")]
    id: String,
    #[allow(dead_code)]
    title: IgnoredAny,
    status: TaskStatus,
    #[serde(default, deserialize_with = "crate::model::task::de_ids")]
    after: Vec<String>,
    #[allow(dead_code)]
    created: IgnoredAny,
    #[allow(dead_code)]
    updated: IgnoredAny,
}

impl Store {
    pub fn new(layout: Layout) -> Store {
        Store {
            layout,
            fsync: false,
            lock_timeout: Duration::from_secs(30),
        }
    }

    /// Refuses a store written by a newer wg.
    pub fn check_format(&self) -> Result<()> {
        let path = self.layout.format();
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                let found = s.trim().trim_start_matches("wg-store").trim();
                match found.parse::<u32>() {
                    Ok(v) if v <= FORMAT_VERSION => Ok(()),
                    _ => Err(StoreError::TooNew {
                        path: path.display().to_string(),
                        found: s.trim().to_string(),
                    }),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("read", &path)(e)),
        }
    }

    /// Reads every live task. Takes no lock: appends are whole lines and compaction is a
    /// rename, so a reader sees a consistent file; a final line without newline is skipped.
    pub fn load(&self) -> Result<Graph> {
        let path = self.layout.graph();
        let records: Vec<Task> = jsonl::read_all(&path)?;
        let mut tasks = BTreeMap::new();
        for t in records {
            tasks.insert(t.id.clone(), t);
        }
        Ok(Graph { tasks })
    }

    /// Reads archived tasks (`wg archive`), by id.
    pub fn load_archive(&self) -> Result<BTreeMap<String, Task>> {
        let records: Vec<Task> = jsonl::read_all(&self.layout.archive())?;
        Ok(records.into_iter().map(|t| (t.id.clone(), t)).collect())
    }

    /// Finds one task: live first, then archived. The bool says whether it is archived.
    pub fn find(&self, graph: &Graph, id: &str) -> Result<Option<(Task, bool)>> {
        if let Some(t) = graph.tasks.get(id) {
            return Ok(Some((t.clone(), false)));
        }
        Ok(self.load_archive()?.remove(id).map(|t| (t, true)))
    }

    /// Lines in `graph.jsonl` and live tasks: the difference is superseded records (older
    /// versions of a task, or both branches' versions after a git union merge).
    pub fn line_stats(&self) -> Result<(usize, usize)> {
        let path = self.layout.graph();
        let bytes = read_or_empty(&path)?;
        let lines = memchr::memchr_iter(b'\n', &bytes).count();
        Ok((lines, self.load()?.tasks.len()))
    }

    /// Takes the writer lock and brings the index up to date.
    pub fn writer(&self) -> Result<Writer<'_>> {
        Writer::open(self)
    }
}

/// What a writer knows about a task touched in the tail (or by itself).
#[derive(Debug, Clone)]
struct TailEntry {
    status: TaskStatus,
    offset: u64,
    after: Vec<String>,
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

fn file_identity(path: &Path) -> io::Result<(u64, u64, u64)> {
    match std::fs::metadata(path) {
        Ok(m) => Ok((
            m.ino(),
            m.len(),
            (m.mtime() as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(m.mtime_nsec() as u64),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((0, 0, 0)),
        Err(e) => Err(e),
    }
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
    fn open(store: &'s Store) -> Result<Writer<'s>> {
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
            self.note(rec.id, rec.status, rec.after, here);
        }
        Ok(())
    }

    fn note(&mut self, id: String, status: TaskStatus, after: Vec<String>, offset: u64) {
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
            },
        );
    }

    fn locate(&self, id: &str) -> Option<(TaskStatus, Loc, Vec<String>)> {
        if let Some(t) = self.tail.get(id) {
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
            self.note(t.id.clone(), t.status, t.after.clone(), offset);
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
        let path = layout.graph();
        atomic::write_atomic(&path, &buf, true).map_err(StoreError::io("write", &path))?;
        let (inode, len, mtime) = file_identity(&path).map_err(StoreError::io("stat", &path))?;
        let archive_len = file_identity(&layout.archive())
            .map_err(StoreError::io("stat", &layout.archive()))?
            .1;
        let header = Header {
            inode,
            covered: len,
            lines: graph.tasks.len() as u64,
            live: graph.tasks.len() as u64,
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
    pub fn commit(mut self) -> Result<()> {
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
            for (id, entry) in self.index.entries() {
                while let Some((tid, te)) = tail.peek() {
                    if tid.as_str() < id {
                        merged.push(((*tid).clone(), tail_entry(te)));
                        tail.next();
                    } else {
                        break;
                    }
                }
                if let Some((tid, te)) = tail.peek() {
                    if tid.as_str() == id {
                        merged.push((id.to_string(), tail_entry(te)));
                        tail.next();
                        continue;
                    }
                }
                merged.push((id.to_string(), entry));
            }
            merged.extend(tail.map(|(id, te)| (id.clone(), tail_entry(te))));
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

/// The light records of the complete lines of `bytes`, with the byte offset of each in its
/// file. `bytes` start at byte `base`, line `first_line + 1` of `path` (for error messages).
/// A final line without its newline is an append in flight and is left out; any other line
/// that does not parse is a corrupt store.
fn light_records(
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
fn line_offsets(path: &Path) -> Result<HashMap<String, u64>> {
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
fn rebuild_index(store: &Store) -> Result<Index> {
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

fn read_or_empty(path: &Path) -> Result<Vec<u8>> {
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

/// Finds the `.wg/` folder: `explicit` (from `--dir` or `WG_DIR`) wins; otherwise the current
/// directory and its parents are searched.
pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
    if let Some(p) = explicit {
        // Accept either the project root or the .wg folder itself.
        if p.file_name().is_some_and(|n| n == ".wg") {
            return Some(p.to_path_buf());
        }
        return Some(p.join(".wg"));
    }
    cwd.ancestors().map(|d| d.join(".wg")).find(|d| d.is_dir())
}

/// Writes `.wg/format` for a new project.
pub fn write_format(layout: &Layout) -> io::Result<()> {
    let mut f = File::create(layout.format())?;
    writeln!(f, "wg-store {FORMAT_VERSION}")
}
