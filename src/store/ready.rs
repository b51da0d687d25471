//! Ready tasks: open, every dependency done, and no dependency held by the evaluation gate
//! (done by an agent but not yet accepted, `awaiting_evaluation`). `wg ready` and `wg status`
//! take fast paths: the index carries statuses and edges but not that field, so a graph file
//! that mentions it at all (only with `evaluate.auto`) is read through the borrowed views
//! instead, which parse in full only the records that name it.

use std::collections::BTreeMap;
use std::path::Path;

use super::index::{self, Entry, Index, Loc};
use super::view::{self, GATE_FIELD};
use super::{file_identity, light_records, read_or_empty, Graph, Result, Store, StoreError};
use crate::model::graph;
use crate::model::{Task, TaskStatus};

/// The lines of `bytes` (a graph file) whose record is held by the gate: task id → the
/// line's offset. Older lines of a task may be among them; the caller keeps the latest.
fn gate_lines(bytes: &[u8]) -> rustc_hash::FxHashMap<String, u64> {
    let mut held = rustc_hash::FxHashMap::default();
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&bytes[from..], GATE_FIELD) {
        let at = from + found;
        let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        if let Ok(t) = serde_json::from_slice::<Task>(&bytes[start..end]) {
            if t.awaiting_evaluation() {
                // A later line of the same task replaces an earlier one here too.
                held.insert(t.id, start as u64);
            }
        }
        from = end.max(at + 1);
    }
    held
}

/// `ready` in dispatch order. Sorts positions, not records: a stable sort moves each
/// ~400-byte task many times, which was a third of `wg ready` at 100,000 tasks.
fn in_dispatch_order(ready: Vec<Task>) -> Vec<Task> {
    let mut order: Vec<usize> = (0..ready.len()).collect();
    order.sort_unstable_by(|&a, &b| graph::dispatch_order(&ready[a], &ready[b]));
    let mut slots: Vec<Option<Task>> = ready.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each position is taken once"))
        .collect()
}

/// What the sealed index says: the ready tasks (id, offset of their record), the live tasks
/// counted by status, and the graph file's bytes the offsets point into.
struct Scan {
    ready: Vec<(String, u64)>,
    counts: BTreeMap<TaskStatus, usize>,
    bytes: Vec<u8>,
}

impl Store {
    /// The archive, read only when an open task depends on a task no longer in the graph.
    fn archive_if(&self, needed: bool) -> Result<BTreeMap<String, Task>> {
        if needed {
            self.load_archive()
        } else {
            Ok(BTreeMap::new())
        }
    }

