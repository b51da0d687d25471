//! Workspace steps with effects: prepare a task's worktree at dispatch, settle its changes at
//! `wg done`, clean it up after the task ends. Git itself runs only in `git.rs`; the decisions
//! are the pure functions of `mod.rs`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{field, git, plan_worktree, recorded_worktree, Plan};
use crate::config::WorkspaceConfig;
use crate::model::{Task, TaskStatus};

/// The worktree a task runs in, as recorded in its `extra` fields.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dir: PathBuf,
    pub branch: String,
    pub base_commit: String,
    pub base_ref: Option<String>,
    /// `false` when an existing worktree of the task was reused.
    pub created: bool,
}

impl Prepared {
    /// Writes the record fields the handler, `wg done`, the evaluator and cleanup read.
    pub fn apply(&self, task: &mut Task) {
        let e = &mut task.extra;
        e.insert(
            field::WORKTREE.into(),
            self.dir.display().to_string().into(),
        );
        e.insert(field::BRANCH.into(), self.branch.clone().into());
        e.insert(field::BASE_COMMIT.into(), self.base_commit.clone().into());
        match &self.base_ref {
            Some(r) => e.insert(field::BASE_REF.into(), r.clone().into()),
            None => e.remove(field::BASE_REF),
        };
        e.remove(field::WAITING_FOR);
    }
}

/// Why a worktree could not be prepared.
#[derive(Debug)]
pub enum PrepareError {
    /// A collision: the task waits, it is not failed.
    Wait(String),
    /// Git refused (not a repository, bad base...): the task cannot start.
    Failed(String),
}

/// The collision check for task `task` (see [`plan_worktree`]).
pub fn check(
    root: &Path,
    cfg: &WorkspaceConfig,
    task: &Task,
    live: impl Fn(&str) -> bool,
) -> Result<Plan, git::GitError> {
    let existing = git::list_worktrees(root)?;
    let dir = super::worktree_dir(cfg, root, &task.id);
    let branch = super::branch_name(&task.id);
    Ok(plan_worktree(&existing, &branch, &dir, dir.exists(), live))
}

/// Creates (or reuses) the task's worktree. Call with the graph lock held, so two
/// coordinators cannot both pass the collision check.
pub fn prepare(
    root: &Path,
    cfg: &WorkspaceConfig,
    task: &Task,
    live: impl Fn(&str) -> bool,
) -> Result<Prepared, PrepareError> {
    let failed = |e: git::GitError| PrepareError::Failed(e.to_string());
    if !git::is_repo(root) {
        return Err(PrepareError::Failed(format!(
            "workspace mode is worktree but {} is not in a git repository",
            root.display()
        )));
    }
    let dir = super::worktree_dir(cfg, root, &task.id);
    let branch = super::branch_name(&task.id);
    let recorded_base = super::extra_str(task, field::BASE_COMMIT).map(str::to_string);
    let base_ref = super::extra_str(task, field::BASE_REF).map(str::to_string);
    match check(root, cfg, task, live).map_err(failed)? {
        Plan::Wait(reason) => Err(PrepareError::Wait(reason)),
        Plan::Reuse => {
            let base_commit = match recorded_base {
                Some(b) => b,
                None => git::commit_of(&dir, "HEAD").map_err(failed)?,
            };
            Ok(Prepared {
                dir,
                branch,
                base_commit,
                base_ref,
                created: false,
            })
        }
        Plan::Create => {
            // A retried task whose branch survived its last attempt continues from it; the
            // diff for review stays against the commit the first attempt started from.
            if let (Some(base_commit), true) = (&recorded_base, git::branch_exists(root, &branch)) {
                git::add_worktree_existing(root, &branch, &dir).map_err(failed)?;
                return Ok(Prepared {
                    dir,
                    branch,
                    base_commit: base_commit.clone(),
                    base_ref,
                    created: true,
                });
            }
            let base = super::extra_str(task, field::BASE)
                .map(str::to_string)
                .or_else(|| cfg.base.clone())
                .unwrap_or_else(|| "HEAD".to_string());
            let base_commit = git::commit_of(root, &base).map_err(failed)?;
            let base_ref = git::branch_ref(root, &base);
            git::add_worktree(root, &branch, &dir, &base_commit).map_err(failed)?;
            Ok(Prepared {
                dir,
                branch,
                base_commit,
                base_ref,
                created: true,
            })
        }
    }
}

/// What `wg done` does with the worktree's uncommitted changes.
#[derive(Debug)]
pub enum DoneOutcome {
    /// Nothing to settle (no worktree, or a clean one).
    Clean,
    /// Committed on the task branch: the commit and the files.
    Committed(String, Vec<String>),
    /// `on_done = "refuse"`: these files are not committed.
    Refused(Vec<String>),
}

pub fn settle_on_done(cfg: &WorkspaceConfig, task: &Task) -> Result<DoneOutcome, git::GitError> {
    let Some(dir) = recorded_worktree(task).filter(|d| d.is_dir()) else {
        return Ok(DoneOutcome::Clean);
    };
    let files = git::dirty_files(&dir)?;
    if files.is_empty() {
        return Ok(DoneOutcome::Clean);
    }
    if cfg.on_done == crate::config::OnDone::Refuse {
        return Ok(DoneOutcome::Refused(files));
    }
    let msg = super::commit_message(task, "changes left uncommitted at `wg done`");
    let commit = git::commit_all(&dir, &msg)?;
    Ok(DoneOutcome::Committed(commit, files))
}

