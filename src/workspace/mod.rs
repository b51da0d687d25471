//! Workspaces: where a task's agent works. `shared` runs it in the project root, optionally
//! holding `lock_paths` no other running task may overlap; `worktree` gives it its own git
//! worktree on branch `wg/<id>`. See docs/workspaces.md.
//!
//! This module is pure (names, paths, decisions); `git.rs` is the only place that runs git.

pub mod git;
pub mod ops;
pub mod queue;

use std::path::{Component, Path, PathBuf};

use crate::config::WorkspaceConfig;
use crate::model::{Task, TaskStatus};

/// Task record fields (in `extra`) written by the coordinator and read by the handler,
/// `wg done`, `wg evaluate` and `wg doctor`.
pub mod field {
    /// Paths a shared task holds while it runs (from `wg add --lock`).
    pub const LOCK_PATHS: &str = "lock_paths";
    /// What the worktree starts from, as the task asked (`wg add --base`).
    pub const BASE: &str = "base";
    /// The commit the worktree started from; the evaluator diffs against it.
    pub const BASE_COMMIT: &str = "base_commit";
    /// The branch `merge = "ff"` fast-forwards (`refs/heads/...`), when the base was a branch.
    pub const BASE_REF: &str = "base_ref";
    /// The task's branch, `wg/<id>`.
    pub const BRANCH: &str = "branch";
    /// Absolute path of the live worktree; removed once it is cleaned up.
    pub const WORKTREE: &str = "worktree";
    /// Why the coordinator does not start this ready task yet.
    pub const WAITING_FOR: &str = "waiting_for";
    /// The outcome of the last cleanup (`{ok, message, merge}`).
    pub const CLEANUP: &str = "workspace_cleanup";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Worktree,
}

/// A task's mode: its own `workspace` when that names a mode, else the project's. Any other
/// `workspace` value is the older meaning, a directory under the root shared by its tasks.
pub fn mode(task: &Task, cfg: &WorkspaceConfig) -> Mode {
    match task.workspace.as_deref() {
        Some("worktree") => Mode::Worktree,
        Some("shared") => Mode::Shared,
        Some(_) => Mode::Shared,
        None if cfg.mode == crate::config::WorkspaceMode::Worktree => Mode::Worktree,
        None => Mode::Shared,
    }
}

pub fn branch_name(id: &str) -> String {
    format!("wg/{id}")
}

/// Where task `id`'s worktree goes: `dir` with `{id}` filled in, under `root` when relative.
/// A `dir` without `{id}` is one path for every task: worktree tasks then take turns.
pub fn worktree_dir(cfg: &WorkspaceConfig, root: &Path, id: &str) -> PathBuf {
    normalize(&root.join(cfg.dir.replace("{id}", id)))
}

/// `a/./b/../c` → `a/c`, without touching the file system (the worktree may not exist yet).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A string field of the task's `extra`.
pub fn extra_str<'t>(task: &'t Task, key: &str) -> Option<&'t str> {
    task.extra.get(key).and_then(|v| v.as_str())
}

/// The live worktree recorded for a task, if any.
pub fn recorded_worktree(task: &Task) -> Option<PathBuf> {
    extra_str(task, field::WORKTREE).map(PathBuf::from)
}

/// The task's lock paths, normalised.
pub fn lock_paths(task: &Task) -> Vec<String> {
    task.extra
        .get(field::LOCK_PATHS)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(normalize_lock)
                .collect()
        })
        .unwrap_or_default()
}

/// A lock path as compared: relative to the root, no `./`, no trailing `/`, `.` for the root.
pub fn normalize_lock(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Checks a lock path given on the command line: relative, inside the project.
pub fn validate_lock(p: &str) -> Result<String, String> {
    if p.starts_with('/') {
        return Err(format!(
            "lock path `{p}` is absolute; give it relative to the project root"
        ));
    }
    if p.split('/').any(|s| s == "..") {
        return Err(format!("lock path `{p}` leaves the project"));
    }
    Ok(normalize_lock(p))
}

/// Two lock paths overlap when they are the same or one lies under the other (by component:
/// `src/a` and `src/ab` do not overlap). `.` covers everything.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (normalize_lock(a), normalize_lock(b));
    if a == "." || b == "." || a == b {
        return true;
    }
    let under =
        |x: &str, y: &str| x.len() > y.len() && x.starts_with(y) && x[y.len()..].starts_with('/');
    under(&a, &b) || under(&b, &a)
}

/// The first held lock `wanted` overlaps: `(holder task, its path, our path)`.
pub fn lock_conflict<'h>(
    wanted: &[String],
    held: &'h [(String, Vec<String>)],
) -> Option<(&'h str, &'h str, String)> {
    for (holder, paths) in held {
        for h in paths {
            if let Some(w) = wanted.iter().find(|w| paths_overlap(w, h)) {
                return Some((holder, h, w.clone()));
            }
        }
    }
    None
}

