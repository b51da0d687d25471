//! The coordinator's copy of the graph, kept up to date from what is appended to
//! `graph.jsonl` (see `store::follow`), with the sets a pass works on kept alongside: ready
//! tasks in dispatch order, conversations, failed tasks, ended tasks with a worktree, live
//! tasks holding lock paths, and each task's dependents. A change to one task updates its own
//! entries and, when whether it satisfies its dependents changed, theirs: a pass costs what
//! changed, not the size of the graph. Only a rewritten file (a compaction, `wg rm`,
//! `wg archive`, a hand edit) is read, and indexed, in full.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{Task, TaskStatus};
use crate::store::follow::{Follower, Update};
use crate::store::{Graph, Result, Store};
use crate::workspace;

/// Dispatch order (`graph::dispatch_order`): higher priority first, then older, then id.
type ReadyKey = (Reverse<i64>, String, String);

fn ready_key(t: &Task) -> ReadyKey {
    (Reverse(t.priority), t.created.clone(), t.id.clone())
}

/// What a refresh found.
#[derive(Debug)]
pub enum Changes {
    /// Everything may have changed (the file was read in full).
    All,
    /// These tasks have new records, each with the status it had before (`None`: new).
    Some(Vec<(String, Option<TaskStatus>)>),
}

#[derive(Default)]
pub struct LiveGraph {
    pub graph: Graph,
    follower: Follower,
    /// dependency id → the tasks that name it in `after`.
    dependents: HashMap<String, BTreeSet<String>>,
    ready: BTreeSet<ReadyKey>,
    /// `waiting` and `in-progress` tasks: the ones a message may call a turn for.
    conversations: BTreeSet<String>,
    failed: BTreeSet<String>,
    /// Ended tasks that still record a worktree.
    worktree_ended: BTreeSet<String>,
    /// Live tasks (in-progress, waiting) that hold lock paths.
    locking: BTreeSet<String>,
    /// Statuses of archived tasks, read once when a dependency is not in the graph; dropped
    /// with every full read (`wg archive` rewrites the graph file).
    archive: Option<BTreeMap<String, TaskStatus>>,
}

impl LiveGraph {
    /// Brings the graph up to date with the file.
    pub fn refresh(&mut self, store: &Store) -> Result<Changes> {
        match self.follower.read(store)? {
            Update::Full(graph) => {
                self.rebuild(store, graph)?;
                Ok(Changes::All)
            }
            Update::Appended(tasks) => {
                let mut changed = Vec::with_capacity(tasks.len());
                for t in tasks {
                    let prev = self.apply(store, t)?;
                    changed.push(prev);
                }
                Ok(Changes::Some(changed))
            }
        }
    }

    fn rebuild(&mut self, store: &Store, graph: Graph) -> Result<()> {
        *self = LiveGraph {
            follower: std::mem::take(&mut self.follower),
            ..LiveGraph::default()
        };
        for t in graph.tasks.values() {
            for d in &t.after {
                self.dependents
                    .entry(d.clone())
                    .or_default()
                    .insert(t.id.clone());
            }
        }
        self.graph = graph;
        let ids: Vec<String> = self.graph.tasks.keys().cloned().collect();
        for id in ids {
            self.index(store, &id, None)?;
        }
        Ok(())
    }

    /// Takes in a task's new record; returns its id and previous status.
    fn apply(&mut self, store: &Store, t: Task) -> Result<(String, Option<TaskStatus>)> {
        let id = t.id.clone();
        let old = self.graph.tasks.remove(&id);
        let old_after = old.as_ref().map(|o| o.after.clone()).unwrap_or_default();
        if old_after != t.after {
            for d in &old_after {
                if let Some(s) = self.dependents.get_mut(d) {
                    s.remove(&id);
                    if s.is_empty() {
                        self.dependents.remove(d);
                    }
                }
            }
            for d in &t.after {
                self.dependents
                    .entry(d.clone())
                    .or_default()
                    .insert(id.clone());
            }
        }
        let satisfied_before = old.as_ref().map(satisfies);
        let satisfied_now = satisfies(&t);
        let prev = old.as_ref().map(|o| o.status);
        self.graph.tasks.insert(id.clone(), t);
        self.index(store, &id, old.as_ref().map(ready_key))?;
        if satisfied_before != Some(satisfied_now) {
            let deps: Vec<String> = self
                .dependents
                .get(&id)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for d in deps {
                // Its record did not change, so neither did its place in the order.
                let key = self.graph.tasks.get(&d).map(ready_key);
                self.index(store, &d, key)?;
            }
        }
        // Appends by wg never close a cycle (writers refuse it), but one may break a cycle a
        // merge made: while there are cycles, a change re-checks them (rare, and whole).
        if !self.graph.cycles.is_empty() {
            let cycles = crate::model::graph::cycles(&self.graph.tasks);
            if cycles != self.graph.cycles {
                self.graph.cycles = cycles;
                let ids: Vec<String> = self.graph.tasks.keys().cloned().collect();
                for i in ids {
                    let key = self.graph.tasks.get(&i).map(ready_key);
                    self.index(store, &i, key)?;
                }
            }
        }
        Ok((id, prev))
    }

