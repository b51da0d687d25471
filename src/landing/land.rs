//! Landing one queued task: merge (or rebase) its branch onto the base tip in a scratch
//! worktree, run the checks on the result, and only then move the base with a
//! compare-and-swap (`git update-ref BASE NEW OLD`). The base is never half-merged: until the
//! swap it is untouched, after it it holds the whole checked result.
//!
//! Every step reports itself through `persist` first (the queue file), and the first step asks
//! whether the base already holds this task's merge: a coordinator killed anywhere in between
//! runs the whole thing again and lands the task exactly once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checks::{self, CheckRecord, CheckStage};
use crate::config::LandBy;
use crate::store::layout::Layout;
use crate::workspace::git;
use crate::workspace::queue::{Entry, EntryState};

/// What a landing needs.
pub struct Job<'a> {
    pub root: &'a Path,
    pub layout: &'a Layout,
    pub task: &'a str,
    pub title: &'a str,
    pub branch: &'a str,
    pub base_ref: &'a str,
    pub land_by: LandBy,
    pub commands: &'a [String],
    pub timeout: Duration,
    pub tail_chars: usize,
    /// The round recorded with its checks.
    pub round: u32,
    /// What the queue file says of this entry (a restart resumes from it).
    pub entry: Entry,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The base is at (or already contains) `commit`.
    Landed { commit: String, note: String },
    /// The branch does not merge cleanly onto `base_tip`.
    Conflict {
        base_tip: String,
        files: Vec<String>,
        hunks: String,
    },
    /// The merged result fails a check (the last record).
    CheckFailed(Box<CheckRecord>),
    /// Git refused something else; a person looks.
    Error(String),
}

/// A scratch worktree of task `id`: under `.wg/worktrees/`, named so no task id can clash (ids
/// never start with a dot), and new for every attempt: a git process a killed coordinator left
/// running finishes in a directory nobody uses any more.
pub fn scratch_dir(layout: &Layout, id: &str) -> PathBuf {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    layout
        .dir()
        .join("worktrees")
        .join(format!(".land-{id}-{nonce:x}"))
}

