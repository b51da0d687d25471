//! The merge queue's state, `.wg/service/queue.json`: the tasks waiting to land, in order, and
//! how far the one landing now has got. Written atomically after every step, so a coordinator
//! killed at any point finds where it was; each step is safe to repeat (see `land.rs`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    /// Waiting for its turn.
    Queued,
    /// Being merged (or rebased) onto `old_tip` in a scratch worktree.
    Merging,
    /// The merged commit's checks run (`check` names the command).
    Checking,
    /// Checked: the base moves from `old_tip` to `merged` (compare-and-swap).
    Landing,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Queued => "queued",
            EntryState::Merging => "merging",
            EntryState::Checking => "checking",
            EntryState::Landing => "landing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub task: String,
    /// When it entered the queue.
    pub entered: String,
    pub state: EntryState,
    /// The base branch (`refs/heads/...`).
    pub base_ref: String,
    /// The base tip the current attempt started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_tip: Option<String>,
    /// The merged commit of the current attempt, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<String>,
    /// The check command running on the merged commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub version: u32,
    pub entries: Vec<Entry>,
}

pub fn path(service_dir: &Path) -> PathBuf {
    service_dir.join("queue.json")
}

impl Queue {
    /// The queue on disk; empty when there is none. A file wg cannot read is an error: a
    /// queue is never dropped silently.
    pub fn load(file: &Path) -> std::io::Result<Queue> {
        match std::fs::read(file) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::other(format!("{} is not a valid queue: {e}", file.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Queue {
                version: 1,
                entries: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, file: &Path) -> std::io::Result<()> {
        let mut b = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        b.push(b'\n');
        crate::store::atomic::write_atomic(file, &b, true)
    }

    pub fn get_mut(&mut self, task: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.task == task)
    }

    pub fn contains(&self, task: &str) -> bool {
        self.entries.iter().any(|e| e.task == task)
    }

    pub fn remove(&mut self, task: &str) {
        self.entries.retain(|e| e.task != task);
    }

    /// The entry to land next: one already under way (a restart resumes it), else the first
    /// whose dependencies (`deps_of`) are not themselves waiting in the queue, so a task lands
    /// after what it builds on.
    pub fn next(&self, deps_of: impl Fn(&str) -> Vec<String>) -> Option<&Entry> {
        self.next_batch(1, deps_of).into_iter().next()
    }

    /// Up to `max` entries to land together: an entry under way alone (a restart resumes it
    /// on its own), else the first `max` waiting entries onto the same base whose
    /// dependencies are not waiting in the queue.
    pub fn next_batch(&self, max: usize, deps_of: impl Fn(&str) -> Vec<String>) -> Vec<&Entry> {
        if let Some(e) = self.entries.iter().find(|e| e.state != EntryState::Queued) {
            return vec![e];
        }
        let free: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !deps_of(&e.task).iter().any(|d| self.contains(d)))
            .collect();
        let Some(first) = free.first() else {
            return Vec::new();
        };
        free.iter()
            .filter(|e| e.base_ref == first.base_ref)
            .take(max.max(1))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(task: &str, state: EntryState) -> Entry {
        Entry {
            task: task.into(),
            entered: "t".into(),
            state,
            base_ref: "refs/heads/main".into(),
            old_tip: None,
            merged: None,
            check: None,
        }
    }

    #[test]
    fn dependencies_land_first_and_a_started_entry_resumes() {
        let mut q = Queue {
            version: 1,
            entries: vec![
                entry("b", EntryState::Queued),
                entry("a", EntryState::Queued),
            ],
        };
        let deps = |t: &str| {
            if t == "b" {
                vec!["a".to_string()]
            } else {
                vec![]
            }
        };
        assert_eq!(q.next(deps).unwrap().task, "a");
        q.get_mut("b").unwrap().state = EntryState::Checking;
        assert_eq!(q.next(deps).unwrap().task, "b");
        q.get_mut("b").unwrap().state = EntryState::Queued;
        q.entries.push(entry("c", EntryState::Queued));
        let batch: Vec<&str> = q
            .next_batch(4, deps)
            .iter()
            .map(|e| e.task.as_str())
            .collect();
        assert_eq!(batch, vec!["a", "c"], "b waits for a");
        q.remove("b");
        q.remove("a");
        q.remove("c");
        assert!(q.next(deps).is_none());
    }

    #[test]
    fn saves_and_loads() {
        let d = tempfile::tempdir().unwrap();
        let f = path(d.path());
        assert!(Queue::load(&f).unwrap().entries.is_empty());
        let q = Queue {
            version: 1,
            entries: vec![entry("a", EntryState::Merging)],
        };
        q.save(&f).unwrap();
        assert_eq!(Queue::load(&f).unwrap(), q);
        std::fs::write(&f, "{").unwrap();
        assert!(Queue::load(&f).is_err());
    }
}
