//! Announcing status changes (webhook, live progress) made by the coordinator or seen in a
//! fresh load of the graph.

use super::live::{Changes, LiveGraph};
use super::{notify, Coordinator, Progress};
use crate::model::TaskStatus;
use crate::time::now_rfc3339;

impl Coordinator {
    /// Announces a status change: webhook, progress line, and the "last seen" table.
    pub(super) fn announce(
        &mut self,
        task: &str,
        from: Option<TaskStatus>,
        to: TaskStatus,
        reason: Option<&str>,
    ) {
        self.last_status.insert(task.to_string(), to);
        let agent = self
            .agents
            .get(task)
            .map(|r| r.record.agent_id.clone())
            .or_else(|| self.last_agent.get(task).cloned());
        if let Some(n) = &self.notifier {
            let event = notify::Event {
                task: task.to_string(),
                status: notify::webhook_status(to).to_string(),
                from: from.map(|s| s.to_string()),
                agent: agent.clone(),
                time: now_rfc3339(),
                reason: reason.map(str::to_string),
                workspace: None,
                endpoint: None,
            };
            if let Err(e) = n.send(event) {
                self.log.line(&format!("webhook: {e}"));
            }
        }
        if let Some(p) = &self.opts.progress {
            let _ = p.send(Progress {
                task: task.to_string(),
                status: to,
                agent,
                reason: reason.map(str::to_string),
            });
        }
    }

    /// Changes seen in the graph that the coordinator did not make itself: over the tasks
    /// that have new records, or over all of them after a full read.
    pub(super) fn announce_changes(&mut self, live: &LiveGraph, changes: Changes) {
        let first = self.last_status.is_empty();
        let ids: Vec<&String> = match &changes {
            Changes::All => live.graph.tasks.keys().collect(),
            Changes::Some(c) => {
                let mut ids: Vec<&String> = c.iter().map(|(id, _)| id).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
        };
        let changed: Vec<(String, Option<TaskStatus>, TaskStatus, Option<String>)> = ids
            .into_iter()
            .filter_map(|id| live.graph.tasks.get(id))
            .filter_map(|t| {
                let prev = self.last_status.get(&t.id).copied();
                (prev != Some(t.status)).then(|| {
                    (
                        t.id.clone(),
                        prev,
                        t.status,
                        t.failure_reason
                            .clone()
                            .filter(|_| t.status == TaskStatus::Failed),
                    )
                })
            })
            .collect();
        for (id, prev, status, reason) in changed {
            if first || prev.is_none() {
                // Tasks as found at start, and new tasks, are not transitions.
                self.last_status.insert(id, status);
            } else {
                self.announce(&id, prev, status, reason.as_deref());
            }
        }
        // Tasks leave the graph only through a rewrite, which is read in full.
        if matches!(changes, Changes::All) {
            self.last_status
                .retain(|id, _| live.graph.tasks.contains_key(id));
        }
    }
}
