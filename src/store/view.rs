//! A borrowed, typed view of every record in `graph.jsonl`, for read commands that need the
//! whole graph's shape but only a few full records (`wg ready`, `wg status`).
//!
//! Parsing 100,000 records into owned [`Task`]s is dominated by allocation (every string, and
//! the buffering `#[serde(flatten)]` needs for unknown fields). A [`TaskView`] borrows its
//! strings from the file's bytes and checks the type of every known field exactly as [`Task`]
//! does, so a record that would not load as a `Task` is reported here too, with its line.

use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::path::Path;

use serde::Deserialize;

use super::{Result, StoreError};
use crate::model::{Task, TaskStatus};

/// Every known field of a task record, typed as in [`Task`], borrowing where it can.
/// Unknown fields are skipped (but still checked to be valid JSON).
#[derive(Deserialize)]
#[allow(dead_code)] // Fields are parsed to validate their types, not all of them are read.
struct TaskView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Cow<'a, str>,
    pub status: TaskStatus,
    #[serde(default, borrow)]
    pub after: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    executor: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tags: Vec<Cow<'a, str>>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default, borrow)]
    timeout: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    workspace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    command: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub created: Cow<'a, str>,
    #[serde(borrow)]
    updated: Cow<'a, str>,
    #[serde(default, borrow)]
    assigned: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    failure_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    artifacts: Vec<Cow<'a, str>>,
}

/// What a read command needs of a task to place it in the graph, and the line it came from.
/// Kept small on purpose: the map of 100,000 of these is rehashed as it grows.
pub struct Slim<'a> {
    pub status: TaskStatus,
    pub after: Vec<Cow<'a, str>>,
    line: &'a [u8],
}

/// The latest record of each live task.
pub struct Views<'a> {
    /// Keyed with rustc-hash's Fx hash: ids are short, trusted strings from our own file, so
    /// SipHash's flood resistance buys nothing here and its cost showed in profiles.
    pub tasks: FxHashMap<Cow<'a, str>, Slim<'a>>,
}

/// Files at least this big are parsed on two threads (this project's machines have two cores).
/// Measured side by side: 16% faster at 100,000 tasks (18 MB), 11% slower at 10,000 (1.8 MB),
/// where the thread and the second table cost more than they save.
const PARALLEL_MIN_BYTES: usize = 6 << 20;

/// The evaluation gate's field name as it appears in a record line (whatever its value and spacing).
pub(super) const GATE_FIELD: &[u8] = b"\"awaiting_evaluation\"";

fn mentions_gate(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, GATE_FIELD).is_some()
}

/// The tombstone field (`wg rm`) as it appears in a record line.
const REMOVED_FIELD: &[u8] = b"\"removed\"";

/// The `(id, created)` of every tombstone in `bytes`: only lines that name the field are
/// parsed in full, so a graph without removals costs one vectorized search.
fn tombstones(bytes: &[u8]) -> rustc_hash::FxHashSet<(String, String)> {
    let mut out = rustc_hash::FxHashSet::default();
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&bytes[from..], REMOVED_FIELD) {
        let at = from + found;
        let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        if let Ok(t) = serde_json::from_slice::<Task>(&bytes[start..end]) {
            if t.is_tombstone() {
                out.insert((t.id, t.created));
            }
        }
        from = end.max(at + 1);
    }
    out
}

/// Parses every complete line of `bytes` (the contents of `path`). Ids and dependencies are
/// validated like [`Task`]'s; a bad line stops with its number.
pub fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Views<'a>> {
    let complete = match memchr::memrchr(b'\n', bytes) {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    // Sized once to the line count (a vectorized byte count, a few ms on 14 MB) instead of
    // rehashed ~17 times, and no larger: every page of the table is touched, then zeroed by
    // the kernel on first touch, which showed up as a third of `wg status` at 100,000 tasks.
    let lines = memchr::memchr_iter(b'\n', complete).count();
    let killed = tombstones(complete);
    let killed = &killed;
    let split = match complete.len() >= PARALLEL_MIN_BYTES {
        true => memchr::memchr(b'\n', &complete[complete.len() / 2..])
            .map(|i| complete.len() / 2 + i + 1),
        false => None,
    };
    let Some(split) = split.filter(|s| *s < complete.len()) else {
        return Ok(Views {
            tasks: parse_lines(path, complete, 0, lines, killed)?,
        });
    };
    // Two halves at a line boundary, in parallel; the second half's records are later in the
    // log, so they win when both halves hold the same id.
    let (first, second) = complete.split_at(split);
    let first_lines = memchr::memchr_iter(b'\n', first).count();
    let (head, tail) = std::thread::scope(|scope| {
        let tail =
            scope.spawn(|| parse_lines(path, second, first_lines, lines - first_lines, killed));
        let head = parse_lines(path, first, 0, lines, killed);
        (head, tail.join())
    });
    // The earlier line's error first, as a sequential parse would report it.
    let mut tasks = head?;
    let tail = tail.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    tasks.extend(tail);
    Ok(Views { tasks })
}

