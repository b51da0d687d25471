//! Landing as the coordinator runs it: the checks of tasks whose agent said `wg done`, and
//! the merge queue (`workspace.merge = "queue"`). The work runs off the event loop (checks
//! and merges take seconds to minutes); its result comes back as an event and is applied
//! here: the next stage, or the task back to its agent with what failed, or to a person.
//! See docs/landing.md.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{notify, Coordinator, Event, ACTOR};
use crate::conversation;
use crate::landing::checks::{self, CheckRecord, CheckStage};
use crate::landing::land::{self, Outcome};
use crate::landing::{self, send_back, Landing, SendBack, Stage};
use crate::lifecycle::{transition, Change};
use crate::model::task::AWAITING_EVALUATION;
use crate::model::{Task, TaskStatus};
use crate::store::tasklog::{self, LogRecord};
use crate::store::Graph;
use crate::time::now_rfc3339;
use crate::workspace::queue::{self, Entry, EntryState, Queue};
use crate::workspace::{self, field, git};

/// What runs now.
#[derive(Default)]
pub(super) struct Lander {
    checking: HashSet<String>,
    /// The tasks landing now (several with `workspace.land_batch`).
    landing: Vec<String>,
    /// Serialises the loop's and the landing thread's writes of the queue file.
    queue_lock: Arc<Mutex<()>>,
}

impl Lander {
    pub(super) fn idle(&self) -> bool {
        self.checking.is_empty() && self.landing.is_empty()
    }
}

/// A finished piece of landing work.
pub(super) enum Finished {
    Checked {
        task: String,
        records: Vec<CheckRecord>,
    },
    Landed(Vec<(String, Outcome)>),
}

/// A queued task with what its landing needs, owned by the landing thread.
struct Prepared {
    entry: Entry,
    task: Task,
    branch: String,
    commands: Vec<String>,
    round: u32,
}

/// Why a task goes back, and what its agent (or a person) is told.
struct Back {
    reason: String,
    message: String,
    kind: &'static str,
    to: SendBack,
}

impl Coordinator {
    fn queue_file(&self) -> std::path::PathBuf {
        queue::path(&self.layout.service_dir())
    }

    fn check_timeout(&self) -> Duration {
        crate::time::parse_duration(&self.config.checks.timeout).unwrap_or(Duration::from_secs(600))
    }

    /// The gate runs once the task's checks passed: a task whose checks come first is
    /// evaluated by `on_checked`.
    pub(super) fn evaluate_unless_checks_first(&mut self, id: String) -> anyhow::Result<()> {
        let graph = self.store.load()?;
        let stage = graph.tasks.get(&id).and_then(landing::stage);
        if stage.is_none() || stage == Some(Stage::Evaluation) {
            self.start_evaluation(id);
        }
        Ok(())
    }