/// The lock decision for one dispatch pass. `candidates` (id, lock paths) in dispatch order;
/// `held` the locks of live tasks. A candidate that does not conflict joins the holders, so of
/// two overlapping candidates only the first may start. Returns a wait reason per candidate.
pub fn lock_gate(
    candidates: &[(String, Vec<String>)],
    mut held: Vec<(String, Vec<String>)>,
) -> Vec<Option<String>> {
    candidates
        .iter()
        .map(|(id, locks)| {
            let others: Vec<(String, Vec<String>)> =
                held.iter().filter(|(h, _)| h != id).cloned().collect();
            let reason = lock_conflict(locks, &others).map(|(holder, hp, wp)| {
                format!("lock path {wp} overlaps {hp}, held by task {holder}")
            });
            if reason.is_none() && !locks.is_empty() && !held.iter().any(|(h, _)| h == id) {
                held.push((id.clone(), locks.clone()));
            }
            reason
        })
        .collect()
}

/// Whether a task may hold a workspace (its worktree, its locks): it runs or awaits a turn.
pub fn is_live(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::InProgress | TaskStatus::Waiting)
}

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Worktree {
    pub path: PathBuf,
    /// `refs/heads/...`, or `None` when detached or bare.
    pub branch: Option<String>,
    pub head: Option<String>,
    /// The main checkout (the first entry).
    pub main: bool,
}

/// Parses `git worktree list --porcelain`: blank-line separated records of `key value` lines.
pub fn parse_worktree_list(text: &str) -> Vec<Worktree> {
    let mut out: Vec<Worktree> = Vec::new();
    let mut cur: Option<Worktree> = None;
    for line in text.lines() {
        if line.is_empty() {
            out.extend(cur.take());
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "worktree" => {
                out.extend(cur.take());
                cur = Some(Worktree {
                    path: PathBuf::from(value),
                    main: out.is_empty(),
                    ..Default::default()
                });
            }
            "branch" => {
                if let Some(w) = cur.as_mut() {
                    w.branch = Some(value.to_string());
                }
            }
            "HEAD" => {
                if let Some(w) = cur.as_mut() {
                    w.head = Some(value.to_string());
                }
            }
            _ => {}
        }
    }
    out.extend(cur);
    out
}

/// The task a `wg/<id>` branch belongs to.
pub fn branch_owner(branch: &str) -> Option<&str> {
    branch
        .strip_prefix("refs/heads/")
        .unwrap_or(branch)
        .strip_prefix("wg/")
}

/// What to do before starting a worktree task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing is in the way: `git worktree add -B <branch> <dir> <base>`.
    Create,
    /// The task's own worktree from an earlier turn or attempt is there: run in it.
    Reuse,
    /// Something else holds the branch or the path: the task stays open with this reason.
    Wait(String),
}

/// The collision check. `live` says whether a task holds its workspace now; `dir_exists`
/// whether something is on disk at `dir` already.
pub fn plan_worktree(
    existing: &[Worktree],
    branch: &str,
    dir: &Path,
    dir_exists: bool,
    live: impl Fn(&str) -> bool,
) -> Plan {
    let full = format!("refs/heads/{branch}");
    let describe = |w: &Worktree| match w.branch.as_deref() {
        Some(b) => match branch_owner(b) {
            Some(owner) if live(owner) => format!("task {owner} (running)"),
            Some(owner) => format!(
                "a leftover worktree of task {owner} (not running; `wg doctor --fix` removes it)"
            ),
            None => format!(
                "a worktree on branch {} that wg does not manage",
                b.trim_start_matches("refs/heads/")
            ),
        },
        None => "a detached worktree that wg does not manage".to_string(),
    };
    if let Some(w) = existing.iter().find(|w| normalize(&w.path) == *dir) {
        if w.branch.as_deref() == Some(full.as_str()) {
            return Plan::Reuse;
        }
        return Plan::Wait(format!(
            "worktree path {} is in use by {}",
            dir.display(),
            describe(w)
        ));
    }
    if let Some(w) = existing
        .iter()
        .find(|w| w.branch.as_deref() == Some(full.as_str()))
    {
        return Plan::Wait(format!(
            "branch {branch} is checked out at {}",
            w.path.display()
        ));
    }
    if dir_exists {
        return Plan::Wait(format!(
            "worktree path {} exists and is not a worktree; move it away",
            dir.display()
        ));
    }
    Plan::Create
}