/// Parses the complete lines of `chunk`, whose first line is line `first_line + 1` of `path`.
/// Records of a removed task (`killed`: `(id, created)` of the tombstones) are left out.
fn parse_lines<'a>(
    path: &Path,
    chunk: &'a [u8],
    first_line: usize,
    capacity: usize,
    killed: &rustc_hash::FxHashSet<(String, String)>,
) -> Result<FxHashMap<Cow<'a, str>, Slim<'a>>> {
    let mut tasks = FxHashMap::with_capacity_and_hasher(capacity, Default::default());
    // memchr finds line ends with SIMD; a byte-by-byte split was a tenth of the work here.
    let mut start = 0;
    for (n, end) in memchr::memchr_iter(b'\n', chunk).enumerate() {
        let line = &chunk[start..end];
        start = end + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |reason: String| StoreError::Corrupt {
            path: path.display().to_string(),
            line: first_line + n + 1,
            reason,
        };
        let view: TaskView<'a> = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        for id in std::iter::once(&view.id).chain(&view.after) {
            crate::model::validate_id(id).map_err(|e| bad(e.to_string()))?;
        }
        if !killed.is_empty() && killed.contains(&(view.id.to_string(), view.created.to_string())) {
            continue;
        }
        let slim = Slim {
            status: view.status,
            after: view.after,
            line,
        };
        tasks.insert(view.id, slim);
    }
    Ok(tasks)
}

impl Views<'_> {
    /// Ids of the ready tasks: open, and every dependency done (live, or per `archived`).
    pub fn ready_ids(&self, archived: impl Fn(&str) -> Option<TaskStatus>) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|(_, v)| {
                v.status == TaskStatus::Open
                    && v.after.iter().all(|d| {
                        let s = match self.tasks.get(d.as_ref()) {
                            Some(dep) => Some(dep.status),
                            None => archived(d),
                        };
                        s == Some(TaskStatus::Done) && !self.held_by_gate(d)
                    })
            })
            .map(|(id, _)| id.as_ref())
            .collect()
    }

    /// Whether live task `id` is done but still waits for its evaluation: only a record whose
    /// line names the field at all is parsed in full.
    fn held_by_gate(&self, id: &str) -> bool {
        self.tasks.get(id).is_some_and(|v| {
            mentions_gate(v.line)
                && serde_json::from_slice::<Task>(v.line).is_ok_and(|t| t.awaiting_evaluation())
        })
    }

    /// Whether some open task waits for a task that is not live (so the archive matters).
    pub fn needs_archive(&self) -> bool {
        self.tasks.values().any(|v| {
            v.status == TaskStatus::Open
                && v.after.iter().any(|d| !self.tasks.contains_key(d.as_ref()))
        })
    }

    /// The full record of a task seen in the view.
    pub fn full(&self, path: &Path, id: &str) -> Result<Task> {
        serde_json::from_slice(self.tasks[id].line).map_err(|e| StoreError::Corrupt {
            path: path.display().to_string(),
            line: 0,
            reason: format!("record of `{id}`: {e}"),
        })
    }
}

#[cfg(test)]
mod parallel_tests {
    use super::*;

    fn record(id: &str, status: &str) -> String {
        format!(
            "{{\"id\":\"{id}\",\"title\":\"{}\",\"status\":\"{status}\",\"created\":\"c\",\"updated\":\"u\"}}\n",
            "x".repeat(200)
        )
    }

    /// Enough records that the file is parsed in two halves.
    fn big() -> (String, usize) {
        let mut s = String::new();
        let mut n = 0;
        while s.len() < 2 * PARALLEL_MIN_BYTES {
            s.push_str(&record(&format!("t-{n}"), "open"));
            n += 1;
        }
        (s, n)
    }

    #[test]
    fn later_records_win_across_the_halves() {
        let (mut s, n) = big();
        s.push_str(&record("t-0", "done"));
        let views = parse(Path::new("g"), s.as_bytes()).unwrap();
        assert_eq!(views.tasks.len(), n);
        assert_eq!(views.tasks["t-0"].status, TaskStatus::Done);
    }

    #[test]
    fn a_bad_line_in_the_second_half_is_reported_with_its_number() {
        let (s, n) = big();
        let mut lines: Vec<&str> = s.lines().collect();
        let bad_at = n - 3;
        lines[bad_at] = "{\"id\": oops";
        let text = lines.join("\n") + "\n";
        match parse(Path::new("g"), text.as_bytes()) {
            Err(StoreError::Corrupt { line, .. }) => assert_eq!(line, bad_at + 1),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the bad line was accepted"),
        }
        // With bad lines in both halves, the first one is reported.
        lines[1] = "not json";
        let text = lines.join("\n") + "\n";
        match parse(Path::new("g"), text.as_bytes()) {
            Err(StoreError::Corrupt { line, .. }) => assert_eq!(line, 2),
            _ => panic!("expected the first bad line"),
        }
    }
}