    /// Starts the checks that are due and the next landing. Returns whether work runs.
    pub(super) fn advance_landing(&mut self, graph: &Graph) -> anyhow::Result<bool> {
        let due: Vec<Task> = graph
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::Done && landing::stage(t) == Some(Stage::Checks))
            .filter(|t| !self.agents.contains_key(&t.id) && !self.lander.checking.contains(&t.id))
            .cloned()
            .collect();
        if self.stopping.is_none() {
            for t in due {
                self.start_checks(&t);
            }
        }
        self.advance_queue(graph)?;
        Ok(!self.lander.idle())
    }

    fn start_checks(&mut self, t: &Task) {
        let id = t.id.clone();
        self.lander.checking.insert(id.clone());
        let commands = landing::commands_for(t, &self.config);
        let l = Landing::of(t);
        let round = l.check_rounds + l.land_rounds + 1;
        let dir = workspace::recorded_worktree(t)
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| self.root());
        self.log.line(&format!(
            "checks task={id}: {} command(s) in {} (round {round})",
            commands.len(),
            dir.display()
        ));
        let (layout, tx, task) = (self.layout.clone(), self.tx.clone(), t.clone());
        let (timeout, tail_chars) = (self.check_timeout(), self.config.checks.tail_chars);
        tokio::task::spawn_blocking(move || {
            save_leftovers(&task, &dir);
            let run = checks::Run {
                task: &id,
                stage: CheckStage::Task,
                round,
                dir: &dir,
                commit: git::commit_of(&dir, "HEAD").ok(),
                timeout,
                tail_chars,
            };
            let records = checks::run_all(&layout, &run, &commands);
            let _ = tx.send(Event::Landing(Finished::Checked { task: id, records }));
        });
    }

    /// Brings the queue file in step with the task records and starts the next landing.
    fn advance_queue(&mut self, graph: &Graph) -> anyhow::Result<()> {
        let lock = self.lander.queue_lock.clone();
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = self.queue_file();
        let mut q = Queue::load(&file)?;
        let before = q.clone();
        let landing_now = self.lander.landing.clone();
        let in_queue =
            |t: &Task| t.status == TaskStatus::Done && landing::stage(t) == Some(Stage::Queue);
        // A task reopened or closed by a person meanwhile leaves the queue.
        q.entries.retain(|e| {
            landing_now.contains(&e.task) || graph.tasks.get(&e.task).is_some_and(in_queue)
        });
        let root = self.root();
        for t in graph.tasks.values().filter(|t| in_queue(t)) {
            if q.contains(&t.id) {
                continue;
            }
            q.entries.push(Entry {
                task: t.id.clone(),
                entered: now_rfc3339(),
                state: EntryState::Queued,
                base_ref: self.base_ref_of(t, &root).unwrap_or_default(),
                old_tip: None,
                merged: None,
                check: None,
            });
            self.log.line(&format!("queue task={}: entered", t.id));
        }
        if q != before {
            q.save(&file)?;
        }
        if !self.lander.landing.is_empty() || self.stopping.is_some() {
            return Ok(());
        }
        let deps = |id: &str| {
            graph
                .tasks
                .get(id)
                .map(|t| t.after.clone())
                .unwrap_or_default()
        };
        let max = self.config.workspace.land_batch as usize;
        let batch: Vec<(Entry, Task)> = q
            .next_batch(max, deps)
            .into_iter()
            .filter_map(|e| Some((e.clone(), graph.tasks.get(&e.task)?.clone())))
            .collect();
        drop(_held);
        if !batch.is_empty() {
            self.start_land(batch);
        }
        Ok(())
    }

    /// The branch the task lands on: the one its worktree started from, else the configured
    /// base or the project's HEAD when that is a branch.
    fn base_ref_of(&self, t: &Task, root: &std::path::Path) -> Option<String> {
        workspace::extra_str(t, field::BASE_REF)
            .map(str::to_string)
            .or_else(|| {
                let base = self.config.workspace.base.as_deref().unwrap_or("HEAD");
                git::branch_ref(root, base)
            })
    }

    /// Lands `batch` (one task, or several with `workspace.land_batch`) off the event loop.
    fn start_land(&mut self, batch: Vec<(Entry, Task)>) {
        let root = self.root();
        let ids: Vec<String> = batch.iter().map(|(_, t)| t.id.clone()).collect();
        self.lander.landing = ids.clone();
        let first = &batch[0].0;
        self.log.line(&format!(
            "land task={}: {} onto {} ({})",
            ids.join(","),
            self.config.workspace.land_by.as_str(),
            first.base_ref.trim_start_matches("refs/heads/"),
            first.state.as_str()
        ));
        let prepared: Vec<Prepared> = batch
            .into_iter()
            .map(|(entry, task)| {
                let l = Landing::of(&task);
                Prepared {
                    branch: workspace::extra_str(&task, field::BRANCH)
                        .map(str::to_string)
                        .unwrap_or_else(|| workspace::branch_name(&task.id)),
                    commands: landing::commands_for(&task, &self.config),
                    round: l.check_rounds + l.land_rounds + 1,
                    entry,
                    task,
                }
            })
            .collect();
        let (layout, tx, lock) = (
            self.layout.clone(),
            self.tx.clone(),
            self.lander.queue_lock.clone(),
        );
        let (timeout, tail_chars) = (self.check_timeout(), self.config.checks.tail_chars);
        let land_by = self.config.workspace.land_by;
        let file = self.queue_file();
        tokio::task::spawn_blocking(move || {
            let mut results = Vec::new();
            let mut jobs = Vec::new();
            for p in &prepared {
                if let Some(dir) = workspace::recorded_worktree(&p.task).filter(|d| d.is_dir()) {
                    save_leftovers(&p.task, &dir);
                }
                if p.entry.base_ref.is_empty() {
                    let why = "the task started from a commit, not a branch: there is no branch to land on";
                    results.push((p.task.id.clone(), Outcome::Error(why.into())));
                    continue;
                }
                jobs.push(land::Job {
                    root: &root,
                    layout: &layout,
                    task: &p.task.id,
                    title: &p.task.title,
                    branch: &p.branch,
                    base_ref: &p.entry.base_ref,
                    land_by,
                    commands: &p.commands,
                    timeout,
                    tail_chars,
                    round: p.round,
                    entry: p.entry.clone(),
                });
            }
            let mut persist = |e: &Entry| {
                let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
                if let Ok(mut q) = Queue::load(&file) {
                    if let Some(x) = q.get_mut(&e.task) {
                        *x = e.clone();
                        let _ = q.save(&file);
                    }
                }
            };
            results.extend(land::land_batch(&jobs, &mut persist));
            let _ = tx.send(Event::Landing(Finished::Landed(results)));
        });
    }

    /// Applies a finished piece of landing work.
    pub(super) fn on_landing(&mut self, f: Finished) -> anyhow::Result<()> {
        match f {
            Finished::Checked { task, records } => {
                self.lander.checking.remove(&task);
                self.on_checked(&task, &records)
            }
            Finished::Landed(results) => {
                self.lander.landing.clear();
                // Records first, then the queue: a crash in between leaves a queued entry
                // whose task is no longer queued, which the next pass drops.
                for (task, outcome) in results {
                    self.on_landed(&task, outcome)?;
                    let lock = self.lander.queue_lock.clone();
                    let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
                    let file = self.queue_file();
                    let mut q = Queue::load(&file)?;
                    q.remove(&task);
                    q.save(&file)?;
                }
                Ok(())
            }
        }
    }

    fn on_checked(&mut self, id: &str, records: &[CheckRecord]) -> anyhow::Result<()> {
        let store = self.store.clone();
        let mut w = store.writer()?;
        let Some(mut t) = w.get(id)? else {
            return Ok(());
        };
        // Reopened or closed by a person while its checks ran: their word stands.
        if t.status != TaskStatus::Done || landing::stage(&t) != Some(Stage::Checks) {
            return Ok(());
        }
        let mut l = Landing::of(&t);
        if let Some(rec) = records.iter().find(|r| !r.passed) {
            l.check_rounds += 1;
            let max = self.config.checks.max_rounds;
            let back = Back {
                reason: format!("check failed: `{}`", rec.command),
                message: checks::failure_message(rec, l.check_rounds, max),
                kind: "check",
                to: send_back(l.check_rounds, max),
            };
            drop(w);
            return self.send_back(id, l, back);
        }
        let next =
            landing::after_checks(self.config.evaluate.auto, landing::queued(&t, &self.config));
        l.stage = Some(next);
        l.store(&mut t);
        if next == Stage::Passed {
            t.extra.remove(AWAITING_EVALUATION);
        }
        w.put(std::slice::from_ref(&t))?;
        w.commit()?;
        self.log.line(&format!(
            "checks task={id}: passed ({} command(s)); next: {next:?}",
            records.len()
        ));
        if next == Stage::Evaluation && self.stopping.is_none() {
            self.start_evaluation(id.to_string());
        }
        Ok(())
    }

    fn on_landed(&mut self, id: &str, outcome: Outcome) -> anyhow::Result<()> {
        let store = self.store.clone();
        let mut w = store.writer()?;
        let Some(mut t) = w.get(id)? else {
            return Ok(());
        };
        let mut l = Landing::of(&t);
        let max = self.config.workspace.land_rounds;
        let back = match outcome {
            Outcome::Landed { commit, note } => {
                let base = self
                    .base_ref_of(&t, &self.root())
                    .unwrap_or_default()
                    .trim_start_matches("refs/heads/")
                    .to_string();
                l.stage = Some(Stage::Landed);
                l.landed_commit = Some(commit.clone());
                l.store(&mut t);
                t.extra.remove(AWAITING_EVALUATION);
                w.put(std::slice::from_ref(&t))?;
                w.commit()?;
                self.record_landed(&t, &base, &commit, &note);
                return Ok(());
            }
            Outcome::Conflict {
                base_tip,
                files,
                hunks,
            } => {
                l.land_rounds += 1;
                let base = self.base_ref_of(&t, &self.root()).unwrap_or_default();
                let base = base.trim_start_matches("refs/heads/");
                Back {
                    reason: format!("merge conflict with {base} in {}", files.join(", ")),
                    message: conflict_message(
                        &t,
                        base,
                        &base_tip,
                        &files,
                        &hunks,
                        l.land_rounds,
                        max,
                    ),
                    kind: "conflict",
                    to: send_back(l.land_rounds, max),
                }
            }
            Outcome::CheckFailed(rec) => {
                l.land_rounds += 1;
                Back {
                    reason: format!("check failed on the merged result: `{}`", rec.command),
                    message: checks::failure_message(&rec, l.land_rounds, max),
                    kind: "check",
                    to: send_back(l.land_rounds, max),
                }
            }
            Outcome::Error(e) => Back {
                reason: format!("cannot land: {e}"),
                message: format!("wg could not land this task: {e}"),
                kind: "land",
                to: SendBack::Person,
            },
        };
        drop(w);
        self.send_back(id, l, back)
    }

    /// The landed commit goes into the task's log, `coordinator.log` and a webhook event.
    fn record_landed(&mut self, t: &Task, base: &str, commit: &str, note: &str) {
        let text = format!("landed on {base} as {commit}");
        self.log.line(&format!(
            "landed task={} base={base} commit={commit}{}",
            t.id,
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            }
        ));
        let mut rec = LogRecord::note(&now_rfc3339(), ACTOR, &text);
        rec.event = "landed".into();
        rec.extra.insert("commit".into(), commit.into());
        rec.extra.insert("base".into(), base.into());
        let _ = tasklog::append(&self.layout, &t.id, &rec, false);
        if let Some(n) = &self.notifier {
            let event = notify::Event {
                task: t.id.clone(),
                status: "landed".into(),
                from: Some(t.status.to_string()),
                agent: self.last_agent.get(&t.id).cloned(),
                time: now_rfc3339(),
                reason: None,
                workspace: Some(serde_json::json!({"landed_commit": commit, "base": base})),
                endpoint: None,
            };
            if let Err(e) = n.send(event) {
                self.log.line(&format!("webhook: {e}"));
            }
        }
    }

    /// Sends a done task back: to its agent (open, with the message in its inbox) or, the
    /// budget spent, to a person (`needs-input`, the message kept for the agent that resumes).
    fn send_back(&mut self, id: &str, mut l: Landing, back: Back) -> anyhow::Result<()> {
        let store = self.store.clone();
        let mut w = store.writer()?;
        let to = match back.to {
            SendBack::Agent => TaskStatus::Open,
            SendBack::Person => TaskStatus::NeedsInput,
        };
        l.stage = None;
        let change = Change {
            to,
            reason: Some(&back.reason),
            actor: ACTOR,
        };
        let task = transition(&mut w, id, change, |t| l.store(t)).map_err(super::cli_err)?;
        w.commit()?;
        let lookup = self.store.clone();
        let brief = || {
            let g = lookup.load().unwrap_or_default();
            conversation::brief_for(&self.layout, &task, |d| g.tasks.get(d).cloned())
        };
        conversation::append_message(&self.layout, &task, brief, ACTOR, back.kind, &back.message)?;
        self.log
            .line(&format!("back task={id} -> {to}: {}", back.reason));
        self.announce(id, Some(TaskStatus::Done), to, Some(&back.reason));
        Ok(())
    }
}