/// Removes every scratch worktree of task `id` an earlier attempt left.
fn remove_scratches(root: &Path, layout: &Layout, id: &str) {
    let prefix = format!(".land-{id}-");
    // By name alone: git lists worktrees by their canonical path, which may differ from ours.
    let ours = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix))
    };
    for w in git::list_worktrees(root).unwrap_or_default() {
        if ours(&w.path) {
            let _ = git::remove_worktree(root, &w.path);
        }
    }
    if let Ok(entries) = std::fs::read_dir(layout.dir().join("worktrees")) {
        for e in entries.flatten() {
            if ours(&e.path()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Lands `job`; `persist` records each step before it is taken.
pub fn land(job: &Job<'_>, persist: &mut dyn FnMut(&Entry)) -> Outcome {
    match try_land(job, persist) {
        Ok(o) => o,
        Err(e) => Outcome::Error(e.to_string()),
    }
}

fn try_land(job: &Job<'_>, persist: &mut dyn FnMut(&Entry)) -> Result<Outcome, git::GitError> {
    let root = job.root;
    let mut entry = job.entry.clone();
    // The base moving under us (a person's push) only costs another attempt.
    for _ in 0..3 {
        let old = git::commit_of(root, job.base_ref)?;
        let tip = git::commit_of(root, job.branch)?;
        if let Some(m) = entry.merged.as_deref() {
            if entry.state == EntryState::Landing && git::is_ancestor(root, m, &old) {
                return Ok(landed(m, "landed before a restart; found on the base"));
            }
        }
        if git::is_ancestor(root, &tip, &old) {
            return Ok(landed(&old, "the base already contains the branch"));
        }
        entry.state = EntryState::Merging;
        entry.old_tip = Some(old.clone());
        entry.merged = None;
        entry.check = None;
        persist(&entry);
        remove_scratches(root, job.layout, job.task);
        let scratch = scratch_dir(job.layout, job.task);
        let start = match job.land_by {
            LandBy::Merge => &old,
            LandBy::Rebase => &tip,
        };
        run_git(
            root,
            &[
                "worktree",
                "add",
                "--quiet",
                "--detach",
                &scratch.display().to_string(),
                start,
            ],
        )?;
        let outcome = merge_and_check(job, &scratch, &old, &mut entry, persist);
        let _ = git::remove_worktree(root, &scratch);
        let new = match outcome? {
            Ok(new) => new,
            Err(o) => return Ok(o),
        };
        entry.state = EntryState::Landing;
        entry.check = None;
        persist(&entry);
        if run_git(root, &["update-ref", job.base_ref, &new, &old]).is_ok() {
            let note = sync_checkout(root, job.base_ref, &old, &new);
            return Ok(Outcome::Landed { commit: new, note });
        }
    }
    Ok(Outcome::Error(format!(
        "{} kept moving while the task was being landed; three attempts failed",
        job.base_ref
    )))
}

/// Lands several queued tasks at once: their branches merged one after the other onto the
/// base tip in one scratch worktree, the checks run once on the result, and the base moved
/// once. Whenever that cannot give every task its answer (a conflict, a failing check, a
/// rebase, an entry a restart resumes), each task is landed on its own instead, which finds
/// the culprit: the bisection at its simplest. Results are in the order of `jobs`.
pub fn land_batch(jobs: &[Job<'_>], persist: &mut dyn FnMut(&Entry)) -> Vec<(String, Outcome)> {
    if jobs.len() > 1 {
        // A git error in the batch is found again, and reported, by the one-by-one landings.
        if let Ok(Some(all)) = try_batch(jobs, persist) {
            return all;
        }
    }
    jobs.iter()
        .map(|j| (j.task.to_string(), land(j, persist)))
        .collect()
}

/// `Ok(None)`: land them one by one.
fn try_batch(
    jobs: &[Job<'_>],
    persist: &mut dyn FnMut(&Entry),
) -> Result<Option<Vec<(String, Outcome)>>, git::GitError> {
    let first = &jobs[0];
    let root = first.root;
    let same_base = jobs.iter().all(|j| j.base_ref == first.base_ref);
    let fresh = jobs.iter().all(|j| j.entry.state == EntryState::Queued);
    if !same_base || !fresh || first.land_by != LandBy::Merge {
        return Ok(None);
    }
    let old = git::commit_of(root, first.base_ref)?;
    let mut entries: Vec<Entry> = jobs.iter().map(|j| j.entry.clone()).collect();
    for e in entries.iter_mut() {
        e.state = EntryState::Merging;
        e.old_tip = Some(old.clone());
        persist(e);
    }
    for j in jobs {
        remove_scratches(root, j.layout, j.task);
    }
    let scratch = scratch_dir(first.layout, first.task);
    let dir = scratch.display().to_string();
    run_git(
        root,
        &["worktree", "add", "--quiet", "--detach", &dir, &old],
    )?;
    let result = merge_all_and_check(jobs, &scratch, &mut entries, persist);
    let _ = git::remove_worktree(root, &scratch);
    let Some(new) = result? else {
        return Ok(None);
    };
    for e in entries.iter_mut() {
        e.state = EntryState::Landing;
        e.check = None;
        persist(e);
    }
    if run_git(root, &["update-ref", first.base_ref, &new, &old]).is_err() {
        return Ok(None);
    }
    let note = sync_checkout(root, first.base_ref, &old, &new);
    Ok(Some(
        entries
            .iter()
            .map(|e| {
                let commit = e.merged.clone().unwrap_or_else(|| new.clone());
                let note = format!("landed in a batch of {}; {note}", jobs.len());
                (e.task.clone(), Outcome::Landed { commit, note })
            })
            .collect(),
    ))
}

/// Merges every branch in turn, then checks the result once. `Ok(None)` when a merge or a
/// check fails (the tasks then land one by one).
fn merge_all_and_check(
    jobs: &[Job<'_>],
    scratch: &Path,
    entries: &mut [Entry],
    persist: &mut dyn FnMut(&Entry),
) -> Result<Option<String>, git::GitError> {
    for (j, e) in jobs.iter().zip(entries.iter_mut()) {
        let message = format!("wg: land {} ({})\n\nTask: {}\n", j.title, j.task, j.task);
        let args = [
            "merge",
            "--no-ff",
            "--no-edit",
            "--quiet",
            "-m",
            &message,
            j.branch,
        ];
        if run_git(scratch, &args).is_err() {
            let _ = git::run(scratch, &["merge", "--abort"]);
            return Ok(None);
        }
        e.merged = Some(git::commit_of(scratch, "HEAD")?);
    }
    let new = git::commit_of(scratch, "HEAD")?;
    let first = &jobs[0];
    for c in first.commands {
        for e in entries.iter_mut() {
            e.state = EntryState::Checking;
            e.check = Some(c.clone());
            persist(e);
        }
        let run = checks::Run {
            task: first.task,
            stage: CheckStage::Merged,
            round: first.round,
            dir: scratch,
            commit: Some(new.clone()),
            timeout: first.timeout,
            tail_chars: first.tail_chars,
        };
        let recs = checks::run_all(first.layout, &run, std::slice::from_ref(c));
        // Every task of the batch keeps the record of the check that covered it.
        for j in &jobs[1..] {
            for r in &recs {
                let mut r = r.clone();
                r.task = j.task.to_string();
                r.round = j.round;
                let _ = checks::append(j.layout, &r);
            }
        }
        if recs.iter().any(|r| !r.passed) {
            return Ok(None);
        }
    }
    Ok(Some(new))
}

fn landed(commit: &str, note: &str) -> Outcome {
    Outcome::Landed {
        commit: commit.to_string(),
        note: note.to_string(),
    }
}

fn run_git(dir: &Path, args: &[&str]) -> Result<String, git::GitError> {
    git::run_with(dir, git::identity(dir), args)
}

/// Merges in `scratch` and checks the result: `Ok(Ok(new commit))`, or the outcome that
/// sends the task back.
fn merge_and_check(
    job: &Job<'_>,
    scratch: &Path,
    old: &str,
    entry: &mut Entry,
    persist: &mut dyn FnMut(&Entry),
) -> Result<Result<String, Outcome>, git::GitError> {
    let message = format!(
        "wg: land {} ({})\n\nTask: {}\n",
        job.title, job.task, job.task
    );
    let merged = match job.land_by {
        LandBy::Merge => run_git(
            scratch,
            &[
                "merge",
                "--no-ff",
                "--no-edit",
                "--quiet",
                "-m",
                &message,
                job.branch,
            ],
        ),
        LandBy::Rebase => run_git(scratch, &["rebase", "--quiet", old]),
    };
    if let Err(e) = merged {
        let conflict = conflict_of(scratch, old);
        let abort = match job.land_by {
            LandBy::Merge => ["merge", "--abort"],
            LandBy::Rebase => ["rebase", "--abort"],
        };
        let _ = git::run(scratch, &abort);
        return match conflict {
            Some(c) => Ok(Err(c)),
            None => Err(e),
        };
    }
    let new = git::commit_of(scratch, "HEAD")?;
    entry.state = EntryState::Checking;
    entry.merged = Some(new.clone());
    for (i, c) in job.commands.iter().enumerate() {
        entry.check = Some(c.clone());
        persist(entry);
        let run = checks::Run {
            task: job.task,
            stage: CheckStage::Merged,
            round: job.round,
            dir: scratch,
            commit: Some(new.clone()),
            timeout: job.timeout,
            tail_chars: job.tail_chars,
        };
        let recs = checks::run_all(job.layout, &run, &job.commands[i..=i]);
        if let Some(r) = recs.into_iter().find(|r| !r.passed) {
            return Ok(Err(Outcome::CheckFailed(Box::new(r))));
        }
    }
    if job.commands.is_empty() {
        persist(entry);
    }
    Ok(Ok(new))
}

/// The conflicted files and their hunks (with conflict markers), or `None` when the merge
/// failed for another reason.
fn conflict_of(scratch: &Path, old: &str) -> Option<Outcome> {
    let files: Vec<String> = git::run(scratch, &["diff", "--name-only", "--diff-filter=U"])
        .ok()?
        .lines()
        .map(str::to_string)
        .collect();
    if files.is_empty() {
        return None;
    }
    let hunks = git::run(scratch, &["diff"]).unwrap_or_default();
    Some(Outcome::Conflict {
        base_tip: old.to_string(),
        files,
        hunks: super::tail(&hunks, 6_000),
    })
}

/// Where the base branch is checked out (the main checkout, usually), brings its index and
/// files from `old` to `new` (`git read-tree -m -u`), keeping a person's unrelated local
/// changes; a refusal is reported, never forced.
fn sync_checkout(root: &Path, base_ref: &str, old: &str, new: &str) -> String {
    let Ok(trees) = git::list_worktrees(root) else {
        return String::new();
    };
    let Some(w) = trees.iter().find(|w| w.branch.as_deref() == Some(base_ref)) else {
        return String::new();
    };
    match git::run(&w.path, &["read-tree", "-m", "-u", old, new]) {
        Ok(_) => format!("checkout at {} updated", w.path.display()),
        Err(e) => format!(
            "the checkout at {} was not updated ({e}); run `git reset --keep HEAD` there",
            w.path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_in(dir: &Path, args: &[&str]) -> String {
        git::run_with(dir, &["user.name=t", "user.email=t@t"], args).unwrap()
    }

    /// A repository with `main` and a task branch `wg/t` adding `t.txt`.
    fn repo() -> (tempfile::TempDir, Layout) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        git_in(root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join(".gitignore"), ".wg/\n").unwrap();
        git_in(root, &["add", "."]);
        git_in(root, &["commit", "-qm", "init"]);
        git_in(root, &["checkout", "-q", "-b", "wg/t"]);
        std::fs::write(root.join("t.txt"), "t\n").unwrap();
        git_in(root, &["add", "."]);
        git_in(root, &["commit", "-qm", "t"]);
        git_in(root, &["checkout", "-q", "main"]);
        let layout = Layout::new(root.join(".wg"));
        (d, layout)
    }

    fn job<'a>(root: &'a Path, layout: &'a Layout, entry: Entry) -> Job<'a> {
        Job {
            root,
            layout,
            task: "t",
            title: "T",
            branch: "wg/t",
            base_ref: "refs/heads/main",
            land_by: LandBy::Merge,
            commands: &[],
            timeout: Duration::from_secs(30),
            tail_chars: 100,
            round: 1,
            entry,
        }
    }

    fn entry() -> Entry {
        Entry {
            task: "t".into(),
            entered: "now".into(),
            state: EntryState::Queued,
            base_ref: "refs/heads/main".into(),
            old_tip: None,
            merged: None,
            check: None,
        }
    }

    #[test]
    fn lands_once_and_a_repeat_after_the_swap_finds_it_on_the_base() {
        let (d, layout) = repo();
        let root = d.path();
        let mut steps = Vec::new();
        let first = land(&job(root, &layout, entry()), &mut |e| steps.push(e.state));
        let Outcome::Landed { commit, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(git::commit_of(root, "main").unwrap(), commit);
        assert_eq!(steps.first(), Some(&EntryState::Merging));
        assert_eq!(steps.last(), Some(&EntryState::Landing));
        assert!(root.join("t.txt").exists(), "the checkout followed");
        // A coordinator killed between the swap and its record runs the job again: the
        // queue file still says `landing` with the merged commit, and nothing moves.
        let mut resumed = entry();
        resumed.state = EntryState::Landing;
        resumed.merged = Some(commit.clone());
        let again = land(&job(root, &layout, resumed), &mut |_| {});
        assert!(
            matches!(&again, Outcome::Landed { commit: c, .. } if *c == commit),
            "{again:?}"
        );
        let again = land(&job(root, &layout, entry()), &mut |_| {});
        assert!(matches!(again, Outcome::Landed { .. }));
        assert_eq!(git::commit_of(root, "main").unwrap(), commit);
        let merges = git_in(root, &["rev-list", "--merges", "--count", "main"]);
        assert_eq!(merges.trim(), "1");
    }

    #[test]
    fn a_swap_from_a_stale_tip_is_refused() {
        let (d, _layout) = repo();
        let root = d.path();
        let tip = git::commit_of(root, "main").unwrap();
        let other = git::commit_of(root, "wg/t").unwrap();
        // update-ref with the old value is a compare-and-swap: a wrong old value moves nothing.
        assert!(run_git(root, &["update-ref", "refs/heads/main", &other, &other]).is_err());
        assert_eq!(git::commit_of(root, "main").unwrap(), tip);
    }
}