/// What cleanup did; goes into `log.jsonl`, the webhook payload and the task record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CleanupReport {
    pub ok: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit that saved changes left in the worktree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_commit: Option<String>,
    /// The `merge = "ff"` outcome, for done tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MergeReport {
    pub ok: bool,
    pub message: String,
}

/// After a task ended (done, failed, abandoned): save what is left in its worktree as a commit
/// on its branch (nothing is dropped silently), fast-forward the base for `merge = "ff"`,
/// then remove the worktree unless `keep` (the branch is always kept).
pub fn cleanup(root: &Path, cfg: &WorkspaceConfig, task: &Task, keep: bool) -> CleanupReport {
    let dir = recorded_worktree(task);
    let branch = super::extra_str(task, field::BRANCH)
        .map(str::to_string)
        .unwrap_or_else(|| super::branch_name(&task.id));
    let mut report = CleanupReport {
        ok: true,
        message: String::new(),
        worktree: dir.as_ref().map(|d| d.display().to_string()),
        branch: Some(branch.clone()),
        saved_commit: None,
        merge: None,
    };
    let mut notes = Vec::new();
    if let Some(dir) = dir.as_ref().filter(|d| d.is_dir()) {
        match git::dirty_files(dir) {
            Ok(files) if !files.is_empty() => {
                let why = format!(
                    "changes left in the worktree when the task became {}",
                    task.status
                );
                match git::commit_all(dir, &super::commit_message(task, &why)) {
                    Ok(c) => {
                        notes.push(format!(
                            "saved {} changed file(s) as {}",
                            files.len(),
                            &c[..c.len().min(12)]
                        ));
                        report.saved_commit = Some(c);
                    }
                    Err(e) => {
                        // Removing the worktree now would lose those changes: keep it.
                        report.ok = false;
                        report.message = format!("worktree kept: cannot save its changes: {e}");
                        return report;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => notes.push(format!("cannot read its status: {e}")),
        }
    }
    if task.status == TaskStatus::Done && cfg.merge == crate::config::MergeMode::Ff {
        let merge = match super::extra_str(task, field::BASE_REF) {
            Some(base_ref) => match git::fast_forward(root, base_ref, &branch) {
                Ok(m) => MergeReport {
                    ok: true,
                    message: m,
                },
                Err(m) => MergeReport {
                    ok: false,
                    message: m,
                },
            },
            None => MergeReport {
                ok: false,
                message: "the task started from a commit, not a branch; nothing to fast-forward"
                    .into(),
            },
        };
        notes.push(merge.message.clone());
        report.merge = Some(merge);
    }
    match &dir {
        Some(d) if keep => notes.push(format!("worktree kept at {} (keep_worktrees)", d.display())),
        Some(d) => match git::remove_worktree(root, d) {
            Ok(()) => notes.push(format!(
                "removed worktree {}; branch {branch} kept",
                d.display()
            )),
            Err(e) => {
                report.ok = false;
                notes.push(format!("cannot remove worktree: {e}"));
            }
        },
        None => {}
    }
    report.message = notes.join("; ");
    report
}

/// A worktree `wg doctor` reports: one of ours whose task no longer runs.
#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    pub task: String,
    pub path: String,
    pub branch: String,
    /// The task's status, or `None` when the task is gone.
    pub status: Option<String>,
}

/// wg's worktrees (`wg/<id>` branches) whose task is not live.
pub fn stale_worktrees(
    root: &Path,
    status_of: impl Fn(&str) -> Option<TaskStatus>,
) -> Result<Vec<Stale>, git::GitError> {
    let mut out = Vec::new();
    for w in git::list_worktrees(root)? {
        if w.main {
            continue;
        }
        let Some(b) = w.branch.as_deref() else {
            continue;
        };
        let Some(owner) = super::branch_owner(b) else {
            continue;
        };
        let status = status_of(owner);
        if status.is_some_and(super::is_live) || status == Some(TaskStatus::Open) {
            // Open: requeued, and its next agent reuses the worktree.
            continue;
        }
        out.push(Stale {
            task: owner.to_string(),
            path: w.path.display().to_string(),
            branch: b.trim_start_matches("refs/heads/").to_string(),
            status: status.map(|s| s.to_string()),
        });
    }
    Ok(out)
}

/// Removes a stale worktree (`wg doctor --fix`), first saving its changes on its branch.
pub fn prune(root: &Path, stale: &Stale) -> Result<String, git::GitError> {
    let dir = Path::new(&stale.path);
    let mut note = String::new();
    if dir.is_dir() && !git::dirty_files(dir)?.is_empty() {
        let msg = format!(
            "wg: task {}: changes left in a stale worktree\n\nTask: {}\n",
            stale.task, stale.task
        );
        let c = git::commit_all(dir, &msg)?;
        note = format!(" (changes saved as {})", &c[..c.len().min(12)]);
    }
    git::remove_worktree(root, dir)?;
    Ok(format!(
        "removed {}; branch {} kept{note}",
        stale.path, stale.branch
    ))
}