/// Commits what an agent left uncommitted in its worktree, so the checks and the merge see
/// exactly what the branch holds.
fn save_leftovers(task: &Task, dir: &std::path::Path) {
    if !git::is_repo(dir) || workspace::recorded_worktree(task).is_none() {
        return;
    }
    if git::dirty_files(dir).is_ok_and(|f| !f.is_empty()) {
        let msg = workspace::commit_message(task, "changes left uncommitted when the task ended");
        let _ = git::commit_all(dir, &msg);
    }
}

/// What the agent reads when its branch conflicts with the base.
fn conflict_message(
    t: &Task,
    base: &str,
    base_tip: &str,
    files: &[String],
    hunks: &str,
    round: u32,
    max: u32,
) -> String {
    let branch = workspace::extra_str(t, field::BRANCH).unwrap_or("your branch");
    format!(
        "Merge conflict (round {round} of {max}): {branch} does not merge cleanly onto {base} \
         (at {}). Conflicting files: {}.\n\nHunks:\n```diff\n{}\n```\n\nBring your branch up to \
         date in your worktree (`git merge {base}`, or `git rebase {base}`), resolve the \
         conflicts keeping both intentions, commit, and run `wg done` again.",
        &base_tip[..base_tip.len().min(12)],
        files.join(", "),
        hunks.trim_end()
    )
}