    /// Files task `id` (as it is in the graph now) into the sets, taking it out first
    /// (`old`: its place in the ready order as it was filed, if it was).
    fn index(&mut self, store: &Store, id: &str, old: Option<ReadyKey>) -> Result<()> {
        if let Some(k) = old {
            self.ready.remove(&k);
        }
        for set in [
            &mut self.conversations,
            &mut self.failed,
            &mut self.worktree_ended,
            &mut self.locking,
        ] {
            set.remove(id);
        }
        let Some(t) = self.graph.tasks.get(id) else {
            return Ok(());
        };
        let status = t.status;
        let key = ready_key(t);
        // A task on a dependency cycle is held (`Store::ready`'s rule).
        let ready =
            status == TaskStatus::Open && !self.graph.on_cycle(id) && self.deps_done(store, id)?;
        let t = self.graph.tasks.get(id).expect("checked above");
        if ready {
            self.ready.insert(key);
        }
        match status {
            TaskStatus::Waiting | TaskStatus::InProgress => {
                self.conversations.insert(id.to_string());
            }
            TaskStatus::Failed => {
                self.failed.insert(id.to_string());
            }
            _ => {}
        }
        if status.is_terminal() && workspace::recorded_worktree(t).is_some() {
            self.worktree_ended.insert(id.to_string());
        }
        if workspace::is_live(status) && !workspace::lock_paths(t).is_empty() {
            self.locking.insert(id.to_string());
        }
        Ok(())
    }

    /// Every dependency done (archived ones with their archived status), and none held by
    /// the evaluation gate: `Store::ready`'s rule.
    fn deps_done(&mut self, store: &Store, id: &str) -> Result<bool> {
        let after = &self.graph.tasks[id].after;
        if after
            .iter()
            .all(|d| self.graph.tasks.get(d).is_some_and(satisfies))
        {
            return Ok(true);
        }
        if after
            .iter()
            .any(|d| self.graph.tasks.get(d).is_some_and(|t| !satisfies(t)))
        {
            return Ok(false);
        }
        // Some dependency is not in the graph: archived, or unknown (never done).
        if self.archive.is_none() {
            let archive = store.load_archive()?;
            self.archive = Some(archive.into_iter().map(|(k, t)| (k, t.status)).collect());
        }
        let archive = self.archive.as_ref().expect("loaded above");
        let after = &self.graph.tasks[id].after;
        Ok(after
            .iter()
            .all(|d| self.graph.tasks.contains_key(d) || archive.get(d) == Some(&TaskStatus::Done)))
    }

    /// Ready tasks in dispatch order.
    pub fn ready(&self) -> impl Iterator<Item = &Task> + '_ {
        self.ready.iter().map(|(_, _, id)| &self.graph.tasks[id])
    }

    pub fn conversations(&self) -> impl Iterator<Item = &Task> + '_ {
        self.conversations.iter().map(|id| &self.graph.tasks[id])
    }

    pub fn failed(&self) -> impl Iterator<Item = &Task> + '_ {
        self.failed.iter().map(|id| &self.graph.tasks[id])
    }

    pub fn worktree_ended(&self) -> impl Iterator<Item = &Task> + '_ {
        self.worktree_ended.iter().map(|id| &self.graph.tasks[id])
    }

    pub fn locking(&self) -> impl Iterator<Item = &Task> + '_ {
        self.locking.iter().map(|id| &self.graph.tasks[id])
    }
}

/// Whether a task lets its dependents go: done and not held by the evaluation gate.
fn satisfies(t: &Task) -> bool {
    t.status == TaskStatus::Done && !t.awaiting_evaluation()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Layout;
    use std::io::Write;

    fn line(id: &str, status: &str, after: &[&str], priority: i64) -> String {
        let t = serde_json::json!({"id": id, "title": id, "status": status, "after": after,
            "priority": priority, "created": format!("c-{id}"), "updated": "u"});
        format!("{t}\n")
    }

    fn append(s: &Store, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.layout.graph())
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn ready(g: &LiveGraph) -> Vec<String> {
        g.ready().map(|t| t.id.clone()).collect()
    }

    /// The ready set kept incrementally matches a fresh computation over the whole graph
    /// after every change.
    #[test]
    fn incremental_ready_set_matches_a_full_computation() {
        let dir = tempfile::tempdir().unwrap();
        let wg = dir.path().join(".wg");
        std::fs::create_dir_all(&wg).unwrap();
        let s = Store::new(Layout::new(wg));
        append(&s, &line("a", "open", &[], 0));
        append(&s, &line("b", "open", &["a"], 0));
        append(&s, &line("c", "open", &["a", "b"], 5));
        let mut g = LiveGraph::default();
        assert!(matches!(g.refresh(&s).unwrap(), Changes::All));
        assert_eq!(ready(&g), ["a"]);
        let steps = [
            line("d", "open", &[], 1),
            line("a", "in-progress", &[], 0),
            line("a", "done", &[], 0),
            line("b", "done", &["a"], 0),
            line("c", "open", &["a", "b", "zz"], 5),
            line("c", "open", &["a"], 5),
            line("a", "open", &[], 0),
            line("b", "failed", &["a"], 0),
        ];
        for step in steps {
            append(&s, &step);
            let changes = g.refresh(&s).unwrap();
            assert!(matches!(changes, Changes::Some(ref c) if c.len() == 1));
            let full = s.load().unwrap();
            let expected: Vec<String> = s
                .ready(&full)
                .unwrap()
                .into_iter()
                .map(|t| t.id.clone())
                .collect();
            assert_eq!(ready(&g), expected, "after {step}");
            let failed: Vec<&str> = g.failed().map(|t| t.id.as_str()).collect();
            let expected: Vec<&str> = full
                .tasks
                .values()
                .filter(|t| t.status == TaskStatus::Failed)
                .map(|t| t.id.as_str())
                .collect();
            assert_eq!(failed, expected);
        }
        assert_eq!(ready(&g), ["d", "a"]);
    }
}
