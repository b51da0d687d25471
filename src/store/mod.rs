//! The task store: `graph.jsonl`, an append-mostly log of whole task records (last line for an
//! id wins), compacted when it holds more than twice as many lines as live tasks. Readers take
//! no lock; every writer holds `graph.lock`. See `docs/storage.md`.

pub mod append;
pub mod atomic;
pub mod follow;
pub mod index;
pub mod jsonl;
pub mod layout;
pub mod lock;
pub mod lookup;
pub mod nofollow;
mod ready;
pub mod tasklog;
pub mod view;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
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
pub use writer::Writer;

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
    /// The tombstones of removed tasks (`wg rm`), by id and `created`: a compaction keeps
    /// them, so that a later merge with a branch that still has the task cannot revive it.
    pub removed: BTreeMap<(String, String), Task>,
    /// Dependency cycles among the live tasks (see [`graph::cycles`]); their tasks never run.
    pub cycles: Vec<Vec<String>>,
}

impl Graph {
    /// Whether `id` is on a dependency cycle (and so held).
    pub fn on_cycle(&self, id: &str) -> bool {
        self.cycles.iter().any(|c| c.iter().any(|x| x == id))
    }

    /// The dependencies of `task` that name no live task and no archived one (`archived`
    /// answers for those): a task removed on another branch, say. Such a task is held.
    pub fn missing_deps(&self, task: &Task, archived: impl Fn(&str) -> bool) -> Vec<String> {
        task.after
            .iter()
            .filter(|d| !self.tasks.contains_key(d.as_str()) && !archived(d))
            .cloned()
            .collect()
    }
}

/// Which records survive: the last record of each id wins, except that a tombstone removes
/// every record with its id and `created` (see [`crate::model::task::REMOVED`]), wherever
/// those records stand. Pure, so every reader applies the same rule.
fn resolve(records: Vec<Task>) -> Graph {
    let removed: BTreeMap<(String, String), Task> = records
        .iter()
        .filter(|t| t.is_tombstone())
        .map(|t| ((t.id.clone(), t.created.clone()), t.clone()))
        .collect();
    let mut tasks = BTreeMap::new();
    for t in records {
        if !removed.contains_key(&(t.id.clone(), t.created.clone())) {
            tasks.insert(t.id.clone(), t);
        }
    }
    let cycles = graph::cycles(&tasks);
    warn_cycles(&cycles);
    Graph {
        tasks,
        removed,
        cycles,
    }
}

/// Says on stderr which tasks are on a cycle, once per process for the same cycles (the
/// coordinator loads the graph on every pass).
fn warn_cycles(cycles: &[Vec<String>]) {
    static LAST: std::sync::Mutex<Vec<Vec<String>>> = std::sync::Mutex::new(Vec::new());
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if cycles.is_empty() || *last == cycles {
        return;
    }
    *last = cycles.to_vec();
    for c in cycles {
        tracing::warn!(
            "dependency cycle: {} wait for each other and are held; `wg edit ID --remove-after DEP` breaks it",
            c.join(", ")
        );
    }
}

/// The `(id, created)` of every tombstone among light records.
fn tombstones(records: &[(LightRecord, u64)]) -> std::collections::HashSet<(&str, &str)> {
    records
        .iter()
        .filter(|(r, _)| r.removed.is_some())
        .map(|(r, _)| (r.id.as_str(), r.created.as_str()))
        .collect()
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
    created: String,
    #[allow(dead_code)]
    updated: IgnoredAny,
    /// Present on a tombstone (`wg rm`).
    #[serde(default)]
    removed: Option<IgnoredAny>,
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
        Ok(resolve(records))
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

    /// Lines in `graph.jsonl`, live tasks and tombstones: the lines beyond the last two are
    /// superseded records (older versions of a task, or both branches' versions after a git
    /// union merge).
    pub fn line_stats(&self) -> Result<(usize, usize, usize)> {
        let path = self.layout.graph();
        let bytes = read_or_empty(&path)?;
        let lines = memchr::memchr_iter(b'\n', &bytes).count();
        let graph = self.load()?;
        Ok((lines, graph.tasks.len(), graph.removed.len()))
    }

    /// Takes the writer lock and brings the index up to date.
    pub fn writer(&self) -> Result<Writer<'_>> {
        Writer::open(self)
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
    let mut kept_tombstones = 0;
    for (path, archived) in [(layout.archive(), true), (graph_path.clone(), false)] {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        let records = light_records(&path, &bytes, 0, 0)?;
        let killed = tombstones(&records);
        if !archived {
            kept_tombstones = killed.len() as u64;
        }
        let killed: std::collections::HashSet<(String, String)> = killed
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        for (rec, here) in records {
            // A removed task has no entry: a writer must not find it.
            if killed.contains(&(rec.id.clone(), rec.created.clone())) {
                continue;
            }
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
    // `live` counts the records a compaction keeps: the live tasks and the tombstones.
    let live = entries
        .values()
        .filter(|e| matches!(e.loc, Loc::Graph(_)))
        .count() as u64
        + kept_tombstones;
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

/// Inode, length and mtime (ns): what tells a file was replaced or grown since it was read.
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
