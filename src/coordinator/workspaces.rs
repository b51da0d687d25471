//! Workspaces as the coordinator sees them: which candidates must wait for a lock path or a
//! worktree, recording why, and cleaning up the worktrees of tasks that ended.

use std::path::PathBuf;

use super::live::LiveGraph;
use super::{notify, Coordinator, ACTOR};
use crate::model::Task;
use crate::store::tasklog::{self, LogRecord};
use crate::time::now_rfc3339;
use crate::workspace::{self, field, ops, Mode};

impl Coordinator {
    /// The project root, absolute (git and agents get absolute paths).
    pub(super) fn root(&self) -> PathBuf {
        let root = self.layout.project_root();
        std::path::absolute(&root).unwrap_or(root)
    }

    /// Keeps back the candidates whose workspace is not free: a lock path overlapping one
    /// held by a live task (or by a candidate ahead of it), or a worktree branch or path in
    /// use. Their reason is recorded on the task; the rest are returned in order.
    pub(super) fn gate_workspaces(
        &mut self,
        graph: &LiveGraph,
        tasks: Vec<Task>,
    ) -> anyhow::Result<Vec<Task>> {
        let live = |id: &str| {
            graph
                .graph
                .tasks
                .get(id)
                .is_some_and(|t| workspace::is_live(t.status))
        };
        let root = self.root();
        let cfg = &self.config.workspace;
        // One `git worktree list` per pass, and only when a worktree task is a candidate.
        let mut existing: Option<Vec<workspace::Worktree>> = None;
        let mut reasons: Vec<Option<String>> = Vec::with_capacity(tasks.len());
        for t in &tasks {
            let mut reason = None;
            if workspace::mode(t, cfg) == Mode::Worktree {
                if existing.is_none() {
                    // A git error here is reported when the claim tries to create it.
                    existing = Some(workspace::git::list_worktrees(&root).unwrap_or_default());
                }
                let dir = workspace::worktree_dir(cfg, &root, &t.id);
                let plan = workspace::plan_worktree(
                    existing.as_deref().unwrap_or_default(),
                    &workspace::branch_name(&t.id),
                    &dir,
                    dir.exists(),
                    live,
                );
                if let workspace::Plan::Wait(r) = plan {
                    reason = Some(r);
                }
            }
            reasons.push(reason);
        }
        // Lock paths among the rest, in dispatch order.
        let held: Vec<(String, Vec<String>)> = graph
            .locking()
            .map(|t| (t.id.clone(), workspace::lock_paths(t)))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let open: Vec<usize> = (0..tasks.len()).filter(|i| reasons[*i].is_none()).collect();
        let wanted: Vec<(String, Vec<String>)> = open
            .iter()
            .map(|i| (tasks[*i].id.clone(), workspace::lock_paths(&tasks[*i])))
            .collect();
        for (i, r) in open.into_iter().zip(workspace::lock_gate(&wanted, held)) {
            reasons[i] = r;
        }
        let mut keep = Vec::with_capacity(tasks.len());
        let mut waits = Vec::new();
        for (t, r) in tasks.into_iter().zip(reasons) {
            match r {
                Some(r) => waits.push((t.id.clone(), r)),
                None => keep.push(t),
            }
        }
        self.record_waits(waits)?;
        Ok(keep)
    }

    /// Records why ready tasks wait (`waiting_for`, shown by `wg show`, and a line in their
    /// log.jsonl), only when the reason changed: the write wakes the loop again.
    pub(super) fn record_waits(&mut self, waits: Vec<(String, String)>) -> anyhow::Result<()> {
        if waits.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let mut w = store.writer()?;
        let mut changed = Vec::new();
        for (id, reason) in waits {
            let Some(mut t) = w.get(&id)? else { continue };
            if workspace::extra_str(&t, field::WAITING_FOR) == Some(reason.as_str()) {
                continue;
            }
            t.extra
                .insert(field::WAITING_FOR.into(), reason.clone().into());
            w.put(std::slice::from_ref(&t))?;
            changed.push((id, reason));
        }
        w.commit()?;
        for (id, reason) in changed {
            self.log.line(&format!("wait task={id}: {reason}"));
            let mut rec = LogRecord::note(&now_rfc3339(), ACTOR, &reason);
            rec.event = "waiting".into();
            let _ = tasklog::append(&self.layout, &id, &rec, false);
        }
        Ok(())
    }

    /// Cleans up the worktrees of tasks that ended and have no agent (or evaluation) left.
    /// Returns whether any task record changed.
    pub(super) fn cleanup_workspaces(&mut self, graph: &LiveGraph) -> anyhow::Result<bool> {
        let due: Vec<Task> = graph
            .worktree_ended()
            // Its checks, gate or queue still need the worktree (and may send it back).
            .filter(|t| !crate::landing::pending(t))
            .filter(|t| !self.agents.contains_key(&t.id) && !self.evaluating.contains(&t.id))
            .cloned()
            .collect();
        if due.is_empty() {
            return Ok(false);
        }
        let root = self.root();
        for t in due {
            let cfg = &self.config.workspace;
            let report = ops::cleanup(&root, cfg, &t, cfg.keep_worktrees);
            let value = serde_json::to_value(&report)?;
            let store = self.store.clone();
            let mut w = store.writer()?;
            if let Some(mut cur) = w.get(&t.id)? {
                // Attempted once: a failure is left to `wg doctor`, not retried every tick.
                cur.extra.remove(field::WORKTREE);
                cur.extra.insert(field::CLEANUP.into(), value.clone());
                w.put(std::slice::from_ref(&cur))?;
            }
            w.commit()?;
            self.log.line(&format!(
                "cleanup task={} ok={}: {}",
                t.id, report.ok, report.message
            ));
            let mut rec = LogRecord::note(&now_rfc3339(), ACTOR, &report.message);
            rec.event = "workspace.cleanup".into();
            if let serde_json::Value::Object(m) = &value {
                rec.extra = m.clone();
                rec.extra.remove("message");
            }
            let _ = tasklog::append(&self.layout, &t.id, &rec, false);
            if let Some(n) = &self.notifier {
                let event = notify::Event {
                    task: t.id.clone(),
                    status: notify::webhook_status(t.status).to_string(),
                    from: Some(t.status.to_string()),
                    agent: self.last_agent.get(&t.id).cloned(),
                    time: now_rfc3339(),
                    reason: None,
                    workspace: Some(value),
                    endpoint: None,
                };
                if let Err(e) = n.send(event) {
                    self.log.line(&format!("webhook: {e}"));
                }
            }
        }
        Ok(true)
    }
}