    /// Ready tasks in dispatch order; archived dependencies count with their status.
    pub fn ready<'g>(&self, graph: &'g Graph) -> Result<Vec<&'g Task>> {
        let needs_archive = graph.tasks.values().any(|t| {
            t.status == TaskStatus::Open && t.after.iter().any(|d| !graph.tasks.contains_key(d))
        });
        let archive = self.archive_if(needs_archive)?;
        let status_of = |id: &str| archive.get(id).map(|t| t.status);
        let mut ready = graph::ready_in_order(&graph.tasks, &status_of);
        ready.retain(|t| t.held_by_gate(|d| graph.tasks.get(d)).is_empty());
        // A task on a dependency cycle (a merge can make one) is held even if its
        // dependencies happen to be done.
        ready.retain(|t| !graph.on_cycle(&t.id));
        Ok(ready)
    }

    /// Ready tasks in dispatch order, like [`Store::ready`] on a full load, but only the
    /// ready records are parsed into owned tasks (the rest through a borrowed, still fully
    /// type-checked view): `wg ready --json` on 100,000 tasks is mostly allocation otherwise.
    pub fn ready_tasks(&self) -> Result<Vec<Task>> {
        if let Some(ready) = self.ready_from_index()? {
            return Ok(ready);
        }
        let path = self.layout.graph();
        let bytes = read_or_empty(&path)?;
        let views = view::parse(&path, &bytes)?;
        let archive = self.archive_if(views.needs_archive())?;
        let ids = views.ready_ids(|id| archive.get(id).map(|t| t.status));
        let ready = ids
            .into_iter()
            .map(|id| views.full(&path, id))
            .collect::<Result<Vec<Task>>>()?;
        Ok(in_dispatch_order(ready))
    }

    /// `wg ready` from the derived index, when its seal says it describes the graph file
    /// exactly as the last wg writer left it (see index.rs): statuses and edges come from the
    /// index and the tail, and only the ready records are parsed. Every line of such a file
    /// was validated when it was written; any other change breaks the seal, and then this
    /// returns `None` and the caller parses every line.
    fn ready_from_index(&self) -> Result<Option<Vec<Task>>> {
        let Some(scan) = self.scan_index()? else {
            return Ok(None);
        };
        let graph_path = self.layout.graph();
        let mut ready = Vec::with_capacity(scan.ready.len());
        for (id, at) in scan.ready {
            let rest = &scan.bytes[at as usize..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let task: Task =
                serde_json::from_slice(&rest[..end]).map_err(|err| StoreError::Corrupt {
                    path: graph_path.display().to_string(),
                    line: 0,
                    reason: format!("record of `{id}` at byte {at}: {err}"),
                })?;
            ready.push(task);
        }
        Ok(Some(in_dispatch_order(ready)))
    }

    /// Statuses and ready ids from the sealed index and the tail (see `ready_from_index`).
    fn scan_index(&self) -> Result<Option<Scan>> {
        let layout = &self.layout;
        let Some(idx) = Index::load(&layout.graph_index()) else {
            return Ok(None);
        };
        let graph_path = layout.graph();
        let identity = |p: &Path| file_identity(p).map_err(StoreError::io("stat", p));
        let (inode, len, mtime) = identity(&graph_path)?;
        let archive_len = identity(&layout.archive())?.1;
        let h = idx.header;
        let sealed = h.inode == inode
            && h.seal_size == len
            && h.seal_mtime == mtime
            && h.covered <= len
            && h.archive == archive_len;
        if !sealed || len == 0 {
            return Ok(None);
        }
        let bytes = read_or_empty(&graph_path)?;
        // A writer may have appended between the stat and the read: then take the slow path.
        if bytes.len() as u64 != len || identity(&graph_path)? != (inode, len, mtime) {
            return Ok(None);
        }
        // The evaluation gate is a record field the index does not carry: the few lines that
        // name it are parsed, and those saying "held" count if they are the task's latest.
        let named = gate_lines(&bytes);
        // Lines past the index: parsed (and so checked) like a writer's tail; they override
        // the index's entries for their ids.
        let mut tail: rustc_hash::FxHashMap<String, Entry> = Default::default();
        for (rec, here) in light_records(
            &graph_path,
            &bytes[h.covered as usize..],
            h.covered,
            h.lines,
        )? {
            let entry = Entry {
                status: rec.status,
                loc: Loc::Graph(here),
                after: rec.after,
            };
            tail.insert(rec.id, entry);
        }
        tracing::debug!(
            tasks = idx.len(),
            tail = tail.len(),
            "ready: from the sealed index"
        );
        // Every id's status, borrowed from the index lines (no per-task allocation); tail
        // records override.
        let mut statuses: rustc_hash::FxHashMap<&str, TaskStatus> =
            rustc_hash::FxHashMap::with_capacity_and_hasher(
                h.live as usize + tail.len(),
                Default::default(),
            );
        let mut latest: rustc_hash::FxHashMap<&str, Loc> = Default::default();
        // Live tasks by status (`wg status`): index lines of the graph file (`g`) whose id
        // the tail does not override, then the tail's.
        let mut counts: BTreeMap<TaskStatus, usize> = BTreeMap::new();
        let in_graph = |line: &[u8]| {
            line.split(|b| *b == b'\t')
                .nth(2)
                .is_some_and(|loc| loc.first() == Some(&b'g'))
        };
        for line in idx.lines() {
            let key_end = memchr::memchr(b'\t', line).unwrap_or(line.len());
            if let (Ok(id), Some(st)) = (
                std::str::from_utf8(&line[..key_end]),
                index::line_status(line),
            ) {
                statuses.insert(id, st);
                if in_graph(line) && !tail.contains_key(id) {
                    *counts.entry(st).or_default() += 1;
                }
                if named.contains_key(id) {
                    if let Some((_, e)) = index::parse_line(line) {
                        latest.insert(id, e.loc);
                    }
                }
            }
        }
        for (id, e) in &tail {
            statuses.insert(id.as_str(), e.status);
            latest.insert(id.as_str(), e.loc);
            *counts.entry(e.status).or_default() += 1;
        }
        let held: rustc_hash::FxHashSet<&str> = named
            .iter()
            .filter(|(id, at)| latest.get(id.as_str()) == Some(&Loc::Graph(**at)))
            .map(|(id, _)| id.as_str())
            .collect();
        let status = |id: &str| statuses.get(id).copied();
        let is_ready = |e: &Entry| {
            e.status == TaskStatus::Open
                && matches!(e.loc, Loc::Graph(_))
                && e.after
                    .iter()
                    .all(|d| status(d) == Some(TaskStatus::Done) && !held.contains(d.as_str()))
        };
        let mut found: Vec<(String, u64)> = Vec::new();
        for line in idx.lines() {
            // Most lines are not open: skip them before parsing.
            if index::line_status(line) != Some(TaskStatus::Open) {
                continue;
            }
            let Some((id, e)) = index::parse_line(line) else {
                continue;
            };
            if !tail.contains_key(id) && is_ready(&e) {
                if let Loc::Graph(at) = e.loc {
                    found.push((id.to_string(), at));
                }
            }
        }
        for (id, e) in &tail {
            if is_ready(e) {
                if let Loc::Graph(at) = e.loc {
                    found.push((id.clone(), at));
                }
            }
        }
        Ok(Some(Scan {
            ready: found,
            counts,
            bytes,
        }))
    }

    /// Live tasks counted by status, and how many are ready (`wg status`), without parsing
    /// every record into an owned task.
    pub fn summary(&self) -> Result<(BTreeMap<TaskStatus, usize>, usize)> {
        if let Some(scan) = self.scan_index()? {
            return Ok((scan.counts, scan.ready.len()));
        }
        let path = self.layout.graph();
        let bytes = read_or_empty(&path)?;
        let views = view::parse(&path, &bytes)?;
        let archive = self.archive_if(views.needs_archive())?;
        let ready = views
            .ready_ids(|id| archive.get(id).map(|t| t.status))
            .len();
        let mut counts = BTreeMap::new();
        for v in views.tasks.values() {
            *counts.entry(v.status).or_default() += 1;
        }
        Ok((counts, ready))
    }
}