/// The message of the commit that saves a task's uncommitted changes.
pub fn commit_message(task: &Task, why: &str) -> String {
    format!(
        "wg: {} ({}): {why}\n\nTask: {}\n",
        task.title, task.id, task.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_by_component() {
        assert!(paths_overlap("src", "src"));
        assert!(paths_overlap("src", "src/a.rs"));
        assert!(paths_overlap("./src/a/", "src"));
        assert!(paths_overlap(".", "docs"));
        assert!(!paths_overlap("src/a", "src/ab"));
        assert!(!paths_overlap("src", "docs"));
        assert!(!paths_overlap("src/a", "src/b"));
    }

    #[test]
    fn conflicts_name_the_holder() {
        let held = vec![
            ("a".to_string(), vec!["docs".to_string()]),
            ("b".to_string(), vec!["src/parser".to_string()]),
        ];
        let c = lock_conflict(&["src".to_string()], &held).unwrap();
        assert_eq!(c, ("b", "src/parser", "src".to_string()));
        assert!(lock_conflict(&["tests".to_string()], &held).is_none());
        assert!(lock_conflict(&[], &held).is_none());
    }

    #[test]
    fn overlapping_candidates_take_turns_and_disjoint_ones_pass() {
        let l = |id: &str, p: &[&str]| (id.to_string(), p.iter().map(|s| s.to_string()).collect());
        let held = vec![l("running", &["docs"])];
        let gate = lock_gate(
            &[
                l("a", &["src"]),
                l("b", &["src/parser"]),
                l("c", &["tests"]),
                l("d", &["docs/x"]),
                l("e", &[]),
                // A waiting conversation resuming holds its own locks already.
                l("running", &["docs"]),
            ],
            held,
        );
        assert_eq!(gate[0], None);
        assert_eq!(
            gate[1].as_deref(),
            Some("lock path src/parser overlaps src, held by task a")
        );
        assert_eq!(gate[2], None);
        assert!(gate[3].as_deref().unwrap().contains("held by task running"));
        assert_eq!(gate[4], None);
        assert_eq!(gate[5], None);
    }

    #[test]
    fn lock_paths_are_checked() {
        assert_eq!(validate_lock("./src//x/").unwrap(), "src/x");
        assert!(validate_lock("/etc").is_err());
        assert!(validate_lock("src/../..").is_err());
    }

    #[test]
    fn worktree_dirs() {
        let mut cfg = WorkspaceConfig::default();
        let root = Path::new("/p");
        assert_eq!(
            worktree_dir(&cfg, root, "t1"),
            Path::new("/p/.wg/worktrees/t1")
        );
        cfg.dir = "../wt".into();
        assert_eq!(worktree_dir(&cfg, root, "t1"), Path::new("/wt"));
        cfg.dir = "/abs/{id}-wt".into();
        assert_eq!(worktree_dir(&cfg, root, "t1"), Path::new("/abs/t1-wt"));
    }

    #[test]
    fn parses_porcelain() {
        let text = "worktree /p\nHEAD abc\nbranch refs/heads/main\n\nworktree /p/.wg/worktrees/t\nHEAD def\nbranch refs/heads/wg/t\n\nworktree /x\nHEAD 123\ndetached\n\n";
        let w = parse_worktree_list(text);
        assert_eq!(w.len(), 3);
        assert!(w[0].main && !w[1].main);
        assert_eq!(w[1].branch.as_deref(), Some("refs/heads/wg/t"));
        assert_eq!(branch_owner(w[1].branch.as_deref().unwrap()), Some("t"));
        assert_eq!(w[2].branch, None);
    }

    #[test]
    fn collisions_wait_and_never_clobber() {
        let wt = |p: &str, b: &str| Worktree {
            path: p.into(),
            branch: Some(format!("refs/heads/{b}")),
            ..Default::default()
        };
        let dir = Path::new("/p/.wg/slot");
        let live = |id: &str| id == "a";
        assert_eq!(plan_worktree(&[], "wg/b", dir, false, live), Plan::Create);
        assert_eq!(
            plan_worktree(&[wt("/p/.wg/slot", "wg/b")], "wg/b", dir, true, live),
            Plan::Reuse
        );
        let Plan::Wait(r) = plan_worktree(&[wt("/p/.wg/slot", "wg/a")], "wg/b", dir, true, live)
        else {
            panic!()
        };
        assert!(r.contains("task a (running)"), "{r}");
        let Plan::Wait(r) = plan_worktree(&[wt("/p/.wg/slot", "wg/c")], "wg/b", dir, true, live)
        else {
            panic!()
        };
        assert!(r.contains("leftover worktree of task c"), "{r}");
        let Plan::Wait(r) = plan_worktree(&[wt("/elsewhere", "wg/b")], "wg/b", dir, false, live)
        else {
            panic!()
        };
        assert!(r.contains("checked out at /elsewhere"), "{r}");
        assert!(matches!(
            plan_worktree(&[], "wg/b", dir, true, live),
            Plan::Wait(_)
        ));
    }
}
